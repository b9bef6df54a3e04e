/* Runtime objects shared by the session layer and the runtime: errors,
 * reference-counted functions, modules and NDArrays, and the call frame.
 *
 * This header is the contract between src/server (session dispatch, handle
 * table) and src/runtime.  The session turns wire handles into ferry_obj
 * pointers through its handle table and calls ferry_func_call(); it never
 * sees TVM's ABIs.  The runtime never sees wire bytes. */
#ifndef FERRY_RUNTIME_OBJECT_H
#define FERRY_RUNTIME_OBJECT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ferry/error.h"
#include "ferry/value.h"

/* ---- errors ------------------------------------------------------------ */

#define FERRY_ERR_MSG_MAX 4096

/* Error text owned by the caller; the first message set wins, so the
 * innermost failure (the most specific) is what the user reads. */
typedef struct ferry_err {
  int code;                     /* FERRY_E*, 0 while unset */
  char msg[FERRY_ERR_MSG_MAX];  /* NUL-terminated */
} ferry_err;

static inline void ferry_err_clear(ferry_err *e) {
  e->code = 0;
  e->msg[0] = 0;
}
/* Records code and message unless one is already recorded; returns code so
 * that `return ferry_err_set(err, FERRY_EINVAL, "...")` reads naturally. */
int ferry_err_set(ferry_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- objects ----------------------------------------------------------- */

enum ferry_obj_type {
  FERRY_OBJ_FUNC = 1,
  FERRY_OBJ_MODULE,
  FERRY_OBJ_NDARRAY,
  FERRY_OBJ_OTHER,
};

typedef struct ferry_obj {
  atomic_int refs;
  enum ferry_obj_type type;
  /* Frees the object; called when refs drops to 0.  Must release what the
   * object holds (imports, captured functions, storage). */
  void (*destroy)(struct ferry_obj *self);
} ferry_obj;

/* Initialises the header with one reference (owned by the creator). */
void ferry_obj_init(ferry_obj *o, enum ferry_obj_type type,
                    void (*destroy)(ferry_obj *));
void ferry_obj_retain(ferry_obj *o);
/* Drops one reference; NULL is ignored. */
void ferry_obj_release(ferry_obj *o);

/* Objects of type FERRY_OBJ_OTHER start with this header, so that a
 * function receiving one can check what it is before using it. */
typedef struct ferry_other {
  ferry_obj base;
  const char *type_key; /* static string, e.g. "runtime.ParamMap" */
} ferry_other;

struct ferry_rt;

/* One invocation.  The callee reads args (borrowed for the call), writes
 * ret; a STR or BYTES result points into ret_storage (owned by the frame);
 * a FUNC/MODULE/NDARRAY/OBJECT result in ret.v.obj carries one reference
 * that the caller now owns.  On failure the callee returns a FERRY_E* code
 * with a message in *err, and ret stays NONE. */
typedef struct ferry_call {
  const ferry_value *args;
  int nargs;
  ferry_value ret;
  ferry_buf ret_storage;
  ferry_err *err;
  struct ferry_rt *rt; /* the session's runtime context */
} ferry_call;

/* Prepares a frame (ret NONE, empty storage bounded by max_ret_bytes). */
void ferry_call_init(ferry_call *c, struct ferry_rt *rt, const ferry_value *args,
                     int nargs, ferry_err *err, size_t max_ret_bytes);
/* Releases what the frame still owns (an object result the caller did not
 * take, the storage). */
void ferry_call_close(ferry_call *c);
/* Helpers for callees: set a string/bytes result (copied into storage). */
int ferry_call_return_str(ferry_call *c, const char *s, size_t len) FERRY_MUST_CHECK;
int ferry_call_return_bytes(ferry_call *c, const void *p, size_t len) FERRY_MUST_CHECK;

typedef struct ferry_func {
  ferry_obj base;
  int (*call)(struct ferry_func *self, ferry_call *call);
} ferry_func;

static inline int ferry_func_call(ferry_func *f, ferry_call *c) {
  return f->call(f, c);
}

typedef struct ferry_module {
  ferry_obj base;
  const char *type_key; /* "library", "GraphExecutorFactory", ... */
  /* Looks a function up in this module only.  On success *out carries one
   * reference; FERRY_ENOTFOUND (no message needed) when absent. */
  int (*get_function)(struct ferry_module *self, const char *name,
                      ferry_func **out, ferry_err *err);
  struct ferry_module **imports; /* owned references */
  size_t nimports;
} ferry_module;

/* Looks name up in m and, if query_imports, depth-first in its imports. */
int ferry_module_get_function(ferry_module *m, const char *name,
                              int query_imports, ferry_func **out,
                              ferry_err *err) FERRY_MUST_CHECK;

/* An owned tensor.  tensor.shape points at shape_storage; tensor.data at
 * storage allocated from the session runtime (so the session's range checks
 * accept it while the NDArray lives). */
#define FERRY_MAX_NDIM 32
typedef struct ferry_ndarray {
  ferry_obj base;
  DLTensor tensor;
  int64_t shape_storage[FERRY_MAX_NDIM];
  struct ferry_rt *rt;
} ferry_ndarray;

#endif
