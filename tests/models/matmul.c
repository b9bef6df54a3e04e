/* C = A x B for float32 matrices (n x k) x (k x m), with the argument
 * checks TVM's generated code performs (rank, dtype, shapes, device).
 * __tvm_main__ names matmul. */
#include <stdint.h>

#include "ferry/tvm_c_abi.h"

void (*__TVMAPISetLastError)(const char *) = 0;
void *__tvm_module_ctx = 0;
const char __tvm_main__[] = "matmul";

static int set_error(const char *msg) {
  if (__TVMAPISetLastError)
    __TVMAPISetLastError(msg);
  return -1;
}

static int check(const DLTensor *t, const char *what) {
  (void)what;
  return t->ndim == 2 && t->dtype.code == kDLFloat && t->dtype.bits == 32 &&
         t->dtype.lanes == 1 && t->device.device_type == kDLCPU;
}

__attribute__((visibility("default"))) int matmul(TVMValue *args, int *codes, int n,
                                                  TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  if (n != 3)
    return set_error("matmul: num_args should be 3");
  for (int i = 0; i < 3; i++)
    if (codes[i] != kTVMDLTensorHandle && codes[i] != kTVMNDArrayHandle)
      return set_error("matmul: expect arg to be pointer");
  DLTensor *a = args[0].v_handle, *b = args[1].v_handle, *c = args[2].v_handle;
  if (!check(a, "A") || !check(b, "B") || !check(c, "C"))
    return set_error("matmul: expects 2-D float32 CPU tensors");
  int64_t rows = a->shape[0], inner = a->shape[1], cols = b->shape[1];
  if (b->shape[0] != inner || c->shape[0] != rows || c->shape[1] != cols)
    return set_error("matmul: shape mismatch");
  const float *pa = a->data, *pb = b->data;
  float *pc = c->data;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      float s = 0;
      for (int64_t k = 0; k < inner; k++)
        s += pa[i * inner + k] * pb[k * cols + j];
      pc[i * cols + j] = s;
    }
  return 0;
}
