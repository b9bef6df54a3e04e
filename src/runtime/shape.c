/* runtime.ShapeTuple and the two functions that read one
 * (runtime.GetShapeTupleElem, runtime.GetShapeTupleSize): what TVM's
 * runtime registers for its shape object, and what a client reaches over
 * RPC to make a remote object, read it, and free it
 * (test_rpc_return_remote_object in TVM's RPC test suite).
 *
 * The object never leaves the server: the client holds an RPCObjectRef
 * handle (type code 8) and passes it back, so what a caller hands in is
 * checked to be a shape before it is read. */
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

#define SHAPE_KEY "runtime.ShapeTuple"

typedef struct {
  ferry_other hdr;
  int64_t n;
  int64_t dims[]; /* n of them */
} shape_obj;

static void shape_destroy(ferry_obj *o) { free(o); }

static shape_obj *shape_cast(const ferry_value *v) {
  if (v->kind != FERRY_KIND_OBJECT || v->v.obj == NULL || v->v.obj->type != FERRY_OBJ_OTHER ||
      strcmp(((ferry_other *)v->v.obj)->type_key, SHAPE_KEY) != 0)
    return NULL;
  return (shape_obj *)v->v.obj;
}

/* runtime.ShapeTuple(d0, d1, ...): a shape of the given integers.  The
 * count is bounded by the packet that carried them. */
static int shape_tuple_fn(ferry_call *c) {
  shape_obj *s = malloc(sizeof *s + (size_t)c->nargs * sizeof(int64_t));
  if (s == NULL)
    return ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
  ferry_obj_init(&s->hdr.base, FERRY_OBJ_OTHER, shape_destroy);
  s->hdr.type_key = SHAPE_KEY;
  s->n = c->nargs;
  for (int i = 0; i < c->nargs; i++) {
    int rc = ferry_arg_int(c, "runtime.ShapeTuple", i, &s->dims[i]);
    if (rc) {
      ferry_obj_release(&s->hdr.base);
      return rc;
    }
  }
  ferry_call_return_obj(c, FERRY_KIND_OBJECT, &s->hdr.base);
  return FERRY_OK;
}

static int shape_arg(ferry_call *c, const char *fname, shape_obj **out) {
  shape_obj *s = c->nargs >= 1 ? shape_cast(&c->args[0]) : NULL;
  if (s == NULL)
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: %s: argument 0 is not a %s", fname,
                         SHAPE_KEY);
  *out = s;
  return FERRY_OK;
}

static int get_elem_fn(ferry_call *c) {
  const char *fname = "runtime.GetShapeTupleElem";
  shape_obj *s;
  int64_t i = 0;
  int rc = ferry_arg_count(c, fname, 2, 2);
  if (!rc)
    rc = shape_arg(c, fname, &s);
  if (!rc)
    rc = ferry_arg_int(c, fname, 1, &i);
  if (rc)
    return rc;
  if (i < 0 || i >= s->n)
    return ferry_err_set(c->err, FERRY_ERANGE,
                         "IndexError: %s: index %lld out of range for a shape of %lld", fname,
                         (long long)i, (long long)s->n);
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = s->dims[i];
  return FERRY_OK;
}

static int get_size_fn(ferry_call *c) {
  const char *fname = "runtime.GetShapeTupleSize";
  shape_obj *s;
  int rc = ferry_arg_count(c, fname, 1, 1);
  if (!rc)
    rc = shape_arg(c, fname, &s);
  if (rc)
    return rc;
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = s->n;
  return FERRY_OK;
}

const struct ferry_builtin ferry_shape_builtins[] = {
    {"runtime.ShapeTuple", shape_tuple_fn},
    {"runtime.GetShapeTupleElem", get_elem_fn},
    {"runtime.GetShapeTupleSize", get_size_fn},
    {NULL, NULL},
};
