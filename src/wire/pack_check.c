/* Graph/params consistency check for `ferry pack`; see pack_check.h. */
#include "wire/pack_check.h"

#include <jansson.h>
#include <string.h>

#include "wire/npy.h"
#include "wire/params.h"

/* attrs[key] = [tag, list] with a list as long as the entries. */
static json_t *attr_list(json_t *attrs, const char *key, size_t entries, ferry_rpc_why *why) {
  json_t *a = json_object_get(attrs, key);
  json_t *list = json_is_array(a) && json_array_size(a) == 2 ? json_array_get(a, 1) : NULL;
  if (!json_is_array(list) || json_array_size(list) != entries) {
    ferry_rpc_why_set(why, FERRY_EPROTO, "graph: attrs.%s is not a [tag, list] of %zu entries",
                      key, entries);
    return NULL;
  }
  return list;
}

static int check_graph(json_t *g, json_t **nodes, json_t **args, json_t **row_ptr,
                       json_t **shapes, json_t **dtypes, ferry_rpc_why *why) {
  *nodes = json_object_get(g, "nodes");
  *args = json_object_get(g, "arg_nodes");
  *row_ptr = json_object_get(g, "node_row_ptr");
  json_t *heads = json_object_get(g, "heads"), *attrs = json_object_get(g, "attrs");
  if (!json_is_array(*nodes) || !json_is_array(*args) || !json_is_array(*row_ptr) ||
      !json_is_array(heads) || !json_is_object(attrs))
    return ferry_rpc_why_set(why, FERRY_EPROTO,
                             "graph: needs nodes, arg_nodes, heads, node_row_ptr and attrs");
  size_t n = json_array_size(*nodes);
  if (json_array_size(*row_ptr) != n + 1)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "graph: node_row_ptr has %zu entries, not %zu",
                             json_array_size(*row_ptr), n + 1);
  json_int_t prev = 0;
  for (size_t i = 0; i <= n; i++) {
    json_t *v = json_array_get(*row_ptr, i);
    json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
    if (x < prev || (i == 0 && x != 0) || x > (json_int_t)FERRY_PACK_MAX_JSON)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "graph: node_row_ptr[%zu] is not valid", i);
    prev = x;
  }
  size_t entries = (size_t)prev;
  if (!(*shapes = attr_list(attrs, "shape", entries, why)) ||
      !(*dtypes = attr_list(attrs, "dltype", entries, why)) ||
      !attr_list(attrs, "storage_id", entries, why))
    return FERRY_EPROTO;
  for (size_t i = 0; i < json_array_size(*args); i++) {
    json_t *v = json_array_get(*args, i);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (size_t)json_integer_value(v) >= n)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "graph: arg_nodes[%zu] is not a node", i);
  }
  return FERRY_OK;
}

/* The arg node called name (len bytes), or -1. */
static json_int_t find_input(json_t *nodes, json_t *args, const char *name, size_t len) {
  for (size_t i = 0; i < json_array_size(args); i++) {
    json_int_t nid = json_integer_value(json_array_get(args, i));
    json_t *nm = json_object_get(json_array_get(nodes, (size_t)nid), "name");
    if (json_is_string(nm) && json_string_length(nm) == len &&
        memcmp(json_string_value(nm), name, len) == 0)
      return nid;
  }
  return -1;
}

static int check_param(json_t *nodes, json_t *args, json_t *row_ptr, json_t *shapes,
                       json_t *dtypes, const char *name, size_t len,
                       const ferry_params_tensor *t, ferry_rpc_why *why) {
  int nl = len > 200 ? 200 : (int)len;
  json_int_t nid = find_input(nodes, args, name, len);
  if (nid < 0)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "params: '%.*s' is not an input of the graph",
                             nl, name);
  size_t e = (size_t)json_integer_value(json_array_get(row_ptr, (size_t)nid));
  json_t *dt = json_array_get(dtypes, e), *sh = json_array_get(shapes, e);
  const char *want = json_is_string(dt) ? json_string_value(dt) : "?";
  if (strcmp(want, ferry_npy_dtype_name(t->dtype)) != 0)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "params: '%.*s' is %s, the graph says %s", nl,
                             name, ferry_npy_dtype_name(t->dtype), want);
  int same = json_is_array(sh) && json_array_size(sh) == (size_t)t->ndim;
  for (int k = 0; same && k < t->ndim; k++) {
    json_t *d = json_array_get(sh, (size_t)k);
    same = json_is_integer(d) && json_integer_value(d) == t->shape[k];
  }
  if (!same)
    return ferry_rpc_why_set(why, FERRY_EPROTO,
                             "params: the shape of '%.*s' is not the graph's", nl, name);
  return FERRY_OK;
}

int ferry_pack_check(const char *json, size_t json_len, const uint8_t *params,
                     size_t params_len, size_t *nparams, ferry_rpc_why *why) {
  *nparams = 0;
  if (json_len > FERRY_PACK_MAX_JSON)
    return ferry_rpc_why_set(why, FERRY_ETOOBIG, "graph: over %u bytes", FERRY_PACK_MAX_JSON);
  json_error_t jerr;
  json_t *g = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &jerr);
  if (!g)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "graph: not JSON (line %d: %s)", jerr.line,
                             jerr.text);
  json_t *nodes = NULL, *args = NULL, *row_ptr = NULL, *shapes = NULL, *dtypes = NULL;
  int rc = json_is_object(g) ? check_graph(g, &nodes, &args, &row_ptr, &shapes, &dtypes, why)
                             : ferry_rpc_why_set(why, FERRY_EPROTO, "graph: not an object");
  if (!rc && params_len) {
    ferry_params_reader r;
    rc = ferry_params_open(&r, params, params_len);
    while (!rc && r.index < r.count) {
      const char *name;
      size_t len;
      ferry_params_tensor t;
      rc = ferry_params_next(&r, &name, &len, &t);
      if (!rc)
        rc = check_param(nodes, args, row_ptr, shapes, dtypes, name, len, &t, why);
    }
    if (rc)
      ferry_rpc_why_set(why, rc, "params: not a valid TVM parameter dict (%s)",
                        ferry_strerror(rc));
    else if (ferry_stream_left(&r.arrays) != 0)
      rc = ferry_rpc_why_set(why, FERRY_EPROTO, "params: %zu bytes after the last array",
                             ferry_stream_left(&r.arrays));
    else
      *nparams = (size_t)r.count;
  }
  json_decref(g);
  return rc;
}
