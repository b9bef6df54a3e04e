/* __tvm_dev_mblob parser (runtime-abi.md 5): typical blobs, every
 * truncation, limits, and import-tree validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "wire/mblob.h"

static void u64(ferry_buf *b, uint64_t v) {
  uint8_t x[8];
  put_le64(x, v);
  assert_int_equal(ferry_buf_append(b, x, 8), 0);
}
static void str(ferry_buf *b, const char *s) {
  u64(b, strlen(s));
  assert_int_equal(ferry_buf_append(b, s, strlen(s)), 0);
}

/* tvm.build(..., "cuda"): _lib, cuda (fmt, empty fmap, data), tree. */
static void build_cuda_blob(ferry_buf *out) {
  ferry_buf p;
  ferry_buf_init(&p, 1 << 20);
  u64(&p, 3);
  str(&p, "_lib");
  str(&p, "cuda");
  str(&p, "ptx");
  u64(&p, 0);
  str(&p, "xx");
  str(&p, "_import_tree");
  u64(&p, 3);
  u64(&p, 0);
  u64(&p, 1);
  u64(&p, 1);
  u64(&p, 1);
  u64(&p, 1);
  ferry_buf_init(out, 1 << 20);
  u64(out, p.len);
  assert_int_equal(ferry_buf_append(out, p.data, p.len), 0);
  ferry_buf_close(&p);
}

/* The cuda payload as a loader would read it: returns bytes consumed. */
static size_t skip_device_module(const uint8_t *p, size_t avail) {
  ferry_stream s;
  ferry_stream_init(&s, p, avail);
  const char *x;
  size_t n;
  uint64_t fmap;
  assert_int_equal(ferry_stream_str(&s, 64, &x, &n), 0);
  assert_int_equal(ferry_stream_u64(&s, &fmap), 0);
  assert_int_equal(fmap, 0);
  assert_int_equal(ferry_stream_str(&s, 64, &x, &n), 0);
  return s.pos;
}

static void cuda_blob(void **state) {
  (void)state;
  ferry_buf b;
  build_cuda_blob(&b);
  ferry_mblob_reader r;
  ferry_mblob_entry e, tree;
  assert_int_equal(ferry_mblob_open(&r, b.data, b.len), 0);
  assert_int_equal(r.count, 3);
  assert_int_equal(ferry_mblob_next(&r, &e), 0);
  assert_int_equal(e.kind, FERRY_MBLOB_LIB);
  assert_int_equal(ferry_mblob_next(&r, &e), 0);
  assert_int_equal(e.kind, FERRY_MBLOB_MODULE);
  assert_int_equal(e.key_len, 4);
  assert_memory_equal(e.key, "cuda", 4);
  /* The next entry cannot be read until the payload is consumed. */
  ferry_mblob_entry again;
  assert_int_equal(ferry_mblob_next(&r, &again), FERRY_EPROTO);
  assert_int_equal(ferry_mblob_skip(&r, e.payload_avail + 1), FERRY_EPROTO);
  assert_int_equal(ferry_mblob_skip(&r, skip_device_module(e.payload, e.payload_avail)), 0);
  assert_int_equal(ferry_mblob_next(&r, &tree), 0);
  assert_int_equal(tree.kind, FERRY_MBLOB_IMPORT_TREE);
  assert_int_equal(tree.nrow_ptr, 3);
  assert_int_equal(tree.nchild, 1);
  assert_int_equal(ferry_mblob_u64(tree.child, 0), 1);
  assert_int_equal(ferry_mblob_check_tree(&tree, 2), 0);
  assert_int_equal(ferry_mblob_check_tree(&tree, 3), FERRY_EPROTO);
  assert_int_equal(ferry_mblob_next(&r, &e), 0);
  assert_int_equal(e.kind, FERRY_MBLOB_END);
  /* A larger readable area than N is fine (the symbol may be padded). */
  assert_int_equal(ferry_mblob_open(&r, b.data, b.len + 0), 0);
  ferry_buf_close(&b);
}

static void every_truncation(void **state) {
  (void)state;
  ferry_buf b;
  build_cuda_blob(&b);
  /* Claim the true N but offer fewer bytes: refused at open. */
  for (size_t n = 0; n < b.len; n++) {
    ferry_mblob_reader r;
    assert_int_equal(ferry_mblob_open(&r, b.data, n), FERRY_EAGAIN);
  }
  /* Shrink N itself: every entry read fails cleanly somewhere. */
  for (size_t n = 0; n < b.len - 8; n++) {
    put_le64(b.data, n);
    ferry_mblob_reader r;
    ferry_mblob_entry e;
    int rc = ferry_mblob_open(&r, b.data, b.len);
    while (rc == FERRY_OK) {
      rc = ferry_mblob_next(&r, &e);
      if (rc || e.kind == FERRY_MBLOB_END)
        break;
      if (e.kind == FERRY_MBLOB_MODULE) {
        /* A payload reader would hit the end: emulate with the bound. */
        if (e.payload_avail < 29) {
          rc = FERRY_EAGAIN;
          break;
        }
        rc = ferry_mblob_skip(&r, 29);
      }
    }
    assert_int_equal(rc, FERRY_EAGAIN);
  }
  ferry_buf_close(&b);
}

static void limits(void **state) {
  (void)state;
  uint8_t b[64] = {0};
  ferry_mblob_reader r;
  ferry_mblob_entry e;
  put_le64(b, FERRY_MBLOB_MAX_BYTES + 1);
  assert_int_equal(ferry_mblob_open(&r, b, sizeof b), FERRY_ETOOBIG);
  put_le64(b, 1ull << 63);
  assert_int_equal(ferry_mblob_open(&r, b, sizeof b), FERRY_ETOOBIG);
  put_le64(b, 56);
  put_le64(b + 8, FERRY_MBLOB_MAX_ENTRIES + 1);
  assert_int_equal(ferry_mblob_open(&r, b, sizeof b), FERRY_ETOOBIG);
  put_le64(b + 8, FERRY_MBLOB_MAX_ENTRIES);
  assert_int_equal(ferry_mblob_open(&r, b, sizeof b), 0);
  put_le64(b + 16, FERRY_MBLOB_MAX_KEY + 1); /* key length */
  assert_int_equal(ferry_mblob_next(&r, &e), FERRY_ETOOBIG);
  put_le64(b + 16, 1ull << 62);
  assert_int_equal(ferry_mblob_next(&r, &e), FERRY_ETOOBIG);
  /* An import tree whose vectors claim more than there is. */
  ferry_buf t;
  ferry_buf_init(&t, 1 << 10);
  u64(&t, 0);
  u64(&t, 1);
  str(&t, "_import_tree");
  u64(&t, 1ull << 40);
  put_le64(t.data, t.len - 8);
  assert_int_equal(ferry_mblob_open(&r, t.data, t.len), 0);
  assert_int_equal(ferry_mblob_next(&r, &e), FERRY_ETOOBIG);
  ferry_buf_close(&t);
}

static void bad_trees(void **state) {
  (void)state;
  uint8_t row[4 * 8], child[4 * 8];
  ferry_mblob_entry tree = {.kind = FERRY_MBLOB_IMPORT_TREE, .row_ptr = row, .child = child};
  /* 2 modules: [0, 1, 1] [1] is fine. */
  put_le64(row, 0);
  put_le64(row + 8, 1);
  put_le64(row + 16, 1);
  put_le64(child, 1);
  tree.nrow_ptr = 3;
  tree.nchild = 1;
  assert_int_equal(ferry_mblob_check_tree(&tree, 2), 0);
  /* child out of range */
  put_le64(child, 2);
  assert_int_equal(ferry_mblob_check_tree(&tree, 2), FERRY_EPROTO);
  /* self import / backwards edge (a cycle) */
  put_le64(child, 0);
  assert_int_equal(ferry_mblob_check_tree(&tree, 2), FERRY_EPROTO);
  put_le64(child, 1);
  /* row_ptr not starting at 0, decreasing, not ending at nchild */
  put_le64(row, 1);
  assert_int_equal(ferry_mblob_check_tree(&tree, 2), FERRY_EPROTO);
  put_le64(row, 0);
  put_le64(row + 16, 0);
  assert_int_equal(ferry_mblob_check_tree(&tree, 2), FERRY_EPROTO);
  put_le64(row + 16, 2);
  assert_int_equal(ferry_mblob_check_tree(&tree, 2), FERRY_EPROTO);
  /* wrong row count */
  put_le64(row + 16, 1);
  assert_int_equal(ferry_mblob_check_tree(&tree, 3), FERRY_EPROTO);
}

static void old_layout_and_empty(void **state) {
  (void)state;
  uint8_t b[16];
  put_le64(b, 8);
  put_le64(b + 8, 0);
  ferry_mblob_reader r;
  ferry_mblob_entry e;
  assert_int_equal(ferry_mblob_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_mblob_next(&r, &e), 0);
  assert_int_equal(e.kind, FERRY_MBLOB_END);
  /* N = 0: not even a count. */
  put_le64(b, 0);
  assert_int_equal(ferry_mblob_open(&r, b, sizeof b), FERRY_EAGAIN);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cuda_blob),   cmocka_unit_test(every_truncation),
      cmocka_unit_test(limits),      cmocka_unit_test(bad_trees),
      cmocka_unit_test(old_layout_and_empty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
