/* The OpenCL device and modules through the runtime API, on whatever
 * OpenCL driver the machine has (PoCL in CI); each test is skipped when
 * there is no OpenCL device.  Bad input from issue 12: a source that does
 * not build, a kernel name missing from the source, a launch larger than
 * the device allows, a copy past a buffer, a forged buffer handle, a
 * texture scope; and a machine without OpenCL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "devmod_writer.h"
#include "rt_fixture.h"
#include "runtime/rt_internal.h"

static int setup(void **state) { return rt_fixture_setup(state, "cl", 1); }
static int teardown(void **state) { return rt_fixture_teardown(state); }

static const DLDevice cl0 = {kDLOpenCL, 0};

static ferry_rt *need_opencl(void **state) {
  struct fixture *f = *state;
  if (ferry_rt_device_count(f->rt, kDLOpenCL) == 0)
    skip();
  return f->rt;
}

static DLTensor tensor_of(void *data, int64_t *shape, uint64_t byte_offset) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device = cl0;
  t.ndim = 1;
  t.shape = shape;
  t.dtype.code = kDLFloat;
  t.dtype.bits = 32;
  t.dtype.lanes = 1;
  t.byte_offset = byte_offset;
  return t;
}

static void buffers_copies_and_offsets(void **state) {
  ferry_rt *rt = need_opencl(state);
  ferry_err err;
  ferry_err_clear(&err);
  DLDataType f32 = {kDLFloat, 32, 1};
  void *a = NULL, *b = NULL;
  assert_int_equal(ferry_rt_alloc(rt, cl0, 64, 64, f32, &a, &err), 0);
  assert_int_equal(ferry_rt_alloc(rt, cl0, 64, 64, f32, &b, &err), 0);
  float in[16], out[16];
  for (int i = 0; i < 16; i++)
    in[i] = (float)i;
  int64_t n16 = 16, n8 = 8;
  DLTensor ta = tensor_of(a, &n16, 0);
  assert_int_equal(ferry_rt_copy_from_host(rt, &ta, in, 64, &err), 0);
  /* kCopyAmongRemote with byte offsets: a[8..16) -> b[0..8) */
  DLTensor from = tensor_of(a, &n8, 32), to = tensor_of(b, &n8, 0);
  assert_int_equal(ferry_rt_copy_tensor(rt, &from, &to, &err), 0);
  assert_int_equal(ferry_rt_copy_to_host(rt, &to, out, 32, &err), 0);
  assert_true(out[0] == 8.0f && out[7] == 15.0f);
  /* Past the end: 8 floats at byte 40 of a 64-byte buffer. */
  DLTensor past = tensor_of(a, &n8, 40);
  assert_int_equal(ferry_rt_copy_to_host(rt, &past, out, 32, &err), FERRY_ERANGE);
  assert_non_null(strstr(err.msg, "past its end"));
  /* A forged handle: an address inside a descriptor, and a host pointer. */
  ferry_err_clear(&err);
  DLTensor forged = tensor_of((char *)a + 8, &n8, 0);
  assert_int_equal(ferry_rt_check_tensor(rt, &forged, 4, &err), FERRY_EBADHANDLE);
  ferry_err_clear(&err);
  forged.data = in;
  assert_int_equal(ferry_rt_copy_from_host(rt, &forged, in, 4, &err), FERRY_EBADHANDLE);
  /* An OpenCL pointer is not a CPU one, and vice versa. */
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_free(rt, (DLDevice){kDLCPU, 0}, a, &err), FERRY_EBADHANDLE);
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_sync(rt, cl0, &err), 0);
  assert_int_equal(ferry_rt_free(rt, cl0, a, &err), 0);
  assert_int_equal(ferry_rt_free(rt, cl0, a, &err), FERRY_EBADHANDLE); /* twice */
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_free(rt, cl0, b, &err), 0);
}

static void texture_scopes_and_bad_ids_are_refused(void **state) {
  ferry_rt *rt = need_opencl(state);
  ferry_err err;
  ferry_err_clear(&err);
  int64_t n = 4;
  DLTensor t = tensor_of(NULL, &n, 0);
  void *p = NULL;
  assert_int_equal(ferry_rt_alloc_tensor(rt, &t, "global.texture", &p, &err), FERRY_EUNSUPPORTED);
  assert_non_null(strstr(err.msg, "global.texture"));
  assert_null(p);
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_alloc_tensor(rt, &t, "global", &p, &err), 0);
  assert_int_equal(ferry_rt_free(rt, cl0, p, &err), 0);
  t.device.device_id = 99;
  assert_int_equal(ferry_rt_alloc_tensor(rt, &t, NULL, &p, &err), FERRY_EINVAL);
  assert_non_null(strstr(err.msg, "Invalid device id 99"));
  ferry_value v;
  ferry_call frame;
  ferry_call_init(&frame, rt, NULL, 0, &err, 1 << 16);
  assert_int_equal(ferry_rt_dev_attr(rt, (DLDevice){kDLOpenCL, 99}, 0, &v, &frame, &err), 0);
  assert_int_equal(v.v.i, 0);
  assert_int_equal(ferry_rt_dev_attr(rt, cl0, 0, &v, &frame, &err), 0);
  assert_int_equal(v.v.i, 1);
  assert_int_equal(ferry_rt_dev_attr(rt, cl0, 8, &v, &frame, &err), 0); /* [a, b, c] */
  assert_int_equal(v.kind, FERRY_KIND_STR);
  assert_true(v.v.str.data[0] == '[');
  assert_int_equal(ferry_rt_dev_attr(rt, cl0, 15, &v, &frame, &err), 0); /* None in TVM */
  assert_int_equal(v.kind, FERRY_KIND_NONE);
  ferry_call_close(&frame);
}

static const char *const tags1[] = {"blockIdx.x", "threadIdx.x"};
static const char *const i32[] = {"i32"};

static const char good_src[] =
    "// Function: scale_kernel\n"
    "__kernel void scale_kernel(__global float* restrict A, __global float* restrict B, int k) {\n"
    "  B[get_group_id(0) * 4 + get_local_id(0)] = A[get_group_id(0) * 4 + get_local_id(0)] * k;\n"
    "}\n"
    "// Function: broken_kernel\n"
    "__kernel void broken_kernel(__global float* restrict A, __global float* restrict B, int k) {\n"
    "  B[get_lokal_id(0)] = 0;\n"
    "}\n"
    "// Function: misnamed_kernel\n"
    "__kernel void other_name(__global float* restrict A, __global float* restrict B, int k) {}\n";

static ferry_module *load_module(ferry_rt *rt) {
  struct dw w = {0};
  dw_str(&w, "cl");
  dw_u64(&w, 4);
  dw_func(&w, "scale_kernel", 2, i32, 1, tags1, 2, 0);
  dw_func(&w, "broken_kernel", 2, i32, 1, tags1, 2, 0);
  dw_func(&w, "misnamed_kernel", 2, i32, 1, tags1, 2, 0);
  dw_func(&w, "absent_kernel", 2, i32, 1, tags1, 2, 0);
  dw_str(&w, good_src);
  ferry_module *m = NULL;
  size_t used = 0;
  ferry_err err;
  ferry_err_clear(&err);
  assert_int_equal(ferry_opencl_load_blob(rt, w.p, w.len, &used, &m, &err), 0);
  assert_int_equal(used, w.len);
  free(w.p);
  return m;
}

static int call_kernel(ferry_module *m, ferry_rt *rt, const char *name, void *a, void *b,
                       int64_t grid, int64_t block, ferry_err *err) {
  ferry_func *fn = NULL;
  ferry_err_clear(err);
  assert_int_equal(ferry_module_get_function(m, name, 0, &fn, err), 0);
  ferry_value args[5];
  memset(args, 0, sizeof args);
  args[0].kind = args[1].kind = FERRY_KIND_OPAQUE;
  args[0].v.handle = (uint64_t)(uintptr_t)a;
  args[1].v.handle = (uint64_t)(uintptr_t)b;
  args[2].kind = args[3].kind = args[4].kind = FERRY_KIND_INT;
  args[2].v.i = 3;
  args[3].v.i = grid;
  args[4].v.i = block;
  ferry_call c;
  ferry_call_init(&c, rt, args, 5, err, 1 << 16);
  int rc = ferry_func_call(fn, &c);
  ferry_call_close(&c);
  ferry_obj_release(&fn->base);
  return rc;
}

static void kernels_run_and_bad_kernels_say_why(void **state) {
  ferry_rt *rt = need_opencl(state);
  ferry_module *m = load_module(rt);
  ferry_err err;
  ferry_err_clear(&err);
  DLDataType f32 = {kDLFloat, 32, 1};
  void *a = NULL, *b = NULL;
  assert_int_equal(ferry_rt_alloc(rt, cl0, 64, 64, f32, &a, &err), 0);
  assert_int_equal(ferry_rt_alloc(rt, cl0, 64, 64, f32, &b, &err), 0);
  float in[16], out[16];
  for (int i = 0; i < 16; i++)
    in[i] = (float)i;
  int64_t n16 = 16;
  DLTensor ta = tensor_of(a, &n16, 0), tb = tensor_of(b, &n16, 0);
  assert_int_equal(ferry_rt_copy_from_host(rt, &ta, in, 64, &err), 0);
  assert_int_equal(call_kernel(m, rt, "scale_kernel", a, b, 4, 4, &err), 0);
  assert_int_equal(ferry_rt_copy_to_host(rt, &tb, out, 64, &err), 0);
  for (int i = 0; i < 16; i++)
    assert_true(out[i] == 3.0f * (float)i);
  /* The build log names the undefined function; the module goes on. */
  assert_int_not_equal(call_kernel(m, rt, "broken_kernel", a, b, 4, 4, &err), 0);
  assert_true(strncmp(err.msg, "OpenCL build error for device=", 30) == 0); /* TVM's text */
  assert_non_null(strstr(err.msg, "CL_BUILD_PROGRAM_FAILURE"));
  assert_non_null(strstr(err.msg, "get_lokal_id"));
  assert_int_equal(call_kernel(m, rt, "misnamed_kernel", a, b, 4, 4, &err), FERRY_ENOTFOUND);
  assert_non_null(strstr(err.msg, "CL_INVALID_KERNEL_NAME"));
  assert_int_equal(call_kernel(m, rt, "absent_kernel", a, b, 4, 4, &err), FERRY_ENOTFOUND);
  assert_non_null(strstr(err.msg, "no \"// Function: absent_kernel\""));
  /* A block larger than the device allows: the CL error and the limit. */
  assert_int_equal(call_kernel(m, rt, "scale_kernel", a, b, 1, 1 << 20, &err), FERRY_EINVAL);
  assert_non_null(strstr(err.msg, "clEnqueueNDRangeKernel"));
  assert_non_null(strstr(err.msg, "work-items per block"));
  /* A forged buffer handle and a host pointer as a buffer. */
  assert_int_equal(call_kernel(m, rt, "scale_kernel", (char *)a + 1, b, 4, 4, &err),
                   FERRY_EBADHANDLE);
  assert_int_equal(call_kernel(m, rt, "scale_kernel", in, b, 4, 4, &err), FERRY_EBADHANDLE);
  /* Still working. */
  assert_int_equal(call_kernel(m, rt, "scale_kernel", a, b, 4, 4, &err), 0);
  ferry_obj_release(&m->base);
  assert_int_equal(ferry_rt_free(rt, cl0, a, &err), 0);
  assert_int_equal(ferry_rt_free(rt, cl0, b, &err), 0);
}

static void malformed_modules_are_refused(void **state) {
  struct fixture *f = *state;
  struct dw w = {0};
  dw_str(&w, "xclbin");
  dw_u64(&w, 0);
  dw_str(&w, "");
  ferry_module *m = NULL;
  size_t used = 0;
  ferry_err err;
  ferry_err_clear(&err);
  assert_int_equal(ferry_opencl_load_blob(f->rt, w.p, w.len, &used, &m, &err), FERRY_EUNSUPPORTED);
  assert_non_null(strstr(err.msg, "xclbin"));
  ferry_err_clear(&err);
  assert_int_equal(ferry_opencl_load_blob(f->rt, w.p, w.len - 3, &used, &m, &err), FERRY_EPROTO);
  assert_null(m);
  free(w.p);
}

/* Without a driver: no device, kExist 0, everything else a clear error.
 * Runs in a child so that the environment change stays there. */
static void no_opencl_driver(void **state) {
  (void)state;
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setenv("FERRY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1", 1);
    ferry_rt *rt = NULL;
    ferry_rt_options opt = {.work_dir = "/tmp"};
    ferry_err err;
    ferry_err_clear(&err);
    if (ferry_rt_open(&rt, &opt, &err) != 0)
      _exit(10);
    ferry_value v;
    ferry_call frame;
    ferry_call_init(&frame, rt, NULL, 0, &err, 1 << 16);
    if (ferry_rt_dev_attr(rt, cl0, 0, &v, &frame, &err) != 0 || v.v.i != 0)
      _exit(11);
    void *p = NULL;
    DLDataType f32 = {kDLFloat, 32, 1};
    if (ferry_rt_alloc(rt, cl0, 4, 64, f32, &p, &err) != FERRY_EUNSUPPORTED)
      _exit(12);
    if (strstr(err.msg, "no opencl device") == NULL || strstr(err.msg, "nonexistent") == NULL)
      _exit(13);
    ferry_call_close(&frame);
    ferry_rt_close(rt);
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(buffers_copies_and_offsets, setup, teardown),
      cmocka_unit_test_setup_teardown(texture_scopes_and_bad_ids_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(kernels_run_and_bad_kernels_say_why, setup, teardown),
      cmocka_unit_test_setup_teardown(malformed_modules_are_refused, setup, teardown),
      cmocka_unit_test(no_opencl_driver),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
