/* Multi-hop sessions: kInitServer naming the session constructor
 * "rpc.Connect" (host, port, key, enable_logging, init args...), which
 * makes this server a client of another server and relays the session to
 * it (TVM's rpc.connect(..., session_constructor_args=["rpc.Connect", ...])).
 *
 * Off unless the server names the hops it may dial (--allow-hop
 * HOST:PORT[,...]): a server that dials wherever its client says is an
 * open relay into the network it sits in.
 *
 * What TVM's middle server does is serve the session through its own
 * client session to the next hop, which forwards each request unchanged:
 * handles, data pointers and device numbers are the next hop's own.  So
 * after both handshakes and kInitServer the bytes are relayed as they are,
 * both ways, until one side closes; the client and the last server must
 * speak the same dialect, as they do with TVM. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/net.h"
#include "server/server_main.h"
#include "server/session_internal.h"
#include "wire/constants.h"
#include "wire/handshake.h"

/* Connect, handshake and kInitServer with the next hop, each bounded. */
#define HOP_DEADLINE_MS 10000
/* The next hop's kInitServer reply is small; a larger one is refused. */
#define HOP_MAX_REPLY (64u << 10)
/* Bytes moved per read while relaying. */
#define HOP_CHUNK (256u << 10)

int session_hop_allowed(const char *list, const char *host, int64_t port) {
  if (!list)
    return 0;
  const char *p = list;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    /* HOST:PORT, HOST:* ; the port is after the last ':' ([v6]:port). */
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
      if (p[i] == ':')
        colon = p + i;
    if (colon) {
      size_t hlen = (size_t)(colon - p);
      const char *h = p;
      if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
      }
      char ports[16];
      size_t plen = len - (size_t)(colon - p) - 1;
      if (plen < sizeof ports) {
        memcpy(ports, colon + 1, plen);
        ports[plen] = 0;
        int port_ok = port > 0 && port <= 65535 &&
                      (strcmp(ports, "*") == 0 || strtol(ports, NULL, 10) == port);
        if (port_ok && strlen(host) == hlen && strncasecmp(host, h, hlen) == 0)
          return 1;
      }
    }
    if (!end)
      break;
    p = end + 1;
  }
  return 0;
}

int ferry_server_allow_hop_check(const char *list, char *why, size_t whycap) {
  const char *p = list;
  if (!*p) {
    snprintf(why, whycap, "--allow-hop: empty list");
    return FERRY_EINVAL;
  }
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
      if (p[i] == ':')
        colon = p + i;
    int ok = colon && colon > p && (size_t)(colon - p) + 1 < len;
    if (ok) {
      const char *q = colon + 1;
      size_t plen = len - (size_t)(q - p);
      if (!(plen == 1 && *q == '*')) {
        long v = 0;
        for (size_t i = 0; ok && i < plen; i++) {
          ok = q[i] >= '0' && q[i] <= '9' && plen <= 5;
          v = v * 10 + (q[i] - '0');
        }
        ok = ok && v > 0 && v <= 65535;
      }
    }
    if (!ok) {
      snprintf(why, whycap, "--allow-hop: '%.*s' is not HOST:PORT or HOST:*", (int)len, p);
      return FERRY_EINVAL;
    }
    if (!end)
      break;
    p = end + 1;
    if (!*p) {
      snprintf(why, whycap, "--allow-hop: empty entry at the end of '%s'", list);
      return FERRY_EINVAL;
    }
  }
  return FERRY_OK;
}

/* Client handshake with the next hop on fd: W(magic) S("client:" key),
 * then its answer. */
static int hop_handshake(int fd, const char *where, const char *key, int64_t dl,
                         ferry_err *err) {
  ferry_buf out;
  ferry_buf_init(&out, FERRY_HANDSHAKE_MAX_KEY + 16);
  char full[FERRY_HANDSHAKE_MAX_KEY];
  int n = snprintf(full, sizeof full, "client:%s", key);
  int rc = n < 0 || (size_t)n >= sizeof full ? FERRY_ETOOBIG : FERRY_OK;
  if (!rc)
    rc = ferry_handshake_encode(&out, FERRY_RPC_MAGIC, full, (size_t)n);
  if (!rc)
    rc = ferry_write_full(fd, out.data, out.len, dl);
  ferry_buf_close(&out);
  if (rc)
    return ferry_err_set(err, rc, "RPCError: handshake with %s failed: %s", where,
                         ferry_strerror(rc));
  uint8_t w[4];
  rc = ferry_read_full(fd, w, 4, dl, NULL);
  if (rc)
    return ferry_err_set(err, rc, "RPCError: handshake with %s failed: %s", where,
                         ferry_strerror(rc));
  int32_t word = (int32_t)get_le32(w);
  if (word == FERRY_RPC_CODE_MISMATCH)
    return ferry_err_set(err, FERRY_EMISMATCH,
                         "RPCError: %s cannot find server that matches key=%s", where, key);
  if (word != FERRY_RPC_MAGIC)
    return ferry_err_set(err, FERRY_EMAGIC, "RPCError: %s is not a TVM RPC server", where);
  rc = ferry_read_full(fd, w, 4, dl, NULL);
  int32_t unvalidated_len = rc ? 0 : (int32_t)get_le32(w);
  if (!rc && (unvalidated_len < 0 || unvalidated_len > FERRY_HANDSHAKE_MAX_KEY))
    rc = FERRY_EPROTO;
  char skip[256];
  for (int32_t left = unvalidated_len; !rc && left > 0;) {
    size_t k = (size_t)left < sizeof skip ? (size_t)left : sizeof skip;
    rc = ferry_read_full(fd, skip, k, dl, NULL);
    left -= (int32_t)k;
  }
  if (rc)
    return ferry_err_set(err, rc, "RPCError: handshake with %s failed: %s", where,
                         ferry_strerror(rc));
  return FERRY_OK;
}

/* kInitServer to the next hop with the constructor's remaining arguments,
 * in the client's dialect, and its reply. */
int session_hop_init(ferry_session *s, int fd, const char *where, const ferry_value *rest,
                    int nrest, int64_t dl, ferry_err *err) {
  ferry_buf out;
  ferry_buf_init(&out, HOP_MAX_REPLY);
  size_t mark = 0;
  int rc = ferry_rpc_packet_begin(&out, FERRY_RPC_INIT_SERVER, &mark);
  if (!rc)
    rc = ferry_rpc_init_server_encode(&out, FERRY_RPC_PROTOCOL_VERSION);
  if (!rc)
    rc = session_dialect(s)->encode_seq(&out, rest, nrest);
  if (!rc) {
    ferry_rpc_packet_end(&out, mark);
    rc = ferry_write_full(fd, out.data, out.len, dl);
  }
  ferry_buf_close(&out);
  uint8_t hdr[12];
  if (!rc)
    rc = ferry_read_full(fd, hdr, sizeof hdr, dl, NULL);
  if (rc)
    return ferry_err_set(err, rc, "RPCError: starting the session on %s failed: %s", where,
                         ferry_strerror(rc));
  uint64_t unvalidated_len = get_le64(hdr);
  int32_t code = (int32_t)get_le32(hdr + 8);
  if (unvalidated_len < 4 || unvalidated_len > HOP_MAX_REPLY)
    return ferry_err_set(err, FERRY_EPROTO,
                         "RPCError: %s answered kInitServer with a packet of %llu bytes", where,
                         (unsigned long long)unvalidated_len);
  uint8_t *body = malloc((size_t)unvalidated_len);
  if (!body)
    return ferry_err_set(err, FERRY_ENOMEM, "RPCError: out of memory");
  rc = ferry_read_full(fd, body, (size_t)unvalidated_len - 4, dl, NULL);
  free(body);
  if (rc)
    return ferry_err_set(err, rc, "RPCError: starting the session on %s failed: %s", where,
                         ferry_strerror(rc));
  if (code != FERRY_RPC_RETURN)
    return ferry_err_set(err, FERRY_EREMOTE, "RPCError: %s refused the session (%s)", where,
                         ferry_rpc_code_name(code));
  return FERRY_OK;
}

int session_hop_connect(ferry_session *s, const ferry_value *v, int n, ferry_err *err) {
  if (n < 4 || v[1].kind != FERRY_KIND_STR || v[2].kind != FERRY_KIND_INT ||
      v[3].kind != FERRY_KIND_STR)
    return ferry_err_set(err, FERRY_EINVAL,
                         "RPCError: rpc.Connect wants (host, port, key, enable_logging, ...)");
  const char *host = v[1].v.str.data;
  int64_t port = v[2].v.i;
  char where[300];
  snprintf(where, sizeof where, "%.256s:%lld", host, (long long)port);
  if (!s->cfg->allow_hop)
    return ferry_err_set(err, FERRY_EPERM,
                         "RPCError: multi-hop sessions (rpc.Connect to %s) are off on this "
                         "server; start it with --allow-hop %s to allow them",
                         where, where);
  if (!session_hop_allowed(s->cfg->allow_hop, host, port))
    return ferry_err_set(err, FERRY_EPERM,
                         "RPCError: rpc.Connect to %s refused: not in this server's "
                         "--allow-hop list",
                         where);
  if (!s->io->fd)
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "RPCError: this session's transport cannot relay a multi-hop session");
  int64_t dl = ferry_now_ms() + HOP_DEADLINE_MS;
  int fd = -1;
  char why[256] = "";
  int rc = ferry_tcp_connect(host, (int)port, HOP_DEADLINE_MS, &fd, why, sizeof why);
  if (rc)
    return ferry_err_set(err, rc, "RPCError: rpc.Connect: %s", why[0] ? why : ferry_strerror(rc));
  rc = hop_handshake(fd, where, v[3].v.str.data, dl, err);
  if (!rc) /* args 4.. are enable_logging (ignored: nothing to log to) and the init args */
    rc = session_hop_init(s, fd, where, v + (n > 5 ? 5 : n), n > 5 ? n - 5 : 0, dl, err);
  if (rc) {
    close(fd);
    return rc;
  }
  s->hop_fd = fd;
  return FERRY_OK;
}

/* Writes all of p to fd (blocking). */
static int write_fd(int fd, const uint8_t *p, size_t n) {
  return ferry_write_full(fd, p, n, -1);
}

int session_hop_relay(ferry_session *s, ferry_err *err) {
  int hop = s->hop_fd;
  int cfd = s->io->fd(s->io->ctx);
  /* Whatever the reader took beyond kInitServer belongs to the next hop. */
  size_t have = 0;
  const uint8_t *early = ferry_rpc_reader_buffered(&s->reader, &have);
  int rc = have ? write_fd(hop, early, have) : FERRY_OK;
  ferry_rpc_reader_discard(&s->reader, have);
  uint8_t *buf = malloc(HOP_CHUNK);
  if (!buf)
    rc = FERRY_ENOMEM;
  while (!rc) {
    struct pollfd pfd[2] = {{.fd = cfd, .events = POLLIN}, {.fd = hop, .events = POLLIN}};
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      rc = FERRY_EIO;
      break;
    }
    if (pfd[0].revents) {
      long got = s->io->read(s->io->ctx, buf, HOP_CHUNK);
      if (got <= 0) {
        rc = got < 0 ? (int)got : SESSION_CLEAN_EOF;
        break;
      }
      rc = write_fd(hop, buf, (size_t)got);
      if (rc)
        break;
    }
    if (pfd[1].revents) {
      ssize_t got = read(hop, buf, HOP_CHUNK);
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0) {
        rc = SESSION_CLEAN_EOF; /* the next hop ended the session */
        break;
      }
      ferry_tcp_quickack(hop);
      rc = s->io->write(s->io->ctx, buf, (size_t)got);
    }
  }
  free(buf);
  close(hop);
  s->hop_fd = -1;
  if (rc == SESSION_CLEAN_EOF)
    return FERRY_OK;
  return ferry_err_set(err, rc, "relaying the multi-hop session: %s", ferry_strerror(rc));
}
