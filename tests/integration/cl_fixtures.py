"""Fixture generator: hand-written OpenCL C kernels packed into shared
libraries of both ABI generations, the way TVM's export_library packs
them (spec device-modules.md 1.1, 1.2, 1.6).

* generation "v020" (classic): __tvm_dev_mblob = u64 nbytes + [count 3,
  "_lib", "opencl" + inline payload (fmt, fmap with v0.20 FunctionInfo,
  source), "_import_tree" [0,1,1] [1]], and host functions in TVM's
  classic packed ABI that call __tvm_set_device and then the kernels
  through __TVMBackendGetFuncFromEnv/__TVMFuncCall with TVM's launch
  convention (buffers, scalars, grid and block extents); the workspace
  kernel's host code takes its intermediate buffer from
  TVMBackendAllocWorkspace(kDLOpenCL, ...).
* generation "v026" (tvm-ffi): __tvm_ffi__library_bin = u64 nbytes +
  indptr [0,1,1] + children [1] + "_lib" + "opencl" + length-prefixed
  payload whose FunctionInfo carries arg_extra_tags.  Its kernels are
  called directly (the module's functions are found through the imports).

build(tmpdir, gen) -> path of the .so; needs a C compiler and dlpack.h.
"""
import os
import struct
import subprocess

VADD = """// Function: vadd_kernel
__kernel void vadd_kernel(__global float* restrict A, __global float* restrict B,
                          __global float* restrict C, int n) {
  int i = get_group_id(0) * 64 + get_local_id(0);
  if (i < n) C[i] = A[i] + B[i];
}
"""

# 8x8 tiles of A and B staged in __local memory, barriers around each load.
MATMUL = """// Function: matmul_kernel
__kernel void matmul_kernel(__global float* restrict A, __global float* restrict B,
                            __global float* restrict C) {
  __local float As[64];
  __local float Bs[64];
  int tx = get_local_id(0), ty = get_local_id(1);
  int row = get_group_id(1) * 8 + ty, col = get_group_id(0) * 8 + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < 64; k0 += 8) {
    barrier(CLK_LOCAL_MEM_FENCE);
    As[ty * 8 + tx] = A[row * 64 + k0 + tx];
    Bs[ty * 8 + tx] = B[(k0 + ty) * 64 + col];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = 0; k < 8; ++k) acc += As[ty * 8 + k] * Bs[k * 8 + tx];
  }
  C[row * 64 + col] = acc;
}
"""

WS = """// Function: ws_first_kernel
__kernel void ws_first_kernel(__global float* restrict A, __global float* restrict W) {
  int i = get_group_id(0) * 64 + get_local_id(0);
  W[i] = A[i] * 2.0f;
}
// Function: ws_second_kernel
__kernel void ws_second_kernel(__global float* restrict W, __global float* restrict B) {
  int i = get_group_id(0) * 64 + get_local_id(0);
  B[i] = W[i] + 1.0f;
}
"""

# For the isolation tests: a write far outside any buffer, and a loop.
CRASH = """// Function: crash_kernel
__kernel void crash_kernel(__global float* restrict A) {
  A[get_global_id(0) * 0x10000000L + 0x7fffffff0000L] = 1.0f;
}
// Function: loop_kernel
__kernel void loop_kernel(__global volatile int* restrict A) {
  while (A[0] == 0) { A[1] = A[1] + 1; }
}
"""

SOURCE = VADD + MATMUL + WS + CRASH

HANDLE = (3, 64, 1)
I32 = (0, 32, 1)
G1 = ["blockIdx.x", "threadIdx.x"]
G2 = ["blockIdx.y", "blockIdx.x", "threadIdx.y", "threadIdx.x"]
FMAP = [
    ("vadd_kernel", [HANDLE] * 3 + [I32], G1),
    ("matmul_kernel", [HANDLE] * 3, ["blockIdx.x", "blockIdx.y", "threadIdx.x", "threadIdx.y"]),
    ("ws_first_kernel", [HANDLE] * 2, G1),
    ("ws_second_kernel", [HANDLE] * 2, G1),
    ("crash_kernel", [HANDLE], G1),
    ("loop_kernel", [HANDLE], G1),
]


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b


def payload(gen):
    out = s("cl") + struct.pack("<Q", len(FMAP))
    for name, args, tags in FMAP:
        out += s(name) + s(name if gen == "v026" else "")
        out += struct.pack("<Q", len(args)) + b"".join(struct.pack("<BBH", *a) for a in args)
        out += struct.pack("<Q", len(tags)) + b"".join(s(t) for t in tags)
        if gen == "v026":
            out += struct.pack("<Q", len(args)) + b"\0\0\0\0" * len(args)
    return out + s(SOURCE)


def blob(gen):
    if gen == "v020":
        body = struct.pack("<Q", 3) + s("_lib") + s("opencl") + payload(gen)
        body += s("_import_tree") + struct.pack("<QQQQQQ", 3, 0, 1, 1, 1, 1)
    else:
        body = struct.pack("<QQQQQQ", 3, 0, 1, 1, 1, 1) + s("_lib") + s("opencl") + s(payload(gen))
    return struct.pack("<Q", len(body)) + body


HOST_V020 = r"""
#include <dlpack/dlpack.h>
#include <stdint.h>

typedef union { int64_t v_int64; double v_float64; void *v_handle; const char *v_str; } TVMValue;

void *__tvm_module_ctx = 0;
int (*__TVMAPISetLastError)(const char *) = 0;
int (*__TVMBackendGetFuncFromEnv)(void *, const char *, void **) = 0;
int (*__TVMFuncCall)(void *, TVMValue *, int *, int, TVMValue *, int *) = 0;
void *(*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = 0;
int (*__TVMBackendFreeWorkspace)(int, int, void *) = 0;

static int fail(const char *m) { __TVMAPISetLastError(m); return -1; }

static int call(const char *name, void **cache, TVMValue *v, int *c, int n) {
  if (*cache == 0 && __TVMBackendGetFuncFromEnv(__tvm_module_ctx, name, cache) != 0) return -1;
  TVMValue r; int rc;
  return __TVMFuncCall(*cache, v, c, n, &r, &rc);
}

static int set_device(const DLTensor *t) {
  static void *f;
  TVMValue v[2]; int c[2] = {0, 0};
  v[0].v_int64 = t->device.device_type; v[1].v_int64 = t->device.device_id;
  return call("__tvm_set_device", &f, v, c, 2);
}

static int check(TVMValue *args, int *codes, int n, int want) {
  if (n != want) return fail("Assert fail: num_args should match");
  for (int i = 0; i < n; i++) {
    if (codes[i] != 7 && codes[i] != 13) return fail("Assert fail: expects tensors");
    if (((DLTensor *)args[i].v_handle)->device.device_type != kDLOpenCL)
      return fail("Assert fail: device_type has an unsatisfied constraint: 4");
  }
  return 0;
}

/* vadd(A, B, C) float32[n], n a multiple of 64 */
int vadd(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *h) {
  (void)ret; (void)rcode; (void)h;
  static void *k;
  if (check(args, codes, n, 3) || set_device(args[0].v_handle)) return -1;
  DLTensor *a = args[0].v_handle;
  TVMValue v[6]; int c[6] = {3, 3, 3, 0, 0, 0};
  for (int i = 0; i < 3; i++) v[i].v_handle = ((DLTensor *)args[i].v_handle)->data;
  v[3].v_int64 = a->shape[0];
  v[4].v_int64 = (a->shape[0] + 63) / 64; v[5].v_int64 = 64;
  return call("vadd_kernel", &k, v, c, 6);
}

/* matmul(A, B, C) float32[64, 64] */
int matmul(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *h) {
  (void)ret; (void)rcode; (void)h;
  static void *k;
  if (check(args, codes, n, 3) || set_device(args[0].v_handle)) return -1;
  TVMValue v[7]; int c[7] = {3, 3, 3, 0, 0, 0, 0};
  for (int i = 0; i < 3; i++) v[i].v_handle = ((DLTensor *)args[i].v_handle)->data;
  v[3].v_int64 = 8; v[4].v_int64 = 8; v[5].v_int64 = 8; v[6].v_int64 = 8;
  return call("matmul_kernel", &k, v, c, 7);
}

/* ws(A, B) float32[n]: B = A * 2 + 1 through a device workspace */
int ws(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *h) {
  (void)ret; (void)rcode; (void)h;
  static void *k1, *k2;
  if (check(args, codes, n, 2) || set_device(args[0].v_handle)) return -1;
  DLTensor *a = args[0].v_handle, *b = args[1].v_handle;
  void *w = __TVMBackendAllocWorkspace(kDLOpenCL, a->device.device_id,
                                       (uint64_t)a->shape[0] * 4, 2, 32);
  if (w == 0) return -1;
  TVMValue v[4]; int c[4] = {3, 3, 0, 0};
  v[0].v_handle = a->data; v[1].v_handle = w;
  v[2].v_int64 = a->shape[0] / 64; v[3].v_int64 = 64;
  int rc = call("ws_first_kernel", &k1, v, c, 4);
  v[0].v_handle = w; v[1].v_handle = b->data;
  if (rc == 0) rc = call("ws_second_kernel", &k2, v, c, 4);
  if (__TVMBackendFreeWorkspace(kDLOpenCL, a->device.device_id, w) != 0) return -1;
  return rc;
}
"""


def c_array(name, data):
    body = ",".join(str(b) for b in data)
    return ("__attribute__((used)) const unsigned char %s[%d] = {%s};\n"
            % (name, len(data), body))


def build(tmpdir, gen):
    src = os.path.join(str(tmpdir), "cl_%s.c" % gen)
    so = os.path.join(str(tmpdir), "cl_%s.so" % gen)
    with open(src, "w") as f:
        if gen == "v020":
            f.write(HOST_V020)
            f.write(c_array("__tvm_dev_mblob", blob(gen)))
        else:
            f.write("void *__tvm_ffi__library_ctx = 0;\n")
            f.write(c_array("__tvm_ffi__library_bin", blob(gen)))
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", so, src], check=True, timeout=120)
    return so
