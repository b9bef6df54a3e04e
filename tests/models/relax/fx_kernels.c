/* Kernels of the MLP fixture (fx_mlp.rvm), compiled into both generations'
 * libraries: the classic packed ABI (TVM 0.20) by default, the tvm-ffi
 * safe-call ABI (`__tvm_ffi_NAME`) with FX_FFI.  Errors carry no message
 * (the error slots belong to testlib.c / testlib_ffi.c in the same library).
 *
 *   matmul(x, w, out)   out[1, N] = x[1, K] @ w[K, N]   (float32)
 *   relu(a, b)          b = max(a, 0) */
#include <stdint.h>

#include "ferry/tvm_c_abi.h"
#include "ferry/tvm_ffi_abi.h"

#define EXPORT __attribute__((visibility("default")))

static float *fdata(const DLTensor *t) { return (float *)((char *)t->data + t->byte_offset); }

static int f32(const DLTensor *t, int ndim) {
  return t && t->ndim == ndim && t->dtype.code == kDLFloat && t->dtype.bits == 32 &&
         t->dtype.lanes == 1;
}

static int matmul_t(const DLTensor *x, const DLTensor *w, const DLTensor *o) {
  if (!f32(x, 2) || !f32(w, 2) || !f32(o, 2) || x->shape[0] != 1 || o->shape[0] != 1 ||
      x->shape[1] != w->shape[0] || o->shape[1] != w->shape[1])
    return -1;
  int64_t k = w->shape[0], n = w->shape[1];
  const float *px = fdata(x), *pw = fdata(w);
  float *po = fdata(o);
  for (int64_t j = 0; j < n; j++) {
    float acc = 0.0f;
    for (int64_t i = 0; i < k; i++)
      acc += px[i] * pw[i * n + j];
    po[j] = acc;
  }
  return 0;
}

static int relu_t(const DLTensor *a, const DLTensor *b) {
  if (!f32(a, 2) || !f32(b, 2) || a->shape[0] != b->shape[0] || a->shape[1] != b->shape[1])
    return -1;
  const float *pa = fdata(a);
  float *pb = fdata(b);
  for (int64_t i = 0, m = a->shape[0] * a->shape[1]; i < m; i++)
    pb[i] = pa[i] > 0.0f ? pa[i] : 0.0f;
  return 0;
}

#ifdef FX_FFI
static const DLTensor *arg(const TVMFFIAny *a) {
  if (a->type_index == kTVMFFIDLTensorPtr)
    return (const DLTensor *)a->v_ptr;
  if (a->type_index == kTVMFFITensor)
    return (const DLTensor *)(const void *)((const char *)a->v_obj + sizeof(TVMFFIObject));
  return 0;
}

EXPORT int __tvm_ffi_matmul(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)ret;
  return n == 3 ? matmul_t(arg(&args[0]), arg(&args[1]), arg(&args[2])) : -1;
}

EXPORT int __tvm_ffi_relu(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)ret;
  return n == 2 ? relu_t(arg(&args[0]), arg(&args[1])) : -1;
}
#else
static const DLTensor *arg(const TVMValue *v, int code) {
  return code == kTVMDLTensorHandle || code == kTVMNDArrayHandle ? (const DLTensor *)v->v_handle
                                                                  : 0;
}

EXPORT int matmul(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  return n == 3 ? matmul_t(arg(&args[0], codes[0]), arg(&args[1], codes[1]),
                           arg(&args[2], codes[2]))
                : -1;
}

EXPORT int relu(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  return n == 2 ? relu_t(arg(&args[0], codes[0]), arg(&args[1], codes[1])) : -1;
}
#endif
