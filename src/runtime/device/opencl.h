/* OpenCL state of one session, shared by the device (opencl.c) and the
 * module loader (opencl_module.c).  Created on the first OpenCL request of
 * a session, in the session process only. */
#ifndef FERRY_RUNTIME_DEVICE_OPENCL_H
#define FERRY_RUNTIME_DEVICE_OPENCL_H

#include "runtime/device/device.h"
#include "runtime/device/opencl_loader.h"

#define FERRY_CL_MAX_DEVICES 16

/* A buffer: what an OpenCL data pointer handed to the client points at
 * (TVM's BufferDescriptor).  magic guards against stale descriptors. */
struct ferry_cl_buf {
  uint32_t magic;
  int dev;
  cl_mem mem;
  uint64_t size;
};

struct ferry_cl_dev {
  cl_device_id id;
  cl_context ctx; /* one context per device: buffers belong to one device */
  cl_command_queue queue; /* in order, with profiling */
  char name[256];
  int64_t timer_ns; /* kernel time since timer_start, -1 while not timing */
};

struct ferry_cl {
  int tried; /* initialisation attempted (it is not retried) */
  char why[512]; /* why there are no devices; "" if there are */
  int cpu_fallback; /* no GPU: CPU devices are served (TVM warns so) */
  ferry_cl_api api;
  int ndev;
  struct ferry_cl_dev devs[FERRY_CL_MAX_DEVICES];
  struct ferry_cl_buf **bufs; /* sorted by address; guarded by rt->lock */
  size_t nbufs, cap_bufs;
  uint64_t total_bytes;
  int cur_dev; /* set by __tvm_set_device; kernels launch there */
};

/* The session's OpenCL state, initialised on first use; NULL only when
 * out of memory.  ndev == 0 when there is no usable driver. */
struct ferry_cl *ferry_cl_get(ferry_rt *rt);

/* The live buffer data names, or NULL (and a message) when it is none. */
struct ferry_cl_buf *ferry_cl_buf_lookup(ferry_rt *rt, const void *data, ferry_err *err);

/* Adds the kernel time of a finished launch event to the device's timer
 * when it is timing, and releases the event. */
void ferry_cl_account_event(struct ferry_cl *cl, int dev, cl_event ev);

#endif
