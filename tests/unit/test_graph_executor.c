/* The graph executor against the test kernels (tests/models/testlib.c:
 * addone, scale): creation through tvm.graph_executor.create, every module
 * function GraphModule calls, shared storage, parameters, zero copy,
 * share_params, the GraphExecutorFactory of a module blob, and bad input
 * (missing function, bad devices, hostile params and factory payloads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/graph/graph_executor.h"
#include "wire/mblob_write.h"
#include "wire/params.h"

struct fixture {
  char dir[64];
  ferry_rt *rt;
  ferry_err err;
  ferry_module *lib;
};

static ferry_value str(const char *s) {
  ferry_value v = {.kind = FERRY_KIND_STR};
  v.v.str.data = s;
  v.v.str.len = strlen(s);
  return v;
}
static ferry_value bytes(const void *p, size_t n) {
  ferry_value v = {.kind = FERRY_KIND_BYTES};
  v.v.str.data = p;
  v.v.str.len = n;
  return v;
}
static ferry_value i64(int64_t x) { return (ferry_value){.kind = FERRY_KIND_INT, .v.i = x}; }
static ferry_value obj(enum ferry_kind k, void *o) { return (ferry_value){.kind = k, .v.obj = o}; }

static int call(struct fixture *fx, ferry_func *f, const ferry_value *args, int n, ferry_call *c) {
  ferry_err_clear(&fx->err);
  ferry_call_init(c, fx->rt, args, n, &fx->err, 1 << 24);
  return ferry_func_call(f, c);
}

static int call_global(struct fixture *fx, const char *name, const ferry_value *args, int n,
                       ferry_call *c) {
  ferry_func *fn;
  assert_int_equal(ferry_rt_get_global(fx->rt, name, &fn), 0);
  int rc = call(fx, fn, args, n, c);
  ferry_obj_release(&fn->base);
  return rc;
}

static ferry_obj *take(ferry_call *c) {
  ferry_obj *o = c->ret.v.obj;
  c->ret.kind = FERRY_KIND_NONE;
  ferry_call_close(c);
  return o;
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/ferry_graph_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  ferry_rt_options opt = {.work_dir = f->dir, .num_threads = 1};
  ferry_err_clear(&f->err);
  assert_int_equal(ferry_rt_open(&f->rt, &opt, &f->err), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/testlib.so", FERRY_MODELS_DIR);
  FILE *in = fopen(path, "rb");
  assert_non_null(in);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, in);
  fclose(in);
  ferry_value a[2] = {str("testlib.so"), bytes(buf, n)};
  ferry_call c;
  assert_int_equal(call_global(f, "tvm.rpc.server.upload", a, 2, &c), 0);
  ferry_call_close(&c);
  assert_int_equal(call_global(f, "tvm.rpc.server.load_module", a, 1, &c), 0);
  f->lib = (ferry_module *)take(&c);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  ferry_obj_release(&f->lib->base);
  ferry_rt_close(f->rt);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static const char *golden_json(size_t *len) {
  static char buf[1 << 16];
  FILE *f = fopen(FERRY_GOLDEN_DIR "/graph.json", "rb");
  assert_non_null(f);
  *len = fread(buf, 1, sizeof buf - 1, f);
  buf[*len] = 0;
  fclose(f);
  return buf;
}

/* tvm.graph_executor.create(json, lib, 1, 0); NULL with fx->err on failure. */
static ferry_module *create(struct fixture *fx, const char *json, int64_t dev_type) {
  ferry_value a[4] = {str(json), obj(FERRY_KIND_MODULE, fx->lib), i64(dev_type), i64(0)};
  ferry_call c;
  int rc = call_global(fx, "tvm.graph_executor.create", a, 4, &c);
  if (rc) {
    ferry_call_close(&c);
    return NULL;
  }
  assert_int_equal(c.ret.kind, FERRY_KIND_MODULE);
  return (ferry_module *)take(&c);
}

/* m[name](args...): the result stays in *c. */
static int mcall(struct fixture *fx, ferry_module *m, const char *name, const ferry_value *args,
                 int n, ferry_call *c) {
  ferry_func *f;
  ferry_err_clear(&fx->err);
  assert_int_equal(ferry_module_get_function(m, name, 1, &f, &fx->err), 0);
  int rc = call(fx, f, args, n, c);
  ferry_obj_release(&f->base);
  return rc;
}

static ferry_ndarray *array(struct fixture *fx, int64_t rows, int64_t cols, float first) {
  ferry_ndarray *a;
  int64_t shape[2] = {rows, cols};
  assert_int_equal(ferry_ndarray_new(fx->rt, 2, shape, (DLDataType){kDLFloat, 32, 1},
                                     (DLDevice){kDLCPU, 0}, &a, &fx->err),
                   0);
  float *p = a->tensor.data;
  for (int64_t i = 0; i < rows * cols; i++)
    p[i] = first + (float)i;
  return a;
}

/* get_output(0) and check it is 2 * (x + 1) for x = first + i. */
static void expect_output(struct fixture *fx, ferry_module *m, float first) {
  ferry_call c;
  ferry_value a = i64(0);
  assert_int_equal(mcall(fx, m, "get_output", &a, 1, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_NDARRAY);
  ferry_ndarray *out = (ferry_ndarray *)c.ret.v.obj;
  assert_int_equal(out->tensor.ndim, 2);
  assert_int_equal(out->tensor.shape[1], 4);
  /* The session accepts it: its memory is runtime storage. */
  assert_int_equal(ferry_rt_check_range(fx->rt, out->tensor.data, 48, &fx->err), 0);
  const float *p = out->tensor.data;
  for (int i = 0; i < 12; i++)
    assert_true(p[i] == 2.0f * (first + (float)i + 1.0f));
  ferry_call_close(&c);
}

static void run(struct fixture *fx, ferry_module *m) {
  ferry_call c;
  int rc = mcall(fx, m, "run", NULL, 0, &c);
  if (rc)
    fail_msg("run: %s", fx->err.msg);
  ferry_call_close(&c);
}

static void test_create_run(void **state) {
  struct fixture *fx = *state;
  size_t len;
  ferry_module *m = create(fx, golden_json(&len), 1);
  assert_non_null(m);
  ferry_ndarray *x = array(fx, 3, 4, 1.0f);
  ferry_value a[2] = {str("x"), obj(FERRY_KIND_NDARRAY, x)};
  ferry_call c;
  assert_int_equal(mcall(fx, m, "set_input", a, 2, &c), 0);
  ferry_call_close(&c);
  run(fx, m);
  expect_output(fx, m, 1.0f);
  /* By index, and an unknown name is ignored. */
  ferry_ndarray *y = array(fx, 3, 4, 5.0f);
  a[0] = i64(0);
  a[1] = obj(FERRY_KIND_NDARRAY, y);
  assert_int_equal(mcall(fx, m, "set_input", a, 2, &c), 0);
  ferry_call_close(&c);
  a[0] = str("nope");
  assert_int_equal(mcall(fx, m, "set_input", a, 2, &c), 0);
  ferry_call_close(&c);
  a[0] = i64(1);
  assert_int_not_equal(mcall(fx, m, "set_input", a, 2, &c), 0);
  ferry_call_close(&c);
  run(fx, m);
  expect_output(fx, m, 5.0f);
  /* Wrong shape. */
  ferry_ndarray *z = array(fx, 4, 3, 0.0f);
  a[0] = str("x");
  a[1] = obj(FERRY_KIND_NDARRAY, z);
  assert_int_not_equal(mcall(fx, m, "set_input", a, 2, &c), 0);
  assert_non_null(strstr(fx->err.msg, "different shape"));
  ferry_call_close(&c);
  /* get_output(0, out) copies. */
  ferry_ndarray *out = array(fx, 3, 4, 0.0f);
  a[0] = i64(0);
  a[1] = obj(FERRY_KIND_NDARRAY, out);
  assert_int_equal(mcall(fx, m, "get_output", a, 2, &c), 0);
  ferry_call_close(&c);
  assert_true(((float *)out->tensor.data)[11] == 2.0f * (5.0f + 11.0f + 1.0f));
  a[0] = i64(1);
  assert_int_not_equal(mcall(fx, m, "get_output", a, 1, &c), 0);
  ferry_call_close(&c);
  a[0] = str("scale0");
  assert_int_equal(mcall(fx, m, "get_output", a, 1, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_NDARRAY);
  ferry_call_close(&c);
  ferry_obj_release(&x->base);
  ferry_obj_release(&y->base);
  ferry_obj_release(&z->base);
  ferry_obj_release(&out->base);
  /* An output outlives the executor. */
  a[0] = i64(0);
  assert_int_equal(mcall(fx, m, "get_output", a, 1, &c), 0);
  ferry_obj *kept = take(&c);
  ferry_obj_release(&m->base);
  assert_true(((float *)((ferry_ndarray *)kept)->tensor.data)[0] == 12.0f);
  ferry_obj_release(kept);
}

static void test_queries(void **state) {
  struct fixture *fx = *state;
  size_t len;
  ferry_module *m = create(fx, golden_json(&len), 1);
  ferry_call c;
  assert_int_equal(mcall(fx, m, "get_num_outputs", NULL, 0, &c), 0);
  assert_int_equal(c.ret.v.i, 1);
  ferry_call_close(&c);
  assert_int_equal(mcall(fx, m, "get_num_inputs", NULL, 0, &c), 0);
  assert_int_equal(c.ret.v.i, 1);
  ferry_call_close(&c);
  ferry_value a = str("x");
  assert_int_equal(mcall(fx, m, "get_input_index", &a, 1, &c), 0);
  assert_int_equal(c.ret.v.i, 0);
  ferry_call_close(&c);
  a = str("y");
  assert_int_equal(mcall(fx, m, "get_input_index", &a, 1, &c), 0);
  assert_int_equal(c.ret.v.i, -1);
  ferry_call_close(&c);
  assert_int_equal(mcall(fx, m, "get_input", &a, 1, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_NONE);
  ferry_call_close(&c);
  a = str("scale0");
  assert_int_equal(mcall(fx, m, "get_output_index", &a, 1, &c), 0);
  assert_int_equal(c.ret.v.i, 0);
  ferry_call_close(&c);
  assert_int_equal(mcall(fx, m, "get_input_info", NULL, 0, &c), 0);
  assert_string_equal(c.ret.v.str.data, "{\"shape\": {\"x\":[3, 4]}, \"dtype\": {\"x\":\"float32\"}}");
  ferry_call_close(&c);
  assert_int_equal(mcall(fx, m, "get_output_info", NULL, 0, &c), 0);
  assert_non_null(strstr(c.ret.v.str.data, "\"scale0\":[3, 4]"));
  ferry_call_close(&c);
  ferry_func *f;
  assert_int_equal(ferry_module_get_function(m, "no_such", 1, &f, &fx->err), FERRY_ENOTFOUND);
  ferry_obj_release(&m->base);
}

static void encode_params(ferry_buf *b, const char *name, ferry_ndarray *a) {
  const char *names[1] = {name};
  const DLTensor *ts[1] = {&a->tensor};
  ferry_buf_init(b, 1 << 20);
  assert_int_equal(ferry_params_encode(b, 1, names, ts), 0);
}

static void test_params(void **state) {
  struct fixture *fx = *state;
  size_t len;
  ferry_module *m = create(fx, golden_json(&len), 1);
  ferry_ndarray *x = array(fx, 3, 4, 2.0f);
  ferry_buf b;
  encode_params(&b, "x", x);
  ferry_value a = bytes(b.data, b.len);
  ferry_call c;
  assert_int_equal(mcall(fx, m, "load_params", &a, 1, &c), 0);
  ferry_call_close(&c);
  run(fx, m);
  expect_output(fx, m, 2.0f);
  /* Parameters leave the input info. */
  assert_int_equal(mcall(fx, m, "get_input_info", NULL, 0, &c), 0);
  assert_string_equal(c.ret.v.str.data, "{\"shape\": {}, \"dtype\": {}}");
  ferry_call_close(&c);
  /* Wrong magic, every truncation, a lying length. */
  b.data[0] ^= 1;
  assert_int_not_equal(mcall(fx, m, "load_params", &a, 1, &c), 0);
  assert_non_null(strstr(fx->err.msg, "magic"));
  ferry_call_close(&c);
  b.data[0] ^= 1;
  for (size_t n = 0; n < b.len; n++) {
    ferry_value t = bytes(b.data, n);
    assert_int_not_equal(mcall(fx, m, "load_params", &t, 1, &c), 0);
    ferry_call_close(&c);
  }
  b.data[b.len - 48 - 8] += 4; /* data_byte_size 48 -> 52 */
  assert_int_not_equal(mcall(fx, m, "load_params", &a, 1, &c), 0);
  ferry_call_close(&c);
  ferry_buf_close(&b);
  /* A parameter whose shape is not the graph's. */
  ferry_ndarray *w = array(fx, 2, 6, 0.0f);
  encode_params(&b, "x", w);
  a = bytes(b.data, b.len);
  assert_int_not_equal(mcall(fx, m, "load_params", &a, 1, &c), 0);
  assert_non_null(strstr(fx->err.msg, "'x'"));
  ferry_call_close(&c);
  ferry_buf_close(&b);
  /* A name the graph does not have is ignored. */
  encode_params(&b, "other", w);
  a = bytes(b.data, b.len);
  assert_int_equal(mcall(fx, m, "load_params", &a, 1, &c), 0);
  ferry_call_close(&c);
  /* share_params: a second executor reads the first one's input. */
  ferry_module *m2 = create(fx, golden_json(&len), 1);
  ferry_buf_close(&b);
  encode_params(&b, "x", x);
  ferry_value sa[2] = {obj(FERRY_KIND_MODULE, m), bytes(b.data, b.len)};
  assert_int_equal(mcall(fx, m2, "share_params", sa, 2, &c), 0);
  ferry_call_close(&c);
  run(fx, m2);
  expect_output(fx, m2, 2.0f);
  sa[0] = obj(FERRY_KIND_MODULE, fx->lib);
  assert_int_not_equal(mcall(fx, m2, "share_params", sa, 2, &c), 0);
  assert_non_null(strstr(fx->err.msg, "GraphExecutor"));
  ferry_call_close(&c);
  ferry_buf_close(&b);
  ferry_obj_release(&m->base); /* m2 still holds the shared input */
  run(fx, m2);
  expect_output(fx, m2, 2.0f);
  ferry_obj_release(&m2->base);
  ferry_obj_release(&x->base);
  ferry_obj_release(&w->base);
}

static void test_zero_copy(void **state) {
  struct fixture *fx = *state;
  size_t len;
  ferry_module *m = create(fx, golden_json(&len), 1);
  ferry_ndarray *x = array(fx, 3, 4, 3.0f), *out = array(fx, 3, 4, 0.0f);
  ferry_value a[2] = {str("x"), obj(FERRY_KIND_NDARRAY, x)};
  ferry_call c;
  assert_int_equal(mcall(fx, m, "set_input_zero_copy", a, 2, &c), 0);
  ferry_call_close(&c);
  a[0] = str("scale0:0");
  a[1] = obj(FERRY_KIND_NDARRAY, out);
  assert_int_equal(mcall(fx, m, "set_output_zero_copy", a, 2, &c), 0);
  ferry_call_close(&c);
  run(fx, m);
  assert_true(((float *)out->tensor.data)[0] == 8.0f);
  ((float *)x->tensor.data)[0] = 9.0f; /* read in place at the next run */
  run(fx, m);
  assert_true(((float *)out->tensor.data)[0] == 20.0f);
  /* The client frees the tensor: run refuses instead of touching it. */
  ferry_obj_release(&x->base);
  assert_int_not_equal(mcall(fx, m, "run", NULL, 0, &c), 0);
  ferry_call_close(&c);
  ferry_obj_release(&out->base);
  ferry_obj_release(&m->base);
}

/* Every path that reads a zero-copy tensor checks that the client has not
 * freed it: get_output(i, out) after the output tensor was freed refuses
 * (it used to copy from freed memory), as does run; a tensor set again
 * makes both work. */
static void test_zero_copy_freed(void **state) {
  struct fixture *fx = *state;
  size_t len;
  ferry_module *m = create(fx, golden_json(&len), 1);
  ferry_ndarray *x = array(fx, 3, 4, 3.0f), *out = array(fx, 3, 4, 0.0f);
  ferry_ndarray *dst = array(fx, 3, 4, 0.0f);
  ferry_value a[2] = {str("x"), obj(FERRY_KIND_NDARRAY, x)};
  ferry_call c;
  assert_int_equal(mcall(fx, m, "set_input", a, 2, &c), 0);
  ferry_call_close(&c);
  a[0] = i64(0);
  a[1] = obj(FERRY_KIND_NDARRAY, out);
  assert_int_equal(mcall(fx, m, "set_output_zero_copy", a, 2, &c), 0);
  ferry_call_close(&c);
  run(fx, m);
  a[1] = obj(FERRY_KIND_NDARRAY, dst);
  assert_int_equal(mcall(fx, m, "get_output", a, 2, &c), 0);
  ferry_call_close(&c);
  assert_true(((float *)dst->tensor.data)[0] == 8.0f);
  /* The client frees the zero-copy output, then asks for it. */
  ferry_obj_release(&out->base);
  ((float *)dst->tensor.data)[0] = -1.0f;
  assert_int_equal(mcall(fx, m, "get_output", a, 2, &c), FERRY_EBADHANDLE);
  assert_non_null(strstr(fx->err.msg, "zero-copy"));
  ferry_call_close(&c);
  assert_true(((float *)dst->tensor.data)[0] == -1.0f);
  assert_int_equal(mcall(fx, m, "run", NULL, 0, &c), FERRY_EBADHANDLE);
  ferry_call_close(&c);
  /* Setting a live tensor again repairs the executor. */
  out = array(fx, 3, 4, 0.0f);
  a[1] = obj(FERRY_KIND_NDARRAY, out);
  assert_int_equal(mcall(fx, m, "set_output_zero_copy", a, 2, &c), 0);
  ferry_call_close(&c);
  run(fx, m);
  a[1] = obj(FERRY_KIND_NDARRAY, dst);
  assert_int_equal(mcall(fx, m, "get_output", a, 2, &c), 0);
  ferry_call_close(&c);
  assert_true(((float *)dst->tensor.data)[0] == 8.0f);
  ferry_obj_release(&out->base);
  ferry_obj_release(&dst->base);
  ferry_obj_release(&x->base);
  ferry_obj_release(&m->base);
}

static void test_bad_create(void **state) {
  struct fixture *fx = *state;
  size_t len;
  const char *json = golden_json(&len);
  char *copy = strdup(json);
  char *p = strstr(copy, "\"scale\"");
  memcpy(p, "\"scalf\"", 7);
  assert_null(create(fx, copy, 1));
  assert_non_null(strstr(fx->err.msg, "'scalf'"));
  assert_null(create(fx, json, 2)); /* CUDA */
  assert_null(create(fx, "{\"nodes\": [", 1));
  assert_non_null(strstr(fx->err.msg, "graph JSON"));
  free(copy);
  ferry_value a[3] = {str(json), obj(FERRY_KIND_MODULE, fx->lib), i64(1)};
  ferry_call c;
  assert_int_not_equal(call_global(fx, "tvm.graph_executor.create", a, 3, &c), 0);
  ferry_call_close(&c);
}

/* Two entries of different sizes share one storage id: the pool entry is
 * the larger, and the in-place chain still computes 2 * (x + 1). */
static void test_shared_storage(void **state) {
  struct fixture *fx = *state;
  const char *json =
      "{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []},"
      " {\"op\": \"tvm_op\", \"name\": \"a\", \"attrs\": {\"func_name\": \"addone\","
      " \"num_inputs\": \"1\", \"num_outputs\": \"1\", \"flatten_data\": \"1\"},"
      " \"inputs\": [[0, 0, 0]]},"
      " {\"op\": \"tvm_op\", \"name\": \"r\", \"attrs\": {\"func_name\": \"__nop\","
      " \"num_inputs\": \"1\", \"num_outputs\": \"1\", \"flatten_data\": \"0\"},"
      " \"inputs\": [[1, 0, 0]]},"
      " {\"op\": \"tvm_op\", \"name\": \"s\", \"attrs\": {\"func_name\": \"scale\","
      " \"num_inputs\": \"1\", \"num_outputs\": \"1\", \"flatten_data\": \"0\"},"
      " \"inputs\": [[1, 0, 0]]}],"
      " \"arg_nodes\": [0], \"heads\": [[3, 0, 0]], \"node_row_ptr\": [0, 1, 2, 3, 4],"
      " \"attrs\": {\"dltype\": [\"list_str\", [\"float32\", \"float32\", \"float32\", "
      "\"float32\"]], \"storage_id\": [\"list_int\", [0, 1, 1, 0]],"
      " \"shape\": [\"list_shape\", [[3, 4], [12], [2], [3, 4]]]}}";
  ferry_module *m = create(fx, json, 1);
  if (m == NULL)
    fail_msg("%s", fx->err.msg);
  ferry_graph_exec *ge = ferry_graph_exec_cast(m);
  assert_non_null(ge);
  assert_int_equal(ge->g->nstorage, 2);
  assert_int_equal(ge->pool[1]->tensor.shape[0], 12); /* max(48, 8) / 4 */
  assert_ptr_equal(ge->entries[0]->tensor.data, ge->entries[3]->tensor.data);
  ferry_ndarray *x = array(fx, 3, 4, 1.0f);
  ferry_value a[2] = {i64(0), obj(FERRY_KIND_NDARRAY, x)};
  ferry_call c;
  assert_int_equal(mcall(fx, m, "set_input", a, 2, &c), 0);
  ferry_call_close(&c);
  run(fx, m);
  expect_output(fx, m, 1.0f);
  ferry_obj_release(&x->base);
  ferry_obj_release(&m->base);
}

/* The factory of a module blob, as export_library embeds it. */
static void test_factory(void **state) {
  struct fixture *fx = *state;
  size_t len;
  const char *json = golden_json(&len);
  ferry_ndarray *x = array(fx, 3, 4, 4.0f);
  ferry_buf params, blob;
  encode_params(&params, "x", x);
  ferry_buf_init(&blob, 1 << 20);
  assert_int_equal(ferry_mblob_write_graph_factory(&blob, json, len, params.data, params.len,
                                                   "default"),
                   0);
  ferry_module *root;
  int rc = ferry_blob_load_modules(fx->rt, blob.data, blob.len, fx->lib, "blob", &root, &fx->err);
  if (rc)
    fail_msg("%s", fx->err.msg);
  assert_string_equal(root->type_key, "GraphExecutorFactory");
  ferry_value dev = {.kind = FERRY_KIND_DEVICE, .v.device = {kDLCPU, 0}};
  ferry_call c;
  assert_int_equal(mcall(fx, root, "default", &dev, 1, &c), 0);
  ferry_module *m = (ferry_module *)take(&c);
  run(fx, m);
  expect_output(fx, m, 4.0f);
  ferry_obj_release(&m->base);
  assert_int_equal(mcall(fx, root, "get_graph_json", NULL, 0, &c), 0);
  assert_int_equal(c.ret.v.str.len, len);
  ferry_call_close(&c);
  assert_int_equal(mcall(fx, root, "get_graph_params", NULL, 0, &c), 0);
  ferry_param_map *pm = ferry_param_map_cast(c.ret.v.obj);
  assert_non_null(pm);
  assert_int_equal(pm->n, 1);
  assert_string_equal(pm->names[0], "x");
  ferry_call_close(&c);
  assert_int_equal(mcall(fx, root, "remove_params", NULL, 0, &c), 0);
  ferry_module *bare = (ferry_module *)take(&c);
  assert_int_equal(mcall(fx, bare, "get_graph_params", NULL, 0, &c), 0);
  assert_int_equal(ferry_param_map_cast(c.ret.v.obj)->n, 0);
  ferry_call_close(&c);
  ferry_obj_release(&bare->base);
  dev.kind = FERRY_KIND_INT;
  assert_int_not_equal(mcall(fx, root, "default", &dev, 1, &c), 0);
  ferry_call_close(&c);
  ferry_obj_release(&root->base);
  /* Every truncation of the factory payload is an error, never a crash. */
  const uint8_t *payload = blob.data + 8 + 8 + 8 + strlen("GraphExecutorFactory");
  size_t plen = 8 + len + 8 + 8 + 9 + (params.len - 41) + 8 + 7; /* json, counts, "x", array, name */
  for (size_t n = 0; n < plen; n++) {
    uint8_t *cut = malloc(n ? n : 1);
    memcpy(cut, payload, n);
    size_t used;
    ferry_module *fm = NULL;
    ferry_err_clear(&fx->err);
    assert_int_not_equal(ferry_graph_factory_load_blob(fx->rt, cut, n, &used, &fm, &fx->err), 0);
    assert_null(fm);
    free(cut);
  }
  size_t used;
  ferry_module *fm;
  assert_int_equal(ferry_graph_factory_load_blob(fx->rt, payload, plen, &used, &fm, &fx->err), 0);
  assert_int_equal(used, plen);
  ferry_obj_release(&fm->base);
  ferry_buf_close(&params);
  ferry_buf_close(&blob);
  /* Two parameters (set largest first; one is not an input and is ignored). */
  ferry_ndarray *big = array(fx, 8, 8, 0.0f);
  const char *names[2] = {"x", "unused"};
  const DLTensor *ts[2] = {&x->tensor, &big->tensor};
  ferry_buf_init(&params, 1 << 20);
  assert_int_equal(ferry_params_encode(&params, 2, names, ts), 0);
  ferry_buf_init(&blob, 1 << 20);
  assert_int_equal(ferry_mblob_write_graph_factory(&blob, json, len, params.data, params.len,
                                                   "net"),
                   0);
  assert_int_equal(ferry_blob_load_modules(fx->rt, blob.data, blob.len, fx->lib, "blob", &root,
                                           &fx->err),
                   0);
  dev.kind = FERRY_KIND_DEVICE;
  assert_int_equal(mcall(fx, root, "net", &dev, 1, &c), 0);
  m = (ferry_module *)take(&c);
  run(fx, m);
  expect_output(fx, m, 4.0f);
  ferry_obj_release(&m->base);
  ferry_obj_release(&root->base);
  ferry_buf_close(&params);
  ferry_buf_close(&blob);
  ferry_obj_release(&big->base);
  ferry_obj_release(&x->base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_params, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zero_copy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zero_copy_freed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_create, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shared_storage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_factory, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
