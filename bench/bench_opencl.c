/* OpenCL benchmark (issue 12), each against a baseline measured in the
 * same run on the same device, queue and driver:
 *
 *   1. copy speed host -> OpenCL buffer and back through the runtime
 *      (ferry_rt_copy_from_host / ferry_rt_copy_to_host: descriptor
 *      lookup, range check, blocking write/read) vs a plain
 *      clEnqueueWriteBuffer / clEnqueueReadBuffer loop;
 *   2. the fixed cost of a kernel launch through ferry (an "opencl"
 *      module's kernel function: buffer checks, argument narrowing,
 *      extents, enqueue) vs a direct clSetKernelArg + clEnqueueNDRangeKernel
 *      of the same kernel, N launches then one clFinish each.
 *
 *   bench_opencl [--mib M] [--n N]
 *
 * Prints "skipped" and exits 0 when the machine has no OpenCL device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/device/opencl.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_u64(uint8_t **p, uint64_t v) {
  memcpy(*p, &v, 8);
  *p += 8;
}

static void put_str(uint8_t **p, const char *s) {
  put_u64(p, strlen(s));
  memcpy(*p, s, strlen(s));
  *p += strlen(s);
}

static const char src[] = "// Function: noop_kernel\n"
                          "__kernel void noop_kernel(__global float* restrict A, int n) {\n"
                          "  if (get_global_id(0) == (size_t)n) A[0] = 1.0f;\n"
                          "}\n";

int main(int argc, char **argv) {
  long mib = 64, n = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--mib") == 0)
      mib = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--n") == 0)
      n = atol(argv[i + 1]);
  }
  ferry_rt *rt = NULL;
  ferry_rt_options opt = {.work_dir = "/tmp", .num_threads = 1};
  ferry_err err;
  ferry_err_clear(&err);
  if (ferry_rt_open(&rt, &opt, &err) != 0) {
    fprintf(stderr, "bench_opencl: %s\n", err.msg);
    return 1;
  }
  if (ferry_rt_device_count(rt, kDLOpenCL) == 0) {
    printf("bench_opencl: skipped (no OpenCL device: %s)\n", ferry_cl_get(rt)->why);
    ferry_rt_close(rt);
    return 0;
  }
  struct ferry_cl *cl = ferry_cl_get(rt);
  cl_command_queue q = cl->devs[0].queue;
  size_t bytes = (size_t)mib << 20;
  DLDevice dev = {kDLOpenCL, 0};
  DLDataType u8 = {kDLUInt, 8, 1};
  void *buf = NULL;
  if (ferry_rt_alloc(rt, dev, bytes, 64, u8, &buf, &err) != 0) {
    fprintf(stderr, "bench_opencl: %s\n", err.msg);
    return 1;
  }
  cl_mem raw = ((struct ferry_cl_buf *)buf)->mem;
  char *host = malloc(bytes);
  memset(host, 7, bytes);
  int64_t shape = (int64_t)bytes;
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = buf;
  t.device = dev;
  t.ndim = 1;
  t.shape = &shape;
  t.dtype = u8;
  const int reps = 8;
  double best_plain = 1e9, best_ferry = 1e9, best_plain_r = 1e9, best_ferry_r = 1e9;
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    cl->api.clEnqueueWriteBuffer(q, raw, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
    double t1 = now_s();
    if (ferry_rt_copy_from_host(rt, &t, host, bytes, &err) != 0)
      return 1;
    double t2 = now_s();
    cl->api.clEnqueueReadBuffer(q, raw, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
    double t3 = now_s();
    if (ferry_rt_copy_to_host(rt, &t, host, bytes, &err) != 0)
      return 1;
    double t4 = now_s();
    best_plain = t1 - t0 < best_plain ? t1 - t0 : best_plain;
    best_ferry = t2 - t1 < best_ferry ? t2 - t1 : best_ferry;
    best_plain_r = t3 - t2 < best_plain_r ? t3 - t2 : best_plain_r;
    best_ferry_r = t4 - t3 < best_ferry_r ? t4 - t3 : best_ferry_r;
  }
  printf("copy to OpenCL, %ld MiB: plain %.2f GB/s, ferry %.2f GB/s, ratio %.3f\n", mib,
         bytes / best_plain / 1e9, bytes / best_ferry / 1e9, best_ferry / best_plain);
  printf("copy from OpenCL, %ld MiB: plain %.2f GB/s, ferry %.2f GB/s, ratio %.3f\n", mib,
         bytes / best_plain_r / 1e9, bytes / best_ferry_r / 1e9, best_ferry_r / best_plain_r);

  /* A module with one kernel: fmt, fmap {noop_kernel: (handle, int32),
   * [blockIdx.x, threadIdx.x]}, source. */
  uint8_t payload[1024], *p = payload;
  put_str(&p, "cl");
  put_u64(&p, 1);
  put_str(&p, "noop_kernel");
  put_str(&p, "");
  put_u64(&p, 2);
  memcpy(p, "\x03\x40\x01\x00\x00\x20\x01\x00", 8);
  p += 8;
  put_u64(&p, 2);
  put_str(&p, "blockIdx.x");
  put_str(&p, "threadIdx.x");
  put_str(&p, src);
  ferry_module *m = NULL;
  size_t used = 0;
  ferry_func *f = NULL;
  if (ferry_opencl_load_blob(rt, payload, (size_t)(p - payload), &used, &m, &err) != 0 ||
      ferry_module_get_function(m, "noop_kernel", 0, &f, &err) != 0) {
    fprintf(stderr, "bench_opencl: %s\n", err.msg);
    return 1;
  }
  ferry_value args[4];
  memset(args, 0, sizeof args);
  args[0].kind = FERRY_KIND_OPAQUE;
  args[0].v.handle = (uint64_t)(uintptr_t)buf;
  args[1].kind = args[2].kind = args[3].kind = FERRY_KIND_INT;
  args[1].v.i = -1;
  args[2].v.i = 1;
  args[3].v.i = 64;
  ferry_call c;
  ferry_call_init(&c, rt, args, 4, &err, 1 << 16);
  if (ferry_func_call(f, &c) != 0) { /* builds the program */
    fprintf(stderr, "bench_opencl: %s\n", err.msg);
    return 1;
  }
  cl_int e;
  cl_program prog = cl->api.clCreateProgramWithSource(cl->devs[0].ctx, 1,
                                                      (const char *[]){src + 25}, NULL, &e);
  cl->api.clBuildProgram(prog, 1, &cl->devs[0].id, "", NULL, NULL);
  cl_kernel k = cl->api.clCreateKernel(prog, "noop_kernel", &e);
  size_t global = 64, local = 64;
  int32_t nn = -1;
  double best_direct = 1e9, best_launch = 1e9;
  for (int r = 0; r < 5; r++) {
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
      cl->api.clSetKernelArg(k, 0, sizeof raw, &raw);
      cl->api.clSetKernelArg(k, 1, sizeof nn, &nn);
      cl_event ev = NULL;
      cl->api.clEnqueueNDRangeKernel(q, k, 1, NULL, &global, &local, 0, NULL, &ev);
      cl->api.clReleaseEvent(ev); /* ferry asks for an event too (timing) */
    }
    cl->api.clFinish(q);
    double t1 = now_s();
    for (long i = 0; i < n; i++)
      if (ferry_func_call(f, &c) != 0)
        return 1;
    cl->api.clFinish(q);
    double t2 = now_s();
    best_direct = t1 - t0 < best_direct ? t1 - t0 : best_direct;
    best_launch = t2 - t1 < best_launch ? t2 - t1 : best_launch;
  }
  printf("kernel launch (%ld launches + clFinish): direct %.2f us, ferry %.2f us each, "
         "ratio %.3f\n",
         n, best_direct / n * 1e6, best_launch / n * 1e6, best_launch / best_direct);
  ferry_call_close(&c);
  cl->api.clReleaseKernel(k);
  cl->api.clReleaseProgram(prog);
  ferry_obj_release(&f->base);
  ferry_obj_release(&m->base);
  free(host);
  if (ferry_rt_free(rt, dev, buf, &err) != 0)
    return 1;
  ferry_rt_close(rt);
  return 0;
}
