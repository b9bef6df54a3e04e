/* Kernels of the MLP fixture (fx_mlp.rvm), compiled into both generations'
 * libraries: the classic packed ABI (TVM 0.20) by default, the tvm-ffi
 * safe-call ABI (`__tvm_ffi_NAME`) with FX_FFI.  Errors carry no message
 * (the error slots belong to testlib.c / testlib_ffi.c in the same library).
 *
 *   matmul(x, w, out)   out[1, N] = x[1, K] @ w[K, N]   (float32)
 *   relu(a, b)          b = max(a, 0), any shape
 *   conv2d_relu(x, w, y)  y = relu(conv2d(x, w)), NCHW / OIHW, stride 1,
 *                       "same" padding (odd kernel sizes)
 *   max_pool2d(x, y)    2x2 windows, stride 2 (the fixture CNN's) */
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

static int64_t numel(const DLTensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

static int relu_t(const DLTensor *a, const DLTensor *b) {
  if (!a || !b || !f32(a, a->ndim) || !f32(b, b->ndim) || numel(a) != numel(b))
    return -1;
  const float *pa = fdata(a);
  float *pb = fdata(b);
  for (int64_t i = 0, m = numel(a); i < m; i++)
    pb[i] = pa[i] > 0.0f ? pa[i] : 0.0f;
  return 0;
}

static int conv_t(const DLTensor *x, const DLTensor *w, const DLTensor *y) {
  if (!f32(x, 4) || !f32(w, 4) || !f32(y, 4) || w->shape[1] != x->shape[1] ||
      y->shape[0] != x->shape[0] || y->shape[1] != w->shape[0] || y->shape[2] != x->shape[2] ||
      y->shape[3] != x->shape[3] || w->shape[2] % 2 == 0 || w->shape[3] % 2 == 0)
    return -1;
  int64_t nn = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
  int64_t o = w->shape[0], kh = w->shape[2], kw = w->shape[3], ph = kh / 2, pw = kw / 2;
  const float *px = fdata(x), *pk = fdata(w);
  float *py = fdata(y);
  for (int64_t in = 0; in < nn; in++)
    for (int64_t oc = 0; oc < o; oc++)
      for (int64_t r = 0; r < h; r++)
        for (int64_t q = 0; q < wd; q++) {
          float s = 0.0f;
          for (int64_t ic = 0; ic < c; ic++)
            for (int64_t i = 0; i < kh; i++)
              for (int64_t j = 0; j < kw; j++) {
                int64_t yy = r + i - ph, xx = q + j - pw;
                if (yy >= 0 && yy < h && xx >= 0 && xx < wd)
                  s += px[((in * c + ic) * h + yy) * wd + xx] *
                       pk[((oc * c + ic) * kh + i) * kw + j];
              }
          py[((in * o + oc) * h + r) * wd + q] = s > 0.0f ? s : 0.0f;
        }
  return 0;
}

static int pool_t(const DLTensor *x, const DLTensor *y) {
  if (!f32(x, 4) || !f32(y, 4) || y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] ||
      y->shape[2] * 2 != x->shape[2] || y->shape[3] * 2 != x->shape[3])
    return -1;
  int64_t planes = x->shape[0] * x->shape[1], oh = y->shape[2], ow = y->shape[3], w = ow * 2;
  const float *px = fdata(x);
  float *py = fdata(y);
  for (int64_t p = 0; p < planes; p++)
    for (int64_t r = 0; r < oh; r++)
      for (int64_t q = 0; q < ow; q++) {
        const float *in = px + (p * oh * 2 + r * 2) * w + q * 2;
        float m = in[0];
        m = in[1] > m ? in[1] : m;
        m = in[w] > m ? in[w] : m;
        m = in[w + 1] > m ? in[w + 1] : m;
        py[(p * oh + r) * ow + q] = m;
      }
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

EXPORT int __tvm_ffi_conv2d_relu(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)ret;
  return n == 3 ? conv_t(arg(&args[0]), arg(&args[1]), arg(&args[2])) : -1;
}

EXPORT int __tvm_ffi_max_pool2d(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)ret;
  return n == 2 ? pool_t(arg(&args[0]), arg(&args[1])) : -1;
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

EXPORT int conv2d_relu(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  return n == 3 ? conv_t(arg(&args[0], codes[0]), arg(&args[1], codes[1]),
                         arg(&args[2], codes[2]))
                : -1;
}

EXPORT int max_pool2d(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  return n == 2 ? pool_t(arg(&args[0], codes[0]), arg(&args[1], codes[1])) : -1;
}
#endif
