/* Tensor copies: kCopyFromRemote, kCopyToRemote, kCopyAmongRemote
 * (rpc-session.md §3.5, §3.6, §3.9).  Every byte range is checked against
 * the session's live allocations before memory is touched. */
#include <string.h>

#include "base/bytes.h"
#include "server/session_internal.h"

int session_copy_from(ferry_session *s, const ferry_rpc_packet *pkt, ferry_err *err) {
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  DLTensor *t = NULL;
  uint64_t unvalidated_nbytes = 0;
  int rc = ferry_rpc_copy_from_decode(pkt->body, pkt->body_len, &s->arena, &t,
                                      &unvalidated_nbytes, &why);
  if (rc)
    return ferry_err_set(err, rc, "ValueError: malformed kCopyFromRemote: %s", why.msg);
  /* The reply carries the bytes in one packet (code + data). */
  if (unvalidated_nbytes > s->max_packet - 4)
    return ferry_err_set(err, FERRY_ETOOBIG,
                         "ValueError: kCopyFromRemote of %llu bytes is over the packet limit "
                         "of %llu",
                         (unsigned long long)unvalidated_nbytes,
                         (unsigned long long)s->max_packet);
  uint64_t nbytes = unvalidated_nbytes;
  void *src = NULL;
  if (t->device.device_type != kDLCPU) {
    /* Device memory is read into the staging buffer first. */
    src = session_stage(s, (size_t)nbytes + 1);
    if (src == NULL)
      return ferry_err_set(err, FERRY_ENOMEM, "RuntimeError: out of memory");
    rc = ferry_rt_copy_to_host(s->rt, t, src, nbytes, err);
  } else {
    rc = session_tensor_bytes(s, t, nbytes, &src, err);
  }
  if (rc)
    return rc;
  /* The header goes through out, the bytes straight from the tensor: no
   * staging copy of what may be a large tensor. */
  size_t mark = 0;
  s->out.len = 0;
  rc = ferry_rpc_packet_begin(&s->out, FERRY_RPC_COPY_ACK, &mark);
  if (rc)
    return ferry_err_set(err, rc, "RuntimeError: out of memory");
  put_le64(s->out.data + mark, 4 + nbytes); /* the code and the tail */
  s->tail = src;
  s->tail_len = (size_t)nbytes;
  return FERRY_OK;
}

int session_copy_to(ferry_session *s, const ferry_rpc_packet *pkt, ferry_err *err) {
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  DLTensor *t = NULL;
  uint64_t nbytes = 0;
  const uint8_t *data = NULL;
  int rc = ferry_rpc_copy_to_decode(pkt->body, pkt->body_len, &s->arena, &t, &nbytes, &data,
                                    &why);
  if (rc)
    return ferry_err_set(err, rc, "ValueError: malformed kCopyToRemote: %s", why.msg);
  if (t->device.device_type != kDLCPU) {
    rc = ferry_rt_copy_from_host(s->rt, t, data, nbytes, err);
    return rc ? rc : session_reply_void(s);
  }
  void *dst = NULL;
  rc = session_tensor_bytes(s, t, nbytes, &dst, err);
  if (rc)
    return rc;
  if (nbytes)
    memcpy(dst, data, (size_t)nbytes);
  return session_reply_void(s);
}

int session_copy_to_target(ferry_session *s, const uint8_t *head, size_t head_len,
                           uint64_t payload_len, void **dst, ferry_err *err) {
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  DLTensor *t = NULL;
  size_t tlen = 0;
  int rc = ferry_rpc_tensor_decode(head, head_len, &s->arena, &t, &tlen, &why);
  if (rc || tlen + 8 != head_len)
    return ferry_err_set(err, rc ? rc : FERRY_EPROTO, "ValueError: malformed kCopyToRemote: %s",
                         why.msg[0] ? why.msg : "bad header");
  uint64_t unvalidated_nbytes = get_le64(head + tlen);
  if (unvalidated_nbytes != payload_len)
    return ferry_err_set(err, FERRY_EPROTO,
                         "ValueError: malformed kCopyToRemote: kCopyToRemote declares %llu "
                         "bytes but carries %llu",
                         (unsigned long long)unvalidated_nbytes,
                         (unsigned long long)payload_len);
  if (t->device.device_type != kDLCPU) {
    /* Checked now, written by session_copy_to_finish once all is read. */
    rc = ferry_rt_check_tensor(s->rt, t, payload_len, err);
    if (rc)
      return rc;
    if (payload_len > s->max_packet || (*dst = session_stage(s, (size_t)payload_len + 1)) == NULL)
      return ferry_err_set(err, FERRY_ENOMEM, "RuntimeError: out of memory");
    s->stream_tensor = t;
    return FERRY_OK;
  }
  return session_tensor_bytes(s, t, payload_len, dst, err);
}

int session_copy_to_finish(ferry_session *s, uint64_t payload_len, ferry_err *err) {
  const DLTensor *t = s->stream_tensor;
  s->stream_tensor = NULL;
  if (t == NULL)
    return FERRY_OK;
  return ferry_rt_copy_from_host(s->rt, t, s->stage, payload_len, err);
}

int session_copy_among(ferry_session *s, const ferry_value *v, int n, ferry_err *err) {
  int rc = session_expect(v, n, "XXP", "kCopyAmongRemote", err);
  if (rc)
    return rc;
  const DLTensor *from = v[0].v.tensor, *to = v[1].v.tensor;
  uint64_t from_bytes = 0, to_bytes = 0;
  if (ferry_rpc_tensor_nbytes(from, &from_bytes) || ferry_rpc_tensor_nbytes(to, &to_bytes))
    return ferry_err_set(err, FERRY_ERANGE, "ValueError: DLTensor size overflows");
  if (from_bytes != to_bytes)
    return ferry_err_set(err, FERRY_EINVAL,
                         "ValueError: kCopyAmongRemote of %llu bytes into %llu bytes",
                         (unsigned long long)from_bytes, (unsigned long long)to_bytes);
  if (v[2].kind == FERRY_KIND_OPAQUE && v[2].v.handle != 0)
    return ferry_err_set(err, FERRY_EINVAL, "ValueError: unknown stream 0x%llx",
                         (unsigned long long)v[2].v.handle);
  rc = session_check_tensor(s, from, err);
  if (!rc)
    rc = session_check_tensor(s, to, err);
  if (!rc)
    rc = ferry_rt_copy_tensor(s->rt, from, to, err);
  return rc ? rc : session_reply_void(s);
}
