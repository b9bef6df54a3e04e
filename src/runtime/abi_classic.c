/* The classic module ABI (TVM <= 0.20): the ONE place where ferry_value is
 * mapped to and from TVMValue + type code for compiled code.  It wraps a
 * library's TVMBackendPackedCFunc as a ferry_func (calls into the module)
 * and implements TVMFuncCall (calls out of the module into ferry functions).
 * A second module ABI (tvm-ffi) gets its own file beside this one. */
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

/* ---- ferry_value -> TVMValue -------------------------------------------- */

/* bytes_slot receives the TVMByteArray a BYTES value points at; it must
 * live as long as the call. */
static int value_to_classic(const ferry_value *v, TVMValue *out, int32_t *code,
                            TVMByteArray *bytes_slot, int index, ferry_err *err) {
  out->v_int64 = 0;
  switch (v->kind) {
  case FERRY_KIND_NONE:
    *code = kTVMNullptr;
    out->v_handle = NULL;
    return FERRY_OK;
  case FERRY_KIND_INT:
    *code = kTVMArgInt;
    out->v_int64 = v->v.i;
    return FERRY_OK;
  case FERRY_KIND_BOOL:
    *code = kTVMArgBool;
    out->v_int64 = v->v.i != 0;
    return FERRY_OK;
  case FERRY_KIND_FLOAT:
    *code = kTVMArgFloat;
    out->v_float64 = v->v.f;
    return FERRY_OK;
  case FERRY_KIND_OPAQUE:
    *code = kTVMOpaqueHandle;
    out->v_handle = (void *)(uintptr_t)v->v.handle;
    return FERRY_OK;
  case FERRY_KIND_DTYPE:
    *code = kTVMDataType;
    out->v_type = v->v.dtype;
    return FERRY_OK;
  case FERRY_KIND_DEVICE:
    *code = kTVMDLDevice;
    out->v_device = v->v.device;
    return FERRY_OK;
  case FERRY_KIND_TENSOR:
    *code = kTVMDLTensorHandle;
    out->v_handle = v->v.tensor;
    return FERRY_OK;
  case FERRY_KIND_NDARRAY:
    /* TVM passes an NDArray as a pointer to its embedded DLTensor. */
    if (v->v.obj == NULL || v->v.obj->type != FERRY_OBJ_NDARRAY)
      break;
    *code = kTVMNDArrayHandle;
    out->v_handle = &((ferry_ndarray *)v->v.obj)->tensor;
    return FERRY_OK;
  case FERRY_KIND_STR:
    *code = kTVMStr;
    out->v_str = v->v.str.data;
    return FERRY_OK;
  case FERRY_KIND_BYTES:
    *code = kTVMBytes;
    bytes_slot->data = v->v.str.data;
    bytes_slot->size = v->v.str.len;
    out->v_handle = bytes_slot;
    return FERRY_OK;
  case FERRY_KIND_FUNC:
    *code = kTVMPackedFuncHandle; /* a ferry_func*, callable with TVMFuncCall */
    out->v_handle = v->v.obj;
    return FERRY_OK;
  case FERRY_KIND_MODULE:
    *code = kTVMModuleHandle;
    out->v_handle = v->v.obj;
    return FERRY_OK;
  case FERRY_KIND_OBJECT:
    *code = kTVMObjectHandle;
    out->v_handle = v->v.obj;
    return FERRY_OK;
  }
  return ferry_err_set(err, FERRY_ETYPE, "argument %d of kind %s cannot be passed to compiled code",
                       index, ferry_kind_name(v->kind));
}

/* ---- TVMValue -> ferry_value (borrowed: no references taken) ------------ */

static int classic_to_value(TVMValue v, int code, ferry_value *out, ferry_err *err) {
  switch (code) {
  case kTVMArgInt:
  case kTVMArgUInt:
    out->kind = FERRY_KIND_INT;
    out->v.i = v.v_int64;
    return FERRY_OK;
  case kTVMArgBool:
    out->kind = FERRY_KIND_BOOL;
    out->v.i = v.v_int64 != 0;
    return FERRY_OK;
  case kTVMArgFloat:
    out->kind = FERRY_KIND_FLOAT;
    out->v.f = v.v_float64;
    return FERRY_OK;
  case kTVMOpaqueHandle:
    out->kind = FERRY_KIND_OPAQUE;
    out->v.handle = (uint64_t)(uintptr_t)v.v_handle;
    return FERRY_OK;
  case kTVMNullptr:
    out->kind = FERRY_KIND_NONE;
    out->v.i = 0;
    return FERRY_OK;
  case kTVMDataType:
    out->kind = FERRY_KIND_DTYPE;
    out->v.dtype = v.v_type;
    return FERRY_OK;
  case kTVMDLDevice:
    out->kind = FERRY_KIND_DEVICE;
    out->v.device = v.v_device;
    return FERRY_OK;
  case kTVMDLTensorHandle:
  case kTVMNDArrayHandle:
    out->kind = FERRY_KIND_TENSOR;
    out->v.tensor = v.v_handle;
    return FERRY_OK;
  case kTVMStr:
    out->kind = FERRY_KIND_STR;
    out->v.str.data = v.v_str ? v.v_str : "";
    out->v.str.len = strlen(out->v.str.data);
    return FERRY_OK;
  case kTVMBytes: {
    const TVMByteArray *ba = v.v_handle;
    out->kind = FERRY_KIND_BYTES;
    out->v.str.data = ba ? ba->data : "";
    out->v.str.len = ba ? ba->size : 0;
    return FERRY_OK;
  }
  case kTVMPackedFuncHandle:
  case kTVMModuleHandle:
  case kTVMObjectHandle:
    out->kind = code == kTVMPackedFuncHandle ? FERRY_KIND_FUNC
                : code == kTVMModuleHandle   ? FERRY_KIND_MODULE
                                             : FERRY_KIND_OBJECT;
    out->v.obj = v.v_handle;
    return FERRY_OK;
  default:
    return ferry_err_set(err, FERRY_ETYPE, "unknown type code %d", code);
  }
}

/* ---- compiled functions as ferry_func --------------------------------------- */

struct classic_func {
  ferry_func base;
  TVMBackendPackedCFunc fn;
  ferry_obj *owner; /* the library module: keeps the code mapped */
  char name[];
};

#define SMALL_ARGS 16

/* TVM's NormalizeError: a message that does not start with an error kind
 * ("ValueError: ...") is a TVMError; compiled code's asserts ("Assert
 * fail: ...") reach the client as "TVMError: Assert fail: ...". */
static int has_error_kind(const char *msg) {
  size_t i = 0;
  while ((msg[i] >= 'A' && msg[i] <= 'Z') || (msg[i] >= 'a' && msg[i] <= 'z') ||
         (msg[i] >= '0' && msg[i] <= '9') || msg[i] == '_' || msg[i] == '.')
    i++;
  return i > 0 && msg[i] == ':' && msg[i + 1] == ' ';
}

static int classic_func_call(ferry_func *self, ferry_call *c) {
  struct classic_func *f = (struct classic_func *)self;
  if (c->nargs < 0 || c->nargs > FERRY_RT_MAX_ARGS)
    return ferry_err_set(c->err, FERRY_ETOOBIG, "%s: %d arguments is over the limit of %d",
                         f->name, c->nargs, FERRY_RT_MAX_ARGS);
  TVMValue small_vals[SMALL_ARGS];
  int32_t small_codes[SMALL_ARGS];
  TVMByteArray small_bytes[SMALL_ARGS];
  TVMValue *vals = small_vals;
  int32_t *codes = small_codes;
  TVMByteArray *bytes = small_bytes;
  if (c->nargs > SMALL_ARGS) {
    vals = malloc((size_t)c->nargs * sizeof *vals);
    codes = malloc((size_t)c->nargs * sizeof *codes);
    bytes = malloc((size_t)c->nargs * sizeof *bytes);
  }
  int rc = FERRY_OK;
  if (vals == NULL || codes == NULL || bytes == NULL)
    rc = ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
  for (int i = 0; rc == FERRY_OK && i < c->nargs; i++)
    rc = value_to_classic(&c->args[i], &vals[i], &codes[i], &bytes[i], i, c->err);
  if (rc == FERRY_OK) {
    TVMValue rv;
    rv.v_int64 = 0;
    int32_t rcode = kTVMNullptr; /* "no result" unless the function writes one */
    ferry_backend_clear_error();
    int32_t r = f->fn(vals, codes, c->nargs, &rv, &rcode, NULL);
    if (r != 0) {
      const char *msg = ferry_backend_last_error();
      if (msg[0])
        rc = ferry_err_set(c->err, FERRY_EREMOTE, "%s%s", has_error_kind(msg) ? "" : "TVMError: ",
                           msg);
      else
        rc = ferry_err_set(c->err, FERRY_EREMOTE, "%s returned %d without an error message",
                           f->name, (int)r);
    } else if (rcode == kTVMStr) {
      const char *s = rv.v_str ? rv.v_str : "";
      rc = ferry_call_return_str(c, s, strnlen(s, FERRY_RT_MAX_RET_BYTES));
    } else if (rcode == kTVMBytes) {
      const TVMByteArray *ba = rv.v_handle;
      rc = ferry_call_return_bytes(c, ba ? ba->data : "", ba ? ba->size : 0);
    } else if (rcode == kTVMArgInt || rcode == kTVMArgUInt || rcode == kTVMArgFloat ||
               rcode == kTVMArgBool || rcode == kTVMNullptr || rcode == kTVMOpaqueHandle ||
               rcode == kTVMDataType || rcode == kTVMDLDevice) {
      rc = classic_to_value(rv, rcode, &c->ret, c->err);
    } else {
      rc = ferry_err_set(c->err, FERRY_ETYPE,
                         "%s returned a value of type code %d, which ferry cannot pass on",
                         f->name, (int)rcode);
    }
  }
  if (vals != small_vals) {
    free(vals);
    free(codes);
    free(bytes);
  }
  return rc;
}

static void classic_func_destroy(ferry_obj *o) {
  struct classic_func *f = (struct classic_func *)o;
  ferry_obj_release(f->owner);
  free(f);
}

int ferry_classic_func_new(void *fptr, const char *name, ferry_obj *owner, ferry_func **out) {
  size_t n = strlen(name);
  struct classic_func *f = calloc(1, sizeof *f + n + 1);
  if (f == NULL)
    return FERRY_ENOMEM;
  ferry_obj_init(&f->base.base, FERRY_OBJ_FUNC, classic_func_destroy);
  f->base.call = classic_func_call;
  memcpy(&f->fn, &fptr, sizeof f->fn); /* dlsym gives a data pointer */
  memcpy(f->name, name, n + 1);
  f->owner = owner;
  ferry_obj_retain(owner);
  *out = &f->base;
  return FERRY_OK;
}

/* ---- TVMFuncCall: compiled code calling a ferry function ----------------- */

/* A string/bytes/object result must outlive the call (TVM keeps it in
 * thread-local storage until the next call on the thread). */
static _Thread_local ferry_buf tl_ret;
static _Thread_local TVMByteArray tl_ret_bytes;
static _Thread_local ferry_obj *tl_ret_obj;

void ferry_classic_release_thread(void) {
  ferry_buf_close(&tl_ret);
  ferry_obj_release(tl_ret_obj);
  tl_ret_obj = NULL;
}

static int result_to_classic(ferry_call *c, TVMValue *rv, int *rcode) {
  ferry_value *r = &c->ret;
  switch (r->kind) {
  case FERRY_KIND_STR:
  case FERRY_KIND_BYTES:
    ferry_buf_init(&tl_ret, FERRY_RT_MAX_RET_BYTES);
    if (ferry_buf_append(&tl_ret, r->v.str.data, r->v.str.len) != FERRY_OK ||
        ferry_buf_append(&tl_ret, "", 1) != FERRY_OK) {
      TVMAPISetLastError("TVMFuncCall: out of memory for the result");
      return -1;
    }
    if (r->kind == FERRY_KIND_STR) {
      *rcode = kTVMStr;
      rv->v_str = (const char *)tl_ret.data;
    } else {
      tl_ret_bytes.data = (const char *)tl_ret.data;
      tl_ret_bytes.size = r->v.str.len;
      *rcode = kTVMBytes;
      rv->v_handle = &tl_ret_bytes;
    }
    return 0;
  case FERRY_KIND_FUNC:
  case FERRY_KIND_MODULE:
  case FERRY_KIND_NDARRAY:
  case FERRY_KIND_OBJECT: {
    /* The frame's reference moves to thread-local storage. */
    tl_ret_obj = r->v.obj;
    enum ferry_kind k = r->kind;
    r->kind = FERRY_KIND_NONE;
    ferry_value tmp = {.kind = k, .v.obj = tl_ret_obj};
    TVMByteArray unused;
    ferry_err err;
    ferry_err_clear(&err);
    int32_t code = 0;
    if (value_to_classic(&tmp, rv, &code, &unused, 0, &err) != FERRY_OK) {
      TVMAPISetLastError(err.msg);
      return -1;
    }
    *rcode = code;
    return 0;
  }
  default: {
    TVMByteArray unused;
    ferry_err err;
    ferry_err_clear(&err);
    int32_t code = 0;
    if (value_to_classic(r, rv, &code, &unused, 0, &err) != FERRY_OK) {
      TVMAPISetLastError(err.msg);
      return -1;
    }
    *rcode = code;
    return 0;
  }
  }
}

int TVMFuncCall(TVMFunctionHandle func, TVMValue *arg_values, int *type_codes, int num_args,
                TVMValue *ret_val, int *ret_type_code) {
  ferry_func *f = func;
  if (f == NULL || (num_args > 0 && (arg_values == NULL || type_codes == NULL)) ||
      num_args < 0 || num_args > FERRY_RT_MAX_ARGS) {
    TVMAPISetLastError("TVMFuncCall: invalid arguments");
    return -1;
  }
  if (ferry_backend_rt() == NULL) {
    TVMAPISetLastError("TVMFuncCall: no session runtime is open in this process");
    return -1;
  }
  ferry_classic_release_thread();
  ferry_err err;
  ferry_err_clear(&err);
  ferry_value small[SMALL_ARGS];
  ferry_value *args = num_args > SMALL_ARGS ? malloc((size_t)num_args * sizeof *args) : small;
  if (args == NULL) {
    TVMAPISetLastError("TVMFuncCall: out of memory");
    return -1;
  }
  int rc = 0;
  for (int i = 0; i < num_args && rc == 0; i++)
    if (classic_to_value(arg_values[i], type_codes[i], &args[i], &err) != FERRY_OK)
      rc = -1;
  if (rc == 0) {
    ferry_call c;
    ferry_call_init(&c, ferry_backend_rt(), args, num_args, &err, FERRY_RT_MAX_RET_BYTES);
    if (ferry_func_call(f, &c) != FERRY_OK)
      rc = -1;
    else if (ret_val && ret_type_code)
      rc = result_to_classic(&c, ret_val, ret_type_code);
    ferry_call_close(&c);
  }
  if (rc != 0 && err.code != 0)
    TVMAPISetLastError(err.msg);
  if (args != small)
    free(args);
  return rc;
}
