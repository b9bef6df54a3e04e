/* Loading libOpenCL.so.1 at run time (see opencl_loader.h).  Only the
 * session process calls this, on its first OpenCL request: the server's
 * parent never loads a driver, so a driver that a kernel wedged dies with
 * the session that wedged it. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device/opencl_loader.h"

int ferry_cl_api_load(ferry_cl_api *api, char *why, size_t why_cap) {
  memset(api, 0, sizeof *api);
  const char *path = getenv("FERRY_OPENCL_LIBRARY");
  if (path == NULL || path[0] == 0)
    path = "libOpenCL.so.1";
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *e = dlerror();
    snprintf(why, why_cap,
             "cannot load the OpenCL ICD loader %s (%s); install the board vendor's OpenCL "
             "driver (an ICD) and ocl-icd-libopencl1",
             path, e ? e : "not found");
    return -1;
  }
  ferry_cl_api tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.lib = lib;
  /* Through a void* and memcpy: ISO C has no cast from object pointer to
   * function pointer, and -Wpedantic builds would say so. */
#define FERRY_CL_RESOLVE(ret, name, params)                                       \
  {                                                                               \
    void *sym = dlsym(lib, #name);                                                \
    if (sym == NULL) {                                                            \
      snprintf(why, why_cap, "%s has no entry point %s", path, #name);            \
      dlclose(lib);                                                               \
      return -1;                                                                  \
    }                                                                             \
    memcpy(&tmp.name, &sym, sizeof sym);                                          \
  }
  FERRY_CL_FUNCS(FERRY_CL_RESOLVE)
#undef FERRY_CL_RESOLVE
  *api = tmp;
  return 0;
}

void ferry_cl_api_unload(ferry_cl_api *api) {
  if (api->lib != NULL)
    dlclose(api->lib);
  memset(api, 0, sizeof *api);
}

const char *ferry_cl_error_name(cl_int code) {
  switch (code) {
#define E(n, v) \
  case v:       \
    return #n;
    E(CL_SUCCESS, 0)
    E(CL_DEVICE_NOT_FOUND, -1)
    E(CL_DEVICE_NOT_AVAILABLE, -2)
    E(CL_COMPILER_NOT_AVAILABLE, -3)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE, -4)
    E(CL_OUT_OF_RESOURCES, -5)
    E(CL_OUT_OF_HOST_MEMORY, -6)
    E(CL_PROFILING_INFO_NOT_AVAILABLE, -7)
    E(CL_MEM_COPY_OVERLAP, -8)
    E(CL_BUILD_PROGRAM_FAILURE, -11)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET, -13)
    E(CL_INVALID_VALUE, -30)
    E(CL_INVALID_DEVICE_TYPE, -31)
    E(CL_INVALID_PLATFORM, -32)
    E(CL_INVALID_DEVICE, -33)
    E(CL_INVALID_CONTEXT, -34)
    E(CL_INVALID_COMMAND_QUEUE, -36)
    E(CL_INVALID_MEM_OBJECT, -38)
    E(CL_INVALID_BINARY, -42)
    E(CL_INVALID_BUILD_OPTIONS, -43)
    E(CL_INVALID_PROGRAM, -44)
    E(CL_INVALID_PROGRAM_EXECUTABLE, -45)
    E(CL_INVALID_KERNEL_NAME, -46)
    E(CL_INVALID_KERNEL_DEFINITION, -47)
    E(CL_INVALID_KERNEL, -48)
    E(CL_INVALID_ARG_INDEX, -49)
    E(CL_INVALID_ARG_VALUE, -50)
    E(CL_INVALID_ARG_SIZE, -51)
    E(CL_INVALID_KERNEL_ARGS, -52)
    E(CL_INVALID_WORK_DIMENSION, -53)
    E(CL_INVALID_WORK_GROUP_SIZE, -54)
    E(CL_INVALID_WORK_ITEM_SIZE, -55)
    E(CL_INVALID_GLOBAL_OFFSET, -56)
    E(CL_INVALID_EVENT_WAIT_LIST, -57)
    E(CL_INVALID_EVENT, -58)
    E(CL_INVALID_OPERATION, -59)
    E(CL_INVALID_BUFFER_SIZE, -61)
    E(CL_INVALID_GLOBAL_WORK_SIZE, -63)
    E(CL_PLATFORM_NOT_FOUND_KHR, -1001)
#undef E
  default:
    return "CL_ERROR_UNKNOWN";
  }
}
