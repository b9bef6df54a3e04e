/* Shape matching and the dynamic-shape builtins (TVM builtin.cc 116-270,
 * 384-401): match_shape with every code, the shape heap (an int64 NDArray
 * the VM allocates, indexed by the bytecode's immediates, so every index
 * is checked against its length here), make_shape, prim values,
 * check_shape_info / check_prim_value_info, call_tir_dyn and
 * tensor_to_shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/vm/vm_builtins.h"

enum { MS_ASSERT_IMM = 0, MS_STORE = 1, MS_NOOP = 2, MS_ASSERT_LOAD = 3 };
enum { MK_IMM = 0, MK_LOAD = 1 };

/* The heap argument: an int64 NDArray, or None (static shapes). */
static int heap_of(const char *name, const ferry_value *v, int64_t **data, int64_t *len,
                   ferry_err *err) {
  *data = NULL;
  *len = 0;
  if (v->kind == FERRY_KIND_NONE)
    return FERRY_OK;
  const DLTensor *t = ferry_vm_tensor_of(v);
  if (t == NULL || t->ndim != 1 || t->dtype.code != kDLInt || t->dtype.bits != 64 ||
      t->dtype.lanes != 1)
    return ferry_err_set(err, FERRY_ETYPE, "%s: the shape heap must be a 1-D int64 tensor, got %s",
                         name, ferry_kind_name(v->kind));
  *data = (int64_t *)((char *)t->data + t->byte_offset);
  *len = t->shape[0];
  return FERRY_OK;
}

static int heap_index(const char *name, int64_t idx, int64_t len, ferry_err *err) {
  if (idx < 0 || idx >= len)
    return ferry_err_set(err, FERRY_ERANGE, "%s: shape heap index %lld outside the heap of %lld",
                         name, (long long)idx, (long long)len);
  return FERRY_OK;
}

/* match_shape(t_or_shape, heap, n, (code, value) x n, err_ctx) */
static int b_match_shape(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                         int depth, ferry_err *err) {
  (void)vm, (void)ret, (void)depth;
  static const char name[] = "vm.builtin.match_shape";
  int64_t size = 0, *heap = NULL, hlen = 0;
  int rc = vmb_nargs(name, n, 4, 4 + 2 * (size_t)FERRY_RELAX_MAX_SHAPE_NDIM, err);
  if (rc || (rc = vmb_int(name, a, 2, &size, err)))
    return rc;
  if (size < 0 || (size_t)size != (n - 4) / 2 || n != 4 + 2 * (size_t)size)
    return ferry_err_set(err, FERRY_EINVAL, "%s: %lld dimensions but %zu arguments", name,
                         (long long)size, n);
  if ((rc = heap_of(name, &a[1], &heap, &hlen, err)))
    return rc;
  const char *ctx = vmb_ctx(a, n, n - 1);
  const int64_t *dims;
  int64_t ndim = 0;
  const DLTensor *t = ferry_vm_tensor_of(&a[0]);
  ferry_vm_shape *sh = (ferry_vm_shape *)ferry_vm_cast(&a[0], FERRY_VM_SHAPE_KEY);
  if (t != NULL) {
    dims = t->shape;
    ndim = t->ndim;
  } else if (sh != NULL) {
    dims = sh->dims;
    ndim = sh->ndim;
  } else {
    return ferry_err_set(err, FERRY_ETYPE, "%s match_cast error: expected a tensor or a shape, "
                         "got %s", ctx, ferry_kind_name(a[0].kind));
  }
  if (ndim != size)
    return ferry_err_set(err, FERRY_EINVAL, "%s match_cast error,  expected a shape of %lld "
                         "dimensions, got %lld", ctx, (long long)size, (long long)ndim);
  for (int64_t i = 0; i < size; i++) {
    int64_t code = 0, val = 0;
    if ((rc = vmb_int(name, a, 3 + 2 * (size_t)i, &code, err)) ||
        (rc = vmb_int(name, a, 4 + 2 * (size_t)i, &val, err)))
      return rc;
    if (code == MS_ASSERT_IMM) {
      if (dims[i] != val)
        return ferry_err_set(err, FERRY_EINVAL, "Check failed: input_shape[i] == reg (%lld vs. "
                             "%lld) : %s match_cast error,  shape[%lld] mismatch to specified "
                             "constant.", (long long)dims[i], (long long)val, ctx, (long long)i);
    } else if (code == MS_STORE || code == MS_ASSERT_LOAD) {
      if ((rc = heap_index(name, val, hlen, err)))
        return rc;
      if (code == MS_STORE)
        heap[val] = dims[i];
      else if (heap[val] != dims[i])
        return ferry_err_set(err, FERRY_EINVAL, "Check failed: input_shape[i] == heap[reg] "
                             "(%lld vs. %lld) : %s match_cast error,  shape[%lld] mismatch to a "
                             "previous populated value.", (long long)dims[i],
                             (long long)heap[val], ctx, (long long)i);
    } else if (code != MS_NOOP) {
      return ferry_err_set(err, FERRY_EINVAL, "%s: unknown match code %lld", name,
                           (long long)code);
    }
  }
  return FERRY_OK;
}

/* alloc_shape_heap(%vm, n) -> int64[n] on the host. */
static int b_alloc_shape_heap(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                              int depth, ferry_err *err) {
  (void)depth;
  static const char name[] = "vm.builtin.alloc_shape_heap";
  int64_t size = 0;
  int rc = vmb_nargs(name, n, 2, 2, err);
  if (rc || (rc = vmb_int(name, a, 1, &size, err)))
    return rc;
  if (size < 0 || size > FERRY_RELAX_MAX_SHAPE_NDIM * 64)
    return ferry_err_set(err, FERRY_ERANGE, "%s: heap of %lld entries", name, (long long)size);
  DLDataType i64 = {kDLInt, 64, 1};
  DLDevice cpu = {kDLCPU, 0};
  ferry_ndarray *h;
  if ((rc = ferry_ndarray_new(vm->rt, 1, &size, i64, cpu, &h, err)))
    return rc;
  if (size)
    memset(h->tensor.data, 0, (size_t)size * 8);
  ret->kind = FERRY_KIND_NDARRAY;
  ret->v.obj = &h->base;
  return FERRY_OK;
}

/* make_shape(heap, n, (code, value) x n) -> Shape */
static int b_make_shape(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                        int depth, ferry_err *err) {
  (void)vm, (void)depth;
  static const char name[] = "vm.builtin.make_shape";
  int64_t size = 0, *heap = NULL, hlen = 0;
  int rc = vmb_nargs(name, n, 2, 2 + 2 * (size_t)FERRY_RELAX_MAX_SHAPE_NDIM, err);
  if (rc || (rc = vmb_int(name, a, 1, &size, err)) ||
      (rc = heap_of(name, &a[0], &heap, &hlen, err)))
    return rc;
  if (size < 0 || n != 2 + 2 * (size_t)size)
    return ferry_err_set(err, FERRY_EINVAL, "%s: %lld dimensions but %zu arguments", name,
                         (long long)size, n);
  int64_t dims[FERRY_RELAX_MAX_SHAPE_NDIM];
  for (int64_t i = 0; i < size; i++) {
    int64_t code = 0, val = 0;
    if ((rc = vmb_int(name, a, 2 + 2 * (size_t)i, &code, err)) ||
        (rc = vmb_int(name, a, 3 + 2 * (size_t)i, &val, err)))
      return rc;
    if (code == MK_LOAD) {
      if ((rc = heap_index(name, val, hlen, err)))
        return rc;
      val = heap[val];
    } else if (code != MK_IMM) {
      return ferry_err_set(err, FERRY_EINVAL, "%s: unknown code %lld", name, (long long)code);
    }
    dims[i] = val;
  }
  ferry_vm_shape *s = NULL;
  if ((rc = ferry_vm_shape_new(size, dims, &s, err)))
    return rc;
  ret->kind = FERRY_KIND_OBJECT;
  ret->v.obj = &s->hdr.base;
  return FERRY_OK;
}

/* match_prim_value(x, heap, code, value, err_ctx) */
static int b_match_prim_value(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                              int depth, ferry_err *err) {
  (void)vm, (void)ret, (void)depth;
  static const char name[] = "vm.builtin.match_prim_value";
  int64_t x = 0, code = 0, val = 0, *heap = NULL, hlen = 0;
  int rc = vmb_nargs(name, n, 5, 5, err);
  if (rc || (rc = vmb_int(name, a, 0, &x, err)) || (rc = heap_of(name, &a[1], &heap, &hlen, err)) ||
      (rc = vmb_int(name, a, 2, &code, err)) || (rc = vmb_int(name, a, 3, &val, err)))
    return rc;
  const char *ctx = vmb_ctx(a, n, 4);
  if (code == MS_ASSERT_IMM && x != val)
    return ferry_err_set(err, FERRY_EINVAL, "%s match_cast error,  value %lld mismatch to "
                         "specified constant %lld.", ctx, (long long)x, (long long)val);
  if (code == MS_STORE || code == MS_ASSERT_LOAD) {
    if ((rc = heap_index(name, val, hlen, err)))
      return rc;
    if (code == MS_STORE)
      heap[val] = x;
    else if (heap[val] != x)
      return ferry_err_set(err, FERRY_EINVAL, "%s match_cast error,  value %lld mismatch to a "
                           "previous populated value %lld.", ctx, (long long)x,
                           (long long)heap[val]);
  } else if (code != MS_ASSERT_IMM && code != MS_NOOP) {
    return ferry_err_set(err, FERRY_EINVAL, "%s: unknown match code %lld", name, (long long)code);
  }
  return FERRY_OK;
}

/* make_prim_value(heap, code, value) -> int */
static int b_make_prim_value(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                             int depth, ferry_err *err) {
  (void)vm, (void)depth;
  static const char name[] = "vm.builtin.make_prim_value";
  int64_t code = 0, val = 0, *heap = NULL, hlen = 0;
  int rc = vmb_nargs(name, n, 3, 3, err);
  if (rc || (rc = heap_of(name, &a[0], &heap, &hlen, err)) ||
      (rc = vmb_int(name, a, 1, &code, err)) || (rc = vmb_int(name, a, 2, &val, err)))
    return rc;
  if (code == MK_LOAD) {
    if ((rc = heap_index(name, val, hlen, err)))
      return rc;
    val = heap[val];
  } else if (code != MK_IMM) {
    return ferry_err_set(err, FERRY_EINVAL, "%s: unknown code %lld", name, (long long)code);
  }
  ret->kind = FERRY_KIND_INT;
  ret->v.i = val;
  return FERRY_OK;
}

static int b_check_shape_info(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                              int depth, ferry_err *err) {
  (void)vm, (void)ret, (void)depth;
  int64_t ndim = 0;
  int rc = vmb_nargs("vm.builtin.check_shape_info", n, 3, 3, err);
  if (rc || (rc = vmb_int("vm.builtin.check_shape_info", a, 1, &ndim, err)))
    return rc;
  const char *ctx = vmb_ctx(a, n, 2);
  ferry_vm_shape *s = (ferry_vm_shape *)ferry_vm_cast(&a[0], FERRY_VM_SHAPE_KEY);
  if (s == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s expect a Shape but get %s", ctx,
                         ferry_kind_name(a[0].kind));
  if (ndim != -1 && s->ndim != ndim)
    return ferry_err_set(err, FERRY_EINVAL, "%s expect Shape with ndim %lld but get %lld", ctx,
                         (long long)ndim, (long long)s->ndim);
  return FERRY_OK;
}

static int b_check_prim_value_info(ferry_vm *vm, const ferry_value *a, size_t n,
                                   ferry_value *ret, int depth, ferry_err *err) {
  (void)vm, (void)ret, (void)depth;
  int rc = vmb_nargs("vm.builtin.check_prim_value_info", n, 3, 3, err);
  if (rc)
    return rc;
  const char *ctx = vmb_ctx(a, n, 2);
  int want_float = a[1].kind == FERRY_KIND_DTYPE && a[1].v.dtype.code == kDLFloat;
  int ok = want_float ? a[0].kind == FERRY_KIND_FLOAT
                      : a[0].kind == FERRY_KIND_INT || a[0].kind == FERRY_KIND_BOOL;
  if (a[1].kind == FERRY_KIND_DTYPE && a[1].v.dtype.code == kDLOpaqueHandle)
    ok = 1;
  if (!ok)
    return ferry_err_set(err, FERRY_ETYPE, "%s expect a %s PrimValue but get %s", ctx,
                         want_float ? "float" : "int", ferry_kind_name(a[0].kind));
  return FERRY_OK;
}

/* call_tir_dyn(f, args..., Shape): the shape's extents become trailing
 * int arguments. */
static int b_call_tir_dyn(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                          int depth, ferry_err *err) {
  (void)depth;
  static const char name[] = "vm.builtin.call_tir_dyn";
  ferry_vm_shape *sh = NULL;
  int rc = vmb_nargs(name, n, 2, FERRY_RELAX_MAX_CALL_ARGS, err);
  if (rc || (rc = vmb_shape(name, a, n - 1, &sh, err)))
    return rc;
  if (a[0].kind != FERRY_KIND_FUNC || a[0].v.obj == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s: argument 0 must be a kernel, got %s", name,
                         ferry_kind_name(a[0].kind));
  size_t total = n - 2 + (size_t)sh->ndim;
  ferry_value *args = calloc(total ? total : 1, sizeof *args);
  if (args == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  for (size_t i = 0; i + 2 < n; i++) {
    args[i] = a[i + 1];
    if (args[i].kind == FERRY_KIND_NDARRAY) {
      args[i].v.tensor = &((ferry_ndarray *)a[i + 1].v.obj)->tensor;
      args[i].kind = FERRY_KIND_TENSOR;
    }
  }
  for (int64_t i = 0; i < sh->ndim; i++) {
    args[n - 2 + (size_t)i].kind = FERRY_KIND_INT;
    args[n - 2 + (size_t)i].v.i = sh->dims[i];
  }
  rc = ferry_vm_call_func(vm, (ferry_func *)a[0].v.obj, name, args, total, ret, err);
  free(args);
  return rc;
}

/* tensor_to_shape(t): a 1-D int16/32/64 tensor on the host -> Shape */
static int b_tensor_to_shape(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                             int depth, ferry_err *err) {
  (void)vm, (void)depth;
  static const char name[] = "vm.builtin.tensor_to_shape";
  int rc = vmb_nargs(name, n, 1, 1, err);
  if (rc)
    return rc;
  const DLTensor *t = ferry_vm_tensor_of(&a[0]);
  if (t == NULL || t->ndim != 1 || t->dtype.code != kDLInt || t->dtype.lanes != 1 ||
      (t->dtype.bits != 16 && t->dtype.bits != 32 && t->dtype.bits != 64) ||
      t->shape[0] > FERRY_RELAX_MAX_SHAPE_NDIM || t->shape[0] < 0)
    return ferry_err_set(err, FERRY_ETYPE, "%s: expected a 1-D int16, int32 or int64 tensor of at "
                         "most %d elements", name, FERRY_RELAX_MAX_SHAPE_NDIM);
  int64_t dims[FERRY_RELAX_MAX_SHAPE_NDIM];
  const char *p = (const char *)t->data + t->byte_offset;
  for (int64_t i = 0; i < t->shape[0]; i++) {
    if (t->dtype.bits == 16) {
      int16_t v;
      memcpy(&v, p + 2 * i, 2);
      dims[i] = v;
    } else if (t->dtype.bits == 32) {
      int32_t v;
      memcpy(&v, p + 4 * i, 4);
      dims[i] = v;
    } else {
      memcpy(&dims[i], p + 8 * i, 8);
    }
  }
  ferry_vm_shape *s = NULL;
  if ((rc = ferry_vm_shape_new(t->shape[0], dims, &s, err)))
    return rc;
  ret->kind = FERRY_KIND_OBJECT;
  ret->v.obj = &s->hdr.base;
  return FERRY_OK;
}

const struct ferry_vm_builtin ferry_vm_builtins_dyn[] = {
    {"vm.builtin.match_shape", b_match_shape, 1},
    {"vm.builtin.alloc_shape_heap", b_alloc_shape_heap, 0},
    {"vm.builtin.make_shape", b_make_shape, 0},
    {"vm.builtin.match_prim_value", b_match_prim_value, 1},
    {"vm.builtin.make_prim_value", b_make_prim_value, 0},
    {"vm.builtin.check_shape_info", b_check_shape_info, 1},
    {"vm.builtin.check_prim_value_info", b_check_prim_value_info, 1},
    {"vm.builtin.call_tir_dyn", b_call_tir_dyn, 0},
    {"vm.builtin.tensor_to_shape", b_tensor_to_shape, 0},
    {NULL, NULL, 0},
};
