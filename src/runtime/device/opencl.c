/* The OpenCL device (kDLOpenCL = 4): enumeration as TVM does it, the
 * attributes as TVM answers them, global-scope buffers, copies, sync and
 * the profiling-event timer.
 *
 * Enumeration (TVM v0.20 src/runtime/opencl/opencl_device_api.cc Init):
 * the GPU devices of every platform; when there is none, the CPU devices
 * (TVM logs "Using CPU OpenCL device"; PoCL has only those).  The state is
 * created on the session's first OpenCL request, so only the session
 * process ever holds an OpenCL context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device/opencl.h"

#define BUF_MAGIC 0x4c43u /* "CL" */

static void add_devices(struct ferry_cl *cl, cl_device_type type) {
  cl_platform_id plats[8];
  cl_uint nplat = 0;
  if (cl->api.clGetPlatformIDs(8, plats, &nplat) != CL_SUCCESS)
    return;
  if (nplat > 8)
    nplat = 8;
  for (cl_uint p = 0; p < nplat && cl->ndev < FERRY_CL_MAX_DEVICES; p++) {
    cl_device_id ids[FERRY_CL_MAX_DEVICES];
    cl_uint n = 0;
    if (cl->api.clGetDeviceIDs(plats[p], type, FERRY_CL_MAX_DEVICES, ids, &n) != CL_SUCCESS)
      continue;
    if (n > FERRY_CL_MAX_DEVICES)
      n = FERRY_CL_MAX_DEVICES;
    for (cl_uint i = 0; i < n && cl->ndev < FERRY_CL_MAX_DEVICES; i++) {
      struct ferry_cl_dev *d = &cl->devs[cl->ndev];
      cl_int e = CL_SUCCESS;
      cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plats[p], 0};
      d->ctx = cl->api.clCreateContext(props, 1, &ids[i], NULL, NULL, &e);
      if (d->ctx == NULL || e != CL_SUCCESS)
        continue;
      d->queue = cl->api.clCreateCommandQueue(d->ctx, ids[i], CL_QUEUE_PROFILING_ENABLE, &e);
      if (d->queue == NULL || e != CL_SUCCESS) {
        cl->api.clReleaseContext(d->ctx);
        d->ctx = NULL;
        continue;
      }
      d->id = ids[i];
      d->timer_ns = -1;
      if (cl->api.clGetDeviceInfo(ids[i], CL_DEVICE_NAME, sizeof d->name - 1, d->name, NULL) !=
          CL_SUCCESS)
        snprintf(d->name, sizeof d->name, "unnamed");
      d->name[sizeof d->name - 1] = 0;
      cl->ndev++;
    }
  }
}

struct ferry_cl *ferry_cl_get(ferry_rt *rt) {
  pthread_mutex_lock(&rt->lock);
  if (rt->cl == NULL)
    rt->cl = calloc(1, sizeof *rt->cl);
  struct ferry_cl *cl = rt->cl;
  if (cl != NULL && !cl->tried) {
    cl->tried = 1;
    if (ferry_cl_api_load(&cl->api, cl->why, sizeof cl->why) == 0) {
      add_devices(cl, CL_DEVICE_TYPE_GPU);
      if (cl->ndev == 0) {
        add_devices(cl, CL_DEVICE_TYPE_CPU);
        cl->cpu_fallback = cl->ndev > 0;
      }
      if (cl->ndev == 0)
        snprintf(cl->why, sizeof cl->why,
                 "the OpenCL driver reports no usable GPU or CPU device (no ICD installed "
                 "in /etc/OpenCL/vendors?)");
    }
  }
  pthread_mutex_unlock(&rt->lock);
  return cl;
}

static int cl_count(ferry_rt *rt) {
  struct ferry_cl *cl = ferry_cl_get(rt);
  return cl ? cl->ndev : 0;
}

static const char *cl_why_none(ferry_rt *rt) {
  struct ferry_cl *cl = ferry_cl_get(rt);
  return cl ? cl->why : "out of memory";
}

static int info_err(cl_int e, const char *what, ferry_err *err) {
  return ferry_err_set(err, FERRY_EIO, "OpenCL: %s failed: %s (%d)", what, ferry_cl_error_name(e),
                       (int)e);
}

static int info_u64(struct ferry_cl *cl, int id, cl_device_info what, size_t width,
                    ferry_value *out, ferry_err *err) {
  uint64_t v = 0;
  cl_int e = cl->api.clGetDeviceInfo(cl->devs[id].id, what, width, &v, NULL);
  if (e != CL_SUCCESS)
    return info_err(e, "clGetDeviceInfo", err);
  if (width == 4)
    v &= 0xffffffffu;
  out->kind = FERRY_KIND_INT;
  out->v.i = (int64_t)v;
  return FERRY_OK;
}

static int info_str(struct ferry_cl *cl, int id, cl_device_info what, char *buf, size_t cap,
                    ferry_err *err) {
  size_t len = 0;
  cl_int e = cl->api.clGetDeviceInfo(cl->devs[id].id, what, cap - 1, buf, &len);
  if (e != CL_SUCCESS)
    return info_err(e, "clGetDeviceInfo", err);
  buf[len < cap ? len : cap - 1] = 0;
  return FERRY_OK;
}

static int ret_str(ferry_call *storage, ferry_value *out, const char *s, ferry_err *err) {
  if (ferry_call_return_str(storage, s, strlen(s)) != FERRY_OK)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  *out = storage->ret;
  return FERRY_OK;
}

/* TVM's answers (OpenCLWorkspace::GetAttr): DeviceAttrKind 1..16. */
static int cl_attr(ferry_rt *rt, int id, int kind, ferry_value *out, ferry_call *storage,
                   ferry_err *err) {
  struct ferry_cl *cl = ferry_cl_get(rt);
  char buf[1024];
  int rc;
  switch (kind) {
  case 1: /* kMaxThreadsPerBlock */
    return info_u64(cl, id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof(size_t), out, err);
  case 2: /* kWarpSize: TVM answers 1 on every OpenCL device */
    out->kind = FERRY_KIND_INT;
    out->v.i = 1;
    return FERRY_OK;
  case 3: /* kMaxSharedMemoryPerBlock */
    return info_u64(cl, id, CL_DEVICE_LOCAL_MEM_SIZE, 8, out, err);
  case 4: { /* kComputeVersion: "3.0" of "OpenCL 3.0 PoCL ..." */
    if ((rc = info_str(cl, id, CL_DEVICE_VERSION, buf, sizeof buf, err)))
      return rc;
    char ver[64] = "";
    if (sscanf(buf, "OpenCL %63s", ver) != 1)
      snprintf(ver, sizeof ver, "%.63s", buf);
    return ret_str(storage, out, ver, err);
  }
  case 5: /* kDeviceName */
    return ret_str(storage, out, cl->devs[id].name, err);
  case 6: /* kMaxClockRate in kHz (the driver says MHz) */
    if ((rc = info_u64(cl, id, CL_DEVICE_MAX_CLOCK_FREQUENCY, 4, out, err)))
      return rc;
    out->v.i *= 1000;
    return FERRY_OK;
  case 7: /* kMultiProcessorCount */
    return info_u64(cl, id, CL_DEVICE_MAX_COMPUTE_UNITS, 4, out, err);
  case 8: { /* kMaxThreadDimensions, as a JSON list in a string */
    size_t dims[3] = {0, 0, 0};
    cl_int e = cl->api.clGetDeviceInfo(cl->devs[id].id, CL_DEVICE_MAX_WORK_ITEM_SIZES,
                                       sizeof dims, dims, NULL);
    if (e != CL_SUCCESS)
      return info_err(e, "clGetDeviceInfo", err);
    snprintf(buf, sizeof buf, "[%zu, %zu, %zu]", dims[0], dims[1], dims[2]);
    return ret_str(storage, out, buf, err);
  }
  case 11: /* kApiVersion: the CL_TARGET_OPENCL_VERSION TVM is built with */
    out->kind = FERRY_KIND_INT;
    out->v.i = 120;
    return FERRY_OK;
  case 12: /* kDriverVersion */
    if ((rc = info_str(cl, id, CL_DRIVER_VERSION, buf, sizeof buf, err)))
      return rc;
    return ret_str(storage, out, buf, err);
  case 13: /* kL2CacheSizeBytes */
    return info_u64(cl, id, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, 8, out, err);
  case 14: /* kTotalGlobalMemory */
    return info_u64(cl, id, CL_DEVICE_GLOBAL_MEM_SIZE, 8, out, err);
  case 16: /* kImagePitchAlignment */
    return info_u64(cl, id, CL_DEVICE_IMAGE_PITCH_ALIGNMENT, 4, out, err);
  default: /* 9 registers, 10 gcn arch, 15 available memory: None in TVM */
    return FERRY_OK;
  }
}

/* Index of the first buffer with address > p (rt->lock held). */
static size_t buf_upper(const struct ferry_cl *cl, uintptr_t p) {
  size_t lo = 0, hi = cl->nbufs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)cl->bufs[mid] <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

struct ferry_cl_buf *ferry_cl_buf_lookup(ferry_rt *rt, const void *data, ferry_err *err) {
  struct ferry_cl *cl = rt->cl;
  struct ferry_cl_buf *b = NULL;
  if (cl != NULL) {
    pthread_mutex_lock(&rt->lock);
    size_t at = buf_upper(cl, (uintptr_t)data);
    if (at > 0 && (const void *)cl->bufs[at - 1] == data && cl->bufs[at - 1]->magic == BUF_MAGIC)
      b = cl->bufs[at - 1];
    pthread_mutex_unlock(&rt->lock);
  }
  if (b == NULL)
    ferry_err_set(err, FERRY_EBADHANDLE, "%p is not a live OpenCL buffer of this session", data);
  return b;
}

static int cl_alloc(ferry_rt *rt, int id, uint64_t nbytes, uint64_t align, const char *scope,
                    void **out, ferry_err *err) {
  (void)align; /* cl_mem buffers are aligned by the driver */
  *out = NULL;
  struct ferry_cl *cl = ferry_cl_get(rt);
  if (scope != NULL && scope[0] != 0 && strcmp(scope, "global") != 0)
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "memory scope '%s' is not supported on OpenCL: this server has no "
                         "image (texture) memory, only \"global\" buffers",
                         scope);
  uint64_t size = nbytes ? nbytes : 1;
  pthread_mutex_lock(&rt->lock);
  /* --max-memory bounds the OpenCL buffers of a session as it bounds its
   * host memory (a separate budget: they live on the device). */
  uint64_t cap = rt->max_total;
  int over = size > cap || size > cap - cl->total_bytes || cl->nbufs >= FERRY_RT_MAX_ALLOCS;
  uint64_t used = cl->total_bytes;
  pthread_mutex_unlock(&rt->lock);
  if (over)
    return ferry_err_set(err, FERRY_ETOOBIG,
                         "cannot allocate %llu bytes on OpenCL: the session already holds %llu "
                         "bytes (limit %llu, --max-memory) or too many buffers",
                         (unsigned long long)nbytes, (unsigned long long)used,
                         (unsigned long long)cap);
  struct ferry_cl_buf *b = calloc(1, sizeof *b);
  if (b == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  cl_int e = CL_SUCCESS;
  b->mem = cl->api.clCreateBuffer(cl->devs[id].ctx, CL_MEM_READ_WRITE, (size_t)size, NULL, &e);
  if (b->mem == NULL || e != CL_SUCCESS) {
    free(b);
    return ferry_err_set(err, FERRY_ENOMEM, "OpenCL: clCreateBuffer of %llu bytes failed: %s (%d)",
                         (unsigned long long)nbytes, ferry_cl_error_name(e), (int)e);
  }
  b->magic = BUF_MAGIC;
  b->dev = id;
  b->size = size;
  pthread_mutex_lock(&rt->lock);
  int rc = FERRY_OK;
  if (cl->nbufs == cl->cap_bufs) {
    size_t ncap = cl->cap_bufs ? cl->cap_bufs * 2 : 64;
    struct ferry_cl_buf **n = realloc(cl->bufs, ncap * sizeof *n);
    if (n == NULL)
      rc = FERRY_ENOMEM;
    else {
      cl->bufs = n;
      cl->cap_bufs = ncap;
    }
  }
  if (rc == FERRY_OK) {
    size_t at = buf_upper(cl, (uintptr_t)b);
    memmove(&cl->bufs[at + 1], &cl->bufs[at], (cl->nbufs - at) * sizeof cl->bufs[0]);
    cl->bufs[at] = b;
    cl->nbufs++;
    cl->total_bytes += size;
  }
  pthread_mutex_unlock(&rt->lock);
  if (rc) {
    cl->api.clReleaseMemObject(b->mem);
    free(b);
    return ferry_err_set(err, rc, "out of memory recording an allocation");
  }
  *out = b;
  return FERRY_OK;
}

static int cl_free(ferry_rt *rt, void *data, ferry_err *err) {
  struct ferry_cl *cl = rt->cl;
  struct ferry_cl_buf *b = NULL;
  if (cl != NULL) {
    pthread_mutex_lock(&rt->lock);
    size_t at = buf_upper(cl, (uintptr_t)data);
    if (at > 0 && (void *)cl->bufs[at - 1] == data) {
      b = cl->bufs[at - 1];
      memmove(&cl->bufs[at - 1], &cl->bufs[at], (cl->nbufs - at) * sizeof cl->bufs[0]);
      cl->nbufs--;
      cl->total_bytes -= b->size;
    }
    pthread_mutex_unlock(&rt->lock);
  }
  if (b == NULL)
    return ferry_err_set(err, FERRY_EBADHANDLE,
                         "free of %p: not a live OpenCL buffer of this session", data);
  /* Kernels still queued may use the buffer: the driver keeps it until
   * they finish (clReleaseMemObject is reference counted). */
  cl->api.clReleaseMemObject(b->mem);
  b->magic = 0;
  free(b);
  return FERRY_OK;
}

static int cl_check(ferry_rt *rt, const void *data, uint64_t offset, uint64_t nbytes,
                    ferry_err *err) {
  struct ferry_cl_buf *b = ferry_cl_buf_lookup(rt, data, err);
  if (b == NULL)
    return FERRY_EBADHANDLE;
  if (offset > b->size || nbytes > b->size - offset)
    return ferry_err_set(err, FERRY_ERANGE,
                         "OpenCL buffer %p holds %llu bytes: %llu bytes at offset %llu are past "
                         "its end",
                         data, (unsigned long long)b->size, (unsigned long long)nbytes,
                         (unsigned long long)offset);
  return FERRY_OK;
}

static int enqueue_err(cl_int e, const char *what, ferry_err *err) {
  return ferry_err_set(err, FERRY_EIO, "OpenCL: %s failed: %s (%d)", what, ferry_cl_error_name(e),
                       (int)e);
}

static int cl_to_host(ferry_rt *rt, const void *data, uint64_t offset, void *dst, uint64_t nbytes,
                      ferry_err *err) {
  struct ferry_cl *cl = rt->cl;
  const struct ferry_cl_buf *b = data;
  if (nbytes == 0)
    return FERRY_OK;
  cl_int e = cl->api.clEnqueueReadBuffer(cl->devs[b->dev].queue, b->mem, CL_TRUE, (size_t)offset,
                                         (size_t)nbytes, dst, 0, NULL, NULL);
  return e == CL_SUCCESS ? FERRY_OK : enqueue_err(e, "clEnqueueReadBuffer", err);
}

static int cl_from_host(ferry_rt *rt, void *data, uint64_t offset, const void *src,
                        uint64_t nbytes, ferry_err *err) {
  struct ferry_cl *cl = rt->cl;
  const struct ferry_cl_buf *b = data;
  if (nbytes == 0)
    return FERRY_OK;
  cl_int e = cl->api.clEnqueueWriteBuffer(cl->devs[b->dev].queue, b->mem, CL_TRUE,
                                          (size_t)offset, (size_t)nbytes, src, 0, NULL, NULL);
  return e == CL_SUCCESS ? FERRY_OK : enqueue_err(e, "clEnqueueWriteBuffer", err);
}

static int cl_among(ferry_rt *rt, const void *from, uint64_t from_offset, void *to,
                    uint64_t to_offset, uint64_t nbytes, ferry_err *err) {
  struct ferry_cl *cl = rt->cl;
  const struct ferry_cl_buf *f = from, *t = to;
  if (nbytes == 0)
    return FERRY_OK;
  if (f->dev != t->dev) {
    /* Different contexts: through the host. */
    void *tmp = malloc((size_t)nbytes);
    if (tmp == NULL)
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    int rc = cl_to_host(rt, from, from_offset, tmp, nbytes, err);
    if (rc == FERRY_OK)
      rc = cl_from_host(rt, to, to_offset, tmp, nbytes, err);
    free(tmp);
    return rc;
  }
  if (f == t && from_offset < to_offset + nbytes && to_offset < from_offset + nbytes) {
    if (from_offset == to_offset)
      return FERRY_OK;
    /* clEnqueueCopyBuffer refuses overlapping ranges (CL_MEM_COPY_OVERLAP);
     * memmove semantics through the host. */
    void *tmp = malloc((size_t)nbytes);
    if (tmp == NULL)
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    int rc = cl_to_host(rt, from, from_offset, tmp, nbytes, err);
    if (rc == FERRY_OK)
      rc = cl_from_host(rt, to, to_offset, tmp, nbytes, err);
    free(tmp);
    return rc;
  }
  cl_command_queue q = cl->devs[f->dev].queue;
  cl_int e = cl->api.clEnqueueCopyBuffer(q, f->mem, t->mem, (size_t)from_offset, (size_t)to_offset,
                                         (size_t)nbytes, 0, NULL, NULL);
  if (e == CL_SUCCESS)
    e = cl->api.clFinish(q);
  return e == CL_SUCCESS ? FERRY_OK : enqueue_err(e, "clEnqueueCopyBuffer", err);
}

static int cl_sync(ferry_rt *rt, int id, ferry_err *err) {
  struct ferry_cl *cl = ferry_cl_get(rt);
  cl_int e = cl->api.clFinish(cl->devs[id].queue);
  return e == CL_SUCCESS ? FERRY_OK : enqueue_err(e, "clFinish", err);
}

void ferry_cl_account_event(struct ferry_cl *cl, int dev, cl_event ev) {
  if (ev == NULL)
    return;
  if (cl->devs[dev].timer_ns >= 0) {
    cl_ulong start = 0, end = 0;
    cl->api.clFinish(cl->devs[dev].queue);
    if (cl->api.clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof start, &start,
                                        NULL) == CL_SUCCESS &&
        cl->api.clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL) ==
            CL_SUCCESS &&
        end >= start)
      cl->devs[dev].timer_ns += (int64_t)(end - start);
  }
  cl->api.clReleaseEvent(ev);
}

static void cl_timer_start(ferry_rt *rt, int id) {
  struct ferry_cl *cl = ferry_cl_get(rt);
  cl->devs[id].timer_ns = 0;
}

static int64_t cl_timer_stop(ferry_rt *rt, int id) {
  struct ferry_cl *cl = ferry_cl_get(rt);
  int64_t ns = cl->devs[id].timer_ns;
  cl->devs[id].timer_ns = -1;
  return ns;
}

const ferry_device_api ferry_device_opencl = {
    .name = "opencl",
    .type = kDLOpenCL,
    .count = cl_count,
    .why_none = cl_why_none,
    .attr = cl_attr,
    .alloc = cl_alloc,
    .free = cl_free,
    .check = cl_check,
    .to_host = cl_to_host,
    .from_host = cl_from_host,
    .among = cl_among,
    .sync = cl_sync,
    .timer_start = cl_timer_start,
    .timer_stop = cl_timer_stop,
};

void ferry_device_close_all(ferry_rt *rt) {
  struct ferry_cl *cl = rt->cl;
  if (cl == NULL)
    return;
  for (size_t i = 0; i < cl->nbufs; i++) {
    cl->api.clReleaseMemObject(cl->bufs[i]->mem);
    free(cl->bufs[i]);
  }
  free(cl->bufs);
  for (int i = 0; i < cl->ndev; i++) {
    cl->api.clReleaseCommandQueue(cl->devs[i].queue);
    cl->api.clReleaseContext(cl->devs[i].ctx);
  }
  /* The ICD loader stays loaded: drivers (PoCL among them) keep threads
   * that would run unmapped code after dlclose. */
  free(cl);
  rt->cl = NULL;
}
