/* The session loop: dialect detection, dispatch of every RPC code,
 * exceptions, the session's lifetime (rpc-session.md §1.4-§1.6, §3, §7.4).
 * Reading is in session_read.c, the handlers in session_{call,copy,dev}.c. */
#include "server/session.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "base/util.h"
#include "server/session_internal.h"

/* Decoded values never need more than a few times the bytes they came
 * from (a 4-byte type code becomes a 24-byte ferry_value); the slack covers
 * arena rounding. */
#define ARENA_FACTOR 8
#define ARENA_SLACK (64u << 10)

/* ---- helpers shared by the session_*.c files ----------------------------- */

int session_decode_seq(ferry_session *s, int code, const uint8_t *seq, size_t n,
                       ferry_value **vals, int *nvals, ferry_err *err) {
  const ferry_dialect *d = s->dialect;
  if (!d) {
    int decided = 0;
    d = ferry_dialect_detect(code, seq, n, &decided);
    if (!d)
      return ferry_err_set(err, FERRY_EPROTO,
                           "ValueError: %s carries a packed sequence of no known dialect",
                           ferry_rpc_code_name(code));
    if (decided) {
      s->dialect = d;
      if (s->cfg->on_dialect)
        s->cfg->on_dialect(s->cfg->hook_ctx, d->id);
    }
  }
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  size_t used = 0;
  int rc = d->decode_seq(seq, n, &s->arena, vals, nvals, &used, &why);
  if (rc)
    return ferry_err_set(err, rc, "ValueError: malformed %s arguments: %s",
                         ferry_rpc_code_name(code), why.msg[0] ? why.msg : ferry_strerror(rc));
  if (used != n)
    return ferry_err_set(err, FERRY_EPROTO,
                         "ValueError: %s has %zu bytes after its arguments",
                         ferry_rpc_code_name(code), n - used);
  return FERRY_OK;
}

static enum ferry_kind kind_of_letter(char c) {
  switch (c) {
  case 'D':
    return FERRY_KIND_DEVICE;
  case 'I':
    return FERRY_KIND_INT;
  case 'T':
    return FERRY_KIND_DTYPE;
  case 'P':
    return FERRY_KIND_OPAQUE;
  case 'X':
    return FERRY_KIND_TENSOR;
  default:
    return FERRY_KIND_STR;
  }
}

int session_expect(const ferry_value *vals, int n, const char *sig, const char *what,
                   ferry_err *err) {
  int want = (int)strlen(sig);
  if (n != want)
    return ferry_err_set(err, FERRY_EPROTO, "ValueError: %s expects %d arguments, got %d",
                         what, want, n);
  for (int i = 0; i < n; i++) {
    enum ferry_kind k = vals[i].kind;
    char c = sig[i];
    int ok = k == kind_of_letter(c) || ((c == 'P' || c == 's') && k == FERRY_KIND_NONE) ||
             (c == 'I' && k == FERRY_KIND_BOOL);
    if (!ok)
      return ferry_err_set(err, FERRY_ETYPE, "ValueError: %s argument %d must be %s, not %s",
                           what, i, ferry_kind_name(kind_of_letter(c)), ferry_kind_name(k));
  }
  return FERRY_OK;
}

int session_reply_values(ferry_session *s, const ferry_value *vals, int n) {
  size_t mark = 0;
  s->out.len = 0;
  int rc = ferry_rpc_packet_begin(&s->out, FERRY_RPC_RETURN, &mark);
  if (!rc)
    rc = session_dialect(s)->encode_seq(&s->out, vals, n);
  if (rc)
    return rc;
  ferry_rpc_packet_end(&s->out, mark);
  return FERRY_OK;
}

int session_reply_void(ferry_session *s) {
  ferry_value v;
  v.kind = FERRY_KIND_NONE;
  return session_reply_values(s, &v, 1);
}

int session_reply_opaque(ferry_session *s, uint64_t handle) {
  ferry_value v;
  v.kind = FERRY_KIND_OPAQUE;
  v.v.handle = handle;
  return session_reply_values(s, &v, 1);
}

/* ---- the session-local GetCRTMaxPacketSize ------------------------------- */

static int max_packet_call(ferry_func *self, ferry_call *c) {
  ferry_session *s = ferry_container_of(self, ferry_session, max_packet_fn);
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = (int64_t)s->cfg->copy_packet_size;
  return FERRY_OK;
}

/* The object lives inside the session; its last reference is the
 * session's own, dropped after the handle table is closed. */
static void max_packet_destroy(ferry_obj *o) {
  (void)o;
}

/* ---- requests ------------------------------------------------------------ */

static int init_server(ferry_session *s, const ferry_rpc_packet *pkt, ferry_err *err) {
  if (s->initialized)
    return ferry_err_set(err, FERRY_ESTATE, "RPCError: Server has already been initialized");
  const char *version = NULL;
  size_t vlen = 0, seq_off = 0;
  if (ferry_rpc_init_server_decode(pkt->body, pkt->body_len, &version, &vlen, &seq_off))
    return ferry_err_set(err, FERRY_EPROTO, "ValueError: malformed kInitServer packet");
  if (vlen != strlen(FERRY_RPC_PROTOCOL_VERSION) ||
      memcmp(version, FERRY_RPC_PROTOCOL_VERSION, vlen) != 0)
    return ferry_err_set(err, FERRY_EPROTO,
                         "RPCError: Version mismatch, client protocol version %.*s, server "
                         "protocol version %s",
                         (int)(vlen > 64 ? 64 : vlen), version, FERRY_RPC_PROTOCOL_VERSION);
  ferry_value *vals = NULL;
  int n = 0;
  int rc = session_decode_seq(s, pkt->code, pkt->body + seq_off, pkt->body_len - seq_off,
                              &vals, &n, err);
  if (rc)
    return rc;
  if (n != 0 && vals[0].kind == FERRY_KIND_STR && strcmp(vals[0].v.str.data, "rpc.Connect") == 0) {
    rc = session_hop_connect(s, vals, n, err);
    if (rc)
      return rc;
  } else if (n != 0 && vals[0].kind == FERRY_KIND_STR &&
             strcmp(vals[0].v.str.data, "rpc.PopenSession") == 0) {
    rc = session_popen_start(s, vals, n, err);
    if (rc)
      return rc;
  } else if (n != 0) {
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "RPCError: session constructors (%s) are not supported by this "
                         "server (only rpc.Connect with --allow-hop, and rpc.PopenSession "
                         "with --allow-popen)",
                         vals[0].kind == FERRY_KIND_STR ? vals[0].v.str.data : "?");
  }
  s->initialized = 1;
  /* An empty packed sequence: the one reply both dialects' clients accept
   * (§7.4); TVM <= 0.20 itself answers [4] (null). */
  return session_reply_values(s, NULL, 0);
}

static int dispatch(ferry_session *s, const ferry_rpc_packet *pkt, ferry_err *err) {
  int code = pkt->code;
  switch (code) {
  case FERRY_RPC_INIT_SERVER:
    return init_server(s, pkt, err);
  case FERRY_RPC_CALL_FUNC:
    return session_call_func(s, pkt, err);
  case FERRY_RPC_COPY_FROM_REMOTE:
    return session_copy_from(s, pkt, err);
  case FERRY_RPC_COPY_TO_REMOTE:
    return session_copy_to(s, pkt, err);
  default:
    break;
  }
  if (code < FERRY_RPC_SYSCALL_START || code > FERRY_RPC_DEV_GET_CURRENT_STREAM)
    return ferry_err_set(err, FERRY_EPROTO, "RPCError: unknown RPC code %d (%s)", code,
                         ferry_rpc_code_name(code));
  ferry_value *vals = NULL;
  int n = 0;
  int rc = session_decode_seq(s, code, pkt->body, pkt->body_len, &vals, &n, err);
  if (rc)
    return rc;
  switch (code) {
  case FERRY_RPC_GET_GLOBAL_FUNC:
    return session_get_global(s, vals, n, err);
  case FERRY_RPC_FREE_HANDLE:
    return session_free_handle(s, vals, n, err);
  case FERRY_RPC_COPY_AMONG_REMOTE:
    return session_copy_among(s, vals, n, err);
  default:
    return session_device_syscall(s, code, vals, n, err);
  }
}

/* Turns a failed request into a kException reply in s->out.  Messages
 * longer than the error buffer were already cut there. */
static int reply_exception(ferry_session *s, const ferry_err *e) {
  const char *msg = e->msg[0] ? e->msg : ferry_strerror(e->code ? e->code : FERRY_EIO);
  s->out.len = 0;
  return ferry_rpc_exception_encode(&s->out, session_dialect(s), msg, strlen(msg));
}

/* Reads the next request and leaves its reply in s->out (+ s->tail).
 * FERRY_OK, SESSION_CLEAN_EOF, SHUTDOWN_SEEN, or a fatal error. */
#define SHUTDOWN_SEEN 2
static int next_request(ferry_session *s, ferry_err *err) {
  s->tail = NULL;
  s->tail_len = 0;
  s->out.len = 0;
  ferry_err req_err;
  ferry_err_clear(&req_err);
  int rc = session_fill_to(s, FERRY_RPC_HEADER_SIZE, err);
  if (rc)
    return rc;
  size_t have = 0;
  const uint8_t *p = ferry_rpc_reader_buffered(&s->reader, &have);
  uint64_t unvalidated_len = get_le64(p);
  ferry_rpc_arena_reset(&s->arena); /* per-packet arena */
  if (unvalidated_len >= SESSION_STREAM_MIN && unvalidated_len <= s->max_packet) {
    rc = session_fill_to(s, FERRY_RPC_HEADER_SIZE + 4, err);
    if (rc)
      return rc < 0 ? rc : ferry_err_set(err, FERRY_ECLOSED, "connection closed in a packet");
    p = ferry_rpc_reader_buffered(&s->reader, &have);
    if ((int32_t)get_le32(p + FERRY_RPC_HEADER_SIZE) == FERRY_RPC_COPY_TO_REMOTE) {
      s->arena.max = ARENA_SLACK;
      rc = session_copy_to_streamed(s, unvalidated_len, &req_err, err);
      if (rc)
        return rc;
      goto reply;
    }
  }
  ferry_rpc_packet pkt;
  rc = session_read_packet(s, &pkt, err);
  if (rc)
    return rc;
  if (pkt.code == FERRY_RPC_SHUTDOWN)
    return SHUTDOWN_SEEN;
  s->arena.max = pkt.body_len * ARENA_FACTOR + ARENA_SLACK;
  rc = dispatch(s, &pkt, &req_err);
  if (rc && !req_err.code)
    req_err.code = rc;
reply:
  if (req_err.code) {
    ferry_debug("session: request failed: %s", req_err.msg);
    s->tail = NULL;
    s->tail_len = 0;
    rc = reply_exception(s, &req_err);
    if (rc)
      return ferry_err_set(err, rc, "cannot encode an exception reply");
  }
  return FERRY_OK;
}

static int session_loop(ferry_session *s, ferry_err *err) {
  for (;;) {
    int rc = next_request(s, err);
    if (rc == SESSION_CLEAN_EOF || rc == SHUTDOWN_SEEN)
      return FERRY_OK; /* EOF at a packet boundary or kShutdown: a clean end */
    if (rc)
      return rc;
    rc = s->io->write(s->io->ctx, s->out.data, s->out.len);
    if (!rc && s->tail_len)
      rc = s->io->write(s->io->ctx, s->tail, s->tail_len);
    if (rc)
      return ferry_err_set(err, rc, "writing the session: %s", ferry_strerror(rc));
    /* rpc.Connect succeeded: from now on this server is a relay. */
    if (s->hop_fd >= 0)
      return session_hop_relay(s, err);
    /* A huge request or reply (upload, download) should not pin its
     * memory for the rest of the session. */
    if (s->out.cap > (1u << 20))
      ferry_buf_close(&s->out);
    s->out.len = 0;
    ferry_rpc_reader_shrink(&s->reader, (size_t)4 << 20);
  }
}

int ferry_session_run(const ferry_session_io *io, const ferry_session_config *cfg,
                      ferry_err *err) {
  ferry_session s;
  memset(&s, 0, sizeof s);
  s.hop_fd = -1;
  s.io = io;
  s.cfg = cfg;
  s.max_packet = cfg->max_packet ? cfg->max_packet : FERRY_SESSION_DEFAULT_MAX_PACKET;
  ferry_rpc_reader_init(&s.reader, s.max_packet);
  s.max_packet = s.reader.max_packet;
  ferry_rpc_arena_init(&s.arena, ARENA_SLACK);
  /* Replies are at most one maximal packet plus its prefix. */
  ferry_buf_init(&s.out, (size_t)s.max_packet + FERRY_RPC_HEADER_SIZE);
  ferry_handles_init(&s.handles, FERRY_HANDLES_DEFAULT_MAX);
  ferry_obj_init(&s.max_packet_fn.base, FERRY_OBJ_FUNC, max_packet_destroy);
  s.max_packet_fn.call = max_packet_call;

  ferry_rt_options opt = {
      .work_dir = cfg->work_dir,
      .preload = cfg->preload,
      .num_threads = cfg->num_threads,
      .work_quota = cfg->work_quota,
      .max_memory = cfg->max_memory};
  int rc = ferry_rt_open(&s.rt, &opt, err);
  if (!rc)
    rc = session_loop(&s, err);
  /* Handles first: they hold references into the runtime's modules and
   * storage, which ferry_rt_close frees. */
  if (s.hop_fd >= 0)
    close(s.hop_fd);
  session_popen_reap(&s);
  ferry_handles_close(&s.handles);
  if (s.rt)
    ferry_rt_close(s.rt);
  ferry_buf_close(&s.out);
  free(s.stage);
  ferry_rpc_arena_close(&s.arena);
  ferry_rpc_reader_close(&s.reader);
  if (io->close)
    io->close(io->ctx);
  return rc;
}
