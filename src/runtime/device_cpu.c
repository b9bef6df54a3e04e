/* The CPU device API and the session's table of live allocations.
 *
 * Every buffer handed to the client (kDevAllocData, tensor storage, NDArray
 * data) is recorded in a table sorted by address, so that a data pointer
 * arriving from the wire can be checked (ferry_rt_check_range) before
 * anything dereferences it.  Lookups are O(log n); insertions and removals
 * O(n) memmove, which is fine for the few thousand buffers a session holds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

uint64_t ferry_rt_max_memory(const ferry_rt *rt) {
  return rt->max_total;
}

uint64_t ferry_rt_default_max_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0)
    return FERRY_RT_MAX_ALLOC_TOTAL;
  return (uint64_t)pages * (uint64_t)page / 2;
}

int ferry_rt_check_device(DLDevice dev, ferry_err *err) {
  if (dev.device_type != kDLCPU)
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "device type %d is not supported by this server (only CPU, type 1)",
                         (int)dev.device_type);
  if (dev.device_id < 0)
    return ferry_err_set(err, FERRY_EINVAL, "invalid CPU device id %d", (int)dev.device_id);
  return FERRY_OK;
}

/* Index of the first entry with addr > p. */
static size_t upper_bound(const ferry_rt *rt, uintptr_t p) {
  size_t lo = 0, hi = rt->nallocs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (rt->allocs[mid].addr <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int table_insert(ferry_rt *rt, void *ptr, uint64_t size, ferry_err *err) {
  if (rt->nallocs == rt->cap_allocs) {
    size_t ncap = rt->cap_allocs ? rt->cap_allocs * 2 : 64;
    struct ferry_alloc_entry *n = realloc(rt->allocs, ncap * sizeof *n);
    if (n == NULL)
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory recording an allocation");
    rt->allocs = n;
    rt->cap_allocs = ncap;
  }
  size_t at = upper_bound(rt, (uintptr_t)ptr);
  memmove(&rt->allocs[at + 1], &rt->allocs[at], (rt->nallocs - at) * sizeof rt->allocs[0]);
  rt->allocs[at].addr = (uintptr_t)ptr;
  rt->allocs[at].size = size;
  rt->allocs[at].owned = 0;
  rt->nallocs++;
  rt->total_bytes += size;
  return FERRY_OK;
}

int ferry_rt_alloc(ferry_rt *rt, DLDevice dev, uint64_t nbytes, uint64_t align,
                   DLDataType type_hint, void **out, ferry_err *err) {
  (void)type_hint;
  *out = NULL;
  int rc = ferry_rt_check_device(dev, err);
  if (rc)
    return rc;
  if (align == 0 || align < FERRY_RT_ALIGN)
    align = FERRY_RT_ALIGN;
  if (align > FERRY_RT_MAX_ALIGN || (align & (align - 1)) != 0)
    return ferry_err_set(err, FERRY_EINVAL,
                         "alignment %llu is not a power of two up to %u",
                         (unsigned long long)align, FERRY_RT_MAX_ALIGN);
  uint64_t size = nbytes ? nbytes : 1;
  pthread_mutex_lock(&rt->lock);
  if (size > rt->max_total || size > rt->max_total - rt->total_bytes ||
      rt->nallocs >= FERRY_RT_MAX_ALLOCS) {
    uint64_t used = rt->total_bytes;
    pthread_mutex_unlock(&rt->lock);
    return ferry_err_set(err, FERRY_ETOOBIG,
                         "cannot allocate %llu bytes: the session already holds %llu bytes "
                         "(limit %llu, --max-memory) or too many buffers",
                         (unsigned long long)nbytes, (unsigned long long)used,
                         (unsigned long long)rt->max_total);
  }
  void *p = NULL;
  if (posix_memalign(&p, (size_t)align, (size_t)size) != 0) {
    pthread_mutex_unlock(&rt->lock);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory allocating %llu bytes",
                         (unsigned long long)nbytes);
  }
  rc = table_insert(rt, p, size, err);
  pthread_mutex_unlock(&rt->lock);
  if (rc) {
    free(p);
    return rc;
  }
  *out = p;
  return FERRY_OK;
}

int ferry_rt_alloc_tensor(ferry_rt *rt, const DLTensor *tmpl, const char *scope, void **out,
                          ferry_err *err) {
  *out = NULL;
  if (scope != NULL && scope[0] != 0 && strcmp(scope, "global") != 0)
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "memory scope '%s' is not supported on CPU (only \"global\")", scope);
  if (tmpl->ndim < 0 || tmpl->ndim > FERRY_MAX_NDIM)
    return ferry_err_set(err, FERRY_ERANGE, "tensor rank %d is out of range 0..%d",
                         (int)tmpl->ndim, FERRY_MAX_NDIM);
  uint64_t nbytes;
  if (ferry_tensor_nbytes(tmpl, &nbytes) != FERRY_OK)
    return ferry_err_set(err, FERRY_ERANGE, "tensor shape is negative or its size overflows");
  /* TVM aligns to max(64, element size); an element size that is not a
   * power of two, or a huge vector, gets the next power of two up to the
   * page size instead of an error. */
  uint64_t elem = ((uint64_t)tmpl->dtype.bits / 8) * tmpl->dtype.lanes;
  uint64_t align = FERRY_RT_ALIGN;
  while (align < elem && align < FERRY_RT_MAX_ALIGN)
    align *= 2;
  return ferry_rt_alloc(rt, tmpl->device, nbytes, align, tmpl->dtype, out, err);
}

/* Removes ptr from the table and frees it.  allow_owned: 0 for a client's
 * kDevFreeData, 1 for the NDArray that owns the memory. */
static int rt_free(ferry_rt *rt, void *ptr, int allow_owned, ferry_err *err) {
  pthread_mutex_lock(&rt->lock);
  size_t at = upper_bound(rt, (uintptr_t)ptr);
  if (at == 0 || rt->allocs[at - 1].addr != (uintptr_t)ptr) {
    pthread_mutex_unlock(&rt->lock);
    return ferry_err_set(err, FERRY_EBADHANDLE,
                         "free of %p: not a live allocation of this session", ptr);
  }
  at--;
  if (rt->allocs[at].owned && !allow_owned) {
    pthread_mutex_unlock(&rt->lock);
    return ferry_err_set(err, FERRY_EPERM,
                         "free of %p: that memory is the storage of an NDArray (a graph "
                         "executor's, a parameter's, or one the client holds); release the "
                         "NDArray's handle instead",
                         ptr);
  }
  rt->total_bytes -= rt->allocs[at].size;
  memmove(&rt->allocs[at], &rt->allocs[at + 1], (rt->nallocs - at - 1) * sizeof rt->allocs[0]);
  rt->nallocs--;
  pthread_mutex_unlock(&rt->lock);
  free(ptr);
  return FERRY_OK;
}

int ferry_rt_free(ferry_rt *rt, DLDevice dev, void *ptr, ferry_err *err) {
  int rc = ferry_rt_check_device(dev, err);
  return rc ? rc : rt_free(rt, ptr, 0, err);
}

int ferry_rt_check_range(ferry_rt *rt, const void *ptr, uint64_t nbytes, ferry_err *err) {
  uintptr_t p = (uintptr_t)ptr;
  pthread_mutex_lock(&rt->lock);
  size_t at = upper_bound(rt, p);
  int ok = 0;
  if (at > 0) {
    const struct ferry_alloc_entry *e = &rt->allocs[at - 1];
    uint64_t off = p - e->addr;
    ok = off <= e->size && nbytes <= e->size - off;
  }
  pthread_mutex_unlock(&rt->lock);
  if (!ok)
    return ferry_err_set(err, FERRY_EBADHANDLE,
                         "data pointer %p with %llu bytes is not inside a live allocation of "
                         "this session",
                         ptr, (unsigned long long)nbytes);
  return FERRY_OK;
}

void ferry_rt_free_all(ferry_rt *rt) {
  for (size_t i = 0; i < rt->nallocs; i++)
    free((void *)rt->allocs[i].addr);
  free(rt->allocs);
  rt->allocs = NULL;
  rt->nallocs = rt->cap_allocs = 0;
  rt->total_bytes = 0;
}

/* DeviceAttrKind values (spec rpc-session.md 4.6). */
enum { ATTR_EXIST = 0, ATTR_TOTAL_GLOBAL_MEMORY = 14 };

int ferry_rt_dev_attr(ferry_rt *rt, DLDevice dev, int kind, ferry_value *out, ferry_call *storage,
                      ferry_err *err) {
  (void)rt;
  (void)storage;
  out->kind = FERRY_KIND_NONE;
  out->v.i = 0;
  if (kind == ATTR_EXIST) {
    /* TVM answers 0 rather than an error for devices it does not know. */
    out->kind = FERRY_KIND_INT;
    out->v.i = dev.device_type == kDLCPU && dev.device_id >= 0;
    return FERRY_OK;
  }
  int rc = ferry_rt_check_device(dev, err);
  if (rc)
    return rc;
  if (kind < 0 || kind > 16)
    return ferry_err_set(err, FERRY_EINVAL, "unknown device attribute kind %d", kind);
  if (kind == ATTR_TOTAL_GLOBAL_MEMORY) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    out->kind = FERRY_KIND_INT;
    out->v.i = pages > 0 && psize > 0 ? (int64_t)pages * psize : -1;
  }
  /* Every other attribute is None on CPU, as TVM's CPU device answers. */
  return FERRY_OK;
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
  (void)rt;
  int rc = ferry_rt_check_device(from->device, err);
  if (rc == FERRY_OK)
    rc = ferry_rt_check_device(to->device, err);
  if (rc)
    return rc;
  uint64_t n_from, n_to;
  if (ferry_tensor_nbytes(from, &n_from) || ferry_tensor_nbytes(to, &n_to))
    return ferry_err_set(err, FERRY_ERANGE, "tensor shape is negative or its size overflows");
  if (n_from != n_to)
    return ferry_err_set(err, FERRY_EINVAL,
                         "copy between tensors of different sizes (%llu and %llu bytes)",
                         (unsigned long long)n_from, (unsigned long long)n_to);
  if (!is_compact(from) || !is_compact(to))
    return ferry_err_set(err, FERRY_EUNSUPPORTED, "copy of non-compact tensors");
  if (n_from)
    memmove((char *)to->data + to->byte_offset, (const char *)from->data + from->byte_offset,
            (size_t)n_from);
  return FERRY_OK;
}

/* ---- NDArray ------------------------------------------------------------- */

static void ndarray_destroy(ferry_obj *o) {
  ferry_ndarray *nd = (ferry_ndarray *)o;
  ferry_err ignored;
  ferry_err_clear(&ignored);
  if (nd->tensor.data != NULL)
    if (rt_free(nd->rt, nd->tensor.data, 1, &ignored) != FERRY_OK) {
      /* Already gone (the runtime was closed first): nothing to free. */
    }
  free(nd);
}

int ferry_ndarray_new(ferry_rt *rt, int ndim, const int64_t *shape, DLDataType dtype, DLDevice dev,
                      ferry_ndarray **out, ferry_err *err) {
  *out = NULL;
  if (ndim < 0 || ndim > FERRY_MAX_NDIM)
    return ferry_err_set(err, FERRY_ERANGE, "tensor rank %d is out of range 0..%d", ndim,
                         FERRY_MAX_NDIM);
  ferry_ndarray *nd = calloc(1, sizeof *nd);
  if (nd == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  ferry_obj_init(&nd->base, FERRY_OBJ_NDARRAY, ndarray_destroy);
  nd->rt = rt;
  if (ndim)
    memcpy(nd->shape_storage, shape, (size_t)ndim * sizeof shape[0]);
  nd->tensor.ndim = ndim;
  nd->tensor.shape = nd->shape_storage;
  nd->tensor.dtype = dtype;
  nd->tensor.device = dev;
  int rc = ferry_rt_alloc_tensor(rt, &nd->tensor, NULL, &nd->tensor.data, err);
  if (rc) {
    free(nd);
    return rc;
  }
  /* From here on only the NDArray frees this memory (see owned). */
  pthread_mutex_lock(&rt->lock);
  size_t at = upper_bound(rt, (uintptr_t)nd->tensor.data);
  rt->allocs[at - 1].owned = 1;
  pthread_mutex_unlock(&rt->lock);
  *out = nd;
  return FERRY_OK;
}
