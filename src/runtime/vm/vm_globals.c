/* The public runtime globals TVM clients call on the VM's objects
 * remotely (TVM registers them as globals too): runtime.ShapeTuple,
 * runtime.GetShapeTupleSize / GetShapeTupleElem, the Array size and item
 * getters (runtime.ArraySize / ArrayGetItem, v0.26's ffi.ArraySize /
 * ffi.ArrayGetItem), and TVM's C++ test function testing.echo.  Unlike
 * the vm.builtin.* functions these take no VM pointer, so exposing them
 * gives a client nothing but its own objects back. */
#include <limits.h>
#include <string.h>

#include "runtime/vm/vm.h"

static int shape_tuple(ferry_call *c) {
  int rc = ferry_arg_count(c, "runtime.ShapeTuple", 0, FERRY_RELAX_MAX_SHAPE_NDIM);
  int64_t dims[FERRY_RELAX_MAX_SHAPE_NDIM];
  for (int i = 0; rc == FERRY_OK && i < c->nargs; i++)
    rc = ferry_arg_int(c, "runtime.ShapeTuple", i, &dims[i]);
  ferry_vm_shape *s = NULL;
  if (rc || (rc = ferry_vm_shape_new(c->nargs, dims, &s, c->err)))
    return rc;
  ferry_call_return_obj(c, FERRY_KIND_OBJECT, &s->hdr.base);
  return FERRY_OK;
}

static int shape_arg(ferry_call *c, const char *name, ferry_vm_shape **out) {
  *out = c->nargs >= 1 ? (ferry_vm_shape *)ferry_vm_cast(&c->args[0], FERRY_VM_SHAPE_KEY) : NULL;
  if (*out == NULL)
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: %s: argument 0 must be a ShapeTuple", name);
  return FERRY_OK;
}

static int shape_size(ferry_call *c) {
  ferry_vm_shape *s = NULL;
  int rc = ferry_arg_count(c, "runtime.GetShapeTupleSize", 1, 1);
  if (rc || (rc = shape_arg(c, "runtime.GetShapeTupleSize", &s)))
    return rc;
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = s->ndim;
  return FERRY_OK;
}

static int shape_elem(ferry_call *c) {
  ferry_vm_shape *s = NULL;
  int64_t i = 0;
  int rc = ferry_arg_count(c, "runtime.GetShapeTupleElem", 2, 2);
  if (rc || (rc = shape_arg(c, "runtime.GetShapeTupleElem", &s)) ||
      (rc = ferry_arg_int(c, "runtime.GetShapeTupleElem", 1, &i)))
    return rc;
  if (i < 0 || i >= s->ndim)
    return ferry_err_set(c->err, FERRY_ERANGE, "IndexError: runtime.GetShapeTupleElem: index %lld out of "
                         "range for a shape of %lld", (long long)i, (long long)s->ndim);
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = s->dims[i];
  return FERRY_OK;
}

static int array_arg(ferry_call *c, const char *name, ferry_vm_array **out) {
  *out = c->nargs >= 1 ? (ferry_vm_array *)ferry_vm_cast(&c->args[0], FERRY_VM_ARRAY_KEY) : NULL;
  if (*out == NULL)
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: %s: argument 0 must be an Array", name);
  return FERRY_OK;
}

static int array_size(ferry_call *c) {
  ferry_vm_array *a;
  int rc = ferry_arg_count(c, "ArraySize", 1, 1);
  if (rc || (rc = array_arg(c, "ArraySize", &a)))
    return rc;
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = (int64_t)a->n;
  return FERRY_OK;
}

static int array_item(ferry_call *c) {
  ferry_vm_array *a;
  int64_t i = 0;
  int rc = ferry_arg_count(c, "ArrayGetItem", 2, 2);
  if (rc || (rc = array_arg(c, "ArrayGetItem", &a)) || (rc = ferry_arg_int(c, "ArrayGetItem", 1, &i)))
    return rc;
  if (i < 0 || (uint64_t)i >= a->n)
    return ferry_err_set(c->err, FERRY_ERANGE, "IndexError: ArrayGetItem: index %lld out of range for an "
                         "Array of %zu", (long long)i, a->n);
  const ferry_value *v = &a->items[i];
  if (v->kind == FERRY_KIND_STR)
    return ferry_call_return_str(c, v->v.str.data, v->v.str.len);
  ferry_vm_value_retain(&c->ret, v);
  return FERRY_OK;
}

/* testing.echo(x, ...) -> x: TVM registers it on every server and
 * returns its first argument whatever follows (its RPC test suite calls
 * it with extra arguments). */
static int echo(ferry_call *c) {
  int rc = ferry_arg_count(c, "testing.echo", 1, INT_MAX);
  if (rc)
    return rc;
  const ferry_value *v = &c->args[0];
  if (v->kind == FERRY_KIND_STR || v->kind == FERRY_KIND_BYTES) {
    rc = v->kind == FERRY_KIND_STR ? ferry_call_return_str(c, v->v.str.data, v->v.str.len)
                                   : ferry_call_return_bytes(c, v->v.str.data, v->v.str.len);
    return rc;
  }
  if (v->kind == FERRY_KIND_TENSOR)
    return ferry_err_set(c->err, FERRY_ETYPE, "testing.echo: a DLTensor cannot be returned");
  ferry_vm_value_retain(&c->ret, v);
  return FERRY_OK;
}

const struct ferry_builtin ferry_vm_globals[] = {
    {"runtime.ShapeTuple", shape_tuple},
    {"runtime.GetShapeTupleSize", shape_size},
    {"runtime.GetShapeTupleElem", shape_elem},
    {"runtime.ArraySize", array_size},
    {"runtime.ArrayGetItem", array_item},
    {"ffi.ArraySize", array_size},
    {"ffi.ArrayGetItem", array_item},
    {"ffi.Shape", shape_tuple},
    {"testing.echo", echo},
    {NULL, NULL},
};
