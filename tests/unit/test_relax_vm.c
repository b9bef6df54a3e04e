/* The Relax VM (src/runtime/vm) on executables assembled here (no kernels:
 * builtins only), in both generations: If / Goto / VM-to-VM calls,
 * tuples, shapes, views, the call-depth bound, the memory cap, a missing
 * builtin named at vm_initialization, match_shape's TVM text, errors
 * naming the function and instruction, and the real executables of
 * tests/golden/relax loaded through the classic and ffi loaders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "runtime/vm/vm.h"
#include "wire/relax_exec_asm.h"

struct fixture {
  char dir[64];
  ferry_rt *rt;
  ferry_err err;
};

static int open_rt(void **state, uint64_t max_memory) {
  struct fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/ferry_relax_vm_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  ferry_rt_options opt = {.work_dir = f->dir, .num_threads = 1, .max_memory = max_memory};
  ferry_err_clear(&f->err);
  assert_int_equal(ferry_rt_open(&f->rt, &opt, &f->err), 0);
  *state = f;
  return 0;
}

static int setup(void **state) {
  return open_rt(state, 0);
}

static int setup_small(void **state) {
  return open_rt(state, 1 << 20);
}

static int teardown(void **state) {
  struct fixture *f = *state;
  ferry_rt_close(f->rt);
  rmdir(f->dir);
  free(f);
  return 0;
}

/* Assembles text, loads it as the library's reader hands it over: a
 * classic blob's u64 length + bytes; for tvm-ffi the bytes alone. */
static int load(struct fixture *f, const char *text, enum ferry_relax_gen gen, ferry_vm_exec **out) {
  ferry_buf b;
  ferry_buf_init(&b, 1 << 24);
  uint8_t zero[8] = {0};
  assert_int_equal(ferry_buf_append(&b, zero, 8), 0);
  char why[256];
  int rc = ferry_relax_asm(text, strlen(text), gen, NULL, 0, &b, why, sizeof why);
  if (rc)
    print_error("%s\n", why);
  assert_int_equal(rc, 0);
  put_le64(b.data, b.len - 8);
  ferry_module *m = NULL;
  size_t used = 0;
  ferry_err_clear(&f->err);
  size_t skip = gen == FERRY_RELAX_GEN_V020 ? 0 : 8;
  rc = gen == FERRY_RELAX_GEN_V020
           ? ferry_vm_exec_load_classic(f->rt, b.data, b.len, &used, &m, &f->err)
           : ferry_vm_exec_load_ffi(f->rt, b.data + 8, b.len - 8, &used, &m, &f->err);
  if (rc == FERRY_OK)
    assert_int_equal(used, b.len - skip);
  ferry_buf_close(&b);
  *out = rc ? NULL : ferry_vm_exec_cast(m);
  return rc;
}

static int call_fn(struct fixture *f, ferry_module *m, const char *name, ferry_value *args,
                   int n, ferry_call *c) {
  ferry_func *fn = NULL;
  ferry_err_clear(&f->err);
  int rc = ferry_module_get_function(m, name, 0, &fn, &f->err);
  assert_int_equal(rc, 0);
  ferry_call_init(c, f->rt, args, n, &f->err, 1 << 20);
  rc = ferry_func_call(fn, c);
  ferry_obj_release(&fn->base);
  return rc;
}

/* A VM made from text, initialised on CPU with the pooled allocator. */
static int make_vm(struct fixture *f, const char *text, enum ferry_relax_gen gen, ferry_vm **out) {
  ferry_vm_exec *e;
  assert_int_equal(load(f, text, gen, &e), 0);
  ferry_call c;
  assert_int_equal(call_fn(f, &e->mod, "vm_load_executable", NULL, 0, &c), 0);
  ferry_vm *vm = (ferry_vm *)c.ret.v.obj;
  c.ret.kind = FERRY_KIND_NONE;
  ferry_call_close(&c);
  ferry_obj_release(&e->mod.base);
  ferry_value init[3] = {{.kind = FERRY_KIND_INT, .v.i = 1},
                         {.kind = FERRY_KIND_INT, .v.i = 0},
                         {.kind = FERRY_KIND_INT, .v.i = 2}};
  int rc = call_fn(f, &vm->mod, "vm_initialization", init, 3, &c);
  ferry_call_close(&c);
  *out = vm;
  return rc;
}

static ferry_ndarray *tensor(struct fixture *f, int64_t d0, int64_t d1) {
  int64_t shape[2] = {d0, d1};
  DLDataType f32 = {kDLFloat, 32, 1};
  DLDevice cpu = {kDLCPU, 0};
  ferry_ndarray *nd;
  assert_int_equal(ferry_ndarray_new(f->rt, 2, shape, f32, cpu, &nd, &f->err), 0);
  return nd;
}

static const char control[] =
    "func main(x)\n"
    "  call vm.builtin.shape_of %0 -> %1\n"
    "  call vm.builtin.match_shape %1, %void, 2, 0, 2, 0, 3, \"ctx \"\n"
    "  call vm.builtin.read_if_cond 1 -> %2\n"
    "  if %2, other\n"
    "  call helper %0 -> %3\n"
    "  goto done\n"
    "other:\n"
    "  call vm.builtin.copy %0 -> %3\n"
    "done:\n"
    "  call vm.builtin.make_tuple %3, %1 -> %4\n"
    "  ret %4\n"
    "func helper(y)\n"
    "  call vm.builtin.alloc_storage %vm, shape(24), 0, uint8, \"global\" -> %1\n"
    "  call vm.builtin.alloc_tensor %1, 0, shape(2, 3), float32 -> %2\n"
    "  call vm.builtin.null_value -> %1\n"
    "  call vm.builtin.reshape %2, shape(6) -> %3\n"
    "  ret %3\n";

static void run_control(struct fixture *f, enum ferry_relax_gen gen) {
  ferry_vm *vm;
  assert_int_equal(make_vm(f, control, gen, &vm), 0);
  ferry_ndarray *x = tensor(f, 2, 3);
  ferry_value in = {.kind = FERRY_KIND_NDARRAY, .v.obj = &x->base}, out;
  int rc = ferry_vm_invoke(vm, ferry_vm_exec_find(vm->exec, "main"), &in, 1, 0, &out, &f->err);
  if (rc)
    print_error("%s\n", f->err.msg);
  assert_int_equal(rc, 0);
  ferry_vm_array *a = (ferry_vm_array *)ferry_vm_cast(&out, FERRY_VM_ARRAY_KEY);
  assert_non_null(a);
  assert_int_equal(a->n, 2);
  const DLTensor *t = ferry_vm_tensor_of(&a->items[0]);
  assert_non_null(t);
  assert_int_equal(t->ndim, 1);
  assert_int_equal(t->shape[0], 6);
  /* The tensor the session would hand out passes its range check. */
  assert_int_equal(ferry_rt_check_range(f->rt, t->data, 24, &f->err), 0);
  ferry_vm_shape *s = (ferry_vm_shape *)ferry_vm_cast(&a->items[1], FERRY_VM_SHAPE_KEY);
  assert_non_null(s);
  assert_int_equal(s->ndim, 2);
  assert_int_equal(s->dims[1], 3);
  ferry_vm_value_release(&out);
  /* A wrong shape: TVM's own words, naming the ErrorContext. */
  ferry_ndarray *y = tensor(f, 2, 4);
  in.v.obj = &y->base;
  ferry_err_clear(&f->err);
  assert_int_not_equal(ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err), 0);
  assert_string_equal(f->err.msg, "Check failed: input_shape[i] == reg (4 vs. 3) : ctx  "
                                  "match_cast error,  shape[1] mismatch to specified constant.");
  ferry_obj_release(&y->base);
  ferry_obj_release(&x->base);
  ferry_obj_release(&vm->mod.base);
}

static void test_control_flow_v020(void **state) {
  run_control(*state, FERRY_RELAX_GEN_V020);
}

static void test_control_flow_v026(void **state) {
  run_control(*state, FERRY_RELAX_GEN_V026);
}

static void test_recursion_bomb(void **state) {
  struct fixture *f = *state;
  ferry_vm *vm;
  assert_int_equal(make_vm(f, "func main(x)\n  call main %0 -> %1\n  ret %1\n",
                           FERRY_RELAX_GEN_V026, &vm), 0);
  ferry_value in = {.kind = FERRY_KIND_INT, .v.i = 1}, out;
  assert_int_equal(ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err), FERRY_ERANGE);
  assert_non_null(strstr(f->err.msg, "nested deeper than 64"));
  assert_non_null(strstr(f->err.msg, "'main'"));
  ferry_obj_release(&vm->mod.base);
}

static void test_alloc_past_the_cap(void **state) {
  struct fixture *f = *state;
  ferry_vm *vm;
  assert_int_equal(make_vm(f,
                           "func main(x)\n"
                           "  call vm.builtin.alloc_storage %vm, shape(1073741824), 0, uint8, "
                           "\"global\" -> %1\n"
                           "  ret %1\n",
                           FERRY_RELAX_GEN_V020, &vm), 0);
  ferry_value in = {.kind = FERRY_KIND_INT, .v.i = 1}, out;
  assert_int_equal(ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err), FERRY_ETOOBIG);
  assert_non_null(strstr(f->err.msg, "--max-memory"));
  assert_non_null(strstr(f->err.msg, "function 'main', instruction 0"));
  assert_non_null(strstr(f->err.msg, "vm.builtin.alloc_storage"));
  ferry_obj_release(&vm->mod.base);
}

static void test_missing_builtin_named_at_init(void **state) {
  struct fixture *f = *state;
  ferry_vm *vm;
  assert_int_not_equal(make_vm(f, "func main(x)\n  call vm.builtin.no_such %0\n  ret %0\n",
                               FERRY_RELAX_GEN_V020, &vm), 0);
  assert_non_null(strstr(f->err.msg, "vm_initialization: cannot find PackedFunc "
                                     "vm.builtin.no_such"));
  ferry_obj_release(&vm->mod.base);
}

static void test_runtime_errors_name_the_place(void **state) {
  struct fixture *f = *state;
  ferry_vm *vm;
  assert_int_equal(make_vm(f,
                           "func main(x)\n"
                           "  call vm.builtin.make_tuple %0 -> %1\n"
                           "  call vm.builtin.tuple_getitem %1, 5 -> %2\n"
                           "  ret %2\n",
                           FERRY_RELAX_GEN_V026, &vm), 0);
  ferry_value in = {.kind = FERRY_KIND_INT, .v.i = 7}, out;
  assert_int_equal(ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err), FERRY_ERANGE);
  assert_non_null(strstr(f->err.msg, "index 5 out of range for a tuple of 1"));
  assert_non_null(strstr(f->err.msg, "function 'main', instruction 1, calling "
                                     "vm.builtin.tuple_getitem"));
  /* A wrong kind: an int where a Shape belongs. */
  ferry_vm_value_release(&out);
  ferry_obj_release(&vm->mod.base);
  assert_int_equal(make_vm(f, "func main(x)\n  call vm.builtin.reshape %0, %0 -> %1\n  ret %1\n",
                           FERRY_RELAX_GEN_V020, &vm), 0);
  ferry_err_clear(&f->err);
  assert_int_equal(ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err), FERRY_ETYPE);
  assert_non_null(strstr(f->err.msg, "must be a Shape"));
  ferry_obj_release(&vm->mod.base);
}

static void test_dynamic_shapes(void **state) {
  struct fixture *f = *state;
  ferry_vm *vm;
  assert_int_equal(make_vm(f,
                           "func main(x)\n"
                           "  call vm.builtin.alloc_shape_heap %vm, 2 -> %1\n"
                           "  call vm.builtin.match_shape %0, %1, 2, 1, 0, 3, 0, \"c \"\n"
                           "  call vm.builtin.make_shape %1, 3, 1, 0, 0, 7, 1, 0 -> %2\n"
                           "  call vm.builtin.make_prim_value %1, 1, 0 -> %3\n"
                           "  call vm.builtin.make_shape %1, 1, 1, 9 -> %4\n"
                           "  ret %2\n",
                           FERRY_RELAX_GEN_V026, &vm), 0);
  /* Dimension 1 must equal dimension 0 (code 3 loads what code 1 stored);
   * the last make_shape reads past the heap. */
  ferry_ndarray *x = tensor(f, 5, 5);
  ferry_value in = {.kind = FERRY_KIND_NDARRAY, .v.obj = &x->base}, out;
  assert_int_equal(ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err), FERRY_ERANGE);
  assert_non_null(strstr(f->err.msg, "shape heap index 9 outside the heap of 2"));
  ferry_obj_release(&x->base);
  x = tensor(f, 5, 6);
  in.v.obj = &x->base;
  ferry_err_clear(&f->err);
  assert_int_equal(ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err), FERRY_EINVAL);
  assert_non_null(strstr(f->err.msg, "mismatch to a previous populated value"));
  ferry_obj_release(&x->base);
  ferry_obj_release(&vm->mod.base);
}

/* tensor_to_shape, check_shape_info, make_shape and call_tir_dyn (whose
 * shape becomes trailing int arguments; testing.echo stands in for a
 * kernel, resolved as a public global). */
static void test_shape_builtins(void **state) {
  struct fixture *f = *state;
  ferry_vm *vm;
  assert_int_equal(make_vm(f,
                           "func main(x)\n"
                           "  call vm.builtin.alloc_shape_heap %vm, 2 -> %1\n"
                           "  call vm.builtin.match_shape %0, %1, 2, 1, 0, 1, 1, \"c \"\n"
                           "  call vm.builtin.tensor_to_shape %1 -> %2\n"
                           "  call vm.builtin.check_shape_info %2, 2, \"c \"\n"
                           "  call vm.builtin.make_shape %1, 1, 1, 1 -> %3\n"
                           "  call vm.builtin.call_tir_dyn @testing.echo, %3 -> %4\n"
                           "  call vm.builtin.make_tuple %4, %2 -> %5\n"
                           "  call vm.builtin.check_shape_info %2, 3, \"c \"\n"
                           "  ret %5\n",
                           FERRY_RELAX_GEN_V020, &vm), 0);
  ferry_ndarray *x = tensor(f, 5, 6);
  ferry_value in = {.kind = FERRY_KIND_NDARRAY, .v.obj = &x->base}, out;
  /* The last check wants 3 dimensions: refused with the context string. */
  assert_int_equal(ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err), FERRY_EINVAL);
  assert_string_equal(f->err.msg, "c  expect Shape with ndim 3 but get 2");
  ferry_obj_release(&vm->mod.base);
  assert_int_equal(make_vm(f,
                           "func main(x)\n"
                           "  call vm.builtin.alloc_shape_heap %vm, 2 -> %1\n"
                           "  call vm.builtin.match_shape %0, %1, 2, 1, 0, 1, 1, \"c \"\n"
                           "  call vm.builtin.tensor_to_shape %1 -> %2\n"
                           "  call vm.builtin.make_shape %1, 1, 1, 1 -> %3\n"
                           "  call vm.builtin.call_tir_dyn @testing.echo, %3 -> %4\n"
                           "  call vm.builtin.make_tuple %4, %2 -> %5\n"
                           "  ret %5\n",
                           FERRY_RELAX_GEN_V026, &vm), 0);
  ferry_err_clear(&f->err);
  int rc = ferry_vm_invoke(vm, 0, &in, 1, 0, &out, &f->err);
  if (rc)
    print_error("%s\n", f->err.msg);
  assert_int_equal(rc, 0);
  ferry_vm_array *a = (ferry_vm_array *)ferry_vm_cast(&out, FERRY_VM_ARRAY_KEY);
  assert_non_null(a);
  assert_int_equal(a->items[0].kind, FERRY_KIND_INT);
  assert_int_equal(a->items[0].v.i, 6);
  ferry_vm_shape *s = (ferry_vm_shape *)ferry_vm_cast(&a->items[1], FERRY_VM_SHAPE_KEY);
  assert_non_null(s);
  assert_int_equal(s->ndim, 2);
  assert_int_equal(s->dims[0], 5);
  assert_int_equal(s->dims[1], 6);
  ferry_vm_value_release(&out);
  ferry_obj_release(&x->base);
  ferry_obj_release(&vm->mod.base);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *in = fopen(path, "rb");
  assert_non_null(in);
  fseek(in, 0, SEEK_END);
  long n = ftell(in);
  fseek(in, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)n + 8);
  put_le64(p, (uint64_t)n);
  assert_int_equal(fread(p + 8, 1, (size_t)n, in), (size_t)n);
  fclose(in);
  *len = (size_t)n + 8;
  return p;
}

/* The real executables through the loader of their own ABI; through the
 * other one, a clear refusal. */
static void test_real_executables(void **state) {
  struct fixture *f = *state;
  static const char *const names[] = {"v0.20/mlp", "v0.20/two_outputs", "v0.26/mlp",
                                      "v0.26/two_outputs"};
  for (int i = 0; i < 4; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/relax/%s.exec", FERRY_GOLDEN_DIR, names[i]);
    size_t len;
    uint8_t *p = read_file(path, &len);
    int ffi = i >= 2;
    ferry_module *m = NULL;
    size_t used = 0;
    ferry_err_clear(&f->err);
    int rc = ffi ? ferry_vm_exec_load_ffi(f->rt, p + 8, len - 8, &used, &m, &f->err)
                 : ferry_vm_exec_load_classic(f->rt, p, len, &used, &m, &f->err);
    assert_int_equal(rc, 0);
    assert_int_equal(used, ffi ? len - 8 : len);
    /* stats + "\n" + as_text is what TVM printed into the .txt. */
    ferry_call c;
    assert_int_equal(call_fn(f, m, "stats", NULL, 0, &c), 0);
    char *text = strdup(c.ret.v.str.data);
    ferry_call_close(&c);
    assert_int_equal(call_fn(f, m, "as_text", NULL, 0, &c), 0);
    size_t tl = strlen(text), al = c.ret.v.str.len;
    text = realloc(text, tl + al + 2);
    text[tl] = '\n';
    memcpy(text + tl + 1, c.ret.v.str.data, al + 1);
    ferry_call_close(&c);
    snprintf(path, sizeof path, "%s/relax/%s.txt", FERRY_GOLDEN_DIR, names[i]);
    size_t txt_len;
    uint8_t *txt = read_file(path, &txt_len);
    assert_int_equal(strlen(text), txt_len - 8);
    assert_memory_equal(text, txt + 8, txt_len - 8);
    free(txt);
    free(text);
    ferry_value fname = {.kind = FERRY_KIND_STR, .v.str = {"main", 4}};
    assert_int_equal(call_fn(f, m, "has_function", &fname, 1, &c), 0);
    assert_int_equal(c.ret.kind, FERRY_KIND_BOOL);
    assert_int_equal(c.ret.v.i, 1);
    ferry_call_close(&c);
    fname.v.str.data = "nope";
    assert_int_equal(call_fn(f, m, "has_function", &fname, 1, &c), 0);
    assert_int_equal(c.ret.v.i, 0);
    ferry_call_close(&c);
    ferry_obj_release(&m->base);
    ferry_err_clear(&f->err);
    rc = ffi ? ferry_vm_exec_load_classic(f->rt, p, len, &used, &m, &f->err)
             : ferry_vm_exec_load_ffi(f->rt, p + 8, len - 8, &used, &m, &f->err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(f->err.msg, "relax executable"));
    /* A length that lies. */
    put_le64(p, (uint64_t)len);
    ferry_err_clear(&f->err);
    assert_int_not_equal(ferry_vm_exec_load_classic(f->rt, p, len, &used, &m, &f->err), 0);
    assert_non_null(strstr(f->err.msg, "bytes left in the library"));
    free(p);
  }
}

/* A compiled-mode (VM-TIR) function is refused at load by name (the
 * message used to be formatted from the freed executable: found by
 * fuzz_relax_vm under ASan). */
static void test_vmtir_refused_by_name(void **state) {
  struct fixture *f = *state;
  char path[512];
  snprintf(path, sizeof path, "%s/relax/v0.20/mlp.exec", FERRY_GOLDEN_DIR);
  size_t len;
  uint8_t *p = read_file(path, &len);
  ferry_relax_exec x;
  char why[256];
  assert_int_equal(ferry_relax_exec_parse(&x, p + 8, len - 8, FERRY_RELAX_TAGS_CLASSIC, why,
                                          sizeof why), 0);
  x.funcs[0].kind = FERRY_RELAX_FUNC_VMTIR; /* main */
  ferry_buf b;
  ferry_buf_init(&b, 1 << 24);
  uint8_t zero[8] = {0};
  assert_int_equal(ferry_buf_append(&b, zero, 8), 0);
  assert_int_equal(ferry_relax_exec_write(&x, &b), 0);
  put_le64(b.data, b.len - 8);
  ferry_relax_exec_close(&x);
  free(p);
  ferry_module *m = NULL;
  size_t used = 0;
  ferry_err_clear(&f->err);
  int rc = ferry_vm_exec_load_classic(f->rt, b.data, b.len, &used, &m, &f->err);
  ferry_buf_close(&b);
  assert_int_equal(rc, FERRY_EUNSUPPORTED);
  assert_non_null(strstr(f->err.msg, "function 'main' is compiled VM-TIR"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_control_flow_v020, setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_flow_v026, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recursion_bomb, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alloc_past_the_cap, setup_small, teardown),
      cmocka_unit_test_setup_teardown(test_missing_builtin_named_at_init, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_errors_name_the_place, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dynamic_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shape_builtins, setup, teardown),
      cmocka_unit_test_setup_teardown(test_real_executables, setup, teardown),
      cmocka_unit_test_setup_teardown(test_vmtir_refused_by_name, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
