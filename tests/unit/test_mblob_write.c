/* Writer of a GraphExecutorFactory module blob (runtime-abi.md 5.3, 8.6):
 * exact layout read back with the blob parser, parameters re-encoded from
 * a dict, every bad dict refused and the buffer left untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "wire/mblob.h"
#include "wire/mblob_write.h"
#include "wire/params.h"

static const char json[] = "{\"nodes\": []}";

/* {"w": float32 [1, 2], "b": int8 [3]} */
static void make_params(ferry_buf *out) {
  static float w[2] = {1.0f, 2.0f};
  static int8_t b[3] = {1, 2, 3};
  static int64_t ws[1] = {2}, bs[1] = {3};
  DLTensor tw = {w, {kDLCPU, 0}, 1, {kDLFloat, 32, 1}, ws, NULL, 0};
  DLTensor tb = {b, {kDLCPU, 0}, 1, {kDLInt, 8, 1}, bs, NULL, 0};
  const char *names[] = {"w", "b"};
  const DLTensor *ts[] = {&tw, &tb};
  ferry_buf_init(out, 1 << 20);
  assert_int_equal(ferry_params_encode(out, 2, names, ts), 0);
}

static void expect_str(ferry_stream *s, const char *want) {
  const char *p;
  size_t n;
  assert_int_equal(ferry_stream_str(s, 1 << 20, &p, &n), 0);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(p, want, n);
}

static uint64_t u64_at(ferry_stream *s) {
  uint64_t v = 0;
  assert_int_equal(ferry_stream_u64(s, &v), 0);
  return v;
}

static void check_blob(const ferry_buf *b, int nparams) {
  ferry_mblob_reader r;
  ferry_mblob_entry e;
  assert_int_equal(get_le64(b->data), b->len - 8);
  assert_int_equal(ferry_mblob_open(&r, b->data, b->len), 0);
  assert_int_equal(r.count, 3);
  assert_int_equal(ferry_mblob_next(&r, &e), 0);
  assert_int_equal(e.kind, FERRY_MBLOB_MODULE);
  assert_int_equal(e.key_len, strlen(FERRY_MBLOB_FACTORY_KEY));
  assert_memory_equal(e.key, FERRY_MBLOB_FACTORY_KEY, e.key_len);
  /* The factory payload, field by field. */
  ferry_stream s;
  ferry_stream_init(&s, e.payload, e.payload_avail);
  expect_str(&s, json);
  assert_int_equal(u64_at(&s), nparams);
  assert_int_equal(u64_at(&s), nparams);
  if (nparams) {
    expect_str(&s, "w");
    expect_str(&s, "b");
    ferry_params_tensor t;
    assert_int_equal(ferry_ndarray_decode(&s, &t), 0);
    assert_int_equal(t.shape[0], 2);
    float w[2];
    memcpy(w, t.data, 8);
    assert_true(w[0] == 1.0f && w[1] == 2.0f);
    assert_int_equal(ferry_ndarray_decode(&s, &t), 0);
    assert_int_equal(t.dtype.bits, 8);
    assert_int_equal(t.data[2], 3);
  }
  expect_str(&s, "default");
  assert_int_equal(ferry_mblob_skip(&r, s.pos), 0);
  assert_int_equal(ferry_mblob_next(&r, &e), 0);
  assert_int_equal(e.kind, FERRY_MBLOB_LIB);
  ferry_mblob_entry tree;
  assert_int_equal(ferry_mblob_next(&r, &tree), 0);
  assert_int_equal(tree.kind, FERRY_MBLOB_IMPORT_TREE);
  assert_int_equal(tree.nrow_ptr, 3);
  assert_int_equal(ferry_mblob_u64(tree.row_ptr, 0), 0);
  assert_int_equal(ferry_mblob_u64(tree.row_ptr, 1), 1);
  assert_int_equal(ferry_mblob_u64(tree.row_ptr, 2), 1);
  assert_int_equal(tree.nchild, 1);
  assert_int_equal(ferry_mblob_u64(tree.child, 0), 1);
  assert_int_equal(ferry_mblob_check_tree(&tree, 2), 0);
  assert_int_equal(ferry_mblob_next(&r, &e), 0);
  assert_int_equal(e.kind, FERRY_MBLOB_END);
}

static void test_with_params(void **state) {
  (void)state;
  ferry_buf p, b;
  make_params(&p);
  ferry_buf_init(&b, 1 << 20);
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, strlen(json), p.data, p.len,
                                                   "default"),
                   0);
  check_blob(&b, 2);
  ferry_buf_close(&b);
  ferry_buf_close(&p);
}

static void test_without_params(void **state) {
  (void)state;
  ferry_buf b;
  ferry_buf_init(&b, 1 << 20);
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, strlen(json), NULL, 0, "default"),
                   0);
  check_blob(&b, 0);
  ferry_buf_close(&b);
}

/* Every proper prefix of the dict, a wrong magic, a lying count, trailing
 * bytes: refused, and the output buffer keeps what it had. */
static void test_bad_params(void **state) {
  (void)state;
  ferry_buf p, b;
  make_params(&p);
  ferry_buf_init(&b, 1 << 20);
  assert_int_equal(ferry_buf_append(&b, "x", 1), 0);
  for (size_t n = 1; n < p.len; n++) {
    int rc = ferry_mblob_write_graph_factory(&b, json, strlen(json), p.data, n, "default");
    assert_int_not_equal(rc, 0);
    assert_int_equal(b.len, 1);
  }
  uint8_t *copy = test_malloc(p.len + 1);
  memcpy(copy, p.data, p.len);
  copy[p.len] = 0;
  assert_int_equal(
      ferry_mblob_write_graph_factory(&b, json, strlen(json), copy, p.len + 1, "default"),
      FERRY_EPROTO);
  copy[0] ^= 1;
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, strlen(json), copy, p.len, "default"),
                   FERRY_EMAGIC);
  copy[0] ^= 1;
  put_le64(copy + 16 + 8 + 9 + 9, 3); /* array count after names "w", "b" */
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, strlen(json), copy, p.len, "default"),
                   FERRY_EPROTO);
  put_le64(copy + 16, (uint64_t)1 << 40); /* a names count far past the data */
  assert_int_not_equal(
      ferry_mblob_write_graph_factory(&b, json, strlen(json), copy, p.len, "default"), 0);
  assert_int_equal(b.len, 1);
  test_free(copy);
  ferry_buf_close(&b);
  ferry_buf_close(&p);
}

static void test_bad_args_and_ceiling(void **state) {
  (void)state;
  ferry_buf b;
  ferry_buf_init(&b, 1 << 20);
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, 0, NULL, 0, "default"),
                   FERRY_EINVAL);
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, strlen(json), NULL, 0, ""),
                   FERRY_EINVAL);
  ferry_buf_close(&b);
  /* The exact size fits; one byte less does not, and nothing is written. */
  ferry_buf_init(&b, 1 << 20);
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, strlen(json), NULL, 0, "default"),
                   0);
  size_t need = b.len;
  ferry_buf_close(&b);
  ferry_buf_init(&b, need);
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, strlen(json), NULL, 0, "default"),
                   0);
  ferry_buf_close(&b);
  ferry_buf_init(&b, need - 1);
  assert_int_equal(ferry_mblob_write_graph_factory(&b, json, strlen(json), NULL, 0, "default"),
                   FERRY_ETOOBIG);
  assert_int_equal(b.len, 0);
  ferry_buf_close(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_with_params),
      cmocka_unit_test(test_without_params),
      cmocka_unit_test(test_bad_params),
      cmocka_unit_test(test_bad_args_and_ceiling),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
