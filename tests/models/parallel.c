/* Kernels that exercise the backend API the way TVM's LLVM code does,
 * through the __TVM* context slots:
 *   psum(a, out)       out[0] = sum(a) (float64, 1-D): a workspace of one
 *                      partial sum per task, a parallel launch, a barrier,
 *                      then task 0 adds the partial sums
 *   pfill(a)           a[i] = i with a parallel loop; returns num_task
 *   pfail()            a lambda that fails in task 0
 *   big_workspace(n)   allocates n bytes of workspace (NULL -> error) */
#include <stdint.h>

#include "ferry/tvm_c_abi.h"

void (*__TVMAPISetLastError)(const char *) = 0;
void *(*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = 0;
int (*__TVMBackendFreeWorkspace)(int, int, void *) = 0;
int (*__TVMBackendParallelLaunch)(FTVMParallelLambda, void *, int) = 0;
int (*__TVMBackendParallelBarrier)(int, TVMParallelGroupEnv *) = 0;
void *__tvm_module_ctx = 0;

#define EXPORT __attribute__((visibility("default")))

static int set_error(const char *msg) {
  if (__TVMAPISetLastError)
    __TVMAPISetLastError(msg);
  return -1;
}

struct psum_ctx {
  const double *a;
  int64_t n;
  double *partial; /* one per task, from the workspace */
  double *out;
};

static int psum_lambda(int task, TVMParallelGroupEnv *penv, void *cdata) {
  struct psum_ctx *c = cdata;
  int64_t nt = penv->num_task;
  int64_t lo = c->n * task / nt, hi = c->n * (task + 1) / nt;
  double s = 0;
  for (int64_t i = lo; i < hi; i++)
    s += c->a[i];
  c->partial[task] = s;
  __TVMBackendParallelBarrier(task, penv);
  if (task == 0) {
    double t = 0;
    for (int64_t k = 0; k < nt; k++)
      t += c->partial[k];
    *c->out = t;
  }
  return 0;
}

EXPORT int psum(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  if (n != 2 || codes[0] != kTVMDLTensorHandle || codes[1] != kTVMDLTensorHandle)
    return set_error("psum expects two tensors");
  DLTensor *a = args[0].v_handle, *o = args[1].v_handle;
  if (a->ndim != 1 || a->dtype.code != kDLFloat || a->dtype.bits != 64 || o->ndim != 1 ||
      o->shape[0] != 1 || o->dtype.code != kDLFloat || o->dtype.bits != 64)
    return set_error("psum: expects float64 a[n] and out[1]");
  struct psum_ctx c = {a->data, a->shape[0], 0, o->data};
  c.partial = __TVMBackendAllocWorkspace(kDLCPU, 0, 256 * sizeof(double), kDLFloat, 64);
  if (c.partial == 0)
    return -1;
  int rc = __TVMBackendParallelLaunch(psum_lambda, &c, 0);
  if (__TVMBackendFreeWorkspace(kDLCPU, 0, c.partial) != 0)
    return -1;
  return rc;
}

struct pfill_ctx {
  float *a;
  int64_t n;
  int tasks;
};

static int pfill_lambda(int task, TVMParallelGroupEnv *penv, void *cdata) {
  struct pfill_ctx *c = cdata;
  int64_t nt = penv->num_task;
  if (task == 0)
    c->tasks = (int)nt;
  for (int64_t i = c->n * task / nt; i < c->n * (task + 1) / nt; i++)
    c->a[i] = (float)i;
  return 0;
}

EXPORT int pfill(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)res;
  if (n != 1 || codes[0] != kTVMDLTensorHandle)
    return set_error("pfill expects one tensor");
  DLTensor *a = args[0].v_handle;
  struct pfill_ctx c = {a->data, a->shape[0], 0};
  if (__TVMBackendParallelLaunch(pfill_lambda, &c, 0) != 0)
    return -1;
  ret->v_int64 = c.tasks;
  *rcode = kTVMArgInt;
  return 0;
}

static int fail_lambda(int task, TVMParallelGroupEnv *penv, void *cdata) {
  (void)penv, (void)cdata;
  if (task == 0)
    return set_error("lambda failed on purpose");
  return 0;
}

EXPORT int pfail(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)args, (void)codes, (void)n, (void)ret, (void)rcode, (void)res;
  return __TVMBackendParallelLaunch(fail_lambda, 0, 0);
}

EXPORT int big_workspace(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode,
                         void *res) {
  (void)ret, (void)rcode, (void)res;
  if (n != 1 || codes[0] != kTVMArgInt)
    return set_error("big_workspace expects an int");
  void *p = __TVMBackendAllocWorkspace(kDLCPU, 0, (uint64_t)args[0].v_int64, kDLFloat, 32);
  if (p == 0)
    return -1;
  return __TVMBackendFreeWorkspace(kDLCPU, 0, p);
}
