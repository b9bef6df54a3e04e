/* The device layer: one interface per device type (kDLCPU, kDLOpenCL, and
 * later Vulkan and CUDA), and the dispatcher behind runtime.h's ferry_rt_*
 * device functions (dispatch.c).
 *
 * A device's data pointers are opaque to everything above this layer: on
 * CPU they are host addresses, on OpenCL they point at a host-side
 * descriptor of a cl_mem (as in TVM, where they are BufferDescriptor*).
 * Only the device that made a pointer may interpret it, which is why every
 * operation takes (data, byte offset) pairs and not data + offset. */
#ifndef FERRY_RUNTIME_DEVICE_DEVICE_H
#define FERRY_RUNTIME_DEVICE_DEVICE_H

#include "runtime/rt_internal.h"

typedef struct ferry_device_api {
  const char *name; /* "cpu", "opencl": what messages and --device say */
  int type;         /* DLDeviceType */
  /* How many devices of this type the session has (0: none, e.g. no
   * OpenCL driver).  May initialise the device type on first use; it never
   * fails, the reason for 0 is kept by the device for its messages. */
  int (*count)(ferry_rt *rt);
  /* Why count is 0, for error messages ("" if it is not). */
  const char *(*why_none)(ferry_rt *rt);
  /* kDevGetAttr for kinds 1..16 (kExist is answered by the dispatcher);
   * out stays NONE where TVM answers None.  Strings go into storage. */
  int (*attr)(ferry_rt *rt, int id, int kind, ferry_value *out, ferry_call *storage,
              ferry_err *err);
  /* A buffer of nbytes (>= 1 is allocated for 0); scope is NULL, "" or a
   * scope name the device may refuse.  On failure *out is NULL. */
  int (*alloc)(ferry_rt *rt, int id, uint64_t nbytes, uint64_t align, const char *scope,
               void **out, ferry_err *err);
  /* Frees a buffer of alloc; FERRY_EBADHANDLE for anything else. */
  int (*free)(ferry_rt *rt, void *data, ferry_err *err);
  /* FERRY_OK when [offset, offset + nbytes) lies inside the live buffer
   * data (CPU: inside any live allocation from data + offset on). */
  int (*check)(ferry_rt *rt, const void *data, uint64_t offset, uint64_t nbytes,
               ferry_err *err);
  /* Copies between a checked buffer range and host memory, blocking. */
  int (*to_host)(ferry_rt *rt, const void *data, uint64_t offset, void *dst, uint64_t nbytes,
                 ferry_err *err);
  int (*from_host)(ferry_rt *rt, void *data, uint64_t offset, const void *src,
                   uint64_t nbytes, ferry_err *err);
  /* Copies between two checked buffers of this device type. */
  int (*among)(ferry_rt *rt, const void *from, uint64_t from_offset, void *to,
               uint64_t to_offset, uint64_t nbytes, ferry_err *err);
  /* Waits for everything queued on device id. */
  int (*sync)(ferry_rt *rt, int id, ferry_err *err);
  /* Kernel time of the last timed run, if the device measures it itself
   * (OpenCL profiling events): timer_start resets, timer_stop returns the
   * device time in ns summed over the launches in between, or -1 when the
   * device has no timer of its own (the caller then uses the wall clock
   * around sync).  May be NULL. */
  void (*timer_start)(ferry_rt *rt, int id);
  int64_t (*timer_stop)(ferry_rt *rt, int id);
} ferry_device_api;

extern const ferry_device_api ferry_device_cpu;
extern const ferry_device_api ferry_device_opencl;

/* The device API of a type, or NULL when ferry has none for it. */
const ferry_device_api *ferry_device_find(int type);

/* The API of dev in *out after checking that dev exists (0 <= id <
 * count); otherwise *out is NULL and err says why: "device type 13 is not
 * supported", "no opencl device: <why>", "Invalid device id 1" (TVM's
 * wording). */
int ferry_device_get(ferry_rt *rt, DLDevice dev, const ferry_device_api **out,
                     ferry_err *err) FERRY_MUST_CHECK;

/* Releases the device state of rt (OpenCL context, buffers, queues):
 * ferry_rt_close. */
void ferry_device_close_all(ferry_rt *rt);

/* The time evaluator's device timer: start resets it; stop returns the
 * device-measured kernel time in ns since start (OpenCL: profiling events
 * of the launches, as TVM's OpenCL timer), or -1 when the device has no
 * timer of its own and the wall clock around a sync is what counts.  Call
 * both on an existing device (ferry_device_get). */
void ferry_device_timer_start(ferry_rt *rt, DLDevice dev);
int64_t ferry_device_timer_stop(ferry_rt *rt, DLDevice dev);

/* ---- CPU internals shared with the dispatcher (cpu.c) --------------------- */

int ferry_cpu_alloc(ferry_rt *rt, uint64_t nbytes, uint64_t align, void **out,
                    ferry_err *err) FERRY_MUST_CHECK;

/* ---- workspaces (backend_api.c uses these for non-CPU devices) ----------- */

/* A device workspace for TVMBackendAllocWorkspace(type, id, nbytes): an
 * ordinary buffer of the device, freed by ferry_device_workspace_free. */
void *ferry_device_workspace_alloc(ferry_rt *rt, int type, int id, uint64_t nbytes,
                                   ferry_err *err);
int ferry_device_workspace_free(ferry_rt *rt, int type, void *data, ferry_err *err);

#endif
