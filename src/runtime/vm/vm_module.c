/* The relax.VirtualMachine module (TVM vm.cc 227-240, 465-982): what
 * vm_load_executable returns and what TVM's Python relax.VirtualMachine
 * calls on it over RPC.  Creation and vm_initialization (constants, the
 * function pool with every name resolved, the pooled allocator) are
 * here; the stateful functions (set_input, invoke_stateful, outputs,
 * saved functions, lookup by name) are in vm_calls.c. */
#include <stdlib.h>
#include <string.h>

#include "runtime/vm/vm_calls.h"

static void vm_reset(ferry_vm *vm) {
  const ferry_relax_exec *ex = &vm->exec->ex;
  if (vm->slots)
    for (size_t i = 0; i < ex->nfuncs; i++)
      ferry_obj_release(vm->slots[i].fn ? &vm->slots[i].fn->base : NULL);
  free(vm->slots);
  vm->slots = NULL;
  if (vm->consts)
    for (size_t i = 0; i < ex->nconsts; i++)
      ferry_vm_value_release(&vm->consts[i]);
  free(vm->consts);
  vm->consts = NULL;
  if (vm->cstrs)
    for (size_t i = 0; i < ex->nconsts; i++)
      free(vm->cstrs[i]);
  free(vm->cstrs);
  vm->cstrs = NULL;
  if (vm->funcs)
    for (size_t i = 0; i < ex->nfuncs; i++)
      ferry_vm_value_release(&vm->funcs[i]);
  free(vm->funcs);
  vm->funcs = NULL;
  ferry_vm_clear_state(vm);
  ferry_obj_release(vm->pool ? &vm->pool->hdr.base : NULL);
  vm->pool = NULL;
  vm->initialized = 0;
}

static void vm_destroy(ferry_obj *o) {
  ferry_vm *vm = (ferry_vm *)o;
  vm_reset(vm);
  free(vm->inputs);
  free(vm->outputs);
  ferry_obj_release(&vm->exec->mod.base);
  ferry_module_release_imports(&vm->mod);
  free(vm);
}

int ferry_vm_new(ferry_vm_exec *exec, ferry_vm **out, ferry_err *err) {
  *out = NULL;
  ferry_vm *vm = calloc(1, sizeof *vm);
  size_t nf = exec->ex.nfuncs ? exec->ex.nfuncs : 1;
  if (vm == NULL || (vm->inputs = calloc(nf, sizeof *vm->inputs)) == NULL ||
      (vm->outputs = calloc(nf, sizeof *vm->outputs)) == NULL) {
    if (vm)
      free(vm->inputs);
    free(vm);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  ferry_obj_init(&vm->mod.base, FERRY_OBJ_MODULE, vm_destroy);
  vm->mod.type_key = FERRY_VM_MODULE_KEY;
  vm->mod.get_function = ferry_vm_get_function;
  vm->rt = exec->rt;
  ferry_obj_retain(&exec->mod.base);
  vm->exec = exec;
  /* The VM module's imports are the executable's (TVM vm.cc 465-468). */
  for (size_t i = 0; i < exec->mod.nimports; i++) {
    int rc = ferry_module_import(&vm->mod, exec->mod.imports[i], err);
    if (rc) {
      ferry_obj_release(&vm->mod.base);
      return rc;
    }
  }
  *out = vm;
  return FERRY_OK;
}

/* ---- vm_initialization ------------------------------------------------------------ */

static int make_const(ferry_vm *vm, size_t i, ferry_err *err) {
  const ferry_relax_const *c = &vm->exec->ex.consts[i];
  ferry_value *v = &vm->consts[i];
  switch (c->kind) {
  case FERRY_RELAX_CONST_INT:
    v->kind = FERRY_KIND_INT;
    v->v.i = c->u.i;
    return FERRY_OK;
  case FERRY_RELAX_CONST_FLOAT:
    v->kind = FERRY_KIND_FLOAT;
    v->v.f = c->u.f;
    return FERRY_OK;
  case FERRY_RELAX_CONST_DTYPE:
    v->kind = FERRY_KIND_DTYPE;
    v->v.dtype = c->u.dtype;
    return FERRY_OK;
  case FERRY_RELAX_CONST_STRING:
    /* ferry_value strings end with a NUL; the pool's do not. */
    if ((vm->cstrs[i] = strndup(c->u.str.p, c->u.str.len)) == NULL)
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    v->kind = FERRY_KIND_STR;
    v->v.str.data = vm->cstrs[i];
    v->v.str.len = strlen(vm->cstrs[i]);
    return FERRY_OK;
  case FERRY_RELAX_CONST_SHAPE: {
    int64_t dims[FERRY_RELAX_MAX_SHAPE_NDIM];
    for (size_t d = 0; d < c->u.raw.n; d++)
      dims[d] = ferry_relax_shape_dim(c, d);
    ferry_vm_shape *s = NULL;
    int rc = ferry_vm_shape_new((int64_t)c->u.raw.n, dims, &s, err);
    if (rc == FERRY_OK) {
      v->kind = FERRY_KIND_OBJECT;
      v->v.obj = &s->hdr.base;
    }
    return rc;
  }
  default:
    return ferry_vm_const_tensor(vm, c, v, err);
  }
}

static int resolve_slot(ferry_vm *vm, size_t i, ferry_err *err) {
  const ferry_relax_func *f = &vm->exec->ex.funcs[i];
  ferry_vm_slot *s = &vm->slots[i];
  s->vm_func = -1;
  if (f->kind == FERRY_RELAX_FUNC_VM) {
    s->vm_func = (int64_t)i;
    ferry_vm_closure *c;
    int rc = ferry_vm_closure_new((int64_t)i, NULL, 0, &c, err);
    if (rc == FERRY_OK) {
      vm->funcs[i].kind = FERRY_KIND_OBJECT;
      vm->funcs[i].v.obj = &c->hdr.base;
    }
    return rc;
  }
  char name[FERRY_RELAX_MAX_NAME + 1];
  memcpy(name, f->name.p, f->name.len);
  name[f->name.len] = 0;
  /* TVM's order: the imports (the kernels), then the registry; ferry's
   * builtins stand where TVM's registered vm.builtin.* globals do. */
  ferry_func *fn = NULL;
  int rc = FERRY_ENOTFOUND;
  for (size_t k = 0; k < vm->mod.nimports && rc == FERRY_ENOTFOUND; k++)
    rc = ferry_module_get_function(vm->mod.imports[k], name, 1, &fn, err);
  if (rc != FERRY_OK && rc != FERRY_ENOTFOUND)
    return rc;
  if (rc == FERRY_OK) {
    s->fn = fn;
    ferry_obj_retain(&fn->base);
    vm->funcs[i].kind = FERRY_KIND_FUNC;
    vm->funcs[i].v.obj = &fn->base;
    return FERRY_OK;
  }
  if ((s->builtin = ferry_vm_builtin_find(name)) != NULL)
    return FERRY_OK;
  if (ferry_rt_get_global(vm->rt, name, &fn) == FERRY_OK) {
    s->fn = fn;
    ferry_obj_retain(&fn->base);
    vm->funcs[i].kind = FERRY_KIND_FUNC;
    vm->funcs[i].v.obj = &fn->base;
    return FERRY_OK;
  }
  return ferry_err_set(err, FERRY_ENOTFOUND,
                       "vm_initialization: cannot find PackedFunc %s (function #%zu of the "
                       "executable): not in the model's library, not a VM builtin this "
                       "server has, not a global function",
                       name, i);
}

static int vm_initialization(ferry_vm *vm, ferry_call *c) {
  static const char name[] = "vm_initialization";
  if (c->nargs < 3 || c->nargs % 3 != 0)
    return ferry_err_set(c->err, FERRY_EINVAL,
                         "%s takes (device_type, device_id, allocator_type) triples, got %d "
                         "arguments", name, c->nargs);
  int64_t type = 0, id = 0, alloc = 0;
  int rc;
  for (int k = 0; k < c->nargs; k += 3) {
    if ((rc = ferry_arg_int(c, name, k, &type)) || (rc = ferry_arg_int(c, name, k + 1, &id)) ||
        (rc = ferry_arg_int(c, name, k + 2, &alloc)))
      return rc;
    DLDevice d = {(DLDeviceType)type, (int)id};
    if (type < 0 || type > 1 << 16 || id < 0 || id > 1 << 16)
      return ferry_err_set(c->err, FERRY_EINVAL, "%s: device (%lld, %lld) is out of range", name,
                           (long long)type, (long long)id);
    if ((rc = ferry_rt_check_device(d, c->err)))
      return rc;
    if (alloc != 1 && alloc != 2)
      return ferry_err_set(c->err, FERRY_EINVAL,
                           "%s: allocator type %lld (1 naive, 2 pooled)", name, (long long)alloc);
    if (k == 0)
      vm->dev = d;
  }
  vm_reset(vm);
  const ferry_relax_exec *ex = &vm->exec->ex;
  size_t nc = ex->nconsts ? ex->nconsts : 1, nf = ex->nfuncs ? ex->nfuncs : 1;
  vm->consts = calloc(nc, sizeof *vm->consts);
  vm->cstrs = calloc(nc, sizeof *vm->cstrs);
  vm->funcs = calloc(nf, sizeof *vm->funcs);
  vm->slots = calloc(nf, sizeof *vm->slots);
  if (vm->consts == NULL || vm->cstrs == NULL || vm->funcs == NULL || vm->slots == NULL) {
    vm_reset(vm);
    return ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
  }
  rc = ferry_vm_pool_new(vm->rt, vm->dev, ferry_rt_max_memory(vm->rt), &vm->pool, c->err);
  for (size_t i = 0; rc == FERRY_OK && i < ex->nconsts; i++)
    rc = make_const(vm, i, c->err);
  for (size_t i = 0; rc == FERRY_OK && i < ex->nfuncs; i++)
    rc = resolve_slot(vm, i, c->err);
  if (rc) {
    vm_reset(vm);
    return rc;
  }
  vm->initialized = 1;
  return FERRY_OK;
}

int ferry_vm_module_fn(ferry_vm *vm, const char *name, ferry_call *c, int *handled) {
  *handled = 1;
  if (strcmp(name, "vm_initialization") == 0)
    return vm_initialization(vm, c);
  *handled = 0;
  return FERRY_OK;
}
