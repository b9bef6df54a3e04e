/* RPC session framing and dialect-free bodies (rpc-session.md §1.4, §3);
 * see rpc_packet.h. */
#include "wire/rpc_packet.h"

#include <string.h>

#include "base/bytes.h"
#include "wire/rpc_tensor.h"

const char *ferry_rpc_code_name(int code) {
  switch (code) {
#define FERRY_RPC_CODE_NAME_(name, v, str)                                    \
  case v:                                                                     \
    return str;
    FERRY_RPC_CODE_MAP(FERRY_RPC_CODE_NAME_)
#undef FERRY_RPC_CODE_NAME_
  }
  return "unknown";
}

/* ---- framing ------------------------------------------------------------ */

void ferry_rpc_reader_init(ferry_rpc_reader *r, uint64_t max_packet) {
  if (max_packet < FERRY_RPC_MIN_MAX_PACKET)
    max_packet = FERRY_RPC_MIN_MAX_PACKET;
  /* The buffer must hold one maximal packet and its prefix; size_t limits
   * that on 32-bit hosts. */
  if (max_packet > SIZE_MAX - FERRY_RPC_HEADER_SIZE - 1)
    max_packet = SIZE_MAX - FERRY_RPC_HEADER_SIZE - 1;
  ferry_buf_init(&r->in, (size_t)max_packet + FERRY_RPC_HEADER_SIZE);
  r->consumed = 0;
  r->max_packet = max_packet;
  r->bad_length = 0;
}

void ferry_rpc_reader_close(ferry_rpc_reader *r) {
  ferry_buf_close(&r->in);
  r->consumed = 0;
}

/* Drops the packet returned last, so that its bytes stay valid until the
 * caller feeds or asks for the next one. */
static void reader_drop(ferry_rpc_reader *r) {
  if (r->consumed) {
    ferry_buf_consume(&r->in, r->consumed);
    r->consumed = 0;
  }
}

int ferry_rpc_reader_feed(ferry_rpc_reader *r, const void *p, size_t n) {
  reader_drop(r);
  return ferry_buf_append(&r->in, p, n);
}

uint8_t *ferry_rpc_reader_space(ferry_rpc_reader *r, size_t n) {
  reader_drop(r);
  return ferry_buf_reserve(&r->in, n);
}

void ferry_rpc_reader_commit(ferry_rpc_reader *r, size_t n) {
  ferry_buf_commit(&r->in, n);
}

const uint8_t *ferry_rpc_reader_buffered(ferry_rpc_reader *r, size_t *len) {
  reader_drop(r);
  *len = r->in.len;
  return r->in.data;
}

void ferry_rpc_reader_discard(ferry_rpc_reader *r, size_t n) {
  reader_drop(r);
  ferry_buf_consume(&r->in, n);
}

void ferry_rpc_reader_shrink(ferry_rpc_reader *r, size_t keep) {
  reader_drop(r);
  if (r->in.len == 0 && r->in.cap > keep)
    ferry_buf_close(&r->in);
}

size_t ferry_rpc_reader_want(const ferry_rpc_reader *r) {
  size_t have = r->in.len - r->consumed;
  const uint8_t *p = r->in.data + r->consumed;
  if (have < FERRY_RPC_HEADER_SIZE)
    return FERRY_RPC_HEADER_SIZE - have;
  uint64_t unvalidated_len = get_le64(p);
  if (unvalidated_len > r->max_packet)
    return 0; /* the error is ready */
  uint64_t total = FERRY_RPC_HEADER_SIZE + unvalidated_len;
  return have >= total ? 0 : (size_t)(total - have);
}

int ferry_rpc_packet_parse(const uint8_t *p, size_t n, uint64_t max_packet,
                           ferry_rpc_packet *pkt, size_t *used) {
  if (n < FERRY_RPC_HEADER_SIZE)
    return FERRY_EAGAIN;
  uint64_t unvalidated_len = get_le64(p);
  if (unvalidated_len > max_packet)
    return FERRY_ETOOBIG;
  if (unvalidated_len != 0 && unvalidated_len < 4)
    return FERRY_EPROTO;
  size_t len = (size_t)unvalidated_len;
  if (n - FERRY_RPC_HEADER_SIZE < len)
    return FERRY_EAGAIN;
  if (len == 0) {
    pkt->code = FERRY_RPC_NONE;
    pkt->body = p + FERRY_RPC_HEADER_SIZE;
    pkt->body_len = 0;
  } else {
    pkt->code = (int32_t)get_le32(p + FERRY_RPC_HEADER_SIZE);
    pkt->body = p + FERRY_RPC_HEADER_SIZE + 4;
    pkt->body_len = len - 4;
  }
  *used = FERRY_RPC_HEADER_SIZE + len;
  return FERRY_OK;
}

int ferry_rpc_reader_next(ferry_rpc_reader *r, ferry_rpc_packet *pkt) {
  reader_drop(r);
  for (;;) {
    size_t used = 0;
    int rc = ferry_rpc_packet_parse(r->in.data, r->in.len, r->max_packet, pkt, &used);
    if (rc == FERRY_ETOOBIG || rc == FERRY_EPROTO)
      r->bad_length = get_le64(r->in.data);
    if (rc != FERRY_OK)
      return rc;
    if (used == FERRY_RPC_HEADER_SIZE) {
      /* An empty packet: TVM skips it without a reply. */
      ferry_buf_consume(&r->in, used);
      continue;
    }
    r->consumed = used;
    return FERRY_OK;
  }
}

int ferry_rpc_reader_at_boundary(const ferry_rpc_reader *r) {
  return r->in.len == r->consumed;
}

int ferry_rpc_packet_begin(ferry_buf *out, int32_t code, size_t *mark) {
  uint8_t *p = ferry_buf_reserve(out, 12);
  if (!p)
    return FERRY_ENOMEM;
  *mark = out->len;
  put_le64(p, 0);
  put_le32(p + 8, (uint32_t)code);
  ferry_buf_commit(out, 12);
  return FERRY_OK;
}

void ferry_rpc_packet_end(ferry_buf *out, size_t mark) {
  put_le64(out->data + mark, (uint64_t)(out->len - mark - FERRY_RPC_HEADER_SIZE));
}

/* ---- fixed bodies -------------------------------------------------------- */

static int put_u64(ferry_buf *out, uint64_t v) {
  uint8_t b[8];
  put_le64(b, v);
  return ferry_buf_append(out, b, 8);
}

int ferry_rpc_init_server_decode(const uint8_t *body, size_t n, const char **version,
                                 size_t *version_len, size_t *seq_off) {
  if (n < 8)
    return FERRY_EPROTO;
  uint64_t unvalidated_len = get_le64(body);
  if (unvalidated_len > n - 8)
    return FERRY_EPROTO;
  *version = (const char *)body + 8;
  *version_len = (size_t)unvalidated_len;
  *seq_off = 8 + (size_t)unvalidated_len;
  return FERRY_OK;
}

int ferry_rpc_init_server_encode(ferry_buf *out, const char *version) {
  size_t len = strlen(version);
  int rc = put_u64(out, len);
  return rc ? rc : ferry_buf_append(out, version, len);
}

int ferry_rpc_call_func_decode(const uint8_t *body, size_t n, uint64_t *handle,
                               size_t *seq_off) {
  if (n < 8)
    return FERRY_EPROTO;
  *handle = get_le64(body);
  *seq_off = 8;
  return FERRY_OK;
}

int ferry_rpc_call_func_encode(ferry_buf *out, uint64_t handle) {
  return put_u64(out, handle);
}

/* The tensor and nbytes shared by both copy requests. */
static int copy_head_decode(const uint8_t *body, size_t n, ferry_rpc_arena *a,
                            DLTensor **tensor, uint64_t *nbytes, size_t *used,
                            ferry_rpc_why *why) {
  size_t tlen = 0;
  int rc = ferry_rpc_tensor_decode(body, n, a, tensor, &tlen, why);
  if (rc == FERRY_EAGAIN)
    return FERRY_EPROTO;
  if (rc)
    return rc;
  if (n - tlen < 8)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "copy request ends before its byte count");
  *nbytes = get_le64(body + tlen);
  *used = tlen + 8;
  return FERRY_OK;
}

int ferry_rpc_copy_from_decode(const uint8_t *body, size_t n, ferry_rpc_arena *a,
                               DLTensor **tensor, uint64_t *nbytes, ferry_rpc_why *why) {
  size_t used = 0;
  int rc = copy_head_decode(body, n, a, tensor, nbytes, &used, why);
  if (rc)
    return rc;
  if (used != n)
    return ferry_rpc_why_set(why, FERRY_EPROTO,
                             "kCopyFromRemote has %zu bytes after its byte count", n - used);
  return FERRY_OK;
}

int ferry_rpc_copy_to_decode(const uint8_t *body, size_t n, ferry_rpc_arena *a,
                             DLTensor **tensor, uint64_t *nbytes, const uint8_t **data,
                             ferry_rpc_why *why) {
  size_t used = 0;
  uint64_t unvalidated_nbytes = 0;
  int rc = copy_head_decode(body, n, a, tensor, &unvalidated_nbytes, &used, why);
  if (rc)
    return rc;
  if (unvalidated_nbytes != n - used)
    return ferry_rpc_why_set(why, FERRY_EPROTO,
                             "kCopyToRemote declares %llu bytes but carries %zu",
                             (unsigned long long)unvalidated_nbytes, n - used);
  *nbytes = unvalidated_nbytes;
  *data = body + used;
  return FERRY_OK;
}

int ferry_rpc_copy_from_encode(ferry_buf *out, const DLTensor *t, uint64_t nbytes) {
  int rc = ferry_rpc_tensor_encode(out, t);
  return rc ? rc : put_u64(out, nbytes);
}

int ferry_rpc_copy_to_encode(ferry_buf *out, const DLTensor *t, const void *data,
                             uint64_t nbytes) {
  if (nbytes > SIZE_MAX)
    return FERRY_ETOOBIG;
  int rc = ferry_rpc_copy_from_encode(out, t, nbytes);
  return rc ? rc : ferry_buf_append(out, data, (size_t)nbytes);
}
