/* The per-session handle table: tagged, checked indices with reference
 * counts; stale, foreign and mistyped handles refused without touching
 * anything. */
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

static ferry_obj *new_obj(enum ferry_obj_type type) {
  ferry_obj *o = malloc(sizeof *o);
  ferry_obj_init(o, type, count_destroy);
  return o;
}

static void put_get_release(void **state) {
  (void)state;
  destroyed = 0;
  ferry_handles h;
  ferry_handles_init(&h, 0);
  ferry_obj *f = new_obj(FERRY_OBJ_FUNC), *m = new_obj(FERRY_OBJ_MODULE);
  uint64_t hf, hm;
  assert_int_equal(ferry_handles_put(&h, f, &hf), 0);
  assert_int_equal(ferry_handles_put(&h, m, &hm), 0);
  assert_int_not_equal(hf, 0);
  assert_int_not_equal(hf, hm);
  assert_int_not_equal(hf, (uint64_t)(uintptr_t)f); /* never the pointer */
  ferry_obj *out;
  assert_int_equal(ferry_handles_get(&h, hf, FERRY_OBJ_FUNC, &out), 0);
  assert_ptr_equal(out, f);
  assert_int_equal(ferry_handles_get(&h, hf, 0, &out), 0);
  /* Wrong type, zero, foreign values. */
  assert_int_equal(ferry_handles_get(&h, hf, FERRY_OBJ_MODULE, &out), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_get(&h, 0, 0, &out), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_get(&h, (uint64_t)(uintptr_t)f, 0, &out), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_get(&h, hf + 5, 0, &out), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_get(&h, UINT64_MAX, 0, &out), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_live(&h), 2);
  assert_int_equal(ferry_handles_release(&h, hf, FERRY_OBJ_MODULE), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_release(&h, hf, FERRY_OBJ_FUNC), 0);
  assert_int_equal(destroyed, 1);
  /* Released: stale from now on, even after the slot is reused. */
  assert_int_equal(ferry_handles_release(&h, hf, 0), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_get(&h, hf, 0, &out), FERRY_EBADHANDLE);
  ferry_obj *f2 = new_obj(FERRY_OBJ_FUNC);
  uint64_t hf2;
  assert_int_equal(ferry_handles_put(&h, f2, &hf2), 0);
  assert_int_not_equal(hf2, hf);
  assert_int_equal(ferry_handles_get(&h, hf, 0, &out), FERRY_EBADHANDLE);
  assert_int_equal(ferry_handles_get(&h, hf2, 0, &out), 0);
  assert_ptr_equal(out, f2);
  /* Closing releases what is left. */
  ferry_handles_close(&h);
  assert_int_equal(destroyed, 3);
}

static void same_object_twice(void **state) {
  (void)state;
  destroyed = 0;
  ferry_handles h;
  ferry_handles_init(&h, 0);
  ferry_obj *f = new_obj(FERRY_OBJ_FUNC);
  ferry_obj_retain(f); /* the caller hands out two references */
  uint64_t a, b;
  assert_int_equal(ferry_handles_put(&h, f, &a), 0);
  assert_int_equal(ferry_handles_put(&h, f, &b), 0);
  assert_int_equal(a, b);
  assert_int_equal(ferry_handles_live(&h), 1);
  assert_int_equal(ferry_handles_release(&h, a, 0), 0);
  assert_int_equal(destroyed, 0); /* one client reference left */
  ferry_obj *out;
  assert_int_equal(ferry_handles_get(&h, a, 0, &out), 0);
  assert_int_equal(ferry_handles_release(&h, a, 0), 0);
  assert_int_equal(destroyed, 1);
  assert_int_equal(ferry_handles_release(&h, a, 0), FERRY_EBADHANDLE);
  ferry_handles_close(&h);
  assert_int_equal(destroyed, 1);
}

static void ceiling(void **state) {
  (void)state;
  destroyed = 0;
  ferry_handles h;
  ferry_handles_init(&h, 20);
  uint64_t hs[20], x;
  for (int i = 0; i < 20; i++)
    assert_int_equal(ferry_handles_put(&h, new_obj(FERRY_OBJ_OTHER), &hs[i]), 0);
  /* Full: the reference passed in is released, nothing leaks. */
  assert_int_equal(ferry_handles_put(&h, new_obj(FERRY_OBJ_OTHER), &x), FERRY_ETOOBIG);
  assert_int_equal(destroyed, 1);
  assert_int_equal(ferry_handles_release(&h, hs[7], 0), 0);
  assert_int_equal(ferry_handles_put(&h, new_obj(FERRY_OBJ_NDARRAY), &x), 0);
  ferry_obj *out;
  assert_int_equal(ferry_handles_get(&h, x, FERRY_OBJ_NDARRAY, &out), 0);
  assert_int_equal(ferry_handles_get(&h, hs[7], 0, &out), FERRY_EBADHANDLE);
  ferry_handles_close(&h);
  assert_int_equal(destroyed, 22);
}

static void random_values(void **state) {
  (void)state;
  ferry_handles h;
  ferry_handles_init(&h, 0);
  uint64_t hf;
  assert_int_equal(ferry_handles_put(&h, new_obj(FERRY_OBJ_FUNC), &hf), 0);
  /* No bit flip of a live handle names it or anything else. */
  ferry_obj *out;
  for (int bit = 0; bit < 64; bit++)
    assert_int_equal(ferry_handles_get(&h, hf ^ (1ull << bit), 0, &out), FERRY_EBADHANDLE);
  ferry_handles_close(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(put_get_release),
      cmocka_unit_test(same_object_twice),
      cmocka_unit_test(ceiling),
      cmocka_unit_test(random_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
