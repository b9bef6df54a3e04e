/* Session lifetime: connect, handshake (tracker-proxy-server.md §3.1,
 * §3.3), kInitServer (rpc-session.md §1.5), and the orderly end
 * (release everything, kShutdown, close; §1.6, §5.10). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/net.h"
#include "client/client_internal.h"
#include "wire/constants.h"
#include "wire/handshake.h"

/* Request packets are bounded only by what the caller hands us (a file or
 * a tensor in one packet); replies by opts.max_reply_bytes. */
#define CLIENT_MAX_REQUEST (SIZE_MAX / 2)
/* Decoded reply values: the largest reply plus its bookkeeping. */
#define CLIENT_ARENA_SLACK ((size_t)1 << 20)

void ferry_client_opts_init(ferry_client_opts *o) {
  memset(o, 0, sizeof *o);
  o->timeout_ms = 60000;
  o->dialect = FERRY_CLIENT_CLASSIC;
  o->max_reply_bytes = (uint64_t)1 << 30;
  o->max_retry = 5;
  o->tracker_retry_ms = 60000;
  o->handshake_timeout_ms = 5000;
}

const char *ferry_client_dialect_name(enum ferry_client_dialect d) {
  return d == FERRY_CLIENT_FFI ? "ffi" : "classic";
}

/* The one place the public dialect choice meets the wire layer's table. */
static const ferry_dialect *wire_dialect(enum ferry_client_dialect d) {
  return ferry_dialect_get(d == FERRY_CLIENT_FFI ? FERRY_DIALECT_FFI : FERRY_DIALECT_CLASSIC);
}

static int ms_left(int64_t deadline_ms) {
  if (deadline_ms < 0)
    return -1;
  int64_t left = deadline_ms - ferry_now_ms();
  return left > 0 ? (int)left : 0;
}

/* W(magic) S("client:<key>[ -timeout=<s>]"), then W(code) [S(server key)]. */
static int handshake(ferry_client *c, const char *key, int64_t dl) {
  char ks[FERRY_HANDSHAKE_MAX_KEY];
  int n;
  if (c->opts.session_timeout_s > 0)
    n = snprintf(ks, sizeof ks, "client:%s -timeout=%g", key, c->opts.session_timeout_s);
  else
    n = snprintf(ks, sizeof ks, "client:%s", key);
  if (n < 0 || (size_t)n >= sizeof ks)
    return client_fail(c, FERRY_ETOOBIG, "key '%.40s...' is too long", key);
  c->out.len = 0;
  int rc = ferry_handshake_encode(&c->out, FERRY_RPC_MAGIC, ks, (size_t)n);
  if (rc)
    return client_fail(c, rc, "cannot encode the handshake");
  rc = ferry_write_full(c->fd, c->out.data, c->out.len, dl);
  if (rc)
    return client_fail(c, rc, "cannot send the handshake to %s: %s", c->peer,
                       ferry_strerror(rc));

  /* Read exactly the answer: the word, then (on success) the key, never a
   * byte of the session that follows. */
  ferry_handshake_reader r;
  ferry_handshake_reader_init(&r, 0, FERRY_HANDSHAKE_MAX_KEY);
  uint8_t b[FERRY_HANDSHAKE_MAX_KEY];
  size_t want = 4, used = 0;
  for (;;) {
    rc = ferry_read_full(c->fd, b, want, dl, NULL);
    if (rc) {
      ferry_handshake_reader_close(&r);
      return client_fail(c, rc, "%s %s during the handshake", c->peer,
                         rc == FERRY_ECLOSED ? "closed the connection" : ferry_strerror(rc));
    }
    rc = ferry_handshake_reader_feed(&r, b, want, &used);
    if (rc == 1)
      break;
    if (rc != FERRY_EAGAIN) {
      ferry_handshake_reader_close(&r);
      return client_fail(c, FERRY_EPROTO, "%s sent a malformed handshake answer", c->peer);
    }
    /* After the word comes the key length, then the key itself (its
     * length already bounded by the reader). */
    want = r.hdr_len < 8 ? 8 - r.hdr_len : (size_t)r.unvalidated_key_len - r.key.len;
  }
  int32_t word = r.word;
  if (word == FERRY_RPC_CODE_SUCCESS)
    snprintf(c->server_key, sizeof c->server_key, "%s", ferry_handshake_key(&r));
  ferry_handshake_reader_close(&r);
  /* TVM's wording (rpc_socket_impl.cc), so scripts that grep it still work. */
  if (word == FERRY_RPC_CODE_MISMATCH)
    return client_fail(c, FERRY_EMISMATCH, "URL %s cannot find server that matches key=%s",
                       c->peer, ks);
  if (word == FERRY_RPC_CODE_DUPLICATE)
    return client_fail(c, FERRY_EDUPLICATE, "URL %s server already have key=%s", c->peer, ks);
  if (word != FERRY_RPC_CODE_SUCCESS)
    return client_fail(c, FERRY_EMAGIC, "URL %s is not TVM RPC server", c->peer);
  return 0;
}

/* kInitServer("0.8.0", []) -> any kReturn (§1.5: contents ignored). */
static int init_server(ferry_client *c) {
  size_t mark;
  int rc = client_packet_begin(c, FERRY_RPC_INIT_SERVER, &mark);
  if (!rc)
    rc = ferry_rpc_init_server_encode(&c->out, FERRY_RPC_PROTOCOL_VERSION);
  if (!rc)
    rc = c->d->encode_seq(&c->out, NULL, 0);
  if (rc)
    return client_fail(c, rc, "cannot encode kInitServer");
  return client_exchange(c, mark, FERRY_RPC_RETURN);
}

static ferry_client *client_new(const ferry_client_opts *o) {
  ferry_client *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (o)
    c->opts = *o;
  else
    ferry_client_opts_init(&c->opts);
  if (c->opts.max_reply_bytes < FERRY_RPC_MIN_MAX_PACKET)
    c->opts.max_reply_bytes = FERRY_RPC_MIN_MAX_PACKET;
  /* The arena below is sized at twice this: keep that within size_t on
   * 32-bit devices. */
  if (c->opts.max_reply_bytes > SIZE_MAX / 4)
    c->opts.max_reply_bytes = SIZE_MAX / 4;
  c->fd = -1;
  ferry_buf_init(&c->out, CLIENT_MAX_REQUEST);
  ferry_buf_init(&c->in, (size_t)c->opts.max_reply_bytes + 16);
  ferry_rpc_arena_init(&c->arena, (size_t)c->opts.max_reply_bytes * 2 + CLIENT_ARENA_SLACK);
  c->live.next = c->live.prev = &c->live;
  return c;
}

static void client_free(ferry_client *c) {
  if (c->fd >= 0)
    close(c->fd);
  ferry_buf_close(&c->out);
  ferry_buf_close(&c->in);
  ferry_rpc_arena_close(&c->arena);
  free(c);
}

int client_open(const char *host, int port, int fd, const char *key,
                const ferry_client_opts *o, int64_t dl, int64_t hs_dl, ferry_client **out,
                char *err, size_t errcap) {
  ferry_client *c = client_new(o);
  if (!c) {
    if (fd >= 0)
      close(fd);
    snprintf(err, errcap, "out of memory");
    return FERRY_ENOMEM;
  }
  int rc = 0;
  c->d = wire_dialect(c->opts.dialect);
  if (!c->d)
    rc = client_fail(c, FERRY_EUNSUPPORTED, "the %s session dialect is not built in",
                     ferry_client_dialect_name(c->opts.dialect));
  c->fd = fd; /* owned from here on: client_free closes it */
  if (fd >= 0)
    ferry_peer_name(fd, c->peer, sizeof c->peer);
  else
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
  if (!rc && fd < 0) {
    char cerr[256] = "";
    rc = ferry_tcp_connect(host, port, ms_left(hs_dl), &c->fd, cerr, sizeof cerr);
    if (rc)
      client_fail(c, rc, "cannot connect to %s:%d: %s", host, port,
                  cerr[0] ? cerr : ferry_strerror(rc));
  }
  if (!rc)
    rc = handshake(c, key ? key : "", hs_dl);
  if (!rc) {
    /* kInitServer's reply shares the connect deadline; later requests
     * each get the full timeout. */
    int saved = c->opts.timeout_ms;
    int left = ms_left(dl);
    if (left >= 0)
      c->opts.timeout_ms = left > 0 ? left : 1;
    client_net_setup(c);
    rc = init_server(c);
    c->opts.timeout_ms = saved;
    client_net_setup(c);
    if (rc == FERRY_EREMOTE) {
      char msg[CLIENT_ERR_MAX];
      snprintf(msg, sizeof msg, "%s", c->err);
      c->err[0] = 0;
      client_fail(c, rc, "%s refused the session: %s", c->peer, msg);
    }
  }
  if (rc) {
    snprintf(err, errcap, "%s", c->err[0] ? c->err : ferry_strerror(rc));
    client_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

int ferry_client_connect(const char *host, int port, const char *key,
                         const ferry_client_opts *opts, ferry_client **out, char *err,
                         size_t errcap) {
  int t = opts ? opts->timeout_ms : 60000;
  int64_t dl = t > 0 ? ferry_now_ms() + t : -1;
  /* No handshake deadline of its own here: a proxy holds the handshake
   * until the server of the key arrives, and there is no second try. */
  return client_open(host, port, -1, key, opts, dl, dl, out, err, errcap);
}

int ferry_client_connect_fd(int fd, const char *key, const ferry_client_opts *opts,
                            ferry_client **out, char *err, size_t errcap) {
  if (fd < 0) {
    snprintf(err, errcap, "no socket");
    return FERRY_EINVAL;
  }
  int t = opts ? opts->timeout_ms : 60000;
  int64_t dl = t > 0 ? ferry_now_ms() + t : -1;
  return client_open(NULL, 0, fd, key, opts, dl, dl, out, err, errcap);
}

void ferry_client_close(ferry_client *c) {
  if (!c)
    return;
  /* Release what the caller did not, newest first, then the cached
   * functions: the server would free them at shutdown anyway, but TVM's
   * servers keep a session's memory until then and a polite client does
   * not rely on that.  Errors are ignored, as TVM's client ignores them. */
  while (c->live.next != &c->live)
    (void)ferry_client_release(c, c->live.prev);
  for (int g = 0; g < CG_COUNT; g++)
    if (c->global[g] && !c->broken)
      if (client_free_handle(c, c->global[g], FERRY_KIND_FUNC) != 0) {
        /* best effort: the session is ending or the object is lost anyway */
      }
  if (!c->broken && c->fd >= 0) {
    size_t mark;
    if (client_packet_begin(c, FERRY_RPC_SHUTDOWN, &mark) == 0)
      if (client_send_only(c, mark) != 0) {
        /* best effort: the session is ending or the object is lost anyway */
      }
  }
  client_free(c);
}

const char *ferry_client_errmsg(const ferry_client *c) { return c->err; }
const char *ferry_client_server_key(const ferry_client *c) { return c->server_key; }
const char *ferry_client_peer(const ferry_client *c) { return c->peer; }
enum ferry_client_dialect ferry_client_dialect(const ferry_client *c) {
  return c->opts.dialect;
}
