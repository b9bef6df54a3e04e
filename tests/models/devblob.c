/* A library whose __tvm_dev_mblob carries a module type ferry cannot load
 * ("cuda", as tvm.build(..., "cuda") exports it: _lib, cuda, _import_tree
 * [0,1,1] [1]).  Loading it must fail with an error naming "cuda". */
#include "ferry/tvm_c_abi.h"

void *__tvm_module_ctx = 0;

#define U64(x) (x), 0, 0, 0, 0, 0, 0, 0
/* entries: "_lib"; "cuda" + fmt "ptx" + empty fmap + data "xx"; tree. */
__attribute__((visibility("default"))) const unsigned char __tvm_dev_mblob[] = {
    U64(129),                                       /* payload bytes */
    U64(3),                                        /* entries */
    U64(4), '_', 'l', 'i', 'b',                    /* _lib */
    U64(4), 'c', 'u', 'd', 'a',                    /* cuda ... */
    U64(3), 'p', 't', 'x',                         /*   fmt */
    U64(0),                                        /*   fmap (empty) */
    U64(2), 'x', 'x',                              /*   data */
    U64(12), '_', 'i', 'm', 'p', 'o', 'r', 't', '_', 't', 'r', 'e', 'e',
    U64(3), U64(0), U64(1), U64(1),                /* row_ptr [0, 1, 1] */
    U64(1), U64(1),                                /* child [1] */
};

__attribute__((visibility("default"))) int host_entry(TVMValue *args, int *codes, int n,
                                                      TVMValue *ret, int *rcode, void *res) {
  (void)args, (void)codes, (void)n, (void)ret, (void)rcode, (void)res;
  return 0;
}
