/* The GraphExecutorFactory module (spec runtime-abi.md 8.6): what
 * export_library of a TVM <= 0.19 network embeds in __tvm_dev_mblob.
 *
 *   string          graph_json
 *   u64             count
 *   vector<string>  names        (own u64 count == count)
 *   count x NDArray              (10.1), in the order of names
 *   string          module_name  ("default")
 *
 * imports[0] (attached by the blob loader after this payload is read) is
 * the compiled library the executor calls into. */
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/util.h"
#include "runtime/graph/graph_executor.h"
#include "wire/params.h"

#define FACTORY_KEY "GraphExecutorFactory"

typedef struct graph_factory {
  ferry_module mod;
  ferry_rt *rt;
  char *json;
  size_t json_len;
  char *module_name;
  ferry_param_map *params; /* NULL after remove_params */
} graph_factory;

static void factory_destroy(ferry_obj *o) {
  graph_factory *f = (graph_factory *)o;
  free(f->json);
  free(f->module_name);
  ferry_obj_release(f->params ? &f->params->hdr.base : NULL);
  ferry_module_release_imports(&f->mod);
  free(f);
}

static int factory_get_function(ferry_module *m, const char *name, ferry_func **out,
                                ferry_err *err);

static graph_factory *factory_new(ferry_rt *rt, const char *json, size_t json_len,
                                  const char *module_name, size_t name_len) {
  graph_factory *f = calloc(1, sizeof *f);
  if (f == NULL)
    return NULL;
  ferry_obj_init(&f->mod.base, FERRY_OBJ_MODULE, factory_destroy);
  f->mod.type_key = FACTORY_KEY;
  f->mod.get_function = factory_get_function;
  f->rt = rt;
  f->json = malloc(json_len + 1);
  f->module_name = strndup(module_name, name_len);
  if (f->json == NULL || f->module_name == NULL) {
    ferry_obj_release(&f->mod.base);
    return NULL;
  }
  memcpy(f->json, json, json_len);
  f->json[json_len] = 0;
  f->json_len = json_len;
  return f;
}

/* ---- functions ----------------------------------------------------------------- */

static uint64_t param_bytes(const ferry_param_map *pm, size_t k) {
  uint64_t n = 0;
  return ferry_tensor_nbytes(&pm->arrays[k]->tensor, &n) == FERRY_OK ? n : 0;
}

static int larger_first(const void *a, const void *b, void *ctx) {
  uint64_t x = param_bytes(ctx, *(const size_t *)a), y = param_bytes(ctx, *(const size_t *)b);
  return x > y ? -1 : x < y ? 1 : 0;
}

/* <module_name>(dev, ...): a new executor with the factory's parameters. */
static int create_executor(graph_factory *f, ferry_call *c) {
  DLDevice devs[FERRY_GRAPH_MAX_DEVICES];
  if (c->nargs < 1 || c->nargs > FERRY_GRAPH_MAX_DEVICES)
    return ferry_err_set(c->err, FERRY_EINVAL, "%s expects 1 to %d devices, got %d",
                         f->module_name, FERRY_GRAPH_MAX_DEVICES, c->nargs);
  for (int i = 0; i < c->nargs; i++) {
    if (c->args[i].kind != FERRY_KIND_DEVICE)
      return ferry_err_set(c->err, FERRY_ETYPE, "%s: argument %d must be a Device, got %s",
                           f->module_name, i, ferry_kind_name(c->args[i].kind));
    devs[i] = c->args[i].v.device;
  }
  if (f->mod.nimports == 0)
    return ferry_err_set(c->err, FERRY_EINVAL,
                         "GraphExecutorFactory has no imported library module to run");
  ferry_graph_exec *ge = NULL;
  int rc = ferry_graph_exec_create(c->rt, f->json, f->json_len, f->mod.imports[0], devs,
                                   (size_t)c->nargs, &ge, c->err);
  /* Largest first, as TVM does (it matters for devices with scarce memory;
   * the result is the same). */
  size_t n = f->params ? f->params->n : 0;
  size_t *order = calloc(n ? n : 1, sizeof *order);
  if (rc == FERRY_OK && order == NULL)
    rc = ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
  for (size_t k = 0; rc == FERRY_OK && k < n; k++)
    order[k] = k;
  if (rc == FERRY_OK && n > 1)
    qsort_r(order, n, sizeof *order, larger_first, f->params);
  for (size_t k = 0; rc == FERRY_OK && k < n; k++) {
    size_t p = order[k];
    int64_t i = ferry_graph_input_index(ge, f->params->names[p]);
    if (i >= 0)
      rc = ferry_graph_set_input(ge, (size_t)i, &f->params->arrays[p]->tensor, c->err);
  }
  free(order);
  if (rc) {
    if (ge != NULL)
      ferry_obj_release(&ge->mod.base);
    return rc;
  }
  ferry_call_return_obj(c, FERRY_KIND_MODULE, &ge->mod.base);
  return FERRY_OK;
}

static int get_graph_json(graph_factory *f, ferry_call *c) {
  return ferry_call_return_str(c, f->json, f->json_len);
}

static int get_graph_params(graph_factory *f, ferry_call *c) {
  if (f->params == NULL) {
    ferry_param_map *pm;
    static const uint8_t empty[32] = {0xB7, 0x9C, 0x04, 0x05, 0x4F, 0x8D, 0xE5, 0xF7};
    int rc = ferry_param_map_decode(c->rt, empty, sizeof empty, &pm, c->err);
    if (rc)
      return rc;
    ferry_call_return_obj(c, FERRY_KIND_OBJECT, &pm->hdr.base);
    return FERRY_OK;
  }
  ferry_obj_retain(&f->params->hdr.base);
  ferry_call_return_obj(c, FERRY_KIND_OBJECT, &f->params->hdr.base);
  return FERRY_OK;
}

static int remove_params(graph_factory *f, ferry_call *c) {
  graph_factory *n =
      factory_new(f->rt, f->json, f->json_len, f->module_name, strlen(f->module_name));
  if (n == NULL)
    return ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
  for (size_t i = 0; i < f->mod.nimports; i++) {
    int rc = ferry_module_import(&n->mod, f->mod.imports[i], c->err);
    if (rc) {
      ferry_obj_release(&n->mod.base);
      return rc;
    }
  }
  ferry_call_return_obj(c, FERRY_KIND_MODULE, &n->mod.base);
  return FERRY_OK;
}

typedef int (*factory_fn)(graph_factory *f, ferry_call *c);

struct factory_closure {
  graph_factory *f;
  factory_fn fn;
};

static int factory_closure_call(void *ctx, ferry_call *c) {
  struct factory_closure *fc = ctx;
  return fc->fn(fc->f, c);
}

static void factory_closure_free(void *ctx) {
  struct factory_closure *fc = ctx;
  ferry_obj_release(&fc->f->mod.base);
  free(fc);
}

static int factory_get_function(ferry_module *m, const char *name, ferry_func **out,
                                ferry_err *err) {
  graph_factory *f = (graph_factory *)m;
  factory_fn fn = strcmp(name, f->module_name) == 0      ? create_executor
                  : strcmp(name, "get_graph_json") == 0   ? get_graph_json
                  : strcmp(name, "get_graph_params") == 0 ? get_graph_params
                  : strcmp(name, "remove_params") == 0    ? remove_params
                                                          : NULL;
  *out = NULL;
  if (fn == NULL)
    return FERRY_ENOTFOUND;
  struct factory_closure *fc = malloc(sizeof *fc);
  if (fc == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  fc->f = f;
  fc->fn = fn;
  if (ferry_closure_new(factory_closure_call, fc, factory_closure_free, out) != FERRY_OK) {
    free(fc);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  ferry_obj_retain(&m->base);
  return FERRY_OK;
}

/* ---- loader ------------------------------------------------------------------- */

static int bad_payload(ferry_err *err, int rc, const char *what) {
  return ferry_err_set(err, rc == FERRY_ENOMEM ? rc : FERRY_EPROTO,
                       "GraphExecutorFactory in the module blob: %s is %s", what,
                       rc == FERRY_EAGAIN    ? "truncated"
                       : rc == FERRY_ETOOBIG ? "over a size limit"
                       : rc == FERRY_EMAGIC  ? "not an NDArray (wrong magic)"
                                             : "malformed");
}

int ferry_graph_factory_load_blob(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                                  size_t *consumed, ferry_module **out, ferry_err *err) {
  *out = NULL;
  *consumed = 0;
  ferry_stream s;
  ferry_stream_init(&s, payload, payload_avail);
  const char *json, *mname;
  size_t json_len, mname_len;
  uint64_t unvalidated_count, unvalidated_nnames;
  int rc = ferry_stream_str(&s, FERRY_GRAPH_MAX_JSON, &json, &json_len);
  if (rc)
    return bad_payload(err, rc, "the graph JSON");
  if ((rc = ferry_stream_u64(&s, &unvalidated_count)))
    return bad_payload(err, rc, "the parameter count");
  size_t names_at = s.pos;
  if ((rc = ferry_stream_u64(&s, &unvalidated_nnames)))
    return bad_payload(err, rc, "the parameter names");
  if (unvalidated_nnames != unvalidated_count || unvalidated_count > FERRY_PARAMS_MAX_ENTRIES)
    return bad_payload(err, FERRY_EPROTO, "the parameter count");
  for (uint64_t i = 0; i < unvalidated_count; i++) {
    const char *n;
    size_t nl;
    if ((rc = ferry_stream_str(&s, FERRY_PARAMS_MAX_NAME, &n, &nl)))
      return bad_payload(err, rc, "the parameter names");
  }
  size_t names_end = s.pos;
  for (uint64_t i = 0; i < unvalidated_count; i++) {
    ferry_params_tensor t;
    if ((rc = ferry_ndarray_decode(&s, &t)))
      return bad_payload(err, rc, "a parameter array");
  }
  size_t arrays_end = s.pos;
  if ((rc = ferry_stream_str(&s, FERRY_PARAMS_MAX_NAME, &mname, &mname_len)))
    return bad_payload(err, rc, "the module name");
  if (memchr(mname, 0, mname_len) != NULL || memchr(json, 0, json_len) != NULL)
    return bad_payload(err, FERRY_EPROTO, "a string");
  /* The parameters are a parameter dict with its parts in another order:
   * rebuild that dict so one decoder (and one map type) serves both. */
  size_t dict_len = 16 + (names_end - names_at) + 8 + (arrays_end - names_end);
  uint8_t *dict = malloc(dict_len);
  if (dict == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  put_le64(dict, FERRY_PARAMS_MAGIC);
  put_le64(dict + 8, 0);
  memcpy(dict + 16, payload + names_at, names_end - names_at);
  put_le64(dict + 16 + (names_end - names_at), unvalidated_count);
  memcpy(dict + 24 + (names_end - names_at), payload + names_end, arrays_end - names_end);
  graph_factory *f = factory_new(rt, json, json_len, mname, mname_len);
  if (f == NULL) {
    free(dict);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  rc = ferry_param_map_decode(rt, dict, dict_len, &f->params, err);
  free(dict);
  if (rc) {
    ferry_obj_release(&f->mod.base);
    return rc;
  }
  *consumed = s.pos;
  *out = &f->mod;
  return FERRY_OK;
}
