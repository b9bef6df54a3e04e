/* libFuzzer target: RPC packet framing and every body decoder of the
 * classic dialect, fed in pieces.  Whatever decodes must re-encode to the
 * same bytes (packed sequences) and nothing may read past the input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"
#include "wire/rpc_tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_body(const ferry_rpc_packet *pkt, ferry_rpc_arena *a) {
  const ferry_dialect *d = &ferry_dialect_classic;
  ferry_value *v = NULL;
  int n = 0;
  size_t used = 0;
  DLTensor *t = NULL;
  uint64_t nbytes = 0, handle = 0;
  const uint8_t *bytes = NULL;
  const char *version = NULL;
  size_t vlen = 0, off = 0;
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  (void)ferry_rpc_copy_from_decode(pkt->body, pkt->body_len, a, &t, &nbytes, &why);
  (void)ferry_rpc_copy_to_decode(pkt->body, pkt->body_len, a, &t, &nbytes, &bytes, &why);
  if (ferry_rpc_init_server_decode(pkt->body, pkt->body_len, &version, &vlen, &off) == 0)
    (void)d->decode_seq(pkt->body + off, pkt->body_len - off, a, &v, &n, &used, &why);
  if (ferry_rpc_call_func_decode(pkt->body, pkt->body_len, &handle, &off) == 0)
    (void)d->decode_seq(pkt->body + off, pkt->body_len - off, a, &v, &n, &used, &why);
  ferry_rpc_return ret;
  (void)d->decode_call_return(pkt->body, pkt->body_len, a, &ret, &why);
  int decided = 0;
  (void)ferry_dialect_detect(pkt->code, pkt->body, pkt->body_len, &decided);
  if (d->decode_seq(pkt->body, pkt->body_len, a, &v, &n, &used, &why) == 0) {
    enum ferry_kind kind;
    (void)d->decode_free_handle(v, n, &handle, &kind, &why);
    /* Round trip: the same bytes come back. */
    ferry_buf out;
    ferry_buf_init(&out, used + 64);
    if (d->encode_seq(&out, v, n) == 0) {
      if (out.len != used || memcmp(out.data, pkt->body, used) != 0) {
        /* uint (1) decodes as int and re-encodes as 0, bool normalises to
         * 0/1: those are the only lossy cases. */
        int lossy = 0;
        for (int i = 0; i < (n < 4096 ? n : 0); i++)
          lossy |= v[i].kind == FERRY_KIND_INT || v[i].kind == FERRY_KIND_BOOL ||
                   v[i].kind == FERRY_KIND_DTYPE;
        if (!lossy)
          __builtin_trap();
      }
    }
    ferry_buf_close(&out);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  /* First byte: how many bytes to feed at once (1..256). */
  size_t step = (size_t)data[0] + 1;
  data++;
  size--;
  ferry_rpc_reader r;
  ferry_rpc_reader_init(&r, FERRY_RPC_MIN_MAX_PACKET);
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 20);
  for (size_t off = 0; off < size;) {
    size_t n = size - off < step ? size - off : step;
    if (ferry_rpc_reader_feed(&r, data + off, n))
      break;
    off += n;
    ferry_rpc_packet pkt;
    int rc;
    while ((rc = ferry_rpc_reader_next(&r, &pkt)) == 0) {
      ferry_rpc_arena_reset(&a);
      decode_body(&pkt, &a);
    }
    if (rc != FERRY_EAGAIN)
      break;
  }
  ferry_rpc_arena_close(&a);
  ferry_rpc_reader_close(&r);
  return 0;
}
