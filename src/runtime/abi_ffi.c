/* The tvm-ffi module ABI (TVM >= 0.21): the ONE place where ferry_value is
 * mapped to and from TVMFFIAny for compiled code.  It wraps a library's
 * __tvm_ffi_<name> safe call as a ferry_func (calls into the module) and
 * implements the functions tvm-ffi code calls back into: TVMFFIFunctionCall,
 * the error setters, TVMFFIEnvModLookupFromImports and the once-handles.
 * The classic ABI is abi_classic.c; the loader picks one per library
 * (module_ffi.c).
 *
 * Both ABIs share the thread's last error (backend_api.c): an error raised
 * here is its message alone, which is what TVM's own server sends back
 * (the kind, "RuntimeError" etc., is not part of the reply). */
#include <stdlib.h>
#include <string.h>

#include "ferry/tvm_ffi_abi.h"
#include "runtime/rt_internal.h"

#define SMALL_ARGS 16
#define STRONG_ONE 1ull
#define WEAK_ONE (1ull << 32)
#define DELETE_STRONG 1
#define DELETE_WEAK 2

/* Drops the reference a result slot holds on a tvm-ffi object (the
 * combined strong/weak counting of tvm-ffi's object header). */
static void ffi_object_release(TVMFFIObject *o) {
  if (o == NULL)
    return;
  uint64_t before = __atomic_fetch_sub(&o->combined_ref_count, STRONG_ONE, __ATOMIC_ACQ_REL);
  if (before == (STRONG_ONE | WEAK_ONE)) {
    if (o->deleter)
      o->deleter(o, DELETE_STRONG | DELETE_WEAK);
  } else if ((before & 0xffffffffu) == STRONG_ONE) {
    if (o->deleter)
      o->deleter(o, DELETE_STRONG);
    if (__atomic_fetch_sub(&o->combined_ref_count, WEAK_ONE, __ATOMIC_ACQ_REL) == WEAK_ONE &&
        o->deleter)
      o->deleter(o, DELETE_WEAK);
  }
}

/* ---- ferry_value -> TVMFFIAny ---------------------------------------------- */

/* bytes_slot receives the TVMFFIByteArray a BYTES value points at; it must
 * live as long as the call.  Tensors go as DLTensor pointers (index 7), as
 * TVM's own server passes them; objects have no tvm-ffi header in ferry and
 * are refused rather than handed to code that would read one. */
static int value_to_ffi(const ferry_value *v, TVMFFIAny *out, TVMFFIByteArray *bytes_slot,
                        int index, ferry_err *err) {
  out->zero_padding = 0;
  out->v_int64 = 0;
  switch (v->kind) {
  case FERRY_KIND_NONE:
    out->type_index = kTVMFFINone;
    return FERRY_OK;
  case FERRY_KIND_INT:
    out->type_index = kTVMFFIInt;
    out->v_int64 = v->v.i;
    return FERRY_OK;
  case FERRY_KIND_BOOL:
    out->type_index = kTVMFFIBool;
    out->v_int64 = v->v.i != 0;
    return FERRY_OK;
  case FERRY_KIND_FLOAT:
    out->type_index = kTVMFFIFloat;
    out->v_float64 = v->v.f;
    return FERRY_OK;
  case FERRY_KIND_OPAQUE:
    out->type_index = kTVMFFIOpaquePtr;
    out->v_ptr = (void *)(uintptr_t)v->v.handle;
    return FERRY_OK;
  case FERRY_KIND_DTYPE:
    out->type_index = kTVMFFIDataType;
    out->v_dtype = v->v.dtype;
    return FERRY_OK;
  case FERRY_KIND_DEVICE:
    out->type_index = kTVMFFIDevice;
    out->v_device = v->v.device;
    return FERRY_OK;
  case FERRY_KIND_TENSOR:
    out->type_index = kTVMFFIDLTensorPtr;
    out->v_ptr = v->v.tensor;
    return FERRY_OK;
  case FERRY_KIND_NDARRAY:
    if (v->v.obj == NULL || v->v.obj->type != FERRY_OBJ_NDARRAY)
      break;
    out->type_index = kTVMFFIDLTensorPtr;
    out->v_ptr = &((ferry_ndarray *)v->v.obj)->tensor;
    return FERRY_OK;
  case FERRY_KIND_STR:
    out->type_index = kTVMFFIRawStr;
    out->v_c_str = v->v.str.data;
    return FERRY_OK;
  case FERRY_KIND_BYTES:
    bytes_slot->data = v->v.str.data;
    bytes_slot->size = v->v.str.len;
    out->type_index = kTVMFFIByteArrayPtr;
    out->v_ptr = bytes_slot;
    return FERRY_OK;
  case FERRY_KIND_FUNC:
  case FERRY_KIND_MODULE:
  case FERRY_KIND_OBJECT:
    break;
  }
  return ferry_err_set(err, FERRY_ETYPE,
                       "argument %d of kind %s cannot be passed to tvm-ffi compiled code", index,
                       ferry_kind_name(v->kind));
}

/* ---- TVMFFIAny -> ferry_value (borrowed from the slot) -------------------- */

/* small receives a NUL-terminated copy of a small string/bytes slot, so
 * the value stays valid while *small lives. */
static int ffi_to_value(const TVMFFIAny *a, ferry_value *out, char small[8], ferry_err *err) {
  switch (a->type_index) {
  case kTVMFFINone:
    out->kind = FERRY_KIND_NONE;
    out->v.i = 0;
    return FERRY_OK;
  case kTVMFFIInt:
    out->kind = FERRY_KIND_INT;
    out->v.i = a->v_int64;
    return FERRY_OK;
  case kTVMFFIBool:
    out->kind = FERRY_KIND_BOOL;
    out->v.i = a->v_int64 != 0;
    return FERRY_OK;
  case kTVMFFIFloat:
    out->kind = FERRY_KIND_FLOAT;
    out->v.f = a->v_float64;
    return FERRY_OK;
  case kTVMFFIOpaquePtr:
    out->kind = FERRY_KIND_OPAQUE;
    out->v.handle = (uint64_t)(uintptr_t)a->v_ptr;
    return FERRY_OK;
  case kTVMFFIDataType:
    out->kind = FERRY_KIND_DTYPE;
    out->v.dtype = a->v_dtype;
    return FERRY_OK;
  case kTVMFFIDevice:
    out->kind = FERRY_KIND_DEVICE;
    out->v.device = a->v_device;
    return FERRY_OK;
  case kTVMFFIDLTensorPtr:
    out->kind = FERRY_KIND_TENSOR;
    out->v.tensor = a->v_ptr;
    return FERRY_OK;
  case kTVMFFITensor: /* { TVMFFIObject, DLTensor, ... } */
    if (a->v_obj == NULL)
      break;
    out->kind = FERRY_KIND_TENSOR;
    out->v.tensor = (DLTensor *)(void *)((char *)a->v_obj + sizeof(TVMFFIObject));
    return FERRY_OK;
  case kTVMFFIRawStr:
    out->kind = FERRY_KIND_STR;
    out->v.str.data = a->v_c_str ? a->v_c_str : "";
    out->v.str.len = strnlen(out->v.str.data, FERRY_RT_MAX_RET_BYTES);
    return FERRY_OK;
  case kTVMFFIByteArrayPtr: {
    const TVMFFIByteArray *ba = a->v_ptr;
    out->kind = FERRY_KIND_BYTES;
    out->v.str.data = ba ? ba->data : "";
    out->v.str.len = ba ? ba->size : 0;
    return FERRY_OK;
  }
  case kTVMFFISmallStr:
  case kTVMFFISmallBytes: {
    size_t n = a->small_str_len < 7 ? a->small_str_len : 7;
    memcpy(small, a->v_bytes, n);
    small[n] = 0;
    out->kind = a->type_index == kTVMFFISmallStr ? FERRY_KIND_STR : FERRY_KIND_BYTES;
    out->v.str.data = small;
    out->v.str.len = n;
    return FERRY_OK;
  }
  case kTVMFFIStr:
  case kTVMFFIBytes: { /* { TVMFFIObject, TVMFFIByteArray, ... } */
    if (a->v_obj == NULL)
      break;
    const TVMFFIByteArray *ba =
        (const TVMFFIByteArray *)(const void *)((const char *)a->v_obj + sizeof(TVMFFIObject));
    out->kind = a->type_index == kTVMFFIStr ? FERRY_KIND_STR : FERRY_KIND_BYTES;
    out->v.str.data = ba->data ? ba->data : "";
    out->v.str.len = ba->data ? ba->size : 0;
    return FERRY_OK;
  }
  default:
    break;
  }
  return ferry_err_set(err, FERRY_ETYPE, "a value of tvm-ffi type index %d cannot be passed on",
                       (int)a->type_index);
}

/* ---- compiled functions as ferry_func ------------------------------------ */

struct ffi_func {
  ferry_func base;
  TVMFFISafeCallType fn;
  ferry_obj *owner; /* the library module: keeps the code mapped */
  char name[];
};

/* Moves a compiled function's result into the call frame; releases any
 * object the result slot owns. */
static int take_result(struct ffi_func *f, TVMFFIAny *r, ferry_call *c) {
  char small[8];
  int rc;
  if (r->type_index >= kTVMFFIStaticObjectBegin) {
    rc = FERRY_ETYPE;
    if (r->type_index == kTVMFFIStr || r->type_index == kTVMFFIBytes) {
      ferry_value v;
      rc = ffi_to_value(r, &v, small, c->err);
      if (rc == FERRY_OK)
        rc = v.kind == FERRY_KIND_STR ? ferry_call_return_str(c, v.v.str.data, v.v.str.len)
                                      : ferry_call_return_bytes(c, v.v.str.data, v.v.str.len);
    } else {
      rc = ferry_err_set(c->err, FERRY_ETYPE,
                         "%s returned an object of tvm-ffi type index %d, which ferry cannot "
                         "pass on",
                         f->name, (int)r->type_index);
    }
    ffi_object_release(r->v_obj);
    return rc;
  }
  ferry_value v;
  rc = ffi_to_value(r, &v, small, c->err);
  if (rc)
    return rc;
  if (v.kind == FERRY_KIND_STR)
    return ferry_call_return_str(c, v.v.str.data, v.v.str.len);
  if (v.kind == FERRY_KIND_BYTES)
    return ferry_call_return_bytes(c, v.v.str.data, v.v.str.len);
  if (v.kind == FERRY_KIND_TENSOR)
    return ferry_err_set(c->err, FERRY_ETYPE,
                         "%s returned a DLTensor pointer, which ferry cannot pass on", f->name);
  c->ret = v;
  return FERRY_OK;
}

static int ffi_func_call(ferry_func *self, ferry_call *c) {
  struct ffi_func *f = (struct ffi_func *)self;
  if (c->nargs < 0 || c->nargs > FERRY_RT_MAX_ARGS)
    return ferry_err_set(c->err, FERRY_ETOOBIG, "%s: %d arguments is over the limit of %d",
                         f->name, c->nargs, FERRY_RT_MAX_ARGS);
  TVMFFIAny small_args[SMALL_ARGS];
  TVMFFIByteArray small_bytes[SMALL_ARGS];
  TVMFFIAny *args = small_args;
  TVMFFIByteArray *bytes = small_bytes;
  if (c->nargs > SMALL_ARGS) {
    args = malloc((size_t)c->nargs * sizeof *args);
    bytes = malloc((size_t)c->nargs * sizeof *bytes);
  }
  int rc = FERRY_OK;
  if (args == NULL || bytes == NULL)
    rc = ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
  for (int i = 0; rc == FERRY_OK && i < c->nargs; i++)
    rc = value_to_ffi(&c->args[i], &args[i], &bytes[i], i, c->err);
  if (rc == FERRY_OK) {
    TVMFFIAny result;
    memset(&result, 0, sizeof result); /* kTVMFFINone: "no result" unless written */
    ferry_backend_clear_error();
    int r = f->fn(NULL, args, c->nargs, &result);
    if (r != 0) {
      const char *msg = ferry_backend_last_error();
      if (msg[0])
        rc = ferry_err_set(c->err, FERRY_EREMOTE, "%s", msg);
      else
        rc = ferry_err_set(c->err, FERRY_EREMOTE, "%s returned %d without raising an error",
                           f->name, r);
      if (result.type_index >= kTVMFFIStaticObjectBegin)
        ffi_object_release(result.v_obj);
    } else {
      rc = take_result(f, &result, c);
    }
  }
  if (args != small_args)
    free(args);
  if (bytes != small_bytes)
    free(bytes);
  return rc;
}

static void ffi_func_destroy(ferry_obj *o) {
  struct ffi_func *f = (struct ffi_func *)o;
  ferry_obj_release(f->owner);
  free(f);
}

int ferry_ffi_func_new(void *fptr, const char *name, ferry_obj *owner, ferry_func **out) {
  size_t n = strlen(name);
  struct ffi_func *f = calloc(1, sizeof *f + n + 1);
  if (f == NULL)
    return FERRY_ENOMEM;
  ferry_obj_init(&f->base.base, FERRY_OBJ_FUNC, ffi_func_destroy);
  f->base.call = ffi_func_call;
  memcpy(&f->fn, &fptr, sizeof f->fn); /* dlsym gives a data pointer */
  memcpy(f->name, name, n + 1);
  f->owner = owner;
  ferry_obj_retain(owner);
  *out = &f->base;
  return FERRY_OK;
}

/* ---- errors raised by compiled code --------------------------------------- */

void TVMFFIErrorSetRaisedFromCStr(const char *kind, const char *message) {
  (void)kind;
  TVMAPISetLastError(message ? message : "");
}

void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **message_parts,
                                       int32_t num_parts) {
  (void)kind;
  char msg[FERRY_ERR_MSG_MAX];
  size_t len = 0;
  msg[0] = 0;
  for (int32_t i = 0; message_parts != NULL && i < num_parts; i++) {
    if (message_parts[i] == NULL)
      continue;
    size_t n = strnlen(message_parts[i], sizeof msg - 1 - len);
    memcpy(msg + len, message_parts[i], n);
    len += n;
    msg[len] = 0;
  }
  TVMAPISetLastError(msg);
}

/* ---- compiled code calling ferry functions -------------------------------- */

/* A string result handed to compiled code is an owned Str object it
 * releases through the header's deleter, as tvm-ffi code expects. */
struct ffi_str_obj {
  TVMFFIObject hdr;
  TVMFFIByteArray cell;
  char data[];
};

static void ffi_str_deleter(void *self, int flags) {
  if (flags & DELETE_WEAK)
    free(self);
}

static int result_to_ffi(ferry_call *c, TVMFFIAny *out) {
  ferry_value *r = &c->ret;
  out->zero_padding = 0;
  out->v_int64 = 0;
  if (r->kind == FERRY_KIND_STR || r->kind == FERRY_KIND_BYTES) {
    struct ffi_str_obj *s = malloc(sizeof *s + r->v.str.len + 1);
    if (s == NULL) {
      TVMAPISetLastError("TVMFFIFunctionCall: out of memory for the result");
      return -1;
    }
    s->hdr.combined_ref_count = STRONG_ONE | WEAK_ONE;
    s->hdr.type_index = r->kind == FERRY_KIND_STR ? kTVMFFIStr : kTVMFFIBytes;
    s->hdr.padding = 0;
    s->hdr.deleter = ffi_str_deleter;
    memcpy(s->data, r->v.str.data, r->v.str.len);
    s->data[r->v.str.len] = 0;
    s->cell.data = s->data;
    s->cell.size = r->v.str.len;
    out->type_index = s->hdr.type_index;
    out->v_obj = &s->hdr;
    return 0;
  }
  if (r->kind == FERRY_KIND_TENSOR || r->kind == FERRY_KIND_NDARRAY ||
      r->kind == FERRY_KIND_FUNC || r->kind == FERRY_KIND_MODULE ||
      r->kind == FERRY_KIND_OBJECT) {
    TVMAPISetLastError("TVMFFIFunctionCall: the result is an object, which ferry cannot hand "
                       "to tvm-ffi compiled code");
    return -1;
  }
  TVMFFIByteArray unused;
  ferry_err err;
  ferry_err_clear(&err);
  if (value_to_ffi(r, out, &unused, 0, &err) != FERRY_OK) {
    TVMAPISetLastError(err.msg);
    return -1;
  }
  return 0;
}

int TVMFFIFunctionCall(TVMFFIObjectHandle func, TVMFFIAny *args, int32_t num_args,
                       TVMFFIAny *result) {
  ferry_func *f = func;
  if (f == NULL || (num_args > 0 && args == NULL) || num_args < 0 ||
      num_args > FERRY_RT_MAX_ARGS) {
    TVMAPISetLastError("TVMFFIFunctionCall: invalid arguments");
    return -1;
  }
  if (ferry_backend_rt() == NULL) {
    TVMAPISetLastError("TVMFFIFunctionCall: no session runtime is open in this process");
    return -1;
  }
  ferry_err err;
  ferry_err_clear(&err);
  ferry_value small_vals[SMALL_ARGS];
  char small_strs[SMALL_ARGS][8];
  ferry_value *vals = small_vals;
  char(*strs)[8] = small_strs;
  if (num_args > SMALL_ARGS) {
    vals = malloc((size_t)num_args * sizeof *vals);
    strs = malloc((size_t)num_args * sizeof *strs);
  }
  int rc = 0;
  if (vals == NULL || strs == NULL) {
    TVMAPISetLastError("TVMFFIFunctionCall: out of memory");
    rc = -1;
  }
  for (int i = 0; i < num_args && rc == 0; i++)
    if (ffi_to_value(&args[i], &vals[i], strs[i], &err) != FERRY_OK)
      rc = -1;
  if (rc == 0) {
    ferry_call c;
    ferry_call_init(&c, ferry_backend_rt(), vals, num_args, &err, FERRY_RT_MAX_RET_BYTES);
    if (ferry_func_call(f, &c) != FERRY_OK)
      rc = -1;
    else if (result != NULL)
      rc = result_to_ffi(&c, result);
    ferry_call_close(&c);
  }
  if (rc != 0 && err.code != 0)
    TVMAPISetLastError(err.msg);
  if (vals != small_vals)
    free(vals);
  if (strs != small_strs)
    free(strs);
  return rc;
}

/* ---- function handles from the environment -------------------------------- */

int TVMFFIEnvModLookupFromImports(TVMFFIObjectHandle library_ctx, const char *func_name,
                                  TVMFFIObjectHandle *out) {
  if (library_ctx == NULL || func_name == NULL || out == NULL) {
    TVMAPISetLastError("TVMFFIEnvModLookupFromImports: NULL argument");
    return -1;
  }
  /* The same resolution (imports, then globals, cached in the module) as
   * the classic TVMBackendGetFuncFromEnv; the handle is a ferry_func that
   * only TVMFFIFunctionCall receives. */
  return TVMBackendGetFuncFromEnv(library_ctx, func_name, out);
}

/* One lock for every once-handle: initialisers run once per library
 * function name, so contention is negligible. */
static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;

int TVMFFIHandleInitOnce(void **handle_addr, int (*init_func)(void **result)) {
  if (handle_addr == NULL || init_func == NULL) {
    TVMAPISetLastError("TVMFFIHandleInitOnce: NULL argument");
    return -1;
  }
  if (__atomic_load_n(handle_addr, __ATOMIC_ACQUIRE) != NULL)
    return 0;
  int rc = 0;
  pthread_mutex_lock(&once_lock);
  if (*handle_addr == NULL) {
    void *h = NULL;
    rc = init_func(&h);
    if (rc == 0)
      __atomic_store_n(handle_addr, h, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&once_lock);
  return rc;
}

int TVMFFIHandleDeinitOnce(void **handle_addr, int (*deinit_func)(void *handle)) {
  if (handle_addr == NULL || deinit_func == NULL) {
    TVMAPISetLastError("TVMFFIHandleDeinitOnce: NULL argument");
    return -1;
  }
  int rc = 0;
  pthread_mutex_lock(&once_lock);
  if (*handle_addr != NULL) {
    rc = deinit_func(*handle_addr);
    if (rc == 0)
      *handle_addr = NULL;
  }
  pthread_mutex_unlock(&once_lock);
  return rc;
}

int TVMFFIEnvModRegisterSystemLibSymbol(const char *name, void *symbol) {
  return TVMBackendRegisterSystemLibSymbol(name, symbol);
}
