/* Errors, reference counting, call frames and the argument helpers every
 * built-in uses. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

int ferry_err_set(ferry_err *e, int code, const char *fmt, ...) {
  if (e == NULL || e->code != 0)
    return code; /* the first (innermost) message wins */
  e->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return code;
}

void ferry_obj_init(ferry_obj *o, enum ferry_obj_type type, void (*destroy)(ferry_obj *)) {
  atomic_init(&o->refs, 1);
  o->type = type;
  o->destroy = destroy;
}

void ferry_obj_retain(ferry_obj *o) {
  if (o != NULL)
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void ferry_obj_release(ferry_obj *o) {
  if (o == NULL)
    return;
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
    o->destroy(o);
}

/* ---- call frames -------------------------------------------------------- */

void ferry_call_init(ferry_call *c, struct ferry_rt *rt, const ferry_value *args, int nargs,
                     ferry_err *err, size_t max_ret_bytes) {
  c->args = args;
  c->nargs = nargs;
  c->ret.kind = FERRY_KIND_NONE;
  c->ret.v.i = 0;
  ferry_buf_init(&c->ret_storage, max_ret_bytes);
  c->err = err;
  c->rt = rt;
}

static int kind_is_obj(enum ferry_kind k) {
  return k == FERRY_KIND_FUNC || k == FERRY_KIND_MODULE || k == FERRY_KIND_NDARRAY ||
         k == FERRY_KIND_OBJECT;
}

void ferry_call_close(ferry_call *c) {
  if (kind_is_obj(c->ret.kind))
    ferry_obj_release(c->ret.v.obj);
  c->ret.kind = FERRY_KIND_NONE;
  c->ret.v.i = 0;
  ferry_buf_close(&c->ret_storage);
}

static int return_blob(ferry_call *c, enum ferry_kind kind, const void *p, size_t len) {
  c->ret_storage.len = 0;
  /* One extra byte keeps a NUL after the data for STR results. */
  uint8_t *dst = ferry_buf_reserve(&c->ret_storage, len + 1);
  if (dst == NULL)
    return ferry_err_set(c->err, FERRY_ETOOBIG, "result of %zu bytes is over the limit of %zu",
                         len, c->ret_storage.max);
  if (len)
    memcpy(dst, p, len);
  dst[len] = 0;
  ferry_buf_commit(&c->ret_storage, len);
  c->ret.kind = kind;
  c->ret.v.str.data = (const char *)c->ret_storage.data;
  c->ret.v.str.len = len;
  return FERRY_OK;
}

int ferry_call_return_str(ferry_call *c, const char *s, size_t len) {
  return return_blob(c, FERRY_KIND_STR, s, len);
}

int ferry_call_return_bytes(ferry_call *c, const void *p, size_t len) {
  return return_blob(c, FERRY_KIND_BYTES, p, len);
}

void ferry_call_return_obj(ferry_call *c, enum ferry_kind kind, ferry_obj *o) {
  c->ret.kind = kind;
  c->ret.v.obj = o;
}

/* ---- modules ------------------------------------------------------------ */

int ferry_module_get_function(ferry_module *m, const char *name, int query_imports,
                              ferry_func **out, ferry_err *err) {
  *out = NULL;
  int rc = m->get_function(m, name, out, err);
  if (rc != FERRY_ENOTFOUND)
    return rc;
  if (!query_imports)
    return FERRY_ENOTFOUND;
  for (size_t i = 0; i < m->nimports; i++) {
    rc = ferry_module_get_function(m->imports[i], name, 1, out, err);
    if (rc != FERRY_ENOTFOUND)
      return rc;
  }
  return FERRY_ENOTFOUND;
}

/* Whether `to` is reachable from `from` through imports (depth-bounded:
 * trees are shallow, and the bound keeps a pathological one harmless). */
static int reaches(const ferry_module *from, const ferry_module *to, int depth) {
  if (from == to)
    return 1;
  if (depth > 64)
    return 1;
  for (size_t i = 0; i < from->nimports; i++)
    if (reaches(from->imports[i], to, depth + 1))
      return 1;
  return 0;
}

int ferry_module_import(ferry_module *parent, ferry_module *child, ferry_err *err) {
  /* A cycle would leak both modules and make lookups recurse forever. */
  if (reaches(child, parent, 0))
    return ferry_err_set(err, FERRY_EINVAL,
                         "import refused: the module already imports its parent, or the "
                         "import tree is too deep");
  if (parent->nimports >= 4096)
    return ferry_err_set(err, FERRY_ETOOBIG, "too many imported modules");
  ferry_module **n = realloc(parent->imports, (parent->nimports + 1) * sizeof *n);
  if (n == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  parent->imports = n;
  ferry_obj_retain(&child->base);
  parent->imports[parent->nimports++] = child;
  return FERRY_OK;
}

void ferry_module_release_imports(ferry_module *m) {
  for (size_t i = 0; i < m->nimports; i++)
    ferry_obj_release(&m->imports[i]->base);
  free(m->imports);
  m->imports = NULL;
  m->nimports = 0;
}

int ferry_tensor_nbytes(const DLTensor *t, uint64_t *out) {
  if (t->ndim < 0 || t->ndim > FERRY_MAX_NDIM)
    return FERRY_ERANGE;
  uint64_t elem = ((uint64_t)t->dtype.bits * t->dtype.lanes + 7) / 8;
  uint64_t n = elem;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0)
      return FERRY_ERANGE;
    if (__builtin_mul_overflow(n, (uint64_t)t->shape[i], &n))
      return FERRY_ERANGE;
  }
  *out = n;
  return FERRY_OK;
}

/* ---- argument helpers ----------------------------------------------------- */

int ferry_arg_count(ferry_call *c, const char *fname, int min, int max) {
  if (c->nargs < min || c->nargs > max) {
    if (min == max)
      return ferry_err_set(c->err, FERRY_EINVAL, "%s expects %d arguments, got %d", fname, min,
                           c->nargs);
    return ferry_err_set(c->err, FERRY_EINVAL, "%s expects %d to %d arguments, got %d", fname,
                         min, max, c->nargs);
  }
  return FERRY_OK;
}

static int wrong_kind(ferry_call *c, const char *fname, int i, const char *want) {
  const char *got = i < c->nargs ? ferry_kind_name(c->args[i].kind) : "nothing";
  return ferry_err_set(c->err, FERRY_ETYPE, "%s: argument %d must be %s, got %s", fname, i,
                       want, got);
}

int ferry_arg_str(ferry_call *c, const char *fname, int i, const char **out) {
  if (i >= c->nargs || c->args[i].kind != FERRY_KIND_STR)
    return wrong_kind(c, fname, i, "a string");
  *out = c->args[i].v.str.data;
  return FERRY_OK;
}

int ferry_arg_bytes(ferry_call *c, const char *fname, int i, const char **out, size_t *len) {
  if (i >= c->nargs ||
      (c->args[i].kind != FERRY_KIND_BYTES && c->args[i].kind != FERRY_KIND_STR))
    return wrong_kind(c, fname, i, "bytes");
  *out = c->args[i].v.str.data;
  *len = c->args[i].v.str.len;
  return FERRY_OK;
}

int ferry_arg_int(ferry_call *c, const char *fname, int i, int64_t *out) {
  if (i >= c->nargs || (c->args[i].kind != FERRY_KIND_INT && c->args[i].kind != FERRY_KIND_BOOL))
    return wrong_kind(c, fname, i, "an int");
  *out = c->args[i].v.i;
  return FERRY_OK;
}

int ferry_arg_module(ferry_call *c, const char *fname, int i, ferry_module **out) {
  if (i >= c->nargs || c->args[i].kind != FERRY_KIND_MODULE || c->args[i].v.obj == NULL ||
      c->args[i].v.obj->type != FERRY_OBJ_MODULE)
    return wrong_kind(c, fname, i, "a Module");
  *out = (ferry_module *)c->args[i].v.obj;
  return FERRY_OK;
}

int ferry_arg_tensor(ferry_call *c, const char *fname, int i, DLTensor **out) {
  if (i < c->nargs && c->args[i].kind == FERRY_KIND_TENSOR && c->args[i].v.tensor != NULL) {
    *out = c->args[i].v.tensor;
    return FERRY_OK;
  }
  if (i < c->nargs && c->args[i].kind == FERRY_KIND_NDARRAY && c->args[i].v.obj != NULL &&
      c->args[i].v.obj->type == FERRY_OBJ_NDARRAY) {
    *out = &((ferry_ndarray *)c->args[i].v.obj)->tensor;
    return FERRY_OK;
  }
  return wrong_kind(c, fname, i, "a tensor");
}

/* ---- closures ------------------------------------------------------------- */

struct closure {
  ferry_func base;
  int (*fn)(void *ctx, ferry_call *c);
  void *ctx;
  void (*free_ctx)(void *ctx);
};

static int closure_call(ferry_func *self, ferry_call *c) {
  struct closure *cl = (struct closure *)self;
  return cl->fn(cl->ctx, c);
}

static void closure_destroy(ferry_obj *o) {
  struct closure *cl = (struct closure *)o;
  if (cl->free_ctx)
    cl->free_ctx(cl->ctx);
  free(cl);
}

int ferry_closure_new(int (*fn)(void *ctx, ferry_call *c), void *ctx,
                      void (*free_ctx)(void *ctx), ferry_func **out) {
  struct closure *cl = calloc(1, sizeof *cl);
  if (cl == NULL)
    return FERRY_ENOMEM;
  ferry_obj_init(&cl->base.base, FERRY_OBJ_FUNC, closure_destroy);
  cl->base.call = closure_call;
  cl->fn = fn;
  cl->ctx = ctx;
  cl->free_ctx = free_ctx;
  *out = &cl->base;
  return FERRY_OK;
}
