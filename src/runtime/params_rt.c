/* runtime.SaveParams / runtime.LoadParams (spec runtime-abi.md 10.2) and
 * the parameter-map object they exchange.  The byte format is the pure
 * codec in wire/params.c; this file turns it into NDArrays. */
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"
#include "wire/params.h"

static void param_map_destroy(ferry_obj *o) {
  ferry_param_map *pm = (ferry_param_map *)o;
  for (size_t i = 0; i < pm->n; i++) {
    free(pm->names[i]);
    ferry_obj_release(&pm->arrays[i]->base);
  }
  free(pm->names);
  free(pm->arrays);
  free(pm);
}

ferry_param_map *ferry_param_map_cast(ferry_obj *o) {
  if (o == NULL || o->type != FERRY_OBJ_OTHER ||
      strcmp(((ferry_other *)o)->type_key, FERRY_PARAM_MAP_KEY) != 0)
    return NULL;
  return (ferry_param_map *)o;
}

int ferry_param_map_decode(ferry_rt *rt, const uint8_t *p, size_t len, ferry_param_map **out,
                           ferry_err *err) {
  *out = NULL;
  ferry_params_reader r;
  int rc = ferry_params_open(&r, p, len);
  if (rc == FERRY_EMAGIC)
    return ferry_err_set(err, FERRY_EMAGIC, "parameter blob has a wrong magic number");
  if (rc)
    return ferry_err_set(err, FERRY_EPROTO, "parameter blob is %s",
                         rc == FERRY_EAGAIN ? "truncated" : "malformed or over a limit");
  ferry_param_map *pm = calloc(1, sizeof *pm);
  if (pm == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  ferry_obj_init(&pm->hdr.base, FERRY_OBJ_OTHER, param_map_destroy);
  pm->hdr.type_key = FERRY_PARAM_MAP_KEY;
  pm->names = calloc(r.count ? r.count : 1, sizeof *pm->names);
  pm->arrays = calloc(r.count ? r.count : 1, sizeof *pm->arrays);
  if (pm->names == NULL || pm->arrays == NULL) {
    ferry_obj_release(&pm->hdr.base);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  while (r.index < r.count) {
    const char *name;
    size_t nlen;
    ferry_params_tensor t;
    rc = ferry_params_next(&r, &name, &nlen, &t);
    if (rc) {
      ferry_obj_release(&pm->hdr.base);
      return ferry_err_set(err, rc == FERRY_EMAGIC ? rc : FERRY_EPROTO,
                           "parameter %llu of the blob is %s", (unsigned long long)r.index,
                           rc == FERRY_EMAGIC    ? "not an NDArray (wrong magic)"
                           : rc == FERRY_EAGAIN  ? "truncated"
                                                 : "malformed");
    }
    ferry_ndarray *nd;
    DLDevice cpu = {kDLCPU, 0};
    rc = ferry_ndarray_new(rt, t.ndim, t.shape, t.dtype, cpu, &nd, err);
    if (rc) {
      ferry_obj_release(&pm->hdr.base);
      return rc;
    }
    if (t.nbytes)
      memcpy(nd->tensor.data, t.data, (size_t)t.nbytes);
    pm->arrays[pm->n] = nd;
    pm->names[pm->n] = strndup(name, nlen);
    pm->n++;
    if (pm->names[pm->n - 1] == NULL) {
      ferry_obj_release(&pm->hdr.base);
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    }
  }
  *out = pm;
  return FERRY_OK;
}

static int load_params_fn(ferry_call *c) {
  const char *p;
  size_t len;
  int rc = ferry_arg_count(c, "runtime.LoadParams", 1, 1);
  if (rc == FERRY_OK)
    rc = ferry_arg_bytes(c, "runtime.LoadParams", 0, &p, &len);
  if (rc)
    return rc;
  ferry_param_map *pm;
  if ((rc = ferry_param_map_decode(c->rt, (const uint8_t *)p, len, &pm, c->err)))
    return rc;
  ferry_call_return_obj(c, FERRY_KIND_OBJECT, &pm->hdr.base);
  return FERRY_OK;
}

/* SaveParams(map) with a map from LoadParams, or SaveParams(name0, tensor0,
 * name1, tensor1, ...): a client cannot build a Map object remotely. */
static int save_params_fn(ferry_call *c) {
  const char *fname = "runtime.SaveParams";
  size_t n;
  const char **names = NULL;
  const DLTensor **tensors = NULL;
  ferry_param_map *pm = NULL;
  if (c->nargs == 1 && c->args[0].kind == FERRY_KIND_OBJECT) {
    pm = ferry_param_map_cast(c->args[0].v.obj);
    if (pm == NULL)
      return ferry_err_set(c->err, FERRY_ETYPE, "%s: argument 0 is not a parameter map", fname);
    n = pm->n;
  } else {
    if (c->nargs % 2 != 0)
      return ferry_err_set(c->err, FERRY_EINVAL,
                           "%s expects a parameter map or name, tensor pairs", fname);
    n = (size_t)c->nargs / 2;
  }
  names = calloc(n ? n : 1, sizeof *names);
  tensors = calloc(n ? n : 1, sizeof *tensors);
  int rc = names && tensors ? FERRY_OK : ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
  for (size_t i = 0; rc == FERRY_OK && i < n; i++) {
    DLTensor *t;
    if (pm) {
      names[i] = pm->names[i];
      t = &pm->arrays[i]->tensor;
    } else if ((rc = ferry_arg_str(c, fname, (int)(2 * i), &names[i])) ||
               (rc = ferry_arg_tensor(c, fname, (int)(2 * i + 1), &t))) {
      break;
    }
    uint64_t nbytes;
    if (ferry_tensor_nbytes(t, &nbytes) != FERRY_OK)
      rc = ferry_err_set(c->err, FERRY_ERANGE, "%s: tensor %zu has a bad shape", fname, i);
    else
      rc = ferry_rt_check_range(c->rt, (char *)t->data + t->byte_offset, nbytes, c->err);
    tensors[i] = t;
  }
  if (rc == FERRY_OK) {
    c->ret_storage.len = 0;
    rc = ferry_params_encode(&c->ret_storage, n, names, tensors);
    if (rc)
      rc = ferry_err_set(c->err, rc, "%s: cannot encode (lanes != 1, too large or bad name)",
                         fname);
  }
  free(names);
  free(tensors);
  if (rc)
    return rc;
  c->ret.kind = FERRY_KIND_BYTES;
  c->ret.v.str.data = (const char *)c->ret_storage.data;
  c->ret.v.str.len = c->ret_storage.len;
  return FERRY_OK;
}

const struct ferry_builtin ferry_params_builtins[] = {
    {"runtime.SaveParams", save_params_fn},
    {"runtime.LoadParams", load_params_fn},
    {NULL, NULL},
};
