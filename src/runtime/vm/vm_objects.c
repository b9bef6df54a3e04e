/* What a VM register can hold besides plain values: pooled Storage, tensor
 * views that keep their storage alive, Shapes, Arrays (tuples) and
 * closures.  Every buffer comes from ferry_ndarray_new, so it is in the
 * session's allocation table (results pass the session's range checks)
 * and the client cannot free it with kDevFreeData while a view uses it. */
#include <stdlib.h>
#include <string.h>

#include "runtime/vm/vm.h"

/* ---- values ------------------------------------------------------------------ */

int ferry_vm_value_is_obj(const ferry_value *v) {
  return v->kind == FERRY_KIND_FUNC || v->kind == FERRY_KIND_MODULE ||
         v->kind == FERRY_KIND_NDARRAY || v->kind == FERRY_KIND_OBJECT;
}

void ferry_vm_value_retain(ferry_value *dst, const ferry_value *src) {
  *dst = *src;
  if (ferry_vm_value_is_obj(src) && src->v.obj != NULL)
    ferry_obj_retain(src->v.obj);
}

void ferry_vm_value_release(ferry_value *v) {
  if (ferry_vm_value_is_obj(v))
    ferry_obj_release(v->v.obj);
  v->kind = FERRY_KIND_NONE;
  v->v.i = 0;
}

ferry_other *ferry_vm_cast(const ferry_value *v, const char *type_key) {
  if (v->kind != FERRY_KIND_OBJECT || v->v.obj == NULL || v->v.obj->type != FERRY_OBJ_OTHER)
    return NULL;
  ferry_other *o = (ferry_other *)v->v.obj;
  /* The keys are the same static strings almost always: compare the
   * pointers first (this runs for nearly every builtin argument). */
  return o->type_key == type_key || strcmp(o->type_key, type_key) == 0 ? o : NULL;
}

/* ---- the pooled allocator ------------------------------------------------------ */

enum { CACHE_STORAGE = 0, CACHE_VIEW = 1 };

/* A struct of kind k from the pool's cache (zeroed), else calloc. */
static void *obj_get(ferry_vm_pool *p, int k, size_t size) {
  if (p->nfree_objs[k] == 0)
    return calloc(1, size);
  void *o = p->free_objs[k][--p->nfree_objs[k]];
  memset(o, 0, size);
  return o;
}

/* Keeps a dead struct for reuse; the caller still holds the pool. */
static void obj_put(ferry_vm_pool *p, int k, void *o) {
  if (p->nfree_objs[k] < FERRY_VM_OBJ_CACHE)
    p->free_objs[k][p->nfree_objs[k]++] = o;
  else
    free(o);
}

static void pool_destroy(ferry_obj *o) {
  ferry_vm_pool *p = (ferry_vm_pool *)o;
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < p->nfree_objs[k]; i++)
      free(p->free_objs[k][i]);
  for (size_t i = 0; i < p->nfree; i++)
    ferry_obj_release(&p->free_bufs[i]->base);
  free(p->free_bufs);
  free(p);
}

int ferry_vm_pool_new(ferry_rt *rt, DLDevice dev, uint64_t cap, ferry_vm_pool **out,
                      ferry_err *err) {
  ferry_vm_pool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  ferry_obj_init(&p->hdr.base, FERRY_OBJ_OTHER, pool_destroy);
  p->hdr.type_key = FERRY_VM_POOL_KEY;
  p->rt = rt;
  p->dev = dev;
  p->cap = cap;
  *out = p;
  return FERRY_OK;
}

static uint64_t buf_size(const ferry_ndarray *b) {
  return (uint64_t)b->tensor.shape[0];
}

static void storage_destroy(ferry_obj *o) {
  ferry_vm_storage *s = (ferry_vm_storage *)o;
  ferry_vm_pool *p = s->pool;
  /* Back to the free list; a buffer that cannot be recorded is freed. */
  if (p->nfree == p->cap_free) {
    size_t ncap = p->cap_free ? p->cap_free * 2 : 16;
    ferry_ndarray **n = realloc(p->free_bufs, ncap * sizeof *n);
    if (n != NULL) {
      p->free_bufs = n;
      p->cap_free = ncap;
    }
  }
  if (p->nfree < p->cap_free) {
    p->free_bufs[p->nfree++] = s->buf;
  } else {
    p->used -= buf_size(s->buf);
    ferry_obj_release(&s->buf->base);
  }
  obj_put(p, CACHE_STORAGE, s); /* freed with the pool if this was its last holder */
  ferry_obj_release(&p->hdr.base);
}

int ferry_vm_storage_new(ferry_vm_pool *p, uint64_t nbytes, ferry_vm_storage **out,
                         ferry_err *err) {
  *out = NULL;
  if (nbytes > p->cap)
    return ferry_err_set(err, FERRY_ETOOBIG,
                         "alloc_storage of %llu bytes is over the VM memory limit of %llu "
                         "bytes (--max-memory)",
                         (unsigned long long)nbytes, (unsigned long long)p->cap);
  uint64_t size = (nbytes + FERRY_VM_POOL_PAGE - 1) / FERRY_VM_POOL_PAGE * FERRY_VM_POOL_PAGE;
  if (size == 0)
    size = FERRY_VM_POOL_PAGE;
  ferry_vm_storage *s = obj_get(p, CACHE_STORAGE, sizeof *s);
  if (s == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  ferry_ndarray *buf = NULL;
  for (size_t i = 0; i < p->nfree; i++)
    if (buf_size(p->free_bufs[i]) == size) {
      buf = p->free_bufs[i];
      p->free_bufs[i] = p->free_bufs[--p->nfree];
      break;
    }
  /* Over the cap with buffers cached: give the cache back first, as TVM's
   * pooled allocator does when an allocation fails. */
  if (buf == NULL && size > p->cap - p->used) {
    while (p->nfree > 0) {
      ferry_ndarray *b = p->free_bufs[--p->nfree];
      p->used -= buf_size(b);
      ferry_obj_release(&b->base);
    }
  }
  if (buf == NULL && size > p->cap - p->used) {
    free(s);
    return ferry_err_set(err, FERRY_ETOOBIG,
                         "alloc_storage of %llu bytes: the VM already holds %llu bytes "
                         "(limit %llu, --max-memory)",
                         (unsigned long long)nbytes, (unsigned long long)p->used,
                         (unsigned long long)p->cap);
  }
  if (buf == NULL) {
    int64_t shape[1] = {(int64_t)size};
    DLDataType u8 = {kDLUInt, 8, 1};
    int rc = ferry_ndarray_new(p->rt, 1, shape, u8, p->dev, &buf, err);
    if (rc) {
      free(s);
      return rc;
    }
    p->used += size;
  }
  ferry_obj_init(&s->hdr.base, FERRY_OBJ_OTHER, storage_destroy);
  s->hdr.type_key = FERRY_VM_STORAGE_KEY;
  s->buf = buf;
  s->size = nbytes;
  ferry_obj_retain(&p->hdr.base);
  s->pool = p;
  *out = s;
  return FERRY_OK;
}

/* ---- views ------------------------------------------------------------------------ */

struct vm_view {
  ferry_ndarray nd;
  ferry_obj *owner;
  ferry_vm_pool *pool; /* the struct's cache (the owner keeps it alive), or NULL */
};

static void view_destroy(ferry_obj *o) {
  struct vm_view *v = (struct vm_view *)o;
  ferry_obj *owner = v->owner;
  if (v->pool)
    obj_put(v->pool, CACHE_VIEW, v);
  else
    free(v);
  ferry_obj_release(owner);
}

static void view_init(struct vm_view *v, ferry_obj *owner, void *data, DLDevice dev, int ndim,
                      const int64_t *shape, DLDataType dtype, ferry_rt *rt) {
  ferry_obj_init(&v->nd.base, FERRY_OBJ_NDARRAY, view_destroy);
  v->nd.rt = rt;
  v->nd.tensor.data = data;
  v->nd.tensor.device = dev;
  v->nd.tensor.ndim = ndim;
  v->nd.tensor.dtype = dtype;
  v->nd.tensor.shape = v->nd.shape_storage;
  if (ndim)
    memcpy(v->nd.shape_storage, shape, (size_t)ndim * sizeof *shape);
  ferry_obj_retain(owner);
  v->owner = owner;
}

int ferry_vm_storage_view_new(ferry_vm_storage *s, uint64_t offset, int ndim, const int64_t *shape,
                              DLDataType dtype, ferry_rt *rt, ferry_ndarray **out,
                              ferry_err *err) {
  *out = NULL;
  if (ndim < 0 || ndim > FERRY_MAX_NDIM)
    return ferry_err_set(err, FERRY_ERANGE, "tensor rank %d is out of range 0..%d", ndim,
                         FERRY_MAX_NDIM);
  struct vm_view *v = obj_get(s->pool, CACHE_VIEW, sizeof *v);
  if (v == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  view_init(v, &s->hdr.base, (char *)s->buf->tensor.data + offset, s->buf->tensor.device, ndim,
            shape, dtype, rt);
  v->pool = s->pool;
  *out = &v->nd;
  return FERRY_OK;
}

int ferry_vm_view_new(ferry_obj *owner, void *data, DLDevice dev, int ndim, const int64_t *shape,
                      DLDataType dtype, ferry_rt *rt, ferry_ndarray **out, ferry_err *err) {
  *out = NULL;
  if (ndim < 0 || ndim > FERRY_MAX_NDIM)
    return ferry_err_set(err, FERRY_ERANGE, "tensor rank %d is out of range 0..%d", ndim,
                         FERRY_MAX_NDIM);
  struct vm_view *v = calloc(1, sizeof *v);
  if (v == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  view_init(v, owner, data, dev, ndim, shape, dtype, rt);
  *out = &v->nd;
  return FERRY_OK;
}

/* ---- Shape, Array, Closure --------------------------------------------------------- */

static void shape_destroy(ferry_obj *o) {
  ferry_vm_shape *s = (ferry_vm_shape *)o;
  free(s->dims);
  free(s);
}

int ferry_vm_shape_new(int64_t ndim, const int64_t *dims, ferry_vm_shape **out,
                       ferry_err *err) {
  *out = NULL;
  if (ndim < 0 || ndim > FERRY_RELAX_MAX_SHAPE_NDIM)
    return ferry_err_set(err, FERRY_ERANGE, "shape of %lld dimensions (at most %d)",
                         (long long)ndim, FERRY_RELAX_MAX_SHAPE_NDIM);
  ferry_vm_shape *s = calloc(1, sizeof *s);
  int64_t *d = malloc((size_t)(ndim ? ndim : 1) * sizeof *d);
  if (s == NULL || d == NULL) {
    free(s);
    free(d);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  ferry_obj_init(&s->hdr.base, FERRY_OBJ_OTHER, shape_destroy);
  s->hdr.type_key = FERRY_VM_SHAPE_KEY;
  s->ndim = ndim;
  s->dims = d;
  if (ndim)
    memcpy(d, dims, (size_t)ndim * sizeof *d);
  *out = s;
  return FERRY_OK;
}

static void values_free(ferry_value *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    ferry_vm_value_release(&v[i]);
  free(v);
}

/* Copies n values with a reference each; STR values cannot be kept (they
 * are borrowed) unless they point into the executable, which the caller
 * guarantees for VM registers. */
static int values_copy(const ferry_value *src, size_t n, ferry_value **out, ferry_err *err) {
  ferry_value *v = calloc(n ? n : 1, sizeof *v);
  if (v == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    ferry_vm_value_retain(&v[i], &src[i]);
  *out = v;
  return FERRY_OK;
}

static void array_destroy(ferry_obj *o) {
  ferry_vm_array *a = (ferry_vm_array *)o;
  values_free(a->items, a->n);
  free(a);
}

int ferry_vm_array_new(const ferry_value *items, size_t n, ferry_vm_array **out,
                       ferry_err *err) {
  *out = NULL;
  if (n > FERRY_VM_MAX_TUPLE)
    return ferry_err_set(err, FERRY_ERANGE, "tuple of %zu elements (at most %u)", n,
                         FERRY_VM_MAX_TUPLE);
  ferry_vm_array *a = calloc(1, sizeof *a);
  if (a == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  int rc = values_copy(items, n, &a->items, err);
  if (rc) {
    free(a);
    return rc;
  }
  ferry_obj_init(&a->hdr.base, FERRY_OBJ_OTHER, array_destroy);
  a->hdr.type_key = FERRY_VM_ARRAY_KEY;
  a->n = n;
  *out = a;
  return FERRY_OK;
}

static void closure_destroy(ferry_obj *o) {
  ferry_vm_closure *c = (ferry_vm_closure *)o;
  values_free(c->bound, c->nbound);
  free(c);
}

int ferry_vm_closure_new(int64_t func_idx, const ferry_value *bound, size_t nbound,
                         ferry_vm_closure **out, ferry_err *err) {
  *out = NULL;
  ferry_vm_closure *c = calloc(1, sizeof *c);
  if (c == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  int rc = values_copy(bound, nbound, &c->bound, err);
  if (rc) {
    free(c);
    return rc;
  }
  ferry_obj_init(&c->hdr.base, FERRY_OBJ_OTHER, closure_destroy);
  c->hdr.type_key = FERRY_VM_CLOSURE_KEY;
  c->func_idx = func_idx;
  c->nbound = nbound;
  *out = c;
  return FERRY_OK;
}

const DLTensor *ferry_vm_tensor_of(const ferry_value *v) {
  if (v->kind == FERRY_KIND_TENSOR)
    return v->v.tensor;
  if (v->kind == FERRY_KIND_NDARRAY && v->v.obj != NULL)
    return &((ferry_ndarray *)v->v.obj)->tensor;
  return NULL;
}
