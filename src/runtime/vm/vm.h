/* The Relax virtual machine (spec relax-vm.md sections 2 and 3): what runs
 * the models TVM >= 0.20 compiles.  Files:
 *
 *   vm_exec.c      the relax.VMExecutable module (loaders for both library
 *                  forms, stats / as_text / vm_load_executable / has_function)
 *   vm_objects.c   the objects a register can hold besides NDArrays:
 *                  Storage (pooled), views, Shape, Array, Closure
 *   vm_interp.c    frames and the Call / Ret / Goto / If loop
 *   vm_builtins.c  the vm.builtin.* functions (private to the VM)
 *   vm_module.c    the relax.VirtualMachine module: the functions TVM's
 *                  Python relax.VirtualMachine calls over RPC
 *   vm_globals.c   the public runtime globals TVM clients call on VM
 *                  objects (runtime.ShapeTuple, Array getters, testing.echo)
 *
 * A register is a ferry_value.  Object kinds (NDARRAY, OBJECT, FUNC,
 * MODULE) own one reference; STR values point into the executable's
 * constant pool, which outlives every VM made from it; the VM context
 * (%vm) reads as an OPAQUE value. */
#ifndef FERRY_RUNTIME_VM_VM_H
#define FERRY_RUNTIME_VM_VM_H

#include "runtime/rt_internal.h"
#include "wire/relax_exec.h"

#define FERRY_VM_EXEC_KEY "relax.VMExecutable"
#define FERRY_VM_MODULE_KEY "relax.VirtualMachine"
#define FERRY_VM_MAX_DEPTH 64          /* VM-to-VM call depth */
#define FERRY_VM_MAX_STEPS (1u << 24)  /* instructions per invocation from outside */
#define FERRY_VM_MAX_TUPLE (1u << 20)  /* elements of one Array */
#define FERRY_VM_POOL_PAGE 4096u       /* the pooled allocator's rounding */
#define FERRY_VM_OBJ_CACHE 64          /* freed object structs a pool keeps */

/* Type keys of ferry_other objects the VM makes. */
#define FERRY_VM_STORAGE_KEY "vm.Storage"
#define FERRY_VM_SHAPE_KEY "runtime.ShapeTuple"
#define FERRY_VM_ARRAY_KEY "runtime.Array"
#define FERRY_VM_CLOSURE_KEY "relax.vm.Closure"
#define FERRY_VM_POOL_KEY "vm.PooledAllocator"

/* ---- objects (vm_objects.c) ---------------------------------------------- */

/* The pooled allocator: free lists of whole buffers by exact (page-rounded)
 * size, as TVM's PooledAllocator keeps them.  Its own object so that a
 * Storage outliving the VM (inside a tensor the client holds) can still
 * go back to it. */
typedef struct ferry_vm_pool {
  ferry_other hdr;
  ferry_rt *rt;
  DLDevice dev;
  uint64_t cap;    /* bytes live + cached, at most */
  uint64_t used;   /* bytes of live and cached buffers */
  size_t nfree;
  ferry_ndarray **free_bufs; /* cached uint8 buffers */
  size_t cap_free;
  /* Freed Storage and view structs kept for reuse (at most
   * FERRY_VM_OBJ_CACHE each): a model allocates them on every run. */
  void *free_objs[2][FERRY_VM_OBJ_CACHE];
  size_t nfree_objs[2];
} ferry_vm_pool;

typedef struct ferry_vm_storage {
  ferry_other hdr;
  ferry_vm_pool *pool; /* owned reference */
  ferry_ndarray *buf;  /* uint8[size]: storage the client cannot free */
  uint64_t size;
} ferry_vm_storage;

typedef struct ferry_vm_shape {
  ferry_other hdr;
  int64_t ndim;
  int64_t *dims;
} ferry_vm_shape;

typedef struct ferry_vm_array {
  ferry_other hdr;
  size_t n;
  ferry_value *items; /* owned values */
} ferry_vm_array;

typedef struct ferry_vm_closure {
  ferry_other hdr;
  int64_t func_idx;   /* a VM function of the executable */
  size_t nbound;
  ferry_value *bound; /* owned, appended after the call's arguments */
} ferry_vm_closure;

int ferry_vm_pool_new(ferry_rt *rt, DLDevice dev, uint64_t cap, ferry_vm_pool **out,
                      ferry_err *err) FERRY_MUST_CHECK;
int ferry_vm_storage_new(ferry_vm_pool *pool, uint64_t nbytes, ferry_vm_storage **out,
                         ferry_err *err) FERRY_MUST_CHECK;
/* An NDArray over memory another object owns (one reference taken on it). */
int ferry_vm_view_new(ferry_obj *owner, void *data, DLDevice dev, int ndim, const int64_t *shape,
                      DLDataType dtype, ferry_rt *rt, ferry_ndarray **out,
                      ferry_err *err) FERRY_MUST_CHECK;
/* The same for a view of a Storage: its struct comes from (and goes back
 * to) the Storage's pool. */
int ferry_vm_storage_view_new(ferry_vm_storage *s, uint64_t offset, int ndim, const int64_t *shape,
                              DLDataType dtype, ferry_rt *rt, ferry_ndarray **out,
                              ferry_err *err) FERRY_MUST_CHECK;
int ferry_vm_shape_new(int64_t ndim, const int64_t *dims, ferry_vm_shape **out,
                       ferry_err *err) FERRY_MUST_CHECK;
/* Takes nothing: items are copied with a reference each. */
int ferry_vm_array_new(const ferry_value *items, size_t n, ferry_vm_array **out,
                       ferry_err *err) FERRY_MUST_CHECK;
int ferry_vm_closure_new(int64_t func_idx, const ferry_value *bound, size_t nbound,
                         ferry_vm_closure **out, ferry_err *err) FERRY_MUST_CHECK;
/* The object of that type key inside v, or NULL. */
ferry_other *ferry_vm_cast(const ferry_value *v, const char *type_key);

/* Register value helpers: a copy with its own reference / dropping one. */
void ferry_vm_value_retain(ferry_value *dst, const ferry_value *src);
void ferry_vm_value_release(ferry_value *v);
int ferry_vm_value_is_obj(const ferry_value *v);

/* ---- the executable module (vm_exec.c) -------------------------------------- */

typedef struct ferry_vm_exec {
  ferry_module mod;
  ferry_rt *rt;
  uint8_t *bytes; /* owned copy of the executable */
  size_t len;
  ferry_relax_exec ex; /* parsed and validated; borrows bytes */
  int ffi;             /* loaded from a tvm-ffi library (TVM >= 0.21) */
} ferry_vm_exec;

/* Blob loaders: the payload is u64 len + the executable.  classic: the
 * __tvm_dev_mblob entry (v0.20 tags); ffi: __tvm_ffi__library_bin. */
int ferry_vm_exec_load_classic(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                               size_t *consumed, ferry_module **out, ferry_err *err);
int ferry_vm_exec_load_ffi(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                           size_t *consumed, ferry_module **out, ferry_err *err);
ferry_vm_exec *ferry_vm_exec_cast(ferry_module *m);
/* The executable's function named name, or -1. */
int64_t ferry_vm_exec_find(const ferry_vm_exec *e, const char *name);

/* ---- the machine (vm_interp.c, vm_module.c) ------------------------------- */

struct ferry_vm_builtin;

/* One func-pool slot, resolved at vm_initialization. */
typedef struct ferry_vm_slot {
  const struct ferry_vm_builtin *builtin; /* a private vm.builtin.* */
  ferry_func *fn;                         /* a kernel or global (owned) */
  int64_t vm_func;                        /* >= 0: a VM function */
} ferry_vm_slot;

typedef struct ferry_vm {
  ferry_module mod;
  ferry_rt *rt;
  ferry_vm_exec *exec; /* owned reference */
  int initialized;
  DLDevice dev;        /* devices[0] */
  ferry_vm_pool *pool; /* owned */
  ferry_vm_slot *slots;
  ferry_value *consts; /* owned values, one per constant */
  char **cstrs;        /* NUL-terminated copies of the String constants */
  ferry_value *funcs;  /* f[i] as a value (closure or function), owned */
  /* Per VM function: the stored inputs and the last output. */
  ferry_value **inputs; /* NULL until set_input */
  ferry_value *outputs;
  /* Saved closures (save_function). */
  size_t nsaved;
  char **saved_names;
  ferry_value *saved; /* closures (objects) they run */
  uint8_t *saved_ret;  /* include_return */
  uint64_t steps; /* budget used by the current invocation */
} ferry_vm;

/* Runs VM function fidx with args (borrowed); *ret gets an owned value.
 * depth: 0 from outside the VM. */
int ferry_vm_invoke(ferry_vm *vm, int64_t fidx, const ferry_value *args, size_t nargs,
                    int depth, ferry_value *ret, ferry_err *err) FERRY_MUST_CHECK;
/* Calls a closure object or a function object with args (borrowed). */
int ferry_vm_call_value(ferry_vm *vm, const ferry_value *callee, const ferry_value *args,
                        size_t nargs, int depth, ferry_value *ret, ferry_err *err) FERRY_MUST_CHECK;
/* Calls a ferry_func and moves its result into *ret (owned). */
int ferry_vm_call_func(ferry_vm *vm, ferry_func *f, const char *name, const ferry_value *args,
                       size_t nargs, ferry_value *ret, ferry_err *err) FERRY_MUST_CHECK;
/* The VM module of an executable (vm_load_executable). */
int ferry_vm_new(ferry_vm_exec *exec, ferry_vm **out, ferry_err *err) FERRY_MUST_CHECK;

/* ---- builtins (vm_builtins.c) ----------------------------------------------- */

/* A builtin: args borrowed; *ret set to an owned value (NONE by default). */
typedef int (*ferry_vm_builtin_fn)(ferry_vm *vm, const ferry_value *args, size_t nargs,
                                   ferry_value *ret, int depth, ferry_err *err);
struct ferry_vm_builtin {
  const char *name;
  ferry_vm_builtin_fn fn;
  int has_err_ctx; /* its message names the function and parameter itself */
};
const struct ferry_vm_builtin *ferry_vm_builtin_find(const char *name);

/* Shape of a tensor value (TENSOR or NDARRAY) or a Shape object. */
const DLTensor *ferry_vm_tensor_of(const ferry_value *v);

extern const struct ferry_builtin ferry_vm_globals[];

#endif
