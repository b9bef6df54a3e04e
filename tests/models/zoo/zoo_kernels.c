/* Kernels of ferry's model zoo, written by hand in TVM's classic
 * packed-function ABI the way a relay.build CPU library exports its fused
 * operators: every argument is a DLTensor (type code 7), inputs first, then
 * the output.  All tensors are float32, compact, on the CPU; shapes are
 * read from the tensors and checked against each other, so one kernel
 * serves every layer size.  `ferry pack` links this object with a graph
 * and its parameters into one deployable library.
 *
 *   zoo_dense(x[N,K], w[M,K], y[N,M])               y = x w^T
 *   zoo_dense_bias(x, w, b[M], y)                    y = x w^T + b
 *   zoo_dense_bias_relu(x, w, b, y)                  max(x w^T + b, 0)
 *   zoo_add(a, b, y)       y[i] = a[i] + b[i % size(b)]  (bias broadcast)
 *   zoo_relu(x, y)
 *   zoo_conv2d_bias_relu(x[N,C,H,W], w[O,C,KH,KW], b[O], y[N,O,OH,OW])
 *       stride 1, zero padding so that OH = H + 2p - KH + 1 (p from shapes)
 *   zoo_conv2d_bias(...)   the same without the relu
 *   zoo_max_pool2d(x[N,C,H,W], y[N,C,OH,OW])  window = stride = H / OH
 *   zoo_avg_pool2d(x, y)                       (H, W multiples of OH, OW)
 *   zoo_reshape(x, y)      copies size(x) == size(y) elements (flatten)
 *   zoo_softmax(x[..., M], y)                  over the last axis
 *
 * The __TVM* context slots are weak ("link once" in LLVM's output) so
 * that several kernel objects can share them in one library. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ferry/tvm_c_abi.h"

#define WEAK __attribute__((weak, visibility("default")))
#define EXPORT __attribute__((visibility("default")))

WEAK void (*__TVMAPISetLastError)(const char *) = 0;
WEAK void *__tvm_module_ctx = 0;

#define ZOO_FUNC(name)                                                        \
  EXPORT int name(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res)

static int fail(const char *msg) {
  if (__TVMAPISetLastError)
    __TVMAPISetLastError(msg);
  return -1;
}

static int64_t numel(const DLTensor *t) {
  int64_t k = 1;
  for (int i = 0; i < t->ndim; ++i)
    k *= t->shape[i];
  return k;
}

/* The n tensor arguments, each float32 on the CPU; NULL after an error. */
static int take(TVMValue *args, int *codes, int n, int want, DLTensor **t, const char *who) {
  if (n != want)
    return fail(who);
  for (int i = 0; i < n; ++i) {
    if (codes[i] != kTVMDLTensorHandle && codes[i] != kTVMNDArrayHandle)
      return fail(who);
    t[i] = (DLTensor *)args[i].v_handle;
    if (!t[i] || t[i]->dtype.code != kDLFloat || t[i]->dtype.bits != 32 ||
        t[i]->dtype.lanes != 1 || t[i]->device.device_type != kDLCPU)
      return fail(who);
    if (!t[i]->data && numel(t[i]) != 0)
      return fail(who);
  }
  return 0;
}

static float *fdata(const DLTensor *t) { return (float *)((char *)t->data + t->byte_offset); }

static int dense(TVMValue *args, int *codes, int n, int bias, int relu) {
  DLTensor *t[4];
  int want = bias ? 4 : 3;
  if (take(args, codes, n, want, t, "zoo_dense: expects float32 tensors x, w[, b], y"))
    return -1;
  DLTensor *x = t[0], *w = t[1], *b = bias ? t[2] : NULL, *y = t[want - 1];
  if (x->ndim != 2 || w->ndim != 2 || y->ndim != 2 || x->shape[1] != w->shape[1] ||
      y->shape[0] != x->shape[0] || y->shape[1] != w->shape[0] ||
      (b && (b->ndim != 1 || b->shape[0] != w->shape[0])))
    return fail("zoo_dense: shapes do not fit x[N,K] w[M,K] b[M] y[N,M]");
  int64_t rows = x->shape[0], k = x->shape[1], m = w->shape[0];
  const float *px = fdata(x), *pw = fdata(w), *pb = b ? fdata(b) : NULL;
  float *py = fdata(y);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < m; ++j) {
      float s = pb ? pb[j] : 0.0f;
      for (int64_t i = 0; i < k; ++i)
        s += px[r * k + i] * pw[j * k + i];
      py[r * m + j] = relu && s < 0.0f ? 0.0f : s;
    }
  }
  return 0;
}

ZOO_FUNC(zoo_dense) {
  (void)ret, (void)rcode, (void)res;
  return dense(args, codes, n, 0, 0);
}

ZOO_FUNC(zoo_dense_bias) {
  (void)ret, (void)rcode, (void)res;
  return dense(args, codes, n, 1, 0);
}

ZOO_FUNC(zoo_dense_bias_relu) {
  (void)ret, (void)rcode, (void)res;
  return dense(args, codes, n, 1, 1);
}

ZOO_FUNC(zoo_add) {
  (void)ret, (void)rcode, (void)res;
  DLTensor *t[3];
  if (take(args, codes, n, 3, t, "zoo_add: expects float32 tensors a, b, y"))
    return -1;
  int64_t na = numel(t[0]), nb = numel(t[1]);
  if (numel(t[2]) != na || nb == 0 || na % nb != 0)
    return fail("zoo_add: size(y) must equal size(a), a multiple of size(b)");
  const float *pa = fdata(t[0]), *pb = fdata(t[1]);
  float *py = fdata(t[2]);
  for (int64_t i = 0; i < na; ++i)
    py[i] = pa[i] + pb[i % nb];
  return 0;
}

ZOO_FUNC(zoo_relu) {
  (void)ret, (void)rcode, (void)res;
  DLTensor *t[2];
  if (take(args, codes, n, 2, t, "zoo_relu: expects float32 tensors x, y"))
    return -1;
  if (numel(t[0]) != numel(t[1]))
    return fail("zoo_relu: size mismatch");
  const float *px = fdata(t[0]);
  float *py = fdata(t[1]);
  for (int64_t i = 0, m = numel(t[0]); i < m; ++i)
    py[i] = px[i] > 0.0f ? px[i] : 0.0f;
  return 0;
}

static int conv2d(TVMValue *args, int *codes, int n, int relu) {
  DLTensor *t[4];
  if (take(args, codes, n, 4, t, "zoo_conv2d: expects float32 tensors x, w, b, y"))
    return -1;
  DLTensor *x = t[0], *w = t[1], *b = t[2], *y = t[3];
  if (x->ndim != 4 || w->ndim != 4 || b->ndim != 1 || y->ndim != 4)
    return fail("zoo_conv2d: x, w, y are NCHW/OIHW, b is [O]");
  int64_t nn = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
  int64_t o = w->shape[0], kh = w->shape[2], kw = w->shape[3];
  int64_t oh = y->shape[2], ow = y->shape[3];
  int64_t ph2 = oh - 1 + kh - h, pw2 = ow - 1 + kw - wd; /* twice the padding */
  if (w->shape[1] != c || b->shape[0] != o || y->shape[0] != nn || y->shape[1] != o ||
      ph2 < 0 || pw2 < 0 || ph2 % 2 || pw2 % 2 || kh < 1 || kw < 1)
    return fail("zoo_conv2d: shapes do not fit a stride-1 convolution");
  int64_t ph = ph2 / 2, pw = pw2 / 2;
  const float *px = fdata(x), *pk = fdata(w), *pb = fdata(b);
  float *py = fdata(y);
  for (int64_t in = 0; in < nn; ++in)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t r = 0; r < oh; ++r)
        for (int64_t q = 0; q < ow; ++q) {
          float s = pb[oc];
          for (int64_t ic = 0; ic < c; ++ic)
            for (int64_t i = 0; i < kh; ++i) {
              int64_t yy = r + i - ph;
              if (yy < 0 || yy >= h)
                continue;
              for (int64_t j = 0; j < kw; ++j) {
                int64_t xx = q + j - pw;
                if (xx < 0 || xx >= wd)
                  continue;
                s += px[((in * c + ic) * h + yy) * wd + xx] * pk[((oc * c + ic) * kh + i) * kw + j];
              }
            }
          py[((in * o + oc) * oh + r) * ow + q] = relu && s < 0.0f ? 0.0f : s;
        }
  return 0;
}

ZOO_FUNC(zoo_conv2d_bias) {
  (void)ret, (void)rcode, (void)res;
  return conv2d(args, codes, n, 0);
}

ZOO_FUNC(zoo_conv2d_bias_relu) {
  (void)ret, (void)rcode, (void)res;
  return conv2d(args, codes, n, 1);
}

static int pool2d(TVMValue *args, int *codes, int n, int avg) {
  DLTensor *t[2];
  if (take(args, codes, n, 2, t, "zoo_pool2d: expects float32 tensors x, y"))
    return -1;
  DLTensor *x = t[0], *y = t[1];
  if (x->ndim != 4 || y->ndim != 4 || x->shape[0] != y->shape[0] ||
      x->shape[1] != y->shape[1] || y->shape[2] < 1 || y->shape[3] < 1 ||
      x->shape[2] % y->shape[2] || x->shape[3] % y->shape[3])
    return fail("zoo_pool2d: x[N,C,H,W] y[N,C,OH,OW] with H, W multiples of OH, OW");
  int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
  int64_t oh = y->shape[2], ow = y->shape[3], sh = h / oh, sw = w / ow;
  const float *px = fdata(x);
  float *py = fdata(y);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t q = 0; q < ow; ++q) {
        float acc = avg ? 0.0f : -INFINITY;
        for (int64_t i = 0; i < sh; ++i)
          for (int64_t j = 0; j < sw; ++j) {
            float v = px[(p * h + r * sh + i) * w + q * sw + j];
            acc = avg ? acc + v : (v > acc ? v : acc);
          }
        py[(p * oh + r) * ow + q] = avg ? acc / (float)(sh * sw) : acc;
      }
  return 0;
}

ZOO_FUNC(zoo_max_pool2d) {
  (void)ret, (void)rcode, (void)res;
  return pool2d(args, codes, n, 0);
}

ZOO_FUNC(zoo_avg_pool2d) {
  (void)ret, (void)rcode, (void)res;
  return pool2d(args, codes, n, 1);
}

ZOO_FUNC(zoo_reshape) {
  (void)ret, (void)rcode, (void)res;
  DLTensor *t[2];
  if (take(args, codes, n, 2, t, "zoo_reshape: expects float32 tensors x, y"))
    return -1;
  if (numel(t[0]) != numel(t[1]))
    return fail("zoo_reshape: size mismatch");
  if (fdata(t[0]) != fdata(t[1])) /* a graph may give both one storage */
    memmove(fdata(t[1]), fdata(t[0]), (size_t)numel(t[0]) * sizeof(float));
  return 0;
}

ZOO_FUNC(zoo_softmax) {
  (void)ret, (void)rcode, (void)res;
  DLTensor *t[2];
  if (take(args, codes, n, 2, t, "zoo_softmax: expects float32 tensors x, y"))
    return -1;
  DLTensor *x = t[0], *y = t[1];
  if (x->ndim < 1 || numel(x) != numel(y) || x->shape[x->ndim - 1] < 1)
    return fail("zoo_softmax: size mismatch");
  int64_t m = x->shape[x->ndim - 1], rows = numel(x) / m;
  const float *px = fdata(x);
  float *py = fdata(y);
  for (int64_t r = 0; r < rows; ++r) {
    float mx = px[r * m];
    for (int64_t j = 1; j < m; ++j)
      mx = px[r * m + j] > mx ? px[r * m + j] : mx;
    float s = 0.0f;
    for (int64_t j = 0; j < m; ++j)
      s += py[r * m + j] = expf(px[r * m + j] - mx);
    for (int64_t j = 0; j < m; ++j)
      py[r * m + j] /= s;
  }
  return 0;
}
