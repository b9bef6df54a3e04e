/* A library whose __tvm_dev_mblob claims far more bytes than the symbol
 * holds.  The loader bounds the blob by the symbol's ELF size, so this is a
 * "truncated blob" error rather than a read past the end. */
#include "ferry/tvm_c_abi.h"

void *__tvm_module_ctx = 0;

__attribute__((visibility("default"))) const unsigned char __tvm_dev_mblob[24] = {
    0x00, 0x10, 0, 0, 0, 0, 0, 0, /* N = 4096 */
    1, 0, 0, 0, 0, 0, 0, 0,       /* one entry */
    4, 0, 0, 0, 0, 0, 0, 0,       /* key length 4, key missing */
};
