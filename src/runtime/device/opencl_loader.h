/* The OpenCL entry points ferry uses, loaded from libOpenCL.so.1 (the ICD
 * loader) with dlopen at run time, so that the ferry binary needs nothing
 * but libc and a board without OpenCL simply has no OpenCL device.
 *
 * The types and constants are the few of Khronos' CL/cl.h (OpenCL 1.2
 * API, values fixed by the standard) that ferry needs, written out here so
 * that building ferry needs no OpenCL headers (cross builds included). */
#ifndef FERRY_RUNTIME_DEVICE_OPENCL_LOADER_H
#define FERRY_RUNTIME_DEVICE_OPENCL_LOADER_H

#include <stddef.h>
#include <stdint.h>

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef cl_uint cl_bool;
typedef cl_ulong cl_bitfield;
typedef cl_bitfield cl_device_type;
typedef cl_uint cl_platform_info;
typedef cl_uint cl_device_info;
typedef cl_bitfield cl_command_queue_properties;
typedef cl_bitfield cl_mem_flags;
typedef cl_uint cl_program_build_info;
typedef cl_uint cl_profiling_info;
typedef intptr_t cl_context_properties;
typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_context *cl_context;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_program *cl_program;
typedef struct _cl_kernel *cl_kernel;
typedef struct _cl_event *cl_event;

#define CL_SUCCESS 0
#define CL_DEVICE_NOT_FOUND (-1)
#define CL_BUILD_PROGRAM_FAILURE (-11)
#define CL_INVALID_KERNEL_NAME (-46)
#define CL_FALSE 0
#define CL_TRUE 1
#define CL_PLATFORM_VERSION 0x0901
#define CL_PLATFORM_NAME 0x0902
#define CL_DEVICE_TYPE_CPU (1u << 1)
#define CL_DEVICE_TYPE_GPU (1u << 2)
#define CL_DEVICE_TYPE_ACCELERATOR (1u << 3)
#define CL_DEVICE_TYPE_ALL 0xFFFFFFFFu
#define CL_DEVICE_TYPE 0x1000
#define CL_DEVICE_MAX_COMPUTE_UNITS 0x1002
#define CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS 0x1003
#define CL_DEVICE_MAX_WORK_GROUP_SIZE 0x1004
#define CL_DEVICE_MAX_WORK_ITEM_SIZES 0x1005
#define CL_DEVICE_MAX_CLOCK_FREQUENCY 0x100C
#define CL_DEVICE_IMAGE2D_MAX_WIDTH 0x1011
#define CL_DEVICE_IMAGE2D_MAX_HEIGHT 0x1012
#define CL_DEVICE_GLOBAL_MEM_CACHE_SIZE 0x101E
#define CL_DEVICE_GLOBAL_MEM_SIZE 0x101F
#define CL_DEVICE_LOCAL_MEM_SIZE 0x1023
#define CL_DEVICE_NAME 0x102B
#define CL_DRIVER_VERSION 0x102D
#define CL_DEVICE_VERSION 0x102F
#define CL_DEVICE_EXTENSIONS 0x1030
#define CL_DEVICE_IMAGE_PITCH_ALIGNMENT 0x104A
#define CL_CONTEXT_PLATFORM 0x1084
#define CL_QUEUE_PROFILING_ENABLE (1u << 1)
#define CL_MEM_READ_WRITE (1u << 0)
#define CL_PROGRAM_BUILD_LOG 0x1183
#define CL_PROFILING_COMMAND_START 0x1282
#define CL_PROFILING_COMMAND_END 0x1283

/* X(return type, name, parameter list) for every entry point. */
#define FERRY_CL_FUNCS(X)                                                                    \
  X(cl_int, clGetPlatformIDs, (cl_uint, cl_platform_id *, cl_uint *))                         \
  X(cl_int, clGetPlatformInfo, (cl_platform_id, cl_platform_info, size_t, void *, size_t *))  \
  X(cl_int, clGetDeviceIDs, (cl_platform_id, cl_device_type, cl_uint, cl_device_id *,         \
                             cl_uint *))                                                      \
  X(cl_int, clGetDeviceInfo, (cl_device_id, cl_device_info, size_t, void *, size_t *))        \
  X(cl_context, clCreateContext,                                                              \
    (const cl_context_properties *, cl_uint, const cl_device_id *,                            \
     void (*)(const char *, const void *, size_t, void *), void *, cl_int *))                 \
  X(cl_int, clReleaseContext, (cl_context))                                                   \
  X(cl_command_queue, clCreateCommandQueue,                                                   \
    (cl_context, cl_device_id, cl_command_queue_properties, cl_int *))                        \
  X(cl_int, clReleaseCommandQueue, (cl_command_queue))                                        \
  X(cl_mem, clCreateBuffer, (cl_context, cl_mem_flags, size_t, void *, cl_int *))             \
  X(cl_int, clReleaseMemObject, (cl_mem))                                                     \
  X(cl_int, clEnqueueReadBuffer,                                                              \
    (cl_command_queue, cl_mem, cl_bool, size_t, size_t, void *, cl_uint, const cl_event *,    \
     cl_event *))                                                                             \
  X(cl_int, clEnqueueWriteBuffer,                                                             \
    (cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void *, cl_uint,                \
     const cl_event *, cl_event *))                                                           \
  X(cl_int, clEnqueueCopyBuffer,                                                              \
    (cl_command_queue, cl_mem, cl_mem, size_t, size_t, size_t, cl_uint, const cl_event *,     \
     cl_event *))                                                                             \
  X(cl_int, clFinish, (cl_command_queue))                                                     \
  X(cl_program, clCreateProgramWithSource,                                                    \
    (cl_context, cl_uint, const char **, const size_t *, cl_int *))                           \
  X(cl_int, clBuildProgram,                                                                   \
    (cl_program, cl_uint, const cl_device_id *, const char *,                                 \
     void (*)(cl_program, void *), void *))                                                   \
  X(cl_int, clGetProgramBuildInfo,                                                            \
    (cl_program, cl_device_id, cl_program_build_info, size_t, void *, size_t *))              \
  X(cl_int, clReleaseProgram, (cl_program))                                                   \
  X(cl_kernel, clCreateKernel, (cl_program, const char *, cl_int *))                          \
  X(cl_int, clReleaseKernel, (cl_kernel))                                                     \
  X(cl_int, clSetKernelArg, (cl_kernel, cl_uint, size_t, const void *))                       \
  X(cl_int, clEnqueueNDRangeKernel,                                                           \
    (cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *, const size_t *,    \
     cl_uint, const cl_event *, cl_event *))                                                  \
  X(cl_int, clGetEventProfilingInfo, (cl_event, cl_profiling_info, size_t, void *, size_t *)) \
  X(cl_int, clReleaseEvent, (cl_event))

typedef struct ferry_cl_api {
  void *lib; /* dlopen handle */
#define FERRY_CL_MEMBER(ret, name, params) ret(*name) params;
  FERRY_CL_FUNCS(FERRY_CL_MEMBER)
#undef FERRY_CL_MEMBER
} ferry_cl_api;

/* Loads the ICD loader (FERRY_OPENCL_LIBRARY if set, else libOpenCL.so.1)
 * and resolves every entry point.  On failure api is zeroed and why says
 * what is missing; nothing needs closing. */
int ferry_cl_api_load(ferry_cl_api *api, char *why, size_t why_cap);
void ferry_cl_api_unload(ferry_cl_api *api);

/* "CL_BUILD_PROGRAM_FAILURE" for -11, ... ("CL_ERROR_<n>" if unknown). */
const char *ferry_cl_error_name(cl_int code);

#endif
