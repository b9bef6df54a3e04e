/* The stateful functions of the VM module (TVM vm.cc 510-982): set_input,
 * invoke_stateful, get_output_arity, get_output, save_function,
 * invoke_closure, get_function_arity, get_function_param_name, and the
 * lookup of anything else by name (a saved closure, else a VM function,
 * callable directly).  Tensors a client sends arrive as plain DLTensors
 * (memory it may free at any time), so set_input and save_function copy
 * them into NDArrays, as TVM's ConvertArgToDevice does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/vm/vm_calls.h"
#include "base/bytes.h"
#include "wire/params.h"
#include "wire/stream.h"

int ferry_vm_const_tensor(ferry_vm *vm, const ferry_relax_const *c, ferry_value *out,
                          ferry_err *err) {
  ferry_stream s;
  ferry_stream_init(&s, c->u.raw.p, c->u.raw.n);
  ferry_params_tensor t;
  if (ferry_ndarray_decode(&s, &t) != FERRY_OK) /* checked by the parser */
    return ferry_err_set(err, FERRY_EPROTO, "relax executable: a tensor constant is malformed");
  ferry_ndarray *nd;
  DLDevice host = {kDLCPU, 0};
  int rc = ferry_ndarray_new(vm->rt, t.ndim, t.shape, t.dtype, host, &nd, err);
  if (rc)
    return rc;
  if (t.nbytes)
    memcpy(nd->tensor.data, t.data, (size_t)t.nbytes);
  out->kind = FERRY_KIND_NDARRAY;
  out->v.obj = &nd->base;
  return FERRY_OK;
}

void ferry_vm_clear_state(ferry_vm *vm) {
  const ferry_relax_exec *ex = &vm->exec->ex;
  for (size_t i = 0; i < ex->nfuncs; i++) {
    if (vm->inputs && vm->inputs[i]) {
      for (int64_t k = 0; k < ex->funcs[i].num_args; k++)
        ferry_vm_value_release(&vm->inputs[i][k]);
      free(vm->inputs[i]);
      vm->inputs[i] = NULL;
    }
    if (vm->outputs)
      ferry_vm_value_release(&vm->outputs[i]);
  }
  for (size_t i = 0; i < vm->nsaved; i++) {
    free(vm->saved_names[i]);
    ferry_vm_value_release(&vm->saved[i]);
  }
  free(vm->saved_names);
  free(vm->saved);
  free(vm->saved_ret);
  vm->saved_names = NULL;
  vm->saved = NULL;
  vm->saved_ret = NULL;
  vm->nsaved = 0;
}

/* ---- argument conversion ------------------------------------------------------- */

/* One argument from the client as an owned register value. */
static int convert_arg(ferry_vm *vm, const char *fname, int i, const ferry_value *a,
                       ferry_value *out, ferry_err *err) {
  out->kind = FERRY_KIND_NONE;
  switch (a->kind) {
  case FERRY_KIND_TENSOR: {
    const DLTensor *t = a->v.tensor;
    ferry_ndarray *nd;
    int rc = ferry_ndarray_new(vm->rt, t->ndim, t->shape, t->dtype, vm->dev, &nd, err);
    if (rc == FERRY_OK && (rc = ferry_rt_copy_tensor(vm->rt, t, &nd->tensor, err)) != FERRY_OK)
      ferry_obj_release(&nd->base);
    if (rc)
      return rc;
    out->kind = FERRY_KIND_NDARRAY;
    out->v.obj = &nd->base;
    return FERRY_OK;
  }
  case FERRY_KIND_NDARRAY:
  case FERRY_KIND_OBJECT:
  case FERRY_KIND_FUNC:
  case FERRY_KIND_INT:
  case FERRY_KIND_BOOL:
  case FERRY_KIND_FLOAT:
  case FERRY_KIND_DTYPE:
  case FERRY_KIND_NONE:
    ferry_vm_value_retain(out, a);
    return FERRY_OK;
  default:
    return ferry_err_set(err, FERRY_ETYPE, "%s: argument %d is a %s, which the VM cannot take",
                         fname, i, ferry_kind_name(a->kind));
  }
}

static void free_values(ferry_value *v, size_t n) {
  for (size_t i = 0; v && i < n; i++)
    ferry_vm_value_release(&v[i]);
  free(v);
}

static int convert_args(ferry_vm *vm, const char *fname, const ferry_value *args, size_t n,
                        ferry_value **out, ferry_err *err) {
  ferry_value *v = calloc(n ? n : 1, sizeof *v);
  if (v == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    int rc = convert_arg(vm, fname, (int)i, &args[i], &v[i], err);
    if (rc) {
      free_values(v, i);
      return rc;
    }
  }
  *out = v;
  return FERRY_OK;
}

/* The VM function named by argument 0. */
static int func_arg(ferry_vm *vm, ferry_call *c, const char *what, int64_t *fidx) {
  const char *fname;
  int rc = ferry_arg_str(c, what, 0, &fname);
  if (rc)
    return rc;
  *fidx = ferry_vm_exec_find(vm->exec, fname);
  if (*fidx < 0 || vm->exec->ex.funcs[*fidx].kind != FERRY_RELAX_FUNC_VM)
    return ferry_err_set(c->err, FERRY_ENOTFOUND, "%s: the executable has no VM function '%s'",
                         what, fname);
  return FERRY_OK;
}

static int need_init(ferry_vm *vm, const char *what, ferry_err *err) {
  if (!vm->initialized)
    return ferry_err_set(err, FERRY_EINVAL, "%s: the VM is not initialised (call "
                         "vm_initialization first)", what);
  return FERRY_OK;
}

/* Hands an owned value to the client (the reference moves). */
static int return_value(ferry_call *c, ferry_value *v) {
  if (v->kind == FERRY_KIND_STR) {
    int rc = ferry_call_return_str(c, v->v.str.data, v->v.str.len);
    v->kind = FERRY_KIND_NONE;
    return rc;
  }
  if (v->kind == FERRY_KIND_OPAQUE || v->kind == FERRY_KIND_TENSOR) {
    ferry_vm_value_release(v);
    return ferry_err_set(c->err, FERRY_ETYPE, "the VM produced a value that cannot be returned");
  }
  c->ret = *v;
  v->kind = FERRY_KIND_NONE;
  return FERRY_OK;
}

/* ---- the functions -------------------------------------------------------------- */

static int set_input(ferry_vm *vm, ferry_call *c) {
  int64_t f = 0;
  int rc = ferry_arg_count(c, "set_input", 1, FERRY_RT_MAX_ARGS);
  if (rc || (rc = need_init(vm, "set_input", c->err)) || (rc = func_arg(vm, c, "set_input", &f)))
    return rc;
  const ferry_relax_func *fn = &vm->exec->ex.funcs[f];
  if (c->nargs - 1 != fn->num_args)
    return ferry_err_set(c->err, FERRY_EINVAL, "set_input: function '%.*s' takes %lld inputs, "
                         "got %d", (int)fn->name.len, fn->name.p, (long long)fn->num_args,
                         c->nargs - 1);
  ferry_value *v;
  if ((rc = convert_args(vm, "set_input", c->args + 1, (size_t)c->nargs - 1, &v, c->err)))
    return rc;
  free_values(vm->inputs[f], vm->inputs[f] ? (size_t)fn->num_args : 0);
  vm->inputs[f] = v;
  return FERRY_OK;
}

static int invoke_stateful(ferry_vm *vm, ferry_call *c) {
  int64_t f = 0;
  int rc = ferry_arg_count(c, "invoke_stateful", 1, 1);
  if (rc || (rc = need_init(vm, "invoke_stateful", c->err)) ||
      (rc = func_arg(vm, c, "invoke_stateful", &f)))
    return rc;
  if (vm->inputs[f] == NULL && vm->exec->ex.funcs[f].num_args > 0)
    return ferry_err_set(c->err, FERRY_EINVAL, "invoke_stateful: no inputs set for '%s' (call "
                         "set_input first)", c->args[0].v.str.data);
  ferry_value out;
  rc = ferry_vm_invoke(vm, f, vm->inputs[f], (size_t)vm->exec->ex.funcs[f].num_args, 0, &out,
                       c->err);
  if (rc)
    return rc;
  ferry_vm_value_release(&vm->outputs[f]);
  vm->outputs[f] = out;
  return FERRY_OK;
}

/* The output of function arg 0 indexed by the int arguments after it. */
static int indexed_output(ferry_vm *vm, ferry_call *c, const char *what, const ferry_value **out) {
  int64_t f = 0;
  int rc = ferry_arg_count(c, what, 1, FERRY_RT_MAX_ARGS);
  if (rc || (rc = func_arg(vm, c, what, &f)))
    return rc;
  const ferry_value *v = &vm->outputs[f];
  if (v->kind == FERRY_KIND_NONE)
    return ferry_err_set(c->err, FERRY_EINVAL, "%s: no output for '%s' (call invoke_stateful "
                         "first)", what, c->args[0].v.str.data);
  for (int i = 1; i < c->nargs; i++) {
    int64_t k = 0;
    if ((rc = ferry_arg_int(c, what, i, &k)))
      return rc;
    ferry_vm_array *a = (ferry_vm_array *)ferry_vm_cast(v, FERRY_VM_ARRAY_KEY);
    if (a == NULL || k < 0 || (uint64_t)k >= a->n)
      return ferry_err_set(c->err, FERRY_ERANGE, "%s: index %lld (argument %d) is out of range "
                           "of the output", what, (long long)k, i);
    v = &a->items[k];
  }
  *out = v;
  return FERRY_OK;
}

static int get_output_arity(ferry_vm *vm, ferry_call *c) {
  const ferry_value *v;
  int rc = indexed_output(vm, c, "get_output_arity", &v);
  if (rc)
    return rc;
  ferry_vm_array *a = (ferry_vm_array *)ferry_vm_cast(v, FERRY_VM_ARRAY_KEY);
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = a ? (int64_t)a->n : -1;
  return FERRY_OK;
}

static int get_output(ferry_vm *vm, ferry_call *c) {
  const ferry_value *v;
  int rc = indexed_output(vm, c, "get_output", &v);
  if (rc)
    return rc;
  if (ferry_vm_cast(v, FERRY_VM_ARRAY_KEY) != NULL)
    return ferry_err_set(c->err, FERRY_EINVAL, "get_output: the output is a tuple, which cannot "
                         "be returned over RPC; index it (get_output_arity, get_output(name, "
                         "i))");
  ferry_value r;
  ferry_vm_value_retain(&r, v);
  return return_value(c, &r);
}

static int function_arity(ferry_vm *vm, ferry_call *c) {
  int64_t f = 0;
  int rc = ferry_arg_count(c, "get_function_arity", 1, 1);
  if (rc || (rc = func_arg(vm, c, "get_function_arity", &f)))
    return rc;
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = (int64_t)vm->exec->ex.funcs[f].nparams;
  return FERRY_OK;
}

static int function_param_name(ferry_vm *vm, ferry_call *c) {
  int64_t f = 0, i = 0;
  int rc = ferry_arg_count(c, "get_function_param_name", 2, 2);
  if (rc || (rc = func_arg(vm, c, "get_function_param_name", &f)) ||
      (rc = ferry_arg_int(c, "get_function_param_name", 1, &i)))
    return rc;
  const ferry_relax_func *fn = &vm->exec->ex.funcs[f];
  if (i < 0 || (uint64_t)i >= fn->nparams)
    return ferry_err_set(c->err, FERRY_ERANGE, "get_function_param_name: '%.*s' has %zu "
                         "parameters, asked for #%lld", (int)fn->name.len, fn->name.p,
                         fn->nparams, (long long)i);
  return ferry_call_return_str(c, fn->params[i].p, fn->params[i].len);
}

static int save_function(ferry_vm *vm, ferry_call *c) {
  int64_t f = 0, include_return = 0;
  const char *saved;
  int rc = ferry_arg_count(c, "save_function", 3, FERRY_RT_MAX_ARGS);
  if (rc || (rc = need_init(vm, "save_function", c->err)) ||
      (rc = func_arg(vm, c, "save_function", &f)) ||
      (rc = ferry_arg_str(c, "save_function", 1, &saved)) ||
      (rc = ferry_arg_int(c, "save_function", 2, &include_return)))
    return rc;
  ferry_value *bound;
  size_t nb = (size_t)c->nargs - 3;
  if ((rc = convert_args(vm, "save_function", c->args + 3, nb, &bound, c->err)))
    return rc;
  ferry_vm_closure *clo;
  rc = ferry_vm_closure_new(f, bound, nb, &clo, c->err);
  free_values(bound, nb);
  if (rc)
    return rc;
  size_t k = 0;
  while (k < vm->nsaved && strcmp(vm->saved_names[k], saved) != 0)
    k++;
  if (k == vm->nsaved) {
    char **nn = realloc(vm->saved_names, (k + 1) * sizeof *nn);
    if (nn)
      vm->saved_names = nn;
    ferry_value *ns = nn ? realloc(vm->saved, (k + 1) * sizeof *ns) : NULL;
    if (ns)
      vm->saved = ns;
    uint8_t *nr = ns ? realloc(vm->saved_ret, k + 1) : NULL;
    if (nr)
      vm->saved_ret = nr;
    if (nr == NULL || (vm->saved_names[k] = strdup(saved)) == NULL) {
      ferry_obj_release(&clo->hdr.base);
      return ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
    }
    vm->saved[k].kind = FERRY_KIND_NONE;
    vm->nsaved++;
  }
  ferry_vm_value_release(&vm->saved[k]);
  vm->saved[k].kind = FERRY_KIND_OBJECT;
  vm->saved[k].v.obj = &clo->hdr.base;
  vm->saved_ret[k] = include_return != 0;
  return FERRY_OK;
}

/* Runs callee (a closure or function) with the client's arguments. */
static int run_value(ferry_vm *vm, const ferry_value *callee, ferry_call *c, const ferry_value *args,
                     size_t n, int keep_result) {
  int rc = need_init(vm, "call", c->err);
  if (rc)
    return rc;
  /* TVM v0.20's builtins take NDArray objects only: a remote array is a
   * plain DLTensor there, and TVM refuses it; TVM >= 0.21 accepts it. */
  for (size_t i = 0; i < n && !vm->exec->ffi; i++)
    if (args[i].kind == FERRY_KIND_TENSOR)
      return ferry_err_set(c->err, FERRY_ETYPE,
                           "argument %zu: expected Object but got ArrayHandle (a TVM v0.20 "
                           "executable takes NDArray objects, and a remote array arrives as a "
                           "plain DLTensor: use set_input and invoke_stateful)", i);
  ferry_value *v, out;
  if ((rc = convert_args(vm, "call", args, n, &v, c->err)))
    return rc;
  rc = ferry_vm_call_value(vm, callee, v, n, 0, &out, c->err);
  free_values(v, n);
  if (rc)
    return rc;
  if (!keep_result) {
    ferry_vm_value_release(&out);
    return FERRY_OK;
  }
  return return_value(c, &out);
}

static int invoke_closure(ferry_vm *vm, ferry_call *c) {
  int rc = ferry_arg_count(c, "invoke_closure", 1, FERRY_RT_MAX_ARGS);
  if (rc)
    return rc;
  return run_value(vm, &c->args[0], c, c->args + 1, (size_t)c->nargs - 1, 1);
}

static int set_instrument(ferry_vm *vm, ferry_call *c) {
  (void)vm;
  return ferry_err_set(c->err, FERRY_EUNSUPPORTED,
                       "set_instrument is not supported by ferry's relax VM");
}

/* ---- lookup ----------------------------------------------------------------------- */

enum vm_fn {
  F_MODULE, F_SET_INPUT, F_INVOKE_STATEFUL, F_GET_OUTPUT_ARITY, F_GET_OUTPUT, F_SAVE,
  F_INVOKE_CLOSURE, F_ARITY, F_PARAM_NAME, F_INSTRUMENT, F_SAVED, F_DIRECT,
};

struct vm_fn_ctx {
  ferry_vm *vm;
  enum vm_fn which;
  char *name; /* F_MODULE, F_SAVED */
  int64_t fidx; /* F_DIRECT */
};

static void fn_free(void *p) {
  struct vm_fn_ctx *x = p;
  ferry_obj_release(&x->vm->mod.base);
  free(x->name);
  free(x);
}

static int fn_call(void *p, ferry_call *c) {
  struct vm_fn_ctx *x = p;
  ferry_vm *vm = x->vm;
  int handled;
  switch (x->which) {
  case F_MODULE: {
    int rc = ferry_vm_module_fn(vm, x->name, c, &handled);
    return rc;
  }
  case F_SET_INPUT: return set_input(vm, c);
  case F_INVOKE_STATEFUL: return invoke_stateful(vm, c);
  case F_GET_OUTPUT_ARITY: return get_output_arity(vm, c);
  case F_GET_OUTPUT: return get_output(vm, c);
  case F_SAVE: return save_function(vm, c);
  case F_INVOKE_CLOSURE: return invoke_closure(vm, c);
  case F_ARITY: return function_arity(vm, c);
  case F_PARAM_NAME: return function_param_name(vm, c);
  case F_INSTRUMENT: return set_instrument(vm, c);
  case F_SAVED:
    for (size_t k = 0; k < vm->nsaved; k++)
      if (strcmp(vm->saved_names[k], x->name) == 0)
        return run_value(vm, &vm->saved[k], c, c->args, (size_t)c->nargs, vm->saved_ret[k]);
    return ferry_err_set(c->err, FERRY_ENOTFOUND, "saved function '%s' is gone", x->name);
  default: {
    ferry_value callee;
    if (!vm->initialized || vm->funcs == NULL)
      return need_init(vm, "call", c->err);
    callee = vm->funcs[x->fidx];
    return run_value(vm, &callee, c, c->args, (size_t)c->nargs, 1);
  }
  }
}

int ferry_vm_get_function(ferry_module *m, const char *name, ferry_func **out, ferry_err *err) {
  ferry_vm *vm = (ferry_vm *)m;
  static const struct { const char *name; enum vm_fn which; } table[] = {
      {"vm_initialization", F_MODULE},     {"set_input", F_SET_INPUT},
      {"invoke_stateful", F_INVOKE_STATEFUL}, {"get_output_arity", F_GET_OUTPUT_ARITY},
      {"get_output", F_GET_OUTPUT},         {"save_function", F_SAVE},
      {"invoke_closure", F_INVOKE_CLOSURE}, {"get_function_arity", F_ARITY},
      {"get_function_param_name", F_PARAM_NAME}, {"set_instrument", F_INSTRUMENT},
  };
  *out = NULL;
  int which = -1;
  int64_t fidx = -1;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(table[i].name, name) == 0)
      which = (int)table[i].which;
  for (size_t k = 0; which < 0 && k < vm->nsaved; k++)
    if (strcmp(vm->saved_names[k], name) == 0)
      which = F_SAVED;
  if (which < 0) {
    fidx = ferry_vm_exec_find(vm->exec, name);
    if (fidx < 0 || vm->exec->ex.funcs[fidx].kind != FERRY_RELAX_FUNC_VM)
      return FERRY_ENOTFOUND;
    which = F_DIRECT;
  }
  struct vm_fn_ctx *x = calloc(1, sizeof *x);
  if (x == NULL || ((which == F_MODULE || which == F_SAVED) && (x->name = strdup(name)) == NULL)) {
    free(x);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  x->vm = vm;
  x->which = (enum vm_fn)which;
  x->fidx = fidx;
  if (ferry_closure_new(fn_call, x, fn_free, out) != FERRY_OK) {
    free(x->name);
    free(x);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  ferry_obj_retain(&m->base);
  return FERRY_OK;
}
