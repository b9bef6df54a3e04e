/* The per-session runtime context: what a session executes against.
 *
 * One ferry_rt per session (a session runs in its own forked process, so
 * nothing here is shared between sessions).  It owns the session's work
 * folder, every device allocation handed to the client, the loaded
 * libraries and the global function registry view. */
#ifndef FERRY_RUNTIME_RUNTIME_H
#define FERRY_RUNTIME_RUNTIME_H

#include "runtime/object.h"

typedef struct ferry_rt ferry_rt;

typedef struct ferry_rt_options {
  const char *work_dir;      /* session folder; file functions are confined to it */
  const char *const *preload; /* --load-library paths, NULL-terminated; may be NULL */
  int num_threads;           /* 0: TVM_NUM_THREADS or the core count */
  /* > 0: register tvm.rpc.server.GetCRTMaxPacketSize returning this value,
   * so that clients chunk their copies; 0: leave it unregistered (what
   * TVM's servers do, and what the golden recordings show). */
  int64_t max_packet_size;
  /* > 0: bytes the session folder may hold; an upload that would pass it
   * is refused (files.c).  0: no quota. */
  uint64_t work_quota;
  /* > 0: bytes of device memory the session may hold at once (every
   * allocation: the client's, NDArrays, a Relax VM's pool); 0: the
   * default, half of the machine's RAM (--max-memory). */
  uint64_t max_memory;
} ferry_rt_options;

/* Creates a runtime.  On failure *out is NULL and err says why. */
int ferry_rt_open(ferry_rt **out, const ferry_rt_options *opt,
                  ferry_err *err) FERRY_MUST_CHECK;
/* Frees every allocation and object the runtime still owns (buffers the
 * client never freed, cached modules, worker threads).  Release every
 * object obtained from the runtime (functions, modules, NDArrays) first:
 * an NDArray released afterwards would touch the closed runtime. */
void ferry_rt_close(ferry_rt *rt);

/* Global function by name (runtime.SystemLib, tvm.rpc.server.upload, ...).
 * *out carries one reference; FERRY_ENOTFOUND when there is none. */
int ferry_rt_get_global(ferry_rt *rt, const char *name, ferry_func **out) FERRY_MUST_CHECK;

/* ---- device API (what the session's syscalls map to) ---------------------
 * A dispatcher over the device layer (src/runtime/device/): the CPU
 * (kDLCPU, any id >= 0) and OpenCL (kDLOpenCL, the ids of the devices the
 * session's OpenCL driver has, none without a driver).  Other device types
 * are refused with a clear message.  Device data pointers are opaque: on
 * OpenCL they name a buffer descriptor, never memory to dereference. */

int ferry_rt_alloc(ferry_rt *rt, DLDevice dev, uint64_t nbytes, uint64_t align,
                   DLDataType type_hint, void **out, ferry_err *err) FERRY_MUST_CHECK;
/* Allocation for a tensor template (kDevAllocDataWithScope); scope may be
 * NULL, "" or "global". */
int ferry_rt_alloc_tensor(ferry_rt *rt, const DLTensor *tmpl, const char *scope,
                          void **out, ferry_err *err) FERRY_MUST_CHECK;
/* Frees a buffer of ferry_rt_alloc / ferry_rt_alloc_tensor (kDevFreeData).
 * FERRY_EBADHANDLE when ptr is not the start of a live allocation, FERRY_EPERM
 * when it is the storage of an NDArray (which must be released through its
 * handle instead); the memory is untouched then. */
int ferry_rt_free(ferry_rt *rt, DLDevice dev, void *ptr, ferry_err *err) FERRY_MUST_CHECK;
/* FERRY_OK when [ptr, ptr+nbytes) lies inside one live allocation of this
 * runtime (including NDArray storage); FERRY_EBADHANDLE with a message
 * otherwise.  Every pointer that came from the wire is checked here before
 * it is dereferenced. */
int ferry_rt_check_range(ferry_rt *rt, const void *ptr, uint64_t nbytes,
                         ferry_err *err) FERRY_MUST_CHECK;
/* kDevGetAttr: result in *out (int or string kinds as TVM answers). */
int ferry_rt_dev_attr(ferry_rt *rt, DLDevice dev, int kind, ferry_value *out,
                      ferry_call *storage, ferry_err *err) FERRY_MUST_CHECK;
/* kCopyAmongRemote: any pair of CPU and OpenCL tensors; both ranges are
 * checked here (again). */
int ferry_rt_copy_tensor(ferry_rt *rt, const DLTensor *from, const DLTensor *to,
                         ferry_err *err) FERRY_MUST_CHECK;

/* The session's memory cap in bytes (ferry_rt_options.max_memory). */
uint64_t ferry_rt_max_memory(const ferry_rt *rt);
/* The default cap: half of the physical memory, at most 16 GiB
 * (FERRY_RT_MAX_ALLOC_TOTAL) when that cannot be read. */
uint64_t ferry_rt_default_max_memory(void);

/* Number of devices of a DLDeviceType this session has (0: none).  The
 * first OpenCL query loads the driver and creates the context. */
int ferry_rt_device_count(ferry_rt *rt, int device_type);
/* FERRY_OK when dev exists; otherwise a message naming why. */
int ferry_rt_device_check(ferry_rt *rt, DLDevice dev, ferry_err *err) FERRY_MUST_CHECK;
/* FERRY_OK when [t->data + t->byte_offset, + nbytes) lies inside one live
 * buffer of t's device; FERRY_EBADHANDLE (or the device's error) else. */
int ferry_rt_check_tensor(ferry_rt *rt, const DLTensor *t, uint64_t nbytes,
                          ferry_err *err) FERRY_MUST_CHECK;
/* Blocking copies of nbytes between t's buffer (from t->byte_offset) and
 * host memory; the range is checked first. */
int ferry_rt_copy_to_host(ferry_rt *rt, const DLTensor *t, void *dst, uint64_t nbytes,
                          ferry_err *err) FERRY_MUST_CHECK;
int ferry_rt_copy_from_host(ferry_rt *rt, const DLTensor *t, const void *src, uint64_t nbytes,
                            ferry_err *err) FERRY_MUST_CHECK;
/* kDevSetDevice and __tvm_set_device: later kernel launches of dev's type
 * go to dev (OpenCL); a no-op check on CPU. */
int ferry_rt_set_device(ferry_rt *rt, DLDevice dev, ferry_err *err) FERRY_MUST_CHECK;
/* kDevStreamSync: waits for the device's queue (a no-op on CPU). */
int ferry_rt_sync(ferry_rt *rt, DLDevice dev, ferry_err *err) FERRY_MUST_CHECK;
/* Writes "cpu" or "cpu opencl:0(<name>) ..." (the devices this process
 * would serve) into out.  Loads the OpenCL driver: call it in a child
 * process, never in a server's parent. */
void ferry_rt_describe_devices(char *out, size_t cap);

/* Size in bytes of a compact tensor: prod(shape) * ((bits*lanes+7)/8).
 * FERRY_ERANGE on overflow or a negative extent. */
int ferry_tensor_nbytes(const DLTensor *t, uint64_t *out) FERRY_MUST_CHECK;

#endif
