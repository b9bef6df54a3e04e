/* Builds the module blob of a graph-executor network; see mblob_write.h. */
#include "wire/mblob_write.h"

#include <string.h>

#include "base/bytes.h"
#include "wire/mblob.h"
#include "wire/params.h"
#include "wire/stream.h"

static int put_u64(ferry_buf *b, uint64_t v) {
  uint8_t x[8];
  put_le64(x, v);
  return ferry_buf_append(b, x, 8);
}

static int put_str(ferry_buf *b, const char *s, size_t n) {
  int rc = put_u64(b, n);
  return rc ? rc : ferry_buf_append(b, s, n);
}

/* Walks a whole parameter dict and finds where its names vector and its
 * arrays lie, so that the factory payload can reuse their bytes (the two
 * formats hold the same names vector and the same NDArray records, only
 * the header and the order of count and names differ). */
static int params_regions(const uint8_t *p, size_t len, uint64_t *count, size_t *names_at,
                          size_t *names_len, size_t *arrays_at) {
  ferry_params_reader r;
  int rc = ferry_params_open(&r, p, len);
  if (rc)
    return rc;
  /* The reader's cursors point into p: names covers the strings after
   * the names count (at offset 16), arrays starts after the u64 count. */
  *count = r.count;
  *names_at = 16;
  *names_len = (size_t)(r.names.p - p) - 16 + r.names.len;
  *arrays_at = (size_t)(r.arrays.p - p);
  while (r.index < r.count) {
    const char *name;
    size_t nlen;
    ferry_params_tensor t;
    rc = ferry_params_next(&r, &name, &nlen, &t);
    if (rc)
      return rc;
  }
  return ferry_stream_left(&r.arrays) == 0 ? FERRY_OK : FERRY_EPROTO;
}

int ferry_mblob_write_graph_factory(ferry_buf *out, const char *graph_json, size_t json_len,
                                    const uint8_t *params, size_t params_len,
                                    const char *module_name) {
  size_t mlen = module_name ? strlen(module_name) : 0;
  if (!graph_json || json_len == 0 || mlen == 0)
    return FERRY_EINVAL;
  uint64_t count = 0;
  size_t names_at = 0, names_len = 0, arrays_at = 0;
  if (params_len) {
    int rc = params_regions(params, params_len, &count, &names_at, &names_len, &arrays_at);
    if (rc)
      return rc;
  }
  static const char key[] = FERRY_MBLOB_FACTORY_KEY;
  static const char lib[] = "_lib", tree[] = "_import_tree";
  /* Everything below is bounded by the inputs; check the total first so a
   * failure leaves out untouched and N stays under the reader's limit. */
  uint64_t payload = 8 + (8 + sizeof key - 1) + (8 + (uint64_t)json_len) + 8 +
                     (params_len ? (uint64_t)names_len : 8) +
                     (params_len ? (uint64_t)(params_len - arrays_at) : 0) + (8 + mlen) +
                     (8 + sizeof lib - 1) + (8 + sizeof tree - 1) + 8 * 3 + 8 + 8 + 8;
  if (payload > FERRY_MBLOB_MAX_BYTES || payload + 8 > out->max - out->len)
    return FERRY_ETOOBIG;
  size_t start = out->len;
  int rc = put_u64(out, payload);
  rc = rc ? rc : put_u64(out, 3);
  rc = rc ? rc : put_str(out, key, sizeof key - 1);
  rc = rc ? rc : put_str(out, graph_json, json_len);
  rc = rc ? rc : put_u64(out, count);
  if (params_len) {
    rc = rc ? rc : ferry_buf_append(out, params + names_at, names_len);
    rc = rc ? rc : ferry_buf_append(out, params + arrays_at, params_len - arrays_at);
  } else {
    rc = rc ? rc : put_u64(out, 0); /* empty names vector */
  }
  rc = rc ? rc : put_str(out, module_name, mlen);
  rc = rc ? rc : put_str(out, lib, sizeof lib - 1);
  rc = rc ? rc : put_str(out, tree, sizeof tree - 1);
  /* row_ptr [0, 1, 1]: the factory imports one module, _lib none;
   * child_indices [1]: that import is _lib. */
  rc = rc ? rc : put_u64(out, 3);
  rc = rc ? rc : put_u64(out, 0);
  rc = rc ? rc : put_u64(out, 1);
  rc = rc ? rc : put_u64(out, 1);
  rc = rc ? rc : put_u64(out, 1);
  rc = rc ? rc : put_u64(out, 1);
  if (rc) {
    out->len = start;
    return rc;
  }
  return out->len - start == payload + 8 ? FERRY_OK : FERRY_EINVAL;
}
