/* The CPU device (ferry_device_cpu) and the session's table of live
 * host allocations.
 *
 * Every buffer handed to the client (kDevAllocData, tensor storage, NDArray
 * data) is recorded in a table sorted by address, so that a data pointer
 * arriving from the wire can be checked (ferry_rt_check_range) before
 * anything dereferences it.  Lookups are O(log n); insertions and removals
 * O(n) memmove, which is fine for the few thousand buffers a session holds. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/device/device.h"

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

int ferry_cpu_alloc(ferry_rt *rt, uint64_t nbytes, uint64_t align, void **out,
                    ferry_err *err) {
  *out = NULL;
  int rc;
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

static int cpu_alloc(ferry_rt *rt, int id, uint64_t nbytes, uint64_t align, const char *scope,
                     void **out, ferry_err *err) {
  (void)id;
  *out = NULL;
  if (scope != NULL && scope[0] != 0 && strcmp(scope, "global") != 0)
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "memory scope '%s' is not supported on CPU (only \"global\")", scope);
  return ferry_cpu_alloc(rt, nbytes, align, out, err);
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

static int cpu_free(ferry_rt *rt, void *ptr, ferry_err *err) { return rt_free(rt, ptr, 0, err); }

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
enum { ATTR_TOTAL_GLOBAL_MEMORY = 14 };

static int cpu_attr(ferry_rt *rt, int id, int kind, ferry_value *out, ferry_call *storage,
                    ferry_err *err) {
  (void)rt;
  (void)id;
  (void)storage;
  (void)err;
  out->kind = FERRY_KIND_NONE;
  out->v.i = 0;
  if (kind == ATTR_TOTAL_GLOBAL_MEMORY) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    out->kind = FERRY_KIND_INT;
    out->v.i = pages > 0 && psize > 0 ? (int64_t)pages * psize : -1;
  }
  /* Every other attribute is None on CPU, as TVM's CPU device answers. */
  return FERRY_OK;
}

static int cpu_count(ferry_rt *rt) {
  (void)rt;
  /* TVM's CPU device accepts every id: they all name the host. */
  return INT_MAX;
}

static const char *cpu_why_none(ferry_rt *rt) {
  (void)rt;
  return "";
}

static int cpu_check(ferry_rt *rt, const void *data, uint64_t offset, uint64_t nbytes,
                     ferry_err *err) {
  if (offset > UINTPTR_MAX - (uintptr_t)data)
    return ferry_err_set(err, FERRY_ERANGE, "byte offset %llu overflows the address",
                         (unsigned long long)offset);
  return ferry_rt_check_range(rt, (const char *)data + offset, nbytes, err);
}

static int cpu_to_host(ferry_rt *rt, const void *data, uint64_t offset, void *dst,
                       uint64_t nbytes, ferry_err *err) {
  (void)rt;
  (void)err;
  if (nbytes)
    memcpy(dst, (const char *)data + offset, (size_t)nbytes);
  return FERRY_OK;
}

static int cpu_from_host(ferry_rt *rt, void *data, uint64_t offset, const void *src,
                         uint64_t nbytes, ferry_err *err) {
  (void)rt;
  (void)err;
  if (nbytes)
    memcpy((char *)data + offset, src, (size_t)nbytes);
  return FERRY_OK;
}

static int cpu_among(ferry_rt *rt, const void *from, uint64_t from_offset, void *to,
                     uint64_t to_offset, uint64_t nbytes, ferry_err *err) {
  (void)rt;
  (void)err;
  /* memmove: the client may copy a tensor onto an overlapping view. */
  if (nbytes)
    memmove((char *)to + to_offset, (const char *)from + from_offset, (size_t)nbytes);
  return FERRY_OK;
}

static int cpu_sync(ferry_rt *rt, int id, ferry_err *err) {
  (void)rt;
  (void)id;
  (void)err;
  return FERRY_OK; /* CPU work is synchronous */
}

const ferry_device_api ferry_device_cpu = {
    .name = "cpu",
    .type = kDLCPU,
    .count = cpu_count,
    .why_none = cpu_why_none,
    .attr = cpu_attr,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .check = cpu_check,
    .to_host = cpu_to_host,
    .from_host = cpu_from_host,
    .among = cpu_among,
    .sync = cpu_sync,
    .timer_start = NULL,
    .timer_stop = NULL,
};

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
  /* NDArrays (parameters, graph executor pools) live on the host: the
   * parts that make them read and write their memory directly. */
  if (dev.device_type != kDLCPU) {
    free(nd);
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "NDArray on device type %d: only CPU arrays can be created here",
                         (int)dev.device_type);
  }
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
