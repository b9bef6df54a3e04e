/* TVM's classic C ABI (TVM <= 0.20, c_runtime_api.h / c_backend_api.h), as
 * ferry's own definitions: the layout of a value slot, the type codes, the
 * packed-function signature compiled code exports, and the backend functions
 * it calls back into.  Layouts are those of spec runtime-abi.md section 2
 * (LP64).  Test kernels in tests/models/ include this header; the runtime
 * maps these codes to ferry_value in exactly one file (abi_classic.c). */
#ifndef FERRY_TVM_C_ABI_H
#define FERRY_TVM_C_ABI_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Type codes of the classic ABI (TVMArgTypeCode). */
enum {
  kTVMArgInt = 0,
  kTVMArgUInt = 1, /* kDLUInt: not a TVMArgTypeCode, accepted as an int */
  kTVMArgFloat = 2,
  kTVMOpaqueHandle = 3,
  kTVMNullptr = 4,
  kTVMDataType = 5,
  kTVMDLDevice = 6,
  kTVMDLTensorHandle = 7,
  kTVMObjectHandle = 8,
  kTVMModuleHandle = 9,
  kTVMPackedFuncHandle = 10,
  kTVMStr = 11,
  kTVMBytes = 12,
  kTVMNDArrayHandle = 13,
  kTVMObjectRValueRefArg = 14,
  kTVMArgBool = 15,
};

/* One argument or result slot: 8 bytes. */
typedef union {
  int64_t v_int64;
  double v_float64;
  void *v_handle;
  const char *v_str;
  DLDataType v_type;
  DLDevice v_device;
} TVMValue;

/* Payload of a kTVMBytes value (v_handle points at one of these). */
typedef struct {
  const char *data;
  size_t size;
} TVMByteArray;

typedef void *TVMFunctionHandle;
typedef void *TVMModuleHandle;

/* Every function a TVM library exports for the host. */
typedef int32_t (*TVMBackendPackedCFunc)(TVMValue *args, int32_t *type_codes,
                                         int32_t num_args, TVMValue *out_ret_value,
                                         int32_t *out_ret_tcode, void *resource_handle);

typedef struct {
  void *sync_handle;
  int32_t num_task;
} TVMParallelGroupEnv;

typedef int (*FTVMParallelLambda)(int task_id, TVMParallelGroupEnv *penv, void *cdata);

/* The backend API, exported by the ferry executable for compiled code. */
int TVMBackendGetFuncFromEnv(void *mod_node, const char *func_name, TVMFunctionHandle *out);
int TVMBackendRegisterSystemLibSymbol(const char *name, void *ptr);
void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint);
int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr);
int TVMBackendRegisterEnvCAPI(const char *name, void *ptr);
int TVMBackendParallelLaunch(FTVMParallelLambda flambda, void *cdata, int num_task);
int TVMBackendParallelBarrier(int task_id, TVMParallelGroupEnv *penv);
int TVMBackendRunOnce(void **handle, int (*f)(void *), void *cdata, int nbytes);
int TVMFuncCall(TVMFunctionHandle func, TVMValue *arg_values, int *type_codes,
                int num_args, TVMValue *ret_val, int *ret_type_code);
void TVMAPISetLastError(const char *msg);
const char *TVMGetLastError(void);

#ifdef __cplusplus
}
#endif

#endif
