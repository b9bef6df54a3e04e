/* One request, one reply: the client's transport over a blocking socket.
 *
 * The session is strictly request/response (rpc-session.md §0), so the
 * client never needs a push-style reader: it writes one packet, reads the
 * 8-byte length of the reply, bounds it, then reads exactly that many
 * bytes.  Framing and decoding are the wire layer's (rpc_packet.h,
 * rpc_dialect.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/bytes.h"
#include "base/net.h"
#include "client/client_internal.h"

int client_fail(ferry_client *c, int code, const char *fmt, ...) {
  if (!c->err[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
  }
  return code;
}

int client_begin(ferry_client *c) {
  if (c->broken)
    return FERRY_ESTATE; /* keep the message of the failure that broke it */
  c->err[0] = 0;
  return 0;
}

static int64_t deadline(const ferry_client *c) {
  return c->opts.timeout_ms > 0 ? ferry_now_ms() + c->opts.timeout_ms : -1;
}

/* Transport failures end the session: the stream position is unknown. */
static int broken(ferry_client *c, int rc, const char *what) {
  c->broken = 1;
  if (rc == FERRY_ETIMEDOUT && strcmp(what, "waiting for a reply") == 0)
    return client_fail(c, rc, "no reply from %s within %d ms (--timeout)", c->peer,
                       c->opts.timeout_ms);
  if (rc == FERRY_ETIMEDOUT)
    return client_fail(c, rc, "%s stalled for %d ms while %s (--timeout)", c->peer,
                       c->opts.timeout_ms, what);
  if (rc == FERRY_ECLOSED)
    return client_fail(c, rc, "%s closed the session while %s", c->peer, what);
  return client_fail(c, rc, "%s: %s while %s", c->peer, ferry_strerror(rc), what);
}

int client_packet_begin(ferry_client *c, int code, size_t *mark) {
  c->out.len = 0;
  int rc = ferry_rpc_packet_begin(&c->out, code, mark);
  if (rc)
    return client_fail(c, rc, "cannot build a %s packet", ferry_rpc_code_name(code));
  return 0;
}

/* Sends c->out and then `extra` bytes of data (part of the same packet:
 * its length field is adjusted to cover them). */
static int send_out(ferry_client *c, size_t mark, const void *data, uint64_t extra,
                    int64_t dl) {
  ferry_rpc_packet_end(&c->out, mark);
  if (extra)
    put_le64(c->out.data + mark, get_le64(c->out.data + mark) + extra);
  int rc = client_net_send(c, c->out.data, c->out.len, data, (size_t)extra, dl);
  if (rc)
    return broken(c, rc, "sending a request");
  return 0;
}

/* Reads the 12-byte prefix of a reply (length and code).  Empty packets
 * (length 0) are skipped, as TVM skips them. */
static int read_prefix(ferry_client *c, int64_t dl, uint64_t *len, int32_t *code) {
  uint8_t hdr[12];
  for (;;) {
    int rc = client_net_read(c, hdr, 8, dl);
    if (rc)
      return broken(c, rc, "waiting for a reply");
    uint64_t unvalidated_len = get_le64(hdr);
    if (unvalidated_len == 0)
      continue;
    if (unvalidated_len < 4 || unvalidated_len > c->opts.max_reply_bytes) {
      c->broken = 1;
      return client_fail(c, unvalidated_len < 4 ? FERRY_EPROTO : FERRY_ETOOBIG,
                         "reply packet of %" PRIu64 " bytes from %s (limit %" PRIu64 ")",
                         unvalidated_len, c->peer, c->opts.max_reply_bytes);
    }
    rc = client_net_read(c, hdr + 8, 4, dl);
    if (rc)
      return broken(c, rc, "reading a reply");
    *len = unvalidated_len;
    *code = (int32_t)get_le32(hdr + 8);
    return 0;
  }
}

/* Reads the rest of a packet whose prefix was read and frames it into
 * c->reply.  The buffer grows with the bytes that actually arrive (at most
 * 1 MiB ahead), so a peer that announces a large packet and sends nothing
 * does not make us allocate it. */
static int read_body(ferry_client *c, uint64_t len, int32_t code, int64_t dl) {
  c->in.len = 0;
  uint8_t *p = ferry_buf_reserve(&c->in, 12);
  if (!p) {
    c->broken = 1;
    return client_fail(c, FERRY_ENOMEM, "no memory for a reply");
  }
  put_le64(p, len);
  put_le32(p + 8, (uint32_t)code);
  ferry_buf_commit(&c->in, 12);
  uint64_t left = len - 4;
  while (left) {
    size_t chunk = left > (1u << 20) ? (1u << 20) : (size_t)left;
    p = ferry_buf_reserve(&c->in, chunk);
    if (!p) {
      c->broken = 1;
      return client_fail(c, FERRY_ENOMEM, "no memory for a reply of %" PRIu64 " bytes", len);
    }
    int rc = client_net_read(c, p, chunk, dl);
    if (rc)
      return broken(c, rc, "reading a reply");
    ferry_buf_commit(&c->in, chunk);
    left -= chunk;
  }
  size_t used = 0;
  int rc = ferry_rpc_packet_parse(c->in.data, c->in.len, c->opts.max_reply_bytes, &c->reply,
                                  &used);
  if (rc || used != c->in.len) {
    c->broken = 1;
    return client_fail(c, FERRY_EPROTO, "malformed reply packet from %s", c->peer);
  }
  return 0;
}

/* Turns a kException body into FERRY_EREMOTE and its message. */
static int remote_exception(ferry_client *c) {
  ferry_value *vals = NULL;
  int n = 0;
  size_t used = 0;
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  int rc = c->d->decode_seq(c->reply.body, c->reply.body_len, &c->arena, &vals, &n,
                            &used, &why);
  if (rc || n != 1 || vals[0].kind != FERRY_KIND_STR) {
    c->broken = 1;
    return client_fail(c, FERRY_EPROTO, "malformed exception packet from %s%s%s", c->peer,
                       why.msg[0] ? ": " : "", why.msg);
  }
  const char *msg = vals[0].v.str.data;
  /* The server's session-timeout notice ends the session (§1.6). */
  if (strncmp(msg, "RPCSessionTimeoutError", 22) == 0)
    c->broken = 1;
  return client_fail(c, FERRY_EREMOTE, "%s", msg);
}

static int finish_reply(ferry_client *c, int expect) {
  if (c->reply.code == FERRY_RPC_EXCEPTION)
    return remote_exception(c);
  if (c->reply.code != expect) {
    c->broken = 1;
    return client_fail(c, FERRY_EPROTO, "%s answered %s (%d) where %s was expected", c->peer,
                       ferry_rpc_code_name(c->reply.code), (int)c->reply.code,
                       ferry_rpc_code_name(expect));
  }
  return 0;
}

int client_exchange_with_data(ferry_client *c, size_t mark, const void *data,
                              uint64_t extra, int expect) {
  ferry_rpc_arena_reset(&c->arena);
  int64_t dl = deadline(c);
  int rc = send_out(c, mark, data, extra, dl);
  uint64_t len;
  int32_t code;
  if (!rc)
    rc = read_prefix(c, dl, &len, &code);
  if (!rc)
    rc = read_body(c, len, code, dl);
  return rc ? rc : finish_reply(c, expect);
}

int client_exchange(ferry_client *c, size_t mark, int expect) {
  return client_exchange_with_data(c, mark, NULL, 0, expect);
}

int client_exchange_into(ferry_client *c, size_t mark, int expect, void *dst, uint64_t n) {
  ferry_rpc_arena_reset(&c->arena);
  int64_t dl = deadline(c);
  uint64_t len;
  int32_t code;
  int rc = send_out(c, mark, NULL, 0, dl);
  if (!rc)
    rc = read_prefix(c, dl, &len, &code);
  if (rc)
    return rc;
  if (code == expect) {
    /* kCopyAck must carry exactly the bytes asked for (§3.5). */
    if (len - 4 != n) {
      c->broken = 1;
      return client_fail(c, FERRY_EPROTO,
                         "%s sent %" PRIu64 " bytes where %" PRIu64 " were asked for", c->peer,
                         len - 4, n);
    }
    rc = client_net_read(c, dst, (size_t)n, dl);
    return rc ? broken(c, rc, "reading tensor data") : 0;
  }
  rc = read_body(c, len, code, dl);
  return rc ? rc : finish_reply(c, expect);
}

int client_send_only(ferry_client *c, size_t mark) {
  return send_out(c, mark, NULL, 0, deadline(c));
}

int client_syscall(ferry_client *c, int code, const ferry_value *args, int nargs,
                   ferry_value *result) {
  size_t mark;
  int rc = client_packet_begin(c, code, &mark);
  if (rc)
    return rc;
  rc = c->d->encode_seq(&c->out, args, nargs);
  if (rc)
    return client_fail(c, rc, "cannot encode the arguments of %s", ferry_rpc_code_name(code));
  rc = client_exchange(c, mark, FERRY_RPC_RETURN);
  if (rc)
    return rc;
  ferry_value *vals = NULL;
  int n = 0;
  size_t used = 0;
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  rc = c->d->decode_seq(c->reply.body, c->reply.body_len, &c->arena, &vals, &n, &used, &why);
  /* Syscalls answer exactly one value (§2.7). */
  if (rc || n != 1 || used != c->reply.body_len) {
    c->broken = 1;
    return client_fail(c, FERRY_EPROTO, "malformed reply to %s from %s%s%s",
                       ferry_rpc_code_name(code), c->peer, why.msg[0] ? ": " : "", why.msg);
  }
  *result = vals[0];
  return 0;
}

int client_callfunc(ferry_client *c, uint64_t handle, const ferry_value *args, int nargs,
                    ferry_rpc_return *ret) {
  size_t mark;
  int rc = client_packet_begin(c, FERRY_RPC_CALL_FUNC, &mark);
  if (rc)
    return rc;
  rc = ferry_rpc_call_func_encode(&c->out, handle);
  if (!rc)
    rc = c->d->encode_seq(&c->out, args, nargs);
  if (rc)
    return client_fail(c, rc, "cannot encode the call's arguments (%s)", ferry_strerror(rc));
  rc = client_exchange(c, mark, FERRY_RPC_RETURN);
  if (rc)
    return rc;
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  rc = c->d->decode_call_return(c->reply.body, c->reply.body_len, &c->arena, ret, &why);
  if (rc) {
    c->broken = 1;
    return client_fail(c, FERRY_EPROTO, "malformed return value from %s: %s", c->peer,
                       why.msg);
  }
  return 0;
}

int client_free_handle(ferry_client *c, uint64_t handle, enum ferry_kind kind) {
  size_t mark;
  int rc = client_packet_begin(c, FERRY_RPC_FREE_HANDLE, &mark);
  if (rc)
    return rc;
  rc = c->d->encode_free_handle(&c->out, handle, kind);
  if (rc)
    return client_fail(c, rc, "cannot encode kFreeHandle");
  return client_exchange(c, mark, FERRY_RPC_RETURN);
}
