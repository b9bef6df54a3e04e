/* TVM's tvm-ffi C ABI for compiled modules (TVM >= 0.21; numbering pinned
 * to tvm-ffi v0.1.13 as used by TVM v0.26), as ferry's own definitions:
 * the 16-byte value slot TVMFFIAny, the type indices, the object header,
 * the safe-call signature a library exports as __tvm_ffi_<name>, and the
 * functions compiled code calls back into (through __TVMFFI* context slots
 * or, for C-source libraries, as symbols exported by the ferry binary).
 * Layouts are LP64.  Test kernels in tests/models/ include this header; the
 * runtime maps these indices to ferry_value in exactly one file
 * (src/runtime/abi_ffi.c). */
#ifndef FERRY_TVM_FFI_ABI_H
#define FERRY_TVM_FFI_ABI_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Type indices (tvm-ffi TVMFFITypeIndex).  0..12 are values held in the
 * slot itself and have not changed since v0.21; from 64 on the slot holds
 * a pointer to an object that starts with TVMFFIObject, and several of
 * those numbers moved between tvm-ffi releases (Tensor was 72 in v0.21). */
enum {
  kTVMFFINone = 0,
  kTVMFFIInt = 1,
  kTVMFFIBool = 2,
  kTVMFFIFloat = 3,
  kTVMFFIOpaquePtr = 4,
  kTVMFFIDataType = 5,
  kTVMFFIDevice = 6,
  kTVMFFIDLTensorPtr = 7,
  kTVMFFIRawStr = 8,
  kTVMFFIByteArrayPtr = 9,
  kTVMFFIObjectRValueRef = 10,
  kTVMFFISmallStr = 11,
  kTVMFFISmallBytes = 12,
  kTVMFFIStaticObjectBegin = 64,
  kTVMFFIObject = 64,
  kTVMFFIStr = 65,
  kTVMFFIBytes = 66,
  kTVMFFIError = 67,
  kTVMFFIFunction = 68,
  kTVMFFIShape = 69,
  kTVMFFITensor = 70,
  kTVMFFIArray = 71,
  kTVMFFIMap = 72,
  kTVMFFIModule = 73,
  kTVMFFIDynObjectBegin = 128,
};

/* Header of every heap object (24 bytes): strong count in the low 32 bits
 * of the combined count, weak count in the high 32. */
typedef struct {
  uint64_t combined_ref_count;
  int32_t type_index;
  uint32_t padding;
  void (*deleter)(void *self, int flags);
} TVMFFIObject;

/* One argument or result slot: 16 bytes.  zero_padding must be 0 except
 * for kTVMFFISmallStr/SmallBytes, where it is the length (at most 7) of the
 * bytes held in v_bytes. */
typedef struct {
  int32_t type_index;
  union {
    uint32_t zero_padding;
    uint32_t small_str_len;
  };
  union {
    int64_t v_int64;
    double v_float64;
    void *v_ptr;
    const char *v_c_str;
    TVMFFIObject *v_obj;
    DLDataType v_dtype;
    DLDevice v_device;
    char v_bytes[8];
    uint64_t v_uint64;
  };
} TVMFFIAny;

/* Payload of kTVMFFIByteArrayPtr, and the cell after the header of a Str
 * or Bytes object. */
typedef struct {
  const char *data;
  size_t size;
} TVMFFIByteArray;

typedef void *TVMFFIObjectHandle;

/* What a library exports as __tvm_ffi_<name>.  The caller sets
 * result->type_index to kTVMFFINone first; 0 = success, -1 = error raised
 * with TVMFFIErrorSetRaisedFromCStr (or ...Parts). */
typedef int (*TVMFFISafeCallType)(void *self, const TVMFFIAny *args, int32_t num_args,
                                  TVMFFIAny *result);

/* Symbols of a tvm-ffi library (tvm/ffi/extra/module.h). */
#define FERRY_FFI_SYMBOL_PREFIX "__tvm_ffi_"
#define FERRY_FFI_MAIN "__tvm_ffi_main"
#define FERRY_FFI_LIBRARY_CTX "__tvm_ffi__library_ctx"
#define FERRY_FFI_LIBRARY_BIN "__tvm_ffi__library_bin"

/* Functions ferry provides to tvm-ffi compiled code.  A function handle
 * given to compiled code (TVMFFIEnvModLookupFromImports) is opaque: it is
 * only valid as the first argument of TVMFFIFunctionCall. */
int TVMFFIFunctionCall(TVMFFIObjectHandle func, TVMFFIAny *args, int32_t num_args,
                       TVMFFIAny *result);
void TVMFFIErrorSetRaisedFromCStr(const char *kind, const char *message);
void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **message_parts,
                                       int32_t num_parts);
int TVMFFIEnvModLookupFromImports(TVMFFIObjectHandle library_ctx, const char *func_name,
                                  TVMFFIObjectHandle *out);
int TVMFFIHandleInitOnce(void **handle_addr, int (*init_func)(void **result));
int TVMFFIHandleDeinitOnce(void **handle_addr, int (*deinit_func)(void *handle));
int TVMFFIEnvModRegisterSystemLibSymbol(const char *name, void *symbol);

#ifdef __cplusplus
}
#endif

#endif
