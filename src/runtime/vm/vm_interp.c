/* The interpreter: one frame per VM function call, a register file of
 * owned values, and the Call / Ret / Goto / If loop (TVM vm.cc
 * RunLoop / RunInstrCall).  The executable was validated at load
 * (relax_exec_check.c), so registers, constants, function indices and
 * jump targets are used here without checks; what remains to check is
 * what only shows at run time: the call depth, the step budget (jumps go
 * forward only, so only recursion can make a run long) and every value a
 * builtin or kernel receives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/vm/vm.h"

/* Registers and call arguments kept on the stack up to this many (the C
 * stack holds at most FERRY_VM_MAX_DEPTH such frames: 64 x 2 KiB). */
#define SMALL_FRAME 64

/* Appends where an error happened, unless the message already names it
 * (the builtins given an ErrorContext string do, as TVM's do). */
static int where(ferry_vm *vm, int64_t fidx, int64_t pc, const char *callee, int rc,
                 ferry_err *err) {
  const ferry_relax_func *f = &vm->exec->ex.funcs[fidx];
  size_t l = strlen(err->msg);
  if (err->code == 0)
    ferry_err_set(err, rc, "error");
  l = strlen(err->msg);
  if (l + 1 < sizeof err->msg)
    snprintf(err->msg + l, sizeof err->msg - l, " (relax VM: function '%.*s', instruction %lld%s%s)",
             (int)f->name.len, f->name.p, (long long)(pc - f->start_instr), callee ? ", calling " : "",
             callee ? callee : "");
  return rc;
}

static void read_arg(ferry_vm *vm, ferry_value *regs, int64_t word, ferry_value *out) {
  int64_t v = ferry_relax_arg_value(word);
  switch (ferry_relax_arg_kind(word)) {
  case FERRY_RELAX_ARG_REG:
    if (v == FERRY_RELAX_REG_VOID) {
      out->kind = FERRY_KIND_NONE;
      out->v.i = 0;
    } else if (v == FERRY_RELAX_REG_VM) {
      out->kind = FERRY_KIND_OPAQUE;
      out->v.handle = (uint64_t)(uintptr_t)vm;
    } else {
      *out = regs[v];
    }
    return;
  case FERRY_RELAX_ARG_IMM:
    out->kind = FERRY_KIND_INT;
    out->v.i = v;
    return;
  case FERRY_RELAX_ARG_CONST:
    *out = vm->consts[v];
    return;
  default:
    *out = vm->funcs[v];
    return;
  }
}

int ferry_vm_call_func(ferry_vm *vm, ferry_func *f, const char *name, const ferry_value *args,
                       size_t nargs, ferry_value *ret, ferry_err *err) {
  (void)name;
  ret->kind = FERRY_KIND_NONE;
  ret->v.i = 0;
  if (nargs > FERRY_RT_MAX_ARGS)
    return ferry_err_set(err, FERRY_ERANGE, "%zu arguments (at most %d)", nargs,
                         FERRY_RT_MAX_ARGS);
  ferry_call c;
  ferry_call_init(&c, vm->rt, args, (int)nargs, err, 1 << 20);
  int rc = ferry_func_call(f, &c);
  if (rc == FERRY_OK) {
    switch (c.ret.kind) {
    case FERRY_KIND_STR:
    case FERRY_KIND_BYTES:
    case FERRY_KIND_TENSOR:
      rc = ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "the function returned a %s, which a VM register cannot hold",
                         ferry_kind_name(c.ret.kind));
      break;
    default:
      *ret = c.ret; /* the reference moves to the register */
      c.ret.kind = FERRY_KIND_NONE;
    }
  }
  ferry_call_close(&c);
  return rc;
}

/* Kernels get plain DLTensor pointers (both ABIs take them; TVM's v0.26
 * binder reads a Tensor object or a DLTensor*). */
static void as_kernel_args(ferry_value *args, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (args[i].kind == FERRY_KIND_NDARRAY && args[i].v.obj != NULL) {
      args[i].v.tensor = &((ferry_ndarray *)args[i].v.obj)->tensor;
      args[i].kind = FERRY_KIND_TENSOR;
    }
}

static int call_slot(ferry_vm *vm, int64_t callee, ferry_value *args, size_t nargs, int depth,
                     ferry_value *ret, ferry_err *err) {
  const ferry_vm_slot *s = &vm->slots[callee];
  ret->kind = FERRY_KIND_NONE;
  ret->v.i = 0;
  if (s->vm_func >= 0)
    return ferry_vm_invoke(vm, s->vm_func, args, nargs, depth + 1, ret, err);
  if (s->builtin != NULL)
    return s->builtin->fn(vm, args, nargs, ret, depth, err);
  as_kernel_args(args, nargs);
  return ferry_vm_call_func(vm, s->fn, NULL, args, nargs, ret, err);
}

int ferry_vm_call_value(ferry_vm *vm, const ferry_value *callee, const ferry_value *args,
                        size_t nargs, int depth, ferry_value *ret, ferry_err *err) {
  ret->kind = FERRY_KIND_NONE;
  ret->v.i = 0;
  if (callee->kind == FERRY_KIND_FUNC && callee->v.obj != NULL)
    return ferry_vm_call_func(vm, (ferry_func *)callee->v.obj, NULL, args, nargs, ret, err);
  ferry_vm_closure *clo = (ferry_vm_closure *)ferry_vm_cast(callee, FERRY_VM_CLOSURE_KEY);
  if (clo == NULL)
    return ferry_err_set(err, FERRY_ETYPE, "invoke_closure: expected a closure or function, got %s",
                         ferry_kind_name(callee->kind));
  if (clo->func_idx < 0 || (size_t)clo->func_idx >= vm->exec->ex.nfuncs)
    return ferry_err_set(err, FERRY_EINVAL, "invoke_closure: the closure is not of this VM");
  if (clo->nbound == 0)
    return ferry_vm_invoke(vm, clo->func_idx, args, nargs, depth, ret, err);
  if (nargs + clo->nbound > FERRY_RELAX_MAX_CALL_ARGS)
    return ferry_err_set(err, FERRY_ERANGE, "invoke_closure: too many arguments");
  ferry_value *all = malloc((nargs + clo->nbound) * sizeof *all);
  if (all == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  if (nargs)
    memcpy(all, args, nargs * sizeof *all);
  memcpy(all + nargs, clo->bound, clo->nbound * sizeof *all);
  int rc = ferry_vm_invoke(vm, clo->func_idx, all, nargs + clo->nbound, depth, ret, err);
  free(all);
  return rc;
}

static void set_reg(ferry_value *regs, int64_t dst, ferry_value *v) {
  if (dst >= FERRY_RELAX_REG_VOID) {
    ferry_vm_value_release(v);
    return;
  }
  ferry_vm_value_release(&regs[dst]);
  regs[dst] = *v;
}

static int truthy(const ferry_value *v, int *out) {
  if (v->kind == FERRY_KIND_INT || v->kind == FERRY_KIND_BOOL) {
    *out = v->v.i != 0;
    return FERRY_OK;
  }
  return FERRY_ETYPE;
}

int ferry_vm_invoke(ferry_vm *vm, int64_t fidx, const ferry_value *args, size_t nargs,
                    int depth, ferry_value *ret, ferry_err *err) {
  const ferry_relax_exec *ex = &vm->exec->ex;
  const ferry_relax_func *f = &ex->funcs[fidx];
  ret->kind = FERRY_KIND_NONE;
  ret->v.i = 0;
  if (depth == 0)
    vm->steps = 0;
  if (f->kind != FERRY_RELAX_FUNC_VM)
    return ferry_err_set(err, FERRY_EINVAL, "'%.*s' is not a VM function", (int)f->name.len,
                         f->name.p);
  if ((int64_t)nargs != f->num_args)
    return ferry_err_set(err, FERRY_EINVAL, "function '%.*s' takes %lld arguments, got %zu",
                         (int)f->name.len, f->name.p, (long long)f->num_args, nargs);
  if (depth >= FERRY_VM_MAX_DEPTH)
    return ferry_err_set(err, FERRY_ERANGE,
                         "relax VM: calls nested deeper than %d (in function '%.*s'): "
                         "recursion without end?",
                         FERRY_VM_MAX_DEPTH, (int)f->name.len, f->name.p);
  /* Small frames (every compiled model seen so far) live on the C stack:
   * a malloc and a free per VM call cost as much as a small kernel. */
  ferry_value small_regs[SMALL_FRAME], small_argv[SMALL_FRAME];
  ferry_value *regs = small_regs;
  if (f->register_file_size <= SMALL_FRAME)
    memset(small_regs, 0, (size_t)f->register_file_size * sizeof *regs);
  else
    regs = calloc((size_t)f->register_file_size, sizeof *regs);
  ferry_value *argv = small_argv;
  size_t cap_argv = SMALL_FRAME;
  if (regs == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory for %lld registers",
                         (long long)f->register_file_size);
  for (size_t i = 0; i < nargs; i++)
    ferry_vm_value_retain(&regs[i], &args[i]);
  int rc = FERRY_OK;
  int64_t pc = f->start_instr;
  for (;;) {
    if (++vm->steps > FERRY_VM_MAX_STEPS) {
      rc = where(vm, fidx, pc, NULL, FERRY_ERANGE,
                 (ferry_err_set(err, FERRY_ERANGE, "relax VM: more than %u instructions in one run",
                                FERRY_VM_MAX_STEPS),
                  err));
      break;
    }
    const int64_t *w = &ex->instr_data[ex->instr_offset[pc]];
    if (w[0] == FERRY_RELAX_OP_RET) {
      int64_t r = w[1];
      if (r < FERRY_RELAX_REG_VOID) {
        *ret = regs[r];
        regs[r].kind = FERRY_KIND_NONE;
      }
      break;
    }
    if (w[0] == FERRY_RELAX_OP_GOTO) {
      pc += w[1];
      continue;
    }
    if (w[0] == FERRY_RELAX_OP_IF) {
      int yes = 0;
      if (truthy(&regs[w[1]], &yes) != FERRY_OK) {
        ferry_err_set(err, FERRY_ETYPE, "If condition is a %s, not an int or bool",
                      ferry_kind_name(regs[w[1]].kind));
        rc = where(vm, fidx, pc, NULL, FERRY_ETYPE, err);
        break;
      }
      pc += yes ? 1 : w[2];
      continue;
    }
    /* Call: [1, dst, func_idx, num_args, args...] */
    int64_t dst = w[1], callee = w[2];
    size_t n = (size_t)w[3];
    if (n > cap_argv) {
      ferry_value *na = realloc(argv == small_argv ? NULL : argv, n * sizeof *na);
      if (na == NULL) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        break;
      }
      argv = na;
      cap_argv = n;
    }
    for (size_t i = 0; i < n; i++)
      read_arg(vm, regs, w[4 + i], &argv[i]);
    ferry_value out;
    rc = call_slot(vm, callee, argv, n, depth, &out, err);
    if (rc) {
      const ferry_vm_slot *s = &vm->slots[callee];
      if (!(s->builtin != NULL && s->builtin->has_err_ctx) && s->vm_func < 0) {
        char name[160];
        snprintf(name, sizeof name, "%.*s", (int)ex->funcs[callee].name.len,
                 ex->funcs[callee].name.p);
        where(vm, fidx, pc, name, rc, err);
      }
      break;
    }
    set_reg(regs, dst, &out);
    pc++;
  }
  for (int64_t i = 0; i < f->register_file_size; i++)
    ferry_vm_value_release(&regs[i]);
  if (regs != small_regs)
    free(regs);
  if (argv != small_argv)
    free(argv);
  if (rc)
    ferry_vm_value_release(ret);
  return rc;
}
