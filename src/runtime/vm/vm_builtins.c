/* The vm.builtin.* functions a compiled model calls: the static-shape set
 * (spec relax-vm.md section 3; TVM builtin.cc, memory_manager.cc).  They
 * are private to the VM: resolved into its function pool at
 * vm_initialization, never registered as RPC globals (in TVM they are
 * globals taking a raw VM pointer, which a client could call).  Messages
 * of the checks given an ErrorContext string are TVM's own words, so a
 * client sees the same text from either server.  The dynamic-shape set is
 * in vm_builtins_dyn.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/vm/vm_builtins.h"

/* ---- argument helpers ----------------------------------------------------------- */

int vmb_nargs(const char *name, size_t nargs, size_t min, size_t max, ferry_err *err) {
  if (nargs < min || nargs > max)
    return ferry_err_set(err, FERRY_EINVAL, "%s takes %zu to %zu arguments, got %zu", name, min,
                         max, nargs);
  return FERRY_OK;
}

int vmb_int(const char *name, const ferry_value *args, size_t i, int64_t *out, ferry_err *err) {
  if (args[i].kind != FERRY_KIND_INT && args[i].kind != FERRY_KIND_BOOL)
    return ferry_err_set(err, FERRY_ETYPE, "%s: argument %zu must be an int, got %s", name, i,
                         ferry_kind_name(args[i].kind));
  *out = args[i].v.i;
  return FERRY_OK;
}

int vmb_shape(const char *name, const ferry_value *args, size_t i, ferry_vm_shape **out,
              ferry_err *err) {
  *out = (ferry_vm_shape *)ferry_vm_cast(&args[i], FERRY_VM_SHAPE_KEY);
  if (*out == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s: argument %zu must be a Shape, got %s", name, i,
                         ferry_kind_name(args[i].kind));
  return FERRY_OK;
}

int vmb_dtype(const char *name, const ferry_value *args, size_t i, DLDataType *out,
              ferry_err *err) {
  if (args[i].kind != FERRY_KIND_DTYPE)
    return ferry_err_set(err, FERRY_ETYPE, "%s: argument %zu must be a dtype, got %s", name, i,
                         ferry_kind_name(args[i].kind));
  *out = args[i].v.dtype;
  return FERRY_OK;
}

/* The ErrorContext string of the last argument, or "" (TVM's 3-arg forms). */
const char *vmb_ctx(const ferry_value *args, size_t nargs, size_t at) {
  return at < nargs && args[at].kind == FERRY_KIND_STR ? args[at].v.str.data : "";
}

void vmb_dtype_str(DLDataType t, char *out, size_t cap) {
  static const char *const codes[] = {"int", "uint", "float", "handle", "bfloat"};
  if (t.code == kDLUInt && t.bits == 1 && t.lanes == 1)
    snprintf(out, cap, "bool");
  else if (t.code == kDLOpaqueHandle && t.bits == 0)
    snprintf(out, cap, "void");
  else if (t.lanes == 1)
    snprintf(out, cap, "%s%u", t.code <= 4 ? codes[t.code] : "custom", t.bits);
  else
    snprintf(out, cap, "%s%ux%u", t.code <= 4 ? codes[t.code] : "custom", t.bits, t.lanes);
}

static void ret_obj(ferry_value *ret, enum ferry_kind kind, ferry_obj *o) {
  ret->kind = kind;
  ret->v.obj = o;
}

/* ---- checks ------------------------------------------------------------------- */

/* check_tensor_info(x, ndim, dtype|void, err_ctx) or (x, ndim, err_ctx). */
static int b_check_tensor_info(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                               int depth, ferry_err *err) {
  (void)vm, (void)ret, (void)depth;
  int rc = vmb_nargs("vm.builtin.check_tensor_info", n, 3, 4, err);
  int64_t ndim = 0;
  if (rc || (rc = vmb_int("vm.builtin.check_tensor_info", a, 1, &ndim, err)))
    return rc;
  const char *ctx = vmb_ctx(a, n, n - 1);
  const DLTensor *t = ferry_vm_tensor_of(&a[0]);
  if (t == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s expect a Tensor but get %s", ctx,
                         ferry_kind_name(a[0].kind));
  if (ndim != -1 && t->ndim != ndim)
    return ferry_err_set(err, FERRY_EINVAL, "%s expect Tensor with ndim %lld but get %d", ctx,
                         (long long)ndim, (int)t->ndim);
  if (n == 4 && a[2].kind == FERRY_KIND_DTYPE) {
    DLDataType want = a[2].v.dtype;
    int is_void = want.code == kDLOpaqueHandle && want.bits == 0;
    if (!is_void && (want.code != t->dtype.code || want.bits != t->dtype.bits ||
                     want.lanes != t->dtype.lanes)) {
      char ws[32], gs[32];
      vmb_dtype_str(want, ws, sizeof ws);
      vmb_dtype_str(t->dtype, gs, sizeof gs);
      return ferry_err_set(err, FERRY_EINVAL, "%s expect Tensor with dtype %s but get %s", ctx,
                           ws, gs);
    }
  }
  return FERRY_OK;
}

static int b_check_tuple_info(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                              int depth, ferry_err *err) {
  (void)vm, (void)ret, (void)depth;
  int64_t size = 0;
  int rc = vmb_nargs("vm.builtin.check_tuple_info", n, 3, 3, err);
  if (rc || (rc = vmb_int("vm.builtin.check_tuple_info", a, 1, &size, err)))
    return rc;
  const char *ctx = vmb_ctx(a, n, 2);
  ferry_vm_array *arr = (ferry_vm_array *)ferry_vm_cast(&a[0], FERRY_VM_ARRAY_KEY);
  if (arr == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s expect a Tuple but get %s", ctx,
                         ferry_kind_name(a[0].kind));
  if ((int64_t)arr->n != size)
    return ferry_err_set(err, FERRY_EINVAL, "%s expect a Tuple with %lld elements,  but get a "
                         "Tuple with %zu elements.", ctx, (long long)size, arr->n);
  return FERRY_OK;
}

static int b_check_func_info(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                             int depth, ferry_err *err) {
  (void)vm, (void)ret, (void)depth;
  int rc = vmb_nargs("vm.builtin.check_func_info", n, 2, 2, err);
  if (rc)
    return rc;
  if (a[0].kind != FERRY_KIND_FUNC && ferry_vm_cast(&a[0], FERRY_VM_CLOSURE_KEY) == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s expect a Function but get %s", vmb_ctx(a, n, 1),
                         ferry_kind_name(a[0].kind));
  return FERRY_OK;
}

/* ---- memory ------------------------------------------------------------------- */

int vmb_elem_bytes(DLDataType t, uint64_t *out) {
  *out = ((uint64_t)t.bits * t.lanes + 7) / 8;
  return FERRY_OK;
}

/* prod(shape) * elem, refused on a negative extent or an overflow. */
int vmb_shape_bytes(const char *name, const int64_t *dims, int64_t ndim, DLDataType t,
                    uint64_t *out, ferry_err *err) {
  uint64_t n;
  vmb_elem_bytes(t, &n);
  for (int64_t i = 0; i < ndim; i++) {
    if (dims[i] < 0)
      return ferry_err_set(err, FERRY_EINVAL, "%s: negative extent %lld in dimension %lld", name,
                           (long long)dims[i], (long long)i);
    if (dims[i] != 0 && n > UINT64_MAX / (uint64_t)dims[i])
      return ferry_err_set(err, FERRY_ERANGE, "%s: the size overflows", name);
    n *= (uint64_t)dims[i];
  }
  *out = n;
  return FERRY_OK;
}

static int check_scope(const char *name, const ferry_value *v, ferry_err *err) {
  if (v->kind == FERRY_KIND_STR && v->v.str.len != 0 && strcmp(v->v.str.data, "global") != 0)
    return ferry_err_set(err, FERRY_EUNSUPPORTED, "%s: memory scope '%s' is not supported (only "
                         "\"global\" on CPU)", name, v->v.str.data);
  return FERRY_OK;
}

/* alloc_storage(%vm, size: Shape, dev_index, dtype, scope) -> Storage */
static int b_alloc_storage(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                           int depth, ferry_err *err) {
  (void)depth;
  static const char name[] = "vm.builtin.alloc_storage";
  ferry_vm_shape *sh = NULL;
  int64_t dev_index = 0;
  DLDataType t = {0, 0, 0};
  uint64_t nbytes = 0;
  int rc = vmb_nargs(name, n, 4, 5, err);
  if (rc || (rc = vmb_shape(name, a, 1, &sh, err)) || (rc = vmb_int(name, a, 2, &dev_index, err)) ||
      (rc = vmb_dtype(name, a, 3, &t, err)) || (n == 5 && (rc = check_scope(name, &a[4], err))))
    return rc;
  if (dev_index != -1 && dev_index != 0)
    return ferry_err_set(err, FERRY_EINVAL, "%s: device index %lld, but the VM was initialised "
                         "with one device", name, (long long)dev_index);
  if ((rc = vmb_shape_bytes(name, sh->dims, sh->ndim, t, &nbytes, err)))
    return rc;
  ferry_vm_storage *s;
  if ((rc = ferry_vm_storage_new(vm->pool, nbytes, &s, err)))
    return rc;
  ret_obj(ret, FERRY_KIND_OBJECT, &s->hdr.base);
  return FERRY_OK;
}

/* alloc_tensor(storage, offset, shape, dtype[, scope]) -> a view. */
static int b_alloc_tensor(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                          int depth, ferry_err *err) {
  (void)depth;
  static const char name[] = "vm.builtin.alloc_tensor";
  ferry_vm_shape *sh = NULL;
  int64_t offset = 0;
  DLDataType t = {0, 0, 0};
  uint64_t nbytes = 0;
  int rc = vmb_nargs(name, n, 4, 5, err);
  if (rc || (rc = vmb_int(name, a, 1, &offset, err)) || (rc = vmb_shape(name, a, 2, &sh, err)) ||
      (rc = vmb_dtype(name, a, 3, &t, err)) || (n == 5 && (rc = check_scope(name, &a[4], err))))
    return rc;
  ferry_vm_storage *s = (ferry_vm_storage *)ferry_vm_cast(&a[0], FERRY_VM_STORAGE_KEY);
  if (s == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s: argument 0 must be a Storage, got %s", name,
                         ferry_kind_name(a[0].kind));
  if (sh->ndim > FERRY_MAX_NDIM)
    return ferry_err_set(err, FERRY_ERANGE, "%s: rank %lld (at most %d)", name,
                         (long long)sh->ndim, FERRY_MAX_NDIM);
  if ((rc = vmb_shape_bytes(name, sh->dims, sh->ndim, t, &nbytes, err)))
    return rc;
  if (offset < 0 || (uint64_t)offset > s->size || nbytes > s->size - (uint64_t)offset)
    return ferry_err_set(err, FERRY_ERANGE, "%s: a tensor of %llu bytes at offset %lld does not "
                         "fit in the storage of %llu bytes", name, (unsigned long long)nbytes,
                         (long long)offset, (unsigned long long)s->size);
  ferry_ndarray *v;
  rc = ferry_vm_storage_view_new(s, (uint64_t)offset, (int)sh->ndim, sh->dims, t, vm->rt, &v, err);
  if (rc)
    return rc;
  ret_obj(ret, FERRY_KIND_NDARRAY, &v->base);
  return FERRY_OK;
}

static int b_null_value(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                        int depth, ferry_err *err) {
  (void)vm, (void)a, (void)ret, (void)depth;
  return vmb_nargs("vm.builtin.null_value", n, 0, 0, err);
}

static int b_copy(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret, int depth,
                  ferry_err *err) {
  (void)vm, (void)depth;
  int rc = vmb_nargs("vm.builtin.copy", n, 1, 1, err);
  if (rc == FERRY_OK)
    ferry_vm_value_retain(ret, &a[0]);
  return rc;
}

/* ---- tuples, shapes, views -------------------------------------------------------- */

static int b_make_tuple(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                        int depth, ferry_err *err) {
  (void)vm, (void)depth;
  for (size_t i = 0; i < n; i++)
    if (a[i].kind == FERRY_KIND_OPAQUE || a[i].kind == FERRY_KIND_TENSOR)
      return ferry_err_set(err, FERRY_ETYPE, "vm.builtin.make_tuple: element %zu is a %s, "
                           "which a tuple cannot hold", i, ferry_kind_name(a[i].kind));
  ferry_vm_array *arr;
  int rc = ferry_vm_array_new(a, n, &arr, err);
  if (rc == FERRY_OK)
    ret_obj(ret, FERRY_KIND_OBJECT, &arr->hdr.base);
  return rc;
}

static int b_tuple_getitem(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                           int depth, ferry_err *err) {
  (void)vm, (void)depth;
  static const char name[] = "vm.builtin.tuple_getitem";
  int64_t i = 0;
  int rc = vmb_nargs(name, n, 2, 2, err);
  if (rc || (rc = vmb_int(name, a, 1, &i, err)))
    return rc;
  ferry_vm_array *arr = (ferry_vm_array *)ferry_vm_cast(&a[0], FERRY_VM_ARRAY_KEY);
  if (arr == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s: argument 0 must be a tuple, got %s", name,
                         ferry_kind_name(a[0].kind));
  if (i < 0 || (uint64_t)i >= arr->n)
    return ferry_err_set(err, FERRY_ERANGE, "%s: index %lld out of range for a tuple of %zu",
                         name, (long long)i, arr->n);
  ferry_vm_value_retain(ret, &arr->items[i]);
  return FERRY_OK;
}

static int b_tuple_reset_item(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                              int depth, ferry_err *err) {
  (void)vm, (void)ret, (void)depth;
  static const char name[] = "vm.builtin.tuple_reset_item";
  int64_t i = 0;
  int rc = vmb_nargs(name, n, 2, 2, err);
  if (rc || (rc = vmb_int(name, a, 1, &i, err)))
    return rc;
  ferry_vm_array *arr = (ferry_vm_array *)ferry_vm_cast(&a[0], FERRY_VM_ARRAY_KEY);
  if (arr == NULL || i < 0 || (uint64_t)i >= arr->n)
    return ferry_err_set(err, FERRY_ERANGE, "%s: not a tuple, or index %lld out of range", name,
                         (long long)i);
  ferry_vm_value_release(&arr->items[i]);
  return FERRY_OK;
}

static int b_shape_of(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret, int depth,
                      ferry_err *err) {
  (void)vm, (void)depth;
  int rc = vmb_nargs("vm.builtin.shape_of", n, 1, 1, err);
  const DLTensor *t = rc ? NULL : ferry_vm_tensor_of(&a[0]);
  if (rc)
    return rc;
  if (t == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "vm.builtin.shape_of: expected a tensor, got %s",
                         ferry_kind_name(a[0].kind));
  ferry_vm_shape *s = NULL;
  if ((rc = ferry_vm_shape_new(t->ndim, t->shape, &s, err)))
    return rc;
  ret_obj(ret, FERRY_KIND_OBJECT, &s->hdr.base);
  return FERRY_OK;
}

/* reshape(t, Shape): a view of the same bytes; the source stays alive. */
static int b_reshape(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret, int depth,
                     ferry_err *err) {
  (void)depth;
  static const char name[] = "vm.builtin.reshape";
  ferry_vm_shape *sh = NULL;
  int rc = vmb_nargs(name, n, 2, 2, err);
  if (rc || (rc = vmb_shape(name, a, 1, &sh, err)))
    return rc;
  if (a[0].kind != FERRY_KIND_NDARRAY || a[0].v.obj == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "%s: argument 0 must be a tensor, got %s", name,
                         ferry_kind_name(a[0].kind));
  ferry_ndarray *src = (ferry_ndarray *)a[0].v.obj;
  uint64_t have = 0, want = 0;
  if (sh->ndim > FERRY_MAX_NDIM)
    return ferry_err_set(err, FERRY_ERANGE, "%s: rank %lld (at most %d)", name,
                         (long long)sh->ndim, FERRY_MAX_NDIM);
  if ((rc = vmb_shape_bytes(name, sh->dims, sh->ndim, src->tensor.dtype, &want, err)))
    return rc;
  if (ferry_tensor_nbytes(&src->tensor, &have) != FERRY_OK || want > have)
    return ferry_err_set(err, FERRY_EINVAL, "%s: the new shape needs %llu bytes, the tensor has "
                         "%llu", name, (unsigned long long)want, (unsigned long long)have);
  ferry_ndarray *v;
  rc = ferry_vm_view_new(&src->base, (char *)src->tensor.data + src->tensor.byte_offset,
                         src->tensor.device, (int)sh->ndim, sh->dims, src->tensor.dtype, vm->rt,
                         &v, err);
  if (rc == FERRY_OK)
    ret_obj(ret, FERRY_KIND_NDARRAY, &v->base);
  return rc;
}

static int b_ensure_zero_offset(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                                int depth, ferry_err *err) {
  int rc = vmb_nargs("vm.builtin.ensure_zero_offset", n, 1, 1, err);
  if (rc)
    return rc;
  const DLTensor *t = ferry_vm_tensor_of(&a[0]);
  if (t == NULL || a[0].kind != FERRY_KIND_NDARRAY)
    return ferry_err_set(err, FERRY_ETYPE, "vm.builtin.ensure_zero_offset: expected a tensor");
  /* Views made here never carry a byte_offset (alloc_tensor and reshape
   * fold it into data), so the tensor itself already qualifies. */
  (void)vm, (void)depth;
  ferry_vm_value_retain(ret, &a[0]);
  return FERRY_OK;
}

/* to_device(t, dev_type, dev_id[, scope]): CPU only, so the tensor itself. */
static int b_to_device(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                       int depth, ferry_err *err) {
  (void)vm, (void)depth;
  static const char name[] = "vm.builtin.to_device";
  int64_t type = 0, id = 0;
  int rc = vmb_nargs(name, n, 3, 4, err);
  if (rc || (rc = vmb_int(name, a, 1, &type, err)) || (rc = vmb_int(name, a, 2, &id, err)))
    return rc;
  const DLTensor *t = ferry_vm_tensor_of(&a[0]);
  if (t == NULL || a[0].kind != FERRY_KIND_NDARRAY)
    return ferry_err_set(err, FERRY_ETYPE, "%s: expected a tensor, got %s", name,
                         ferry_kind_name(a[0].kind));
  if (type != t->device.device_type || id != t->device.device_id)
    return ferry_err_set(err, FERRY_EUNSUPPORTED, "%s: copy to device (%lld, %lld) from (%d, %d) "
                         "is not supported on this server", name, (long long)type, (long long)id,
                         (int)t->device.device_type, (int)t->device.device_id);
  ferry_vm_value_retain(ret, &a[0]);
  return FERRY_OK;
}

/* read_if_cond(bool | int | scalar tensor) -> bool */
static int b_read_if_cond(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                          int depth, ferry_err *err) {
  (void)vm, (void)depth;
  int rc = vmb_nargs("vm.builtin.read_if_cond", n, 1, 1, err);
  if (rc)
    return rc;
  ret->kind = FERRY_KIND_BOOL;
  if (a[0].kind == FERRY_KIND_INT || a[0].kind == FERRY_KIND_BOOL) {
    ret->v.i = a[0].v.i != 0;
    return FERRY_OK;
  }
  const DLTensor *t = ferry_vm_tensor_of(&a[0]);
  uint64_t nb = 0;
  if (t == NULL || ferry_tensor_nbytes(t, &nb) != FERRY_OK || nb == 0 || nb > 8 ||
      (t->dtype.code != kDLInt && t->dtype.code != kDLUInt) || t->dtype.lanes != 1) {
    ret->kind = FERRY_KIND_NONE;
    return ferry_err_set(err, FERRY_ETYPE, "vm.builtin.read_if_cond: expected a bool, an int "
                         "or a one-element integer tensor, got %s", ferry_kind_name(a[0].kind));
  }
  const uint8_t *p = (const uint8_t *)t->data + t->byte_offset;
  int any = 0;
  for (uint64_t i = 0; i < nb; i++)
    any |= p[i] != 0;
  ret->v.i = any;
  return FERRY_OK;
}

/* ---- closures ---------------------------------------------------------------------- */

static int b_make_closure(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                          int depth, ferry_err *err) {
  (void)vm, (void)depth;
  int rc = vmb_nargs("vm.builtin.make_closure", n, 1, FERRY_RELAX_MAX_CALL_ARGS, err);
  if (rc)
    return rc;
  ferry_vm_closure *f = (ferry_vm_closure *)ferry_vm_cast(&a[0], FERRY_VM_CLOSURE_KEY);
  if (f == NULL || f->nbound != 0)
    return ferry_err_set(err, FERRY_ETYPE, "vm.builtin.make_closure: argument 0 must be a VM "
                         "function, got %s", ferry_kind_name(a[0].kind));
  ferry_vm_closure *c;
  if ((rc = ferry_vm_closure_new(f->func_idx, a + 1, n - 1, &c, err)))
    return rc;
  ret_obj(ret, FERRY_KIND_OBJECT, &c->hdr.base);
  return FERRY_OK;
}

/* invoke_closure(%vm, closure, args...) */
static int b_invoke_closure(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                            int depth, ferry_err *err) {
  int rc = vmb_nargs("vm.builtin.invoke_closure", n, 2, FERRY_RELAX_MAX_CALL_ARGS, err);
  if (rc)
    return rc;
  return ferry_vm_call_value(vm, &a[1], a + 2, n - 2, depth + 1, ret, err);
}

static int b_memory_clear(ferry_vm *vm, const ferry_value *a, size_t n, ferry_value *ret,
                          int depth, ferry_err *err) {
  (void)a, (void)ret, (void)depth;
  int rc = vmb_nargs("vm.builtin.memory_manager.clear", n, 0, 0, err);
  while (rc == FERRY_OK && vm->pool->nfree > 0) {
    ferry_ndarray *b = vm->pool->free_bufs[--vm->pool->nfree];
    vm->pool->used -= (uint64_t)b->tensor.shape[0];
    ferry_obj_release(&b->base);
  }
  return rc;
}

static const struct ferry_vm_builtin builtins[] = {
    {"vm.builtin.check_tensor_info", b_check_tensor_info, 1},
    {"vm.builtin.check_tuple_info", b_check_tuple_info, 1},
    {"vm.builtin.check_func_info", b_check_func_info, 1},
    {"vm.builtin.alloc_storage", b_alloc_storage, 0},
    {"vm.builtin.alloc_tensor", b_alloc_tensor, 0},
    {"vm.builtin.null_value", b_null_value, 0},
    {"vm.builtin.copy", b_copy, 0},
    {"vm.builtin.make_tuple", b_make_tuple, 0},
    {"vm.builtin.tuple_getitem", b_tuple_getitem, 0},
    {"vm.builtin.tuple_reset_item", b_tuple_reset_item, 0},
    {"vm.builtin.shape_of", b_shape_of, 0},
    {"vm.builtin.reshape", b_reshape, 0},
    {"vm.builtin.ensure_zero_offset", b_ensure_zero_offset, 0},
    {"vm.builtin.to_device", b_to_device, 0},
    {"vm.builtin.read_if_cond", b_read_if_cond, 0},
    {"vm.builtin.make_closure", b_make_closure, 0},
    {"vm.builtin.invoke_closure", b_invoke_closure, 0},
    {"vm.builtin.memory_manager.clear", b_memory_clear, 0},
    {NULL, NULL, 0},
};

const struct ferry_vm_builtin *ferry_vm_builtin_find(const char *name) {
  for (const struct ferry_vm_builtin *b = builtins; b->name; b++)
    if (strcmp(b->name, name) == 0)
      return b;
  for (const struct ferry_vm_builtin *b = ferry_vm_builtins_dyn; b->name; b++)
    if (strcmp(b->name, name) == 0)
      return b;
  return NULL;
}
