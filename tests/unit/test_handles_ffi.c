/* The handle table's lookup for TVM v0.21's ffi client, which releases a
 * returned NDArray by the data pointer of its kCallFunc return instead of
 * its handle (rpc-session.md §7.2.8): only live NDArrays match, by the
 * pointer the client was sent (data + byte_offset), never by anything
 * else, and nothing the client sends is dereferenced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "server/handles.h"

static int destroyed;

static void count_destroy(ferry_obj *o) {
  destroyed++;
  free(o);
}

static ferry_ndarray *new_ndarray(void *data, uint64_t byte_offset) {
  ferry_ndarray *a = calloc(1, sizeof *a);
  ferry_obj_init(&a->base, FERRY_OBJ_NDARRAY, count_destroy);
  a->tensor.data = data;
  a->tensor.byte_offset = byte_offset;
  return a;
}

static void data_pointer_lookup(void **state) {
  (void)state;
  destroyed = 0;
  static char buf1[64], buf2[64];
  ferry_handles h;
  ferry_handles_init(&h, 0);
  ferry_ndarray *a = new_ndarray(buf1, 0), *b = new_ndarray(buf2, 16);
  ferry_obj *f = calloc(1, sizeof *f);
  ferry_obj_init(f, FERRY_OBJ_FUNC, count_destroy);
  uint64_t ha, hb, hf, found = 0;
  assert_int_equal(ferry_handles_put(&h, &a->base, &ha), 0);
  assert_int_equal(ferry_handles_put(&h, &b->base, &hb), 0);
  assert_int_equal(ferry_handles_put(&h, f, &hf), 0);
  /* By the pointer sent in the return: first element. */
  assert_int_equal(ferry_handles_find_ndarray_data(&h, (uintptr_t)buf1, &found), 0);
  assert_int_equal(found, ha);
  assert_int_equal(ferry_handles_find_ndarray_data(&h, (uintptr_t)(buf2 + 16), &found), 0);
  assert_int_equal(found, hb);
  /* Not the base of an offset tensor, not a function's address, not 0,
   * not a handle value. */
  assert_int_equal(ferry_handles_find_ndarray_data(&h, (uintptr_t)buf2, &found),
                   FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_find_ndarray_data(&h, (uintptr_t)f, &found), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_find_ndarray_data(&h, 0, &found), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_find_ndarray_data(&h, ha, &found), FERRY_EBADHANDLE);
  /* Released arrays no longer match. */
  assert_int_equal(ferry_handles_find_ndarray_data(&h, (uintptr_t)buf1, &found), 0);
  assert_int_equal(ferry_handles_release(&h, found, FERRY_OBJ_NDARRAY), 0);
  assert_int_equal(destroyed, 1);
  assert_int_equal(ferry_handles_find_ndarray_data(&h, (uintptr_t)buf1, &found),
                   FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_live(&h), 2);
  ferry_handles_close(&h);
  assert_int_equal(destroyed, 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(data_pointer_lookup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
