/* libFuzzer target: the tvm-ffi dialect codec (dialect_ffi.c) and the
 * dialect detection of rpc_dialect.c.  The first input byte picks the
 * RPC code the rest is read as; the rest is a packed sequence.  Whatever
 * decodes must re-encode and decode again to the same values (strings,
 * bytes and objects keep their kind), and nothing may read past the input,
 * allocate beyond the arena's ceiling, leak or hit undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/rpc_dialect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_values(const ferry_value *a, const ferry_value *b, int n) {
  for (int i = 0; i < n; i++) {
    if (a[i].kind != b[i].kind)
      abort();
    if ((a[i].kind == FERRY_KIND_STR || a[i].kind == FERRY_KIND_BYTES) &&
        (a[i].v.str.len != b[i].v.str.len ||
         memcmp(a[i].v.str.data, b[i].v.str.data, a[i].v.str.len) != 0))
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int code = data[0] % 24;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  const ferry_dialect *d = &ferry_dialect_ffi;
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 16 * n + 4096);
  ferry_value *vals = NULL;
  int nvals = 0;
  size_t used = 0;
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  if (d->decode_seq(p, n, &a, &vals, &nvals, &used, &why) == FERRY_OK) {
    if (used > n)
      abort();
    ferry_buf out;
    ferry_buf_init(&out, 4 * n + 4096);
    int rc = d->encode_seq(&out, vals, nvals);
    /* NDArray never decodes; everything else that decodes re-encodes. */
    if (rc != FERRY_OK && rc != FERRY_ENOMEM)
      abort();
    if (rc == FERRY_OK) {
      ferry_value *back = NULL;
      int nback = 0;
      size_t used2 = 0;
      if (d->decode_seq(out.data, out.len, &a, &back, &nback, &used2, NULL) == FERRY_OK) {
        if (nback != nvals || used2 != out.len)
          abort();
        same_values(vals, back, nvals);
      }
    }
    uint64_t h;
    enum ferry_kind k;
    (void)d->decode_free_handle(vals, nvals, &h, &k, NULL);
    ferry_buf_close(&out);
  }
  ferry_rpc_return ret;
  if (d->decode_call_return(p, n, &a, &ret, NULL) == FERRY_OK) {
    ferry_buf out;
    ferry_buf_init(&out, 4 * n + 4096);
    if (ret.value.kind != FERRY_KIND_TENSOR)
      (void)d->encode_call_return(&out, &ret);
    ferry_buf_close(&out);
  }
  int decided = 0;
  const ferry_dialect *got = ferry_dialect_detect(code, p, n, &decided);
  if (decided && !got)
    abort();
  ferry_rpc_arena_close(&a);
  return 0;
}
