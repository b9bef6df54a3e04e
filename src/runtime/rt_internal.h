/* Declarations shared between the files of the runtime layer (not part of
 * the contract with the session layer, which is object.h + runtime.h). */
#ifndef FERRY_RUNTIME_RT_INTERNAL_H
#define FERRY_RUNTIME_RT_INTERNAL_H

#include <pthread.h>

#include "ferry/tvm_c_abi.h"
#include "runtime/runtime.h"

/* Ceilings.  Allocation sizes and counts are chosen by the client, so each
 * has a limit chosen here. */
#define FERRY_RT_MAX_ALLOCS (1u << 20)          /* live device allocations */
#define FERRY_RT_MAX_ALLOC_TOTAL (16ull << 30)  /* bytes over all of them */
#define FERRY_RT_MAX_ALIGN 4096u
#define FERRY_RT_MAX_ARGS 4096                  /* arguments of one call */
#define FERRY_RT_MAX_WORKSPACE (4ull << 30)     /* one TVMBackendAllocWorkspace */
#define FERRY_RT_MAX_FILE (1ull << 31)          /* download / linked module bytes */
#define FERRY_RT_MAX_RET_BYTES (1ull << 31)     /* str/bytes result of a call */
#define FERRY_RT_ALIGN 64u                      /* kAllocAlignment */

struct ferry_alloc_entry {
  uintptr_t addr;
  uint64_t size; /* at least 1 so that ranges are never empty */
  /* 1: the storage of an NDArray (ferry_ndarray_new), freed only when the
   * NDArray is destroyed; kDevFreeData of it is refused, since the array
   * (a graph executor's pool, a parameter) goes on using the memory. */
  int owned;
};

struct ferry_rt {
  char *work_dir; /* realpath of the session folder */
  int num_threads;
  int64_t max_packet_size; /* 0: GetCRTMaxPacketSize not registered */
  uint64_t work_quota;     /* 0: none; see ferry_files_usage */
  pthread_mutex_t lock; /* guards the allocation table */
  struct ferry_alloc_entry *allocs; /* sorted by addr */
  size_t nallocs, cap_allocs;
  uint64_t total_bytes;
  uint64_t max_total; /* cap on total_bytes (--max-memory) */
  ferry_module *syslib; /* runtime.SystemLib(""), created on first use */
  struct library_module *libs; /* live library modules (weak list, guarded by lock) */
  struct ferry_cl *cl; /* OpenCL state, created on first use (device/opencl.c) */
  void **preloaded; /* dlopen handles of --load-library libraries */
  size_t npreloaded;
};

/* ---- registry (registry.c) ------------------------------------------------ */

typedef int (*ferry_builtin_fn)(ferry_call *c);
struct ferry_builtin {
  const char *name;
  ferry_builtin_fn fn;
};
/* Tables of built-ins, each terminated by {NULL, NULL}; registry.c lists them. */
extern const struct ferry_builtin ferry_files_builtins[];
extern const struct ferry_builtin ferry_modfuncs_builtins[];
extern const struct ferry_builtin ferry_time_builtins[];
extern const struct ferry_builtin ferry_params_builtins[];
/* Graph executor (graph_exec_funcs.c, graph_factory.c). */
extern const struct ferry_builtin ferry_graph_builtins[];
int ferry_graph_factory_load_blob(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                                  size_t *consumed, struct ferry_module **out, ferry_err *err);

/* Relax VM (vm/): the relax.VMExecutable loaders of __tvm_dev_mblob
 * (classic, v0.20 constant tags) and __tvm_ffi__library_bin (tvm-ffi
 * tags), and the public globals on VM objects (runtime.ShapeTuple, ...). */
int ferry_vm_exec_load_classic(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                               size_t *consumed, struct ferry_module **out, ferry_err *err);
/* The ffi loader takes the executable's bytes alone (the library bin's
 * reader has taken off their length prefix); *consumed = payload_avail. */
int ferry_vm_exec_load_ffi(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                           size_t *consumed, struct ferry_module **out, ferry_err *err);
extern const struct ferry_builtin ferry_vm_globals[];

/* OpenCL modules and __tvm_set_device (device/opencl_module.c): the
 * "opencl" payload of a classic __tvm_dev_mblob (v0.20 function info) and
 * of a tvm-ffi __tvm_ffi__library_bin (v0.26 function info). */
extern const struct ferry_builtin ferry_device_builtins[];
int ferry_opencl_load_blob(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                           size_t *consumed, struct ferry_module **out, ferry_err *err);
int ferry_opencl_load_ffi(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                          size_t *consumed, struct ferry_module **out, ferry_err *err);

/* ---- argument helpers for built-ins (object.c) -------------------------- */

int ferry_arg_count(ferry_call *c, const char *fname, int min, int max) FERRY_MUST_CHECK;
int ferry_arg_str(ferry_call *c, const char *fname, int i, const char **out) FERRY_MUST_CHECK;
int ferry_arg_bytes(ferry_call *c, const char *fname, int i, const char **out,
                    size_t *len) FERRY_MUST_CHECK;
int ferry_arg_int(ferry_call *c, const char *fname, int i, int64_t *out) FERRY_MUST_CHECK;
int ferry_arg_module(ferry_call *c, const char *fname, int i, ferry_module **out) FERRY_MUST_CHECK;
/* A tensor argument (TENSOR or NDARRAY) as a DLTensor pointer. */
int ferry_arg_tensor(ferry_call *c, const char *fname, int i, DLTensor **out) FERRY_MUST_CHECK;
/* Sets an object result (takes over the caller's reference). */
void ferry_call_return_obj(ferry_call *c, enum ferry_kind kind, ferry_obj *o);

/* A function object wrapping fn(ctx, call); free_ctx(ctx) runs on destroy. */
int ferry_closure_new(int (*fn)(void *ctx, ferry_call *c), void *ctx,
                      void (*free_ctx)(void *ctx), ferry_func **out) FERRY_MUST_CHECK;

/* ---- devices (device/cpu.c, device/device.h) ------------------------------ */

/* Creates an NDArray with fresh 64-byte-aligned storage on dev (CPU). */
int ferry_ndarray_new(ferry_rt *rt, int ndim, const int64_t *shape, DLDataType dtype,
                      DLDevice dev, ferry_ndarray **out, ferry_err *err) FERRY_MUST_CHECK;
/* FERRY_OK for a CPU device: what the host-only parts (graph executor,
 * parameters) accept.  Device-generic code uses ferry_rt_device_check. */
int ferry_rt_check_device(DLDevice dev, ferry_err *err) FERRY_MUST_CHECK;
/* Frees every allocation still in the table (ferry_rt_close). */
void ferry_rt_free_all(ferry_rt *rt);

/* ---- parameter maps (params_rt.c) -------------------------------------- */

#define FERRY_PARAM_MAP_KEY "runtime.ParamMap"
/* What runtime.LoadParams returns: names and owned NDArrays, in blob order. */
typedef struct ferry_param_map {
  ferry_other hdr;
  size_t n;
  char **names;
  ferry_ndarray **arrays;
} ferry_param_map;

/* Decodes a parameter blob into NDArrays of rt; *out has one reference. */
int ferry_param_map_decode(ferry_rt *rt, const uint8_t *p, size_t len, ferry_param_map **out,
                           ferry_err *err) FERRY_MUST_CHECK;
/* The map inside o, or NULL when o is something else. */
ferry_param_map *ferry_param_map_cast(ferry_obj *o);

/* ---- modules (module_library.c, module_blob.c) -------------------------- */

/* Loads a shared library as TVM's loader does; *out is the root module. */
int ferry_library_load(ferry_rt *rt, const char *path, ferry_module **out,
                       ferry_err *err) FERRY_MUST_CHECK;
/* The system-library module for a symbol prefix (runtime.SystemLib). */
int ferry_syslib_get(ferry_rt *rt, const char *prefix, ferry_module **out,
                     ferry_err *err) FERRY_MUST_CHECK;
/* A loader of one module type found in a __tvm_dev_mblob: it reads its
 * payload (payload_avail bytes are readable), sets *consumed, and returns a
 * module with one reference in *out.  Listed in module_blob.c. */
typedef int (*ferry_blob_loader_fn)(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                                    size_t *consumed, ferry_module **out, ferry_err *err);
/* Builds the module tree of a __tvm_dev_mblob.  lib is the library module
 * (one reference borrowed); on success *root carries one reference. */
int ferry_blob_load_modules(ferry_rt *rt, const uint8_t *blob, size_t blob_max,
                            ferry_module *lib, const char *libname, ferry_module **root,
                            ferry_err *err) FERRY_MUST_CHECK;
/* Appends child (new reference taken) to parent's imports. */
int ferry_module_import(ferry_module *parent, ferry_module *child, ferry_err *err) FERRY_MUST_CHECK;
/* Releases imports (for module destroy functions). */
void ferry_module_release_imports(ferry_module *m);

/* TVMBackendGetFuncFromEnv for a library module: its imports first, then the
 * global registry; the result is cached in the module and stays valid (and
 * owned by the module) for the module's life. */
int ferry_library_env_func(void *mod_node, const char *name, ferry_func **out,
                           ferry_err *err) FERRY_MUST_CHECK;
/* A system-library symbol registered with TVMBackendRegisterSystemLibSymbol. */
void *ferry_syslib_symbol(const char *name);

/* ---- files (files.c, linker.c) ------------------------------------------- */

/* Why a client file name is refused (absolute, "..", NUL, too long, empty
 * unless allowed), or NULL when it is acceptable. */
const char *ferry_files_name_problem(const char *name, size_t len, int allow_empty);
/* Opens a checked name below work_dir without following symbolic links
 * (flags/mode apply to the last component).  Returns an fd, or -1 + errno. */
int ferry_files_open_below(const char *work_dir, const char *name, int flags, unsigned mode);
/* What the work quota charges for one file or folder of size bytes: its
 * size rounded up to FERRY_FILES_BLOCK, and at least one block, so that
 * empty files (inodes) are not free. */
#define FERRY_FILES_BLOCK 4096u
uint64_t ferry_files_charge(uint64_t size);
/* Sums ferry_files_charge over everything below work_dir (symbolic links
 * not followed, at most 32 levels deep; deeper entries count one block
 * each).  O(entries): the quota bounds how many there can be. */
uint64_t ferry_files_usage(const char *work_dir);
/* For a name ending in .o or .tar: links it (extracting the archive first)
 * into "<name>.so" with the C compiler, as TVM's server does, and writes
 * that name to out.  Other names are copied to out unchanged. */
int ferry_link_module(ferry_rt *rt, const char *name, char *out, size_t cap,
                      ferry_err *err) FERRY_MUST_CHECK;

/* ---- classic ABI (abi_classic.c) ----------------------------------------- */

/* Wraps a TVMBackendPackedCFunc of a library; holds a reference on owner. */
int ferry_classic_func_new(void *fptr, const char *name, ferry_obj *owner,
                           ferry_func **out) FERRY_MUST_CHECK;
/* Frees the calling thread's TVMFuncCall result storage. */
void ferry_classic_release_thread(void);

/* ---- backend (backend_api.c, thread_pool.c) ------------------------------ */

/* The runtime compiled code's callbacks run against (one per process). */
void ferry_backend_set_rt(ferry_rt *rt);
ferry_rt *ferry_backend_rt(void);
/* Clears / reads the calling thread's last error (TVMAPISetLastError). */
void ferry_backend_clear_error(void);
const char *ferry_backend_last_error(void);
/* Frees the calling thread's cached workspaces and call-result storage
 * (thread exit, ferry_rt_close). */
void ferry_backend_release_thread(void);
/* Table of the backend functions' addresses, indexed like the context
 * slot names (the loader stores them into a library's __TVM* slots). */
struct ferry_ctx_slot {
  const char *symbol; /* "__TVMFuncCall", ... */
  void (*impl)(void); /* stored into the slot as is */
};
extern const struct ferry_ctx_slot ferry_backend_ctx_slots[];
extern const size_t ferry_backend_nctx_slots;

/* Thread pool (TVMBackendParallelLaunch/Barrier live in thread_pool.c):
 * the worker count is fixed before the first launch; shutdown joins every
 * worker (ferry_rt_close). */
void ferry_thread_pool_configure(int num_threads);
void ferry_thread_pool_shutdown(void);

/* ---- tvm-ffi ABI (abi_ffi.c, module_ffi.c) -------------------------------- */

/* Wraps a library's __tvm_ffi_<name> safe call; holds a reference on owner. */
int ferry_ffi_func_new(void *fptr, const char *name, ferry_obj *owner,
                       ferry_func **out) FERRY_MUST_CHECK;
/* Context slots of a tvm-ffi library ("__TVMFFIFunctionCall", ...). */
extern const struct ferry_ctx_slot ferry_ffi_ctx_slots[];
extern const size_t ferry_ffi_nctx_slots;
/* FERRY_EDLOPEN naming the first __TVM* pointer variable of the library at
 * path that is not one of ferry_ffi_ctx_slots (it would stay NULL). */
int ferry_ffi_check_slots(const char *path, const char *name, ferry_err *err) FERRY_MUST_CHECK;
/* Builds the module tree of a __tvm_ffi__library_bin of avail readable
 * bytes (module_ffi_bin.c), as ferry_blob_load_modules does for classic
 * blobs: lib is borrowed; on success *root carries one reference. */
int ferry_ffi_load_library_bin(ferry_rt *rt, const uint8_t *bin, size_t avail, ferry_module *lib,
                               const char *libname, ferry_module **root,
                               ferry_err *err) FERRY_MUST_CHECK;
/* The first module kind other than "_lib" in a __tvm_ffi__library_bin of
 * avail readable bytes, printable, into out ("unknown" if unreadable). */
void ferry_ffi_library_bin_kind(const uint8_t *bin, size_t avail, char *out, size_t cap);
extern const struct ferry_builtin ferry_ffi_builtins[];

#endif
