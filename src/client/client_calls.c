/* Remote functions, modules and objects; the server's global functions
 * (rpc-session.md §4, flows of §5.2-5.4, 5.8, 5.10). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "client/client_internal.h"

static const char *const global_names[CG_COUNT] = {
    [CG_UPLOAD] = "tvm.rpc.server.upload",
    [CG_DOWNLOAD] = "tvm.rpc.server.download",
    [CG_REMOVE] = "tvm.rpc.server.remove",
    [CG_LISTDIR] = "tvm.rpc.server.listdir",
    [CG_LOAD_MODULE] = "tvm.rpc.server.load_module",
    [CG_MODULE_GET_FUNCTION] = "tvm.rpc.server.ModuleGetFunction",
    [CG_TIME_EVALUATOR] = "runtime.RPCTimeEvaluator",
    [CG_SYSTEM_LIB] = "runtime.SystemLib",
    [CG_MAX_PACKET] = "tvm.rpc.server.GetCRTMaxPacketSize",
};

/* ---- remote objects ------------------------------------------------------ */

ferry_remote *client_remote_new(ferry_client *c, enum ferry_kind kind, uint64_t handle) {
  ferry_remote *r = calloc(1, sizeof *r);
  if (!r) {
    client_fail(c, FERRY_ENOMEM, "out of memory");
    return NULL;
  }
  r->kind = kind;
  r->handle = handle;
  r->tensor.shape = r->shape;
  r->next = &c->live;
  r->prev = c->live.prev;
  c->live.prev->next = r;
  c->live.prev = r;
  return r;
}

void client_remote_unlink(ferry_remote *r) {
  r->prev->next = r->next;
  r->next->prev = r->prev;
  free(r);
}

int ferry_client_release(ferry_client *c, ferry_remote *r) {
  if (!r)
    return 0;
  int rc = 0;
  if (!c->broken) {
    c->err[0] = 0;
    if (r->allocated) {
      ferry_value args[2], res;
      args[0].kind = FERRY_KIND_DEVICE;
      args[0].v.device = r->tensor.device;
      args[1].kind = FERRY_KIND_OPAQUE;
      args[1].v.handle = r->handle;
      rc = client_syscall(c, FERRY_RPC_DEV_FREE_DATA, args, 2, &res);
    } else {
      rc = client_free_handle(c, r->handle, r->kind);
    }
  }
  client_remote_unlink(r);
  return rc;
}

enum ferry_kind ferry_remote_kind(const ferry_remote *r) { return r->kind; }

ferry_value ferry_remote_value(const ferry_remote *r) {
  ferry_value v;
  memset(&v, 0, sizeof v);
  if (r->kind == FERRY_KIND_NDARRAY) {
    /* Tensors travel as DLTensors whose data is the server's handle. */
    v.kind = FERRY_KIND_TENSOR;
    v.v.tensor = (DLTensor *)&r->tensor;
  } else {
    v.kind = r->kind;
    v.v.handle = r->handle;
  }
  return v;
}

const DLTensor *ferry_remote_tensor(const ferry_remote *r) {
  return r->kind == FERRY_KIND_NDARRAY ? &r->tensor : NULL;
}

uint64_t ferry_remote_nbytes(const ferry_remote *r) {
  uint64_t n = 0;
  if (r->kind != FERRY_KIND_NDARRAY || ferry_rpc_tensor_nbytes(&r->tensor, &n) != 0)
    return 0;
  return n;
}

/* ---- global functions ---------------------------------------------------- */

static int get_global(ferry_client *c, const char *name, uint64_t *h) {
  ferry_value arg = ferry_arg_str(name, strlen(name)), res;
  int rc = client_syscall(c, FERRY_RPC_GET_GLOBAL_FUNC, &arg, 1, &res);
  if (rc)
    return rc;
  if (res.kind != FERRY_KIND_OPAQUE) {
    c->broken = 1;
    return client_fail(c, FERRY_EPROTO, "kGetGlobalFunc(%s) answered a %s", name,
                       ferry_kind_name(res.kind));
  }
  *h = res.v.handle;
  return 0;
}

int client_global(ferry_client *c, enum client_global g, uint64_t *h) {
  if (!c->global[g] && !c->global_absent[g]) {
    /* TVM >= 0.21 renamed the system library's constructor: its client
     * asks for ffi.SystemLib; either name is tried if the first is absent. */
    int ffi_lib = g == CG_SYSTEM_LIB && c->d->id == FERRY_DIALECT_FFI;
    int rc = get_global(c, ffi_lib ? "ffi.SystemLib" : global_names[g], &c->global[g]);
    if (!rc && !c->global[g] && g == CG_SYSTEM_LIB)
      rc = get_global(c, ffi_lib ? global_names[g] : "ffi.SystemLib", &c->global[g]);
    if (rc)
      return rc;
    c->global_absent[g] = c->global[g] == 0;
  }
  if (c->global_absent[g])
    return client_fail(c, FERRY_ENOTFOUND, "the server has no function '%s'", global_names[g]);
  *h = c->global[g];
  return 0;
}

int ferry_client_get_function(ferry_client *c, const char *name, ferry_remote **f) {
  int rc = client_begin(c);
  uint64_t h = 0;
  if (!rc)
    rc = get_global(c, name, &h);
  if (rc)
    return rc;
  if (!h) /* TVM's client reports a missing global in these words */
    return client_fail(c, FERRY_ENOTFOUND, "Module has no function '%s'", name);
  ferry_remote *r = client_remote_new(c, FERRY_KIND_FUNC, h);
  if (!r) {
    if (client_free_handle(c, h, FERRY_KIND_FUNC) != 0) {
      /* best effort: the session is ending or the object is lost anyway */
    }
    return FERRY_ENOMEM;
  }
  *f = r;
  return 0;
}

/* ---- calls ------------------------------------------------------------------ */

/* Wraps a decoded return into a ferry_result; object results become a new
 * ferry_remote (released again if that fails). */
static int wrap_return(ferry_client *c, const ferry_rpc_return *rr, ferry_result *ret) {
  ferry_result tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.value = rr->value;
  switch (rr->value.kind) {
  case FERRY_KIND_FUNC:
  case FERRY_KIND_MODULE:
  case FERRY_KIND_OBJECT:
  case FERRY_KIND_NDARRAY: {
    if (rr->value.kind == FERRY_KIND_NDARRAY &&
        (!rr->tensor || rr->tensor->ndim < 0 || rr->tensor->ndim > FERRY_RPC_MAX_NDIM)) {
      c->broken = 1;
      return client_fail(c, FERRY_EPROTO, "NDArray return without a valid tensor");
    }
    ferry_remote *r = client_remote_new(c, rr->value.kind, rr->value.v.handle);
    if (!r) {
      if (client_free_handle(c, rr->value.v.handle, rr->value.kind) != 0) {
        /* best effort: the session is ending or the object is lost anyway */
      }
      return FERRY_ENOMEM;
    }
    if (rr->value.kind == FERRY_KIND_NDARRAY) {
      r->tensor = *rr->tensor;
      r->tensor.shape = r->shape;
      r->tensor.strides = NULL;
      /* TVM's client ignores the returned byte_offset (§2.7). */
      r->tensor.byte_offset = 0;
      memcpy(r->shape, rr->tensor->shape, sizeof(int64_t) * (size_t)rr->tensor->ndim);
    }
    tmp.remote = r;
    break;
  }
  default:
    break;
  }
  if (ret)
    *ret = tmp;
  else if (tmp.remote)
    (void)ferry_client_release(c, tmp.remote);
  return 0;
}

int ferry_client_call(ferry_client *c, ferry_remote *f, const ferry_value *args, int nargs,
                      ferry_result *ret) {
  if (ret)
    memset(ret, 0, sizeof *ret);
  int rc = client_begin(c);
  if (rc)
    return rc;
  if (!f || f->kind != FERRY_KIND_FUNC)
    return client_fail(c, FERRY_EINVAL, "call of something that is not a remote function");
  ferry_rpc_return rr;
  rc = client_callfunc(c, f->handle, args, nargs, &rr);
  return rc ? rc : wrap_return(c, &rr, ret);
}

/* Calls a cached global function; *rr valid until the next request. */
static int call_global(ferry_client *c, enum client_global g, const ferry_value *args,
                       int nargs, ferry_rpc_return *rr) {
  uint64_t h;
  int rc = client_global(c, g, &h);
  return rc ? rc : client_callfunc(c, h, args, nargs, rr);
}

/* A call whose result must be a remote object of `kind`. */
static int call_for_remote(ferry_client *c, enum client_global g, const ferry_value *args,
                           int nargs, enum ferry_kind kind, ferry_remote **out) {
  ferry_rpc_return rr;
  ferry_result res;
  int rc = call_global(c, g, args, nargs, &rr);
  if (!rc)
    rc = wrap_return(c, &rr, &res);
  if (rc)
    return rc;
  if (res.value.kind == FERRY_KIND_NONE && kind == FERRY_KIND_FUNC)
    return FERRY_ENOTFOUND; /* the caller words the message */
  if (res.value.kind != kind) {
    (void)ferry_client_release(c, res.remote);
    return client_fail(c, FERRY_EPROTO, "%s returned a %s where a %s was expected",
                       global_names[g], ferry_kind_name(res.value.kind), ferry_kind_name(kind));
  }
  *out = res.remote;
  return 0;
}

int ferry_client_load_module(ferry_client *c, const char *name, ferry_remote **mod) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  ferry_value arg = ferry_arg_str(name, strlen(name));
  return call_for_remote(c, CG_LOAD_MODULE, &arg, 1, FERRY_KIND_MODULE, mod);
}

int ferry_client_system_lib(ferry_client *c, ferry_remote **mod) {
  int rc = client_begin(c);
  return rc ? rc : call_for_remote(c, CG_SYSTEM_LIB, NULL, 0, FERRY_KIND_MODULE, mod);
}

int ferry_client_module_function(ferry_client *c, ferry_remote *mod, const char *name,
                                 ferry_remote **f) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  if (!mod || mod->kind != FERRY_KIND_MODULE)
    return client_fail(c, FERRY_EINVAL, "function lookup in something that is not a module");
  ferry_value args[3];
  args[0] = ferry_remote_value(mod);
  args[1] = ferry_arg_str(name, strlen(name));
  args[2].kind = FERRY_KIND_BOOL; /* query_imports: TVM's client always asks */
  args[2].v.i = 1;
  rc = call_for_remote(c, CG_MODULE_GET_FUNCTION, args, 3, FERRY_KIND_FUNC, f);
  if (rc == FERRY_ENOTFOUND)
    return client_fail(c, rc, "Module has no function '%s'", name);
  return rc;
}

/* ---- files ------------------------------------------------------------------ */

int ferry_client_upload(ferry_client *c, const char *name, const void *data, size_t len) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  ferry_value args[2] = {ferry_arg_str(name, strlen(name)), ferry_arg_bytes(data, len)};
  ferry_rpc_return rr;
  return call_global(c, CG_UPLOAD, args, 2, &rr);
}

int ferry_client_upload_file(ferry_client *c, const char *local_path, const char *name) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  FILE *f = fopen(local_path, "rb");
  if (!f)
    return client_fail(c, FERRY_ENOTFOUND, "cannot open %s: %s", local_path, strerror(errno));
  ferry_buf b;
  ferry_buf_init(&b, SIZE_MAX / 2);
  uint8_t chunk[65536];
  size_t n;
  rc = 0;
  while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = ferry_buf_append(&b, chunk, n);
  int io = ferror(f);
  fclose(f);
  if (rc || io) {
    ferry_buf_close(&b);
    return client_fail(c, rc ? rc : FERRY_EIO, "cannot read %s", local_path);
  }
  if (!name) {
    name = strrchr(local_path, '/');
    name = name ? name + 1 : local_path;
  }
  rc = ferry_client_upload(c, name, b.data ? (const void *)b.data : "", b.len);
  ferry_buf_close(&b);
  return rc;
}

int ferry_client_download(ferry_client *c, const char *name, void **data, size_t *len) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  ferry_value arg = ferry_arg_str(name, strlen(name));
  ferry_rpc_return rr;
  rc = call_global(c, CG_DOWNLOAD, &arg, 1, &rr);
  if (rc)
    return rc;
  if (rr.value.kind != FERRY_KIND_BYTES && rr.value.kind != FERRY_KIND_STR)
    return client_fail(c, FERRY_EPROTO, "download returned a %s",
                       ferry_kind_name(rr.value.kind));
  char *copy = malloc(rr.value.v.str.len + 1);
  if (!copy)
    return client_fail(c, FERRY_ENOMEM, "out of memory");
  memcpy(copy, rr.value.v.str.data, rr.value.v.str.len);
  copy[rr.value.v.str.len] = 0;
  *data = copy;
  *len = rr.value.v.str.len;
  return 0;
}

void ferry_client_free_names(char **names, size_t count) {
  if (!names)
    return;
  for (size_t i = 0; i < count; i++)
    free(names[i]);
  free(names);
}

int ferry_client_listdir(ferry_client *c, const char *dir, char ***names, size_t *count) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  ferry_value arg = ferry_arg_str(dir, strlen(dir));
  ferry_rpc_return rr;
  rc = call_global(c, CG_LISTDIR, &arg, 1, &rr);
  if (rc)
    return rc;
  if (rr.value.kind != FERRY_KIND_STR)
    return client_fail(c, FERRY_EPROTO, "listdir returned a %s", ferry_kind_name(rr.value.kind));
  /* "a,b,": every entry followed by a comma (§4.2). */
  const char *s = rr.value.v.str.data, *end = s + rr.value.v.str.len;
  size_t n = 0;
  for (const char *p = s; p < end; p++)
    n += *p == ',';
  if (end > s && end[-1] != ',')
    n++;
  char **out = calloc(n ? n : 1, sizeof *out);
  if (!out)
    return client_fail(c, FERRY_ENOMEM, "out of memory");
  size_t k = 0;
  for (const char *p = s; p < end && k < n;) {
    const char *q = memchr(p, ',', (size_t)(end - p));
    if (!q)
      q = end;
    out[k] = strndup(p, (size_t)(q - p));
    if (!out[k]) {
      ferry_client_free_names(out, k);
      return client_fail(c, FERRY_ENOMEM, "out of memory");
    }
    k++;
    p = q + 1;
  }
  *names = out;
  *count = k;
  return 0;
}

int ferry_client_remove(ferry_client *c, const char *name) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  ferry_value arg = ferry_arg_str(name, strlen(name));
  ferry_rpc_return rr;
  return call_global(c, CG_REMOVE, &arg, 1, &rr);
}

/* ---- time evaluator ------------------------------------------------------- */

void ferry_time_opts_init(ferry_time_opts *o) {
  memset(o, 0, sizeof *o);
  o->number = 10;
  o->repeat = 1;
  o->limit_zero_time_iterations = 100;
  o->repeats_to_cooldown = 1;
}

int ferry_client_time_evaluator(ferry_client *c, ferry_remote *mod, const char *name,
                                DLDevice dev, const ferry_time_opts *o, ferry_remote **out) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  if (mod && mod->kind != FERRY_KIND_MODULE)
    return client_fail(c, FERRY_EINVAL, "time evaluator of something that is not a module");
  ferry_time_opts def;
  if (!o) {
    ferry_time_opts_init(&def);
    o = &def;
  }
  const char *pre = o->f_preproc ? o->f_preproc : "";
  ferry_value a[12];
  memset(a, 0, sizeof a);
  if (mod)
    a[0] = ferry_remote_value(mod);
  else
    a[0].kind = FERRY_KIND_NONE; /* a global function (§4.4) */
  a[1] = ferry_arg_str(name, strlen(name));
  a[2] = ferry_arg_int(dev.device_type);
  a[3] = ferry_arg_int(dev.device_id);
  a[4] = ferry_arg_int(o->number);
  a[5] = ferry_arg_int(o->repeat);
  a[6] = ferry_arg_int(o->min_repeat_ms);
  a[7] = ferry_arg_int(o->limit_zero_time_iterations);
  a[8] = ferry_arg_int(o->cooldown_interval_ms);
  a[9] = ferry_arg_int(o->repeats_to_cooldown);
  a[10] = ferry_arg_int(o->cache_flush_bytes);
  a[11] = ferry_arg_str(pre, strlen(pre));
  rc = call_for_remote(c, CG_TIME_EVALUATOR, a, 12, FERRY_KIND_FUNC, out);
  if (rc == FERRY_ENOTFOUND)
    return client_fail(c, rc, "the server returned no time evaluator for '%s'", name);
  return rc;
}

int ferry_client_time(ferry_client *c, ferry_remote *evaluator, const ferry_value *args,
                      int nargs, double *secs, int max, int *nrepeat) {
  ferry_result res;
  int rc = ferry_client_call(c, evaluator, args, nargs, &res);
  if (rc)
    return rc;
  /* The result is `repeat` doubles in the server's byte order, which is
   * little-endian on every host TVM runs on (§4.4). */
  if (res.value.kind != FERRY_KIND_BYTES || res.value.v.str.len % 8 != 0) {
    (void)ferry_client_release(c, res.remote);
    return client_fail(c, FERRY_EPROTO, "time evaluator returned a %s of %zu bytes",
                       ferry_kind_name(res.value.kind),
                       res.value.kind == FERRY_KIND_BYTES ? res.value.v.str.len : 0);
  }
  int n = (int)(res.value.v.str.len / 8);
  for (int i = 0; i < n && i < max; i++)
    secs[i] = get_f64((const uint8_t *)res.value.v.str.data + 8 * i);
  *nrepeat = n;
  return 0;
}
