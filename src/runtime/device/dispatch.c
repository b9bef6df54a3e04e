/* The dispatcher: runtime.h's device functions, routed to the device API
 * of each DLDevice's type (device.h).  Checks that are the same for every
 * device (the device exists, tensor sizes, compactness) are made here, so
 * that a device only implements the operations themselves. */
#include <stdio.h>
#include <string.h>

#include "runtime/device/opencl.h"

static const ferry_device_api *const devices[] = {&ferry_device_cpu, &ferry_device_opencl};

const ferry_device_api *ferry_device_find(int type) {
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
    if (devices[i]->type == type)
      return devices[i];
  return NULL;
}

int ferry_device_get(ferry_rt *rt, DLDevice dev, const ferry_device_api **out,
                     ferry_err *err) {
  *out = NULL;
  const ferry_device_api *api = ferry_device_find((int)dev.device_type);
  if (api == NULL) {
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                  "device type %d is not supported by this server (it serves CPU, type 1, "
                  "and OpenCL, type 4)",
                  (int)dev.device_type);
  }
  int n = api->count(rt);
  if (n == 0) {
    return ferry_err_set(err, FERRY_EUNSUPPORTED, "no %s device on this server: %s", api->name,
                  api->why_none(rt));
  }
  if (dev.device_id < 0 || dev.device_id >= n) {
    /* TVM's wording, which clients and their users already know. */
    return ferry_err_set(
        err, FERRY_EINVAL,
        "Check failed: device_id < devices.size() (%d vs. %d) : Invalid device id %d.",
        (int)dev.device_id, n, (int)dev.device_id);
  }
  *out = api;
  return FERRY_OK;
}

int ferry_rt_device_count(ferry_rt *rt, int type) {
  const ferry_device_api *api = ferry_device_find(type);
  return api ? api->count(rt) : 0;
}

int ferry_rt_device_check(ferry_rt *rt, DLDevice dev, ferry_err *err) {
  const ferry_device_api *api;
  return ferry_device_get(rt, dev, &api, err);
}

int ferry_rt_alloc(ferry_rt *rt, DLDevice dev, uint64_t nbytes, uint64_t align,
                   DLDataType type_hint, void **out, ferry_err *err) {
  (void)type_hint;
  *out = NULL;
  const ferry_device_api *api;
  int grc = ferry_device_get(rt, dev, &api, err);
  if (grc)
    return grc;
  return api->alloc(rt, dev.device_id, nbytes, align, NULL, out, err);
}

int ferry_rt_alloc_tensor(ferry_rt *rt, const DLTensor *tmpl, const char *scope, void **out,
                          ferry_err *err) {
  *out = NULL;
  if (tmpl->ndim < 0 || tmpl->ndim > FERRY_MAX_NDIM)
    return ferry_err_set(err, FERRY_ERANGE, "tensor rank %d is out of range 0..%d",
                         (int)tmpl->ndim, FERRY_MAX_NDIM);
  uint64_t nbytes;
  if (ferry_tensor_nbytes(tmpl, &nbytes) != FERRY_OK)
    return ferry_err_set(err, FERRY_ERANGE, "tensor shape is negative or its size overflows");
  const ferry_device_api *api;
  int grc = ferry_device_get(rt, tmpl->device, &api, err);
  if (grc)
    return grc;
  /* TVM aligns to max(64, element size); an element size that is not a
   * power of two, or a huge vector, gets the next power of two up to the
   * page size instead of an error. */
  uint64_t elem = ((uint64_t)tmpl->dtype.bits / 8) * tmpl->dtype.lanes;
  uint64_t align = FERRY_RT_ALIGN;
  while (align < elem && align < FERRY_RT_MAX_ALIGN)
    align *= 2;
  return api->alloc(rt, tmpl->device.device_id, nbytes, align, scope, out, err);
}

int ferry_rt_free(ferry_rt *rt, DLDevice dev, void *ptr, ferry_err *err) {
  const ferry_device_api *api;
  int grc = ferry_device_get(rt, dev, &api, err);
  return grc ? grc : api->free(rt, ptr, err);
}

int ferry_rt_dev_attr(ferry_rt *rt, DLDevice dev, int kind, ferry_value *out, ferry_call *storage,
                      ferry_err *err) {
  out->kind = FERRY_KIND_NONE;
  out->v.i = 0;
  if (kind == 0) {
    /* kExist: TVM answers 0 rather than an error for devices it does not
     * have. */
    const ferry_device_api *api = ferry_device_find((int)dev.device_type);
    out->kind = FERRY_KIND_INT;
    out->v.i = api != NULL && dev.device_id >= 0 && dev.device_id < api->count(rt);
    return FERRY_OK;
  }
  const ferry_device_api *api;
  int grc = ferry_device_get(rt, dev, &api, err);
  if (grc)
    return grc;
  if (kind < 0 || kind > 16)
    return ferry_err_set(err, FERRY_EINVAL, "unknown device attribute kind %d", kind);
  return api->attr(rt, dev.device_id, kind, out, storage, err);
}

int ferry_rt_check_tensor(ferry_rt *rt, const DLTensor *t, uint64_t nbytes, ferry_err *err) {
  const ferry_device_api *api;
  int grc = ferry_device_get(rt, t->device, &api, err);
  if (grc)
    return grc;
  return api->check(rt, t->data, t->byte_offset, nbytes, err);
}

int ferry_rt_copy_to_host(ferry_rt *rt, const DLTensor *t, void *dst, uint64_t nbytes,
                          ferry_err *err) {
  const ferry_device_api *api;
  int grc = ferry_device_get(rt, t->device, &api, err);
  if (grc)
    return grc;
  int rc = api->check(rt, t->data, t->byte_offset, nbytes, err);
  return rc ? rc : api->to_host(rt, t->data, t->byte_offset, dst, nbytes, err);
}

int ferry_rt_copy_from_host(ferry_rt *rt, const DLTensor *t, const void *src, uint64_t nbytes,
                            ferry_err *err) {
  const ferry_device_api *api;
  int grc = ferry_device_get(rt, t->device, &api, err);
  if (grc)
    return grc;
  int rc = api->check(rt, t->data, t->byte_offset, nbytes, err);
  return rc ? rc : api->from_host(rt, t->data, t->byte_offset, src, nbytes, err);
}

int ferry_rt_sync(ferry_rt *rt, DLDevice dev, ferry_err *err) {
  const ferry_device_api *api;
  int grc = ferry_device_get(rt, dev, &api, err);
  return grc ? grc : api->sync(rt, dev.device_id, err);
}

static int is_compact(const DLTensor *t) {
  if (t->strides == NULL)
    return 1;
  int64_t expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != expect)
      return 0;
    expect *= t->shape[i];
  }
  return 1;
}

int ferry_rt_copy_tensor(ferry_rt *rt, const DLTensor *from, const DLTensor *to, ferry_err *err) {
  const ferry_device_api *fa, *ta;
  int grc = ferry_device_get(rt, from->device, &fa, err);
  if (grc == FERRY_OK)
    grc = ferry_device_get(rt, to->device, &ta, err);
  if (grc)
    return grc;
  uint64_t n_from, n_to;
  if (ferry_tensor_nbytes(from, &n_from) || ferry_tensor_nbytes(to, &n_to))
    return ferry_err_set(err, FERRY_ERANGE, "tensor shape is negative or its size overflows");
  if (n_from != n_to)
    return ferry_err_set(err, FERRY_EINVAL,
                         "copy between tensors of different sizes (%llu and %llu bytes)",
                         (unsigned long long)n_from, (unsigned long long)n_to);
  if (!is_compact(from) || !is_compact(to))
    return ferry_err_set(err, FERRY_EUNSUPPORTED, "copy of non-compact tensors");
  int rc = fa->check(rt, from->data, from->byte_offset, n_from, err);
  if (rc == FERRY_OK)
    rc = ta->check(rt, to->data, to->byte_offset, n_to, err);
  if (rc)
    return rc;
  if (fa == ta)
    return fa->among(rt, from->data, from->byte_offset, to->data, to->byte_offset, n_from, err);
  /* Host <-> device, as TVM's CopyDataFromTo does on one process. */
  if (fa == &ferry_device_cpu)
    return ta->from_host(rt, to->data, to->byte_offset, (const char *)from->data + from->byte_offset,
                         n_from, err);
  if (ta == &ferry_device_cpu)
    return fa->to_host(rt, from->data, from->byte_offset, (char *)to->data + to->byte_offset,
                       n_from, err);
  return ferry_err_set(err, FERRY_EUNSUPPORTED, "copy from %s to %s directly is not supported",
                       fa->name, ta->name);
}

void *ferry_device_workspace_alloc(ferry_rt *rt, int type, int id, uint64_t nbytes,
                                   ferry_err *err) {
  DLDevice dev = {(DLDeviceType)type, id};
  const ferry_device_api *api;
  if (ferry_device_get(rt, dev, &api, err) != FERRY_OK)
    return NULL;
  if (nbytes > FERRY_RT_MAX_WORKSPACE) {
    ferry_err_set(err, FERRY_ETOOBIG, "workspace of %llu bytes is over the limit of %llu",
                  (unsigned long long)nbytes, (unsigned long long)FERRY_RT_MAX_WORKSPACE);
    return NULL;
  }
  void *p = NULL;
  if (api->alloc(rt, id, nbytes, FERRY_RT_ALIGN, NULL, &p, err) != FERRY_OK)
    return NULL;
  return p;
}

int ferry_device_workspace_free(ferry_rt *rt, int type, void *data, ferry_err *err) {
  const ferry_device_api *api = ferry_device_find(type);
  if (api == NULL)
    return ferry_err_set(err, FERRY_EUNSUPPORTED, "device type %d has no workspaces", type);
  return api->free(rt, data, err);
}

void ferry_rt_describe_devices(char *out, size_t cap) {
  ferry_rt_options opt;
  memset(&opt, 0, sizeof opt);
  opt.work_dir = "/";
  ferry_rt *rt = NULL;
  ferry_err err;
  ferry_err_clear(&err);
  snprintf(out, cap, "cpu");
  if (ferry_rt_open(&rt, &opt, &err) != FERRY_OK)
    return;
  struct ferry_cl *cl = ferry_cl_get(rt);
  size_t len = strlen(out);
  if (cl != NULL && cl->ndev == 0)
    snprintf(out + len, cap - len, " (no opencl: %s)", cl->why);
  for (int i = 0; cl != NULL && i < cl->ndev; i++) {
    len = strlen(out);
    snprintf(out + len, cap - len, ", opencl:%d (%s%s)", i, cl->devs[i].name,
             cl->cpu_fallback ? ", a CPU device: no OpenCL GPU found" : "");
  }
  ferry_rt_close(rt);
}

void ferry_device_timer_start(ferry_rt *rt, DLDevice dev) {
  const ferry_device_api *api = ferry_device_find((int)dev.device_type);
  if (api != NULL && api->timer_start != NULL)
    api->timer_start(rt, dev.device_id);
}

int64_t ferry_device_timer_stop(ferry_rt *rt, DLDevice dev) {
  const ferry_device_api *api = ferry_device_find((int)dev.device_type);
  return api != NULL && api->timer_stop != NULL ? api->timer_stop(rt, dev.device_id) : -1;
}
