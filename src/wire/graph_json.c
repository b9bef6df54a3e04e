/* Graph JSON parser (spec runtime-abi.md 8.1); the checks it makes are
 * listed in graph_json.h.  jansson builds the document (with its depth
 * limit), then each field is read with a bound; nothing from the document
 * is used as an index before it is compared with the count it indexes. */
#include "wire/graph_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef struct pctx {
  char *msg;
  size_t cap;
} pctx;

static int fail(pctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(pctx *c, int code, const char *fmt, ...) {
  if (c->cap) {
    int n = snprintf(c->msg, c->cap, "graph JSON: ");
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < c->cap)
      vsnprintf(c->msg + n, c->cap - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return code;
}

int ferry_graph_dtype_parse(const char *s, DLDataType *out) {
  if (strcmp(s, "bool") == 0) {
    *out = (DLDataType){kDLUInt, 1, 1};
    return FERRY_OK;
  }
  static const struct {
    const char *prefix;
    uint8_t code;
  } kinds[] = {{"uint", kDLUInt}, {"int", kDLInt}, {"float", kDLFloat}, {"bfloat", kDLBfloat}};
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    size_t pl = strlen(kinds[k].prefix);
    if (strncmp(s, kinds[k].prefix, pl) != 0)
      continue;
    const char *p = s + pl;
    if (*p < '1' || *p > '9')
      return FERRY_EINVAL;
    char *end;
    errno = 0;
    unsigned long bits = strtoul(p, &end, 10), lanes = 1;
    if (errno || bits == 0 || bits > 255)
      return FERRY_EINVAL;
    if (*end == 'x') {
      p = end + 1;
      if (*p < '1' || *p > '9')
        return FERRY_EINVAL;
      lanes = strtoul(p, &end, 10);
      if (errno || lanes == 0 || lanes > 65535)
        return FERRY_EINVAL;
    }
    if (*end != 0)
      return FERRY_EINVAL;
    *out = (DLDataType){kinds[k].code, (uint8_t)bits, (uint16_t)lanes};
    return FERRY_OK;
  }
  return FERRY_EINVAL;
}

void ferry_graph_free(ferry_graph *g) {
  if (g == NULL)
    return;
  for (size_t i = 0; i < g->nnodes; i++) {
    free(g->nodes[i].name);
    free(g->nodes[i].func_name);
    free(g->nodes[i].inputs);
  }
  free(g->nodes);
  free(g->arg_nodes);
  free(g->heads);
  free(g->node_row_ptr);
  free(g->entries);
  free(g);
}

/* A non-negative JSON integer below limit. */
static int get_index(const json_t *v, uint64_t limit, uint64_t *out) {
  if (!json_is_integer(v))
    return FERRY_EPROTO;
  json_int_t i = json_integer_value(v);
  if (i < 0 || (uint64_t)i >= limit)
    return FERRY_EPROTO;
  *out = (uint64_t)i;
  return FERRY_OK;
}

/* A decimal integer written as a JSON string ("1"), in [0, limit]. */
static int get_attr_uint(pctx *c, const json_t *attrs, const char *node, const char *key,
                         uint32_t limit, uint32_t *out) {
  const json_t *v = json_object_get(attrs, key);
  if (!json_is_string(v))
    return fail(c, FERRY_EPROTO, "node '%s': attrs.%s is missing or not a string", node, key);
  const char *s = json_string_value(v);
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (*s < '0' || *s > '9' || *end != 0 || errno || x > limit)
    return fail(c, FERRY_EPROTO, "node '%s': attrs.%s = \"%.32s\" is not a number in 0..%u",
                node, key, s, limit);
  *out = (uint32_t)x;
  return FERRY_OK;
}

static char *dup_name(pctx *c, const json_t *v, const char *what, int *rc) {
  if (!json_is_string(v) || json_string_length(v) > FERRY_GRAPH_MAX_NAME ||
      strlen(json_string_value(v)) != json_string_length(v)) {
    *rc = fail(c, FERRY_EPROTO, "%s is missing, not a string, too long or contains NUL", what);
    return NULL;
  }
  char *s = strdup(json_string_value(v));
  if (s == NULL)
    *rc = fail(c, FERRY_ENOMEM, "out of memory");
  return s;
}

/* [node, index] or [node, index, version] with node < before. */
static int get_ref(pctx *c, const ferry_graph *g, const json_t *v, uint64_t before,
                   const char *what, ferry_graph_ref *out) {
  uint64_t node, index;
  if (!json_is_array(v) || json_array_size(v) < 2 || json_array_size(v) > 3 ||
      get_index(json_array_get(v, 0), before, &node) ||
      get_index(json_array_get(v, 1), UINT32_MAX, &index))
    return fail(c, FERRY_EPROTO,
                "%s: expected [node, index(, version)] naming an earlier node", what);
  uint32_t outputs = g->node_row_ptr[node + 1] - g->node_row_ptr[node];
  if (index >= outputs)
    return fail(c, FERRY_EPROTO, "%s: node %llu has no output %llu", what,
                (unsigned long long)node, (unsigned long long)index);
  out->node = (uint32_t)node;
  out->index = (uint32_t)index;
  return FERRY_OK;
}

static int parse_node(pctx *c, ferry_graph *g, size_t n, const json_t *jn) {
  ferry_graph_node *node = &g->nodes[n];
  int rc = FERRY_OK;
  char what[64];
  snprintf(what, sizeof what, "node %zu", n);
  if (!json_is_object(jn))
    return fail(c, FERRY_EPROTO, "%s is not an object", what);
  const char *key;
  json_t *val;
  const json_t *attrs = NULL;
  json_object_foreach((json_t *)jn, key, val) {
    if (strcmp(key, "attrs") == 0 || strcmp(key, "attr") == 0)
      attrs = val;
    else if (strcmp(key, "op") != 0 && strcmp(key, "name") != 0 && strcmp(key, "inputs") != 0 &&
             strcmp(key, "control_deps") != 0)
      return fail(c, FERRY_EPROTO, "%s has an unknown key '%.64s'", what, key);
  }
  const json_t *op = json_object_get(jn, "op");
  if (!json_is_string(op))
    return fail(c, FERRY_EPROTO, "%s: op is missing or not a string", what);
  if ((node->name = dup_name(c, json_object_get(jn, "name"), what, &rc)) == NULL)
    return rc;
  const json_t *inputs = json_object_get(jn, "inputs");
  if (!json_is_array(inputs) || json_array_size(inputs) > FERRY_GRAPH_MAX_NODE_ARGS)
    return fail(c, FERRY_EPROTO, "node '%s': inputs missing, not a list or too long",
                node->name);
  size_t nin = json_array_size(inputs);
  uint32_t row = g->node_row_ptr[n + 1] - g->node_row_ptr[n];
  if (strcmp(json_string_value(op), "null") == 0) {
    node->op = FERRY_GRAPH_NULL;
    node->num_outputs = 1;
    if (nin != 0)
      return fail(c, FERRY_EPROTO, "null node '%s' has inputs", node->name);
  } else if (strcmp(json_string_value(op), "tvm_op") == 0) {
    if (!json_is_object(attrs))
      return fail(c, FERRY_EPROTO, "tvm_op node '%s' has no attrs object", node->name);
    if ((node->func_name =
             dup_name(c, json_object_get(attrs, "func_name"), "attrs.func_name", &rc)) == NULL)
      return rc;
    node->op = strcmp(node->func_name, "__nop") == 0    ? FERRY_GRAPH_NOP
               : strcmp(node->func_name, "__copy") == 0 ? FERRY_GRAPH_COPY
                                                        : FERRY_GRAPH_CALL;
    uint32_t num_inputs, flatten;
    if ((rc = get_attr_uint(c, attrs, node->name, "num_inputs", FERRY_GRAPH_MAX_NODE_ARGS,
                            &num_inputs)) ||
        (rc = get_attr_uint(c, attrs, node->name, "num_outputs", FERRY_GRAPH_MAX_NODE_ARGS,
                            &node->num_outputs)) ||
        (rc = get_attr_uint(c, attrs, node->name, "flatten_data", 1, &flatten)))
      return rc;
    node->flatten_data = (int)flatten;
    if (num_inputs != nin)
      return fail(c, FERRY_EPROTO, "node '%s': num_inputs is %u but it lists %zu inputs",
                  node->name, num_inputs, nin);
    if (num_inputs + node->num_outputs > FERRY_GRAPH_MAX_NODE_ARGS)
      return fail(c, FERRY_EPROTO, "node '%s' has too many arguments", node->name);
    if (node->op == FERRY_GRAPH_COPY && (nin != 1 || node->num_outputs != 1))
      return fail(c, FERRY_EPROTO, "__copy node '%s' needs one input and one output",
                  node->name);
  } else {
    return fail(c, FERRY_EPROTO, "node '%s': unknown op '%.32s'", node->name,
                json_string_value(op));
  }
  if (row != node->num_outputs)
    return fail(c, FERRY_EPROTO, "node '%s' has %u outputs but node_row_ptr gives it %u",
                node->name, node->num_outputs, row);
  node->inputs = calloc(nin ? nin : 1, sizeof *node->inputs);
  if (node->inputs == NULL)
    return fail(c, FERRY_ENOMEM, "out of memory");
  node->ninputs = (uint32_t)nin;
  for (size_t i = 0; i < nin; i++) {
    snprintf(what, sizeof what, "node %zu input %zu", n, i);
    /* Only earlier nodes: this is what makes the graph acyclic and lets
     * run() execute in document order. */
    if ((rc = get_ref(c, g, json_array_get(inputs, i), n, what, &node->inputs[i])))
      return rc;
  }
  return FERRY_OK;
}

/* attrs.<key> = [tag, [v0, v1, ...]] with one value per entry. */
static const json_t *attr_list(pctx *c, const json_t *attrs, const char *key, const char *tag,
                               size_t n, int required, int *rc) {
  const json_t *v = json_object_get(attrs, key);
  *rc = FERRY_OK;
  if (v == NULL) {
    if (required)
      *rc = fail(c, FERRY_EPROTO, "attrs.%s is missing", key);
    return NULL;
  }
  const json_t *t = json_array_get(v, 0), *l = json_array_get(v, 1);
  if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(t) ||
      strcmp(json_string_value(t), tag) != 0 || !json_is_array(l) || json_array_size(l) != n) {
    *rc = fail(c, FERRY_EPROTO, "attrs.%s must be [\"%s\", list of %zu values]", key, tag, n);
    return NULL;
  }
  return l;
}

static int parse_entry_attrs(pctx *c, ferry_graph *g, const json_t *attrs) {
  if (!json_is_object(attrs))
    return fail(c, FERRY_EPROTO, "attrs is missing or not an object");
  size_t n = g->nentries;
  int rc;
  const json_t *dl = attr_list(c, attrs, "dltype", "list_str", n, 1, &rc);
  if (rc)
    return rc;
  const json_t *sid = attr_list(c, attrs, "storage_id", "list_int", n, 1, &rc);
  if (rc)
    return rc;
  const json_t *shp = attr_list(c, attrs, "shape", "list_shape", n, 1, &rc);
  if (rc)
    return rc;
  const json_t *dev = attr_list(c, attrs, "device_index", "list_int", n, 0, &rc);
  if (rc)
    return rc;
  const json_t *scope = attr_list(c, attrs, "storage_scope", "list_str", n, 0, &rc);
  if (rc)
    return rc;
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)attrs, key, val) {
    if (strcmp(key, "dltype") == 0 || strcmp(key, "storage_id") == 0 ||
        strcmp(key, "shape") == 0 || strcmp(key, "device_index") == 0 ||
        strcmp(key, "storage_scope") == 0)
      continue;
    const json_t *t = json_array_get(val, 0);
    if (!json_is_array(val) || !json_is_string(t) ||
        (strcmp(json_string_value(t), "list_int") != 0 &&
         strcmp(json_string_value(t), "size_t") != 0))
      return fail(c, FERRY_EPROTO, "attrs.%.64s has an unknown type tag", key);
  }
  g->has_device_index = dev != NULL;
  for (size_t e = 0; e < n; e++) {
    ferry_graph_entry *en = &g->entries[e];
    const json_t *d = json_array_get(dl, e);
    if (!json_is_string(d) || ferry_graph_dtype_parse(json_string_value(d), &en->dtype))
      return fail(c, FERRY_EPROTO, "entry %zu: dltype is not a data type", e);
    unsigned bl = (unsigned)en->dtype.bits * en->dtype.lanes;
    if (bl % 8 != 0 && bl != 1 && bl != 4)
      return fail(c, FERRY_EPROTO, "entry %zu: element of %u bits is not byte-sized", e, bl);
    uint64_t v;
    if (get_index(json_array_get(sid, e), n, &v))
      return fail(c, FERRY_EPROTO, "entry %zu: storage id out of range 0..%zu", e, n - 1);
    en->storage_id = (uint32_t)v;
    if (en->storage_id + 1 > g->nstorage)
      g->nstorage = en->storage_id + 1;
    if (dev) {
      if (get_index(json_array_get(dev, e), 1u << 16, &v))
        return fail(c, FERRY_EPROTO, "entry %zu: device_index is not a device type", e);
      en->device_type = (int32_t)v;
    }
    if (scope) {
      const json_t *s = json_array_get(scope, e);
      if (!json_is_string(s) ||
          (json_string_length(s) != 0 && strcmp(json_string_value(s), "global") != 0))
        return fail(c, FERRY_EPROTO, "entry %zu: storage scope other than global", e);
    }
    const json_t *s = json_array_get(shp, e);
    if (!json_is_array(s) || json_array_size(s) > FERRY_GRAPH_MAX_NDIM)
      return fail(c, FERRY_EPROTO, "entry %zu: shape is not a list of at most %d extents", e,
                  FERRY_GRAPH_MAX_NDIM);
    en->ndim = (int)json_array_size(s);
    uint64_t count = 1;
    for (int k = 0; k < en->ndim; k++) {
      if (get_index(json_array_get(s, (size_t)k), INT64_MAX, &v) ||
          __builtin_mul_overflow(count, v, &count))
        return fail(c, FERRY_EPROTO, "entry %zu: shape extent %d is negative or too large", e,
                    k);
      en->shape[k] = (int64_t)v;
    }
    uint64_t elem = (bl + 7) / 8;
    if (__builtin_mul_overflow(count, elem, &en->nbytes) || en->nbytes > INT64_MAX)
      return fail(c, FERRY_EPROTO, "entry %zu: byte size overflows", e);
  }
  return FERRY_OK;
}

static int parse_u32_list(pctx *c, const json_t *v, const char *what, size_t max_len,
                          uint64_t limit, uint32_t **out, size_t *n) {
  if (!json_is_array(v) || json_array_size(v) > max_len)
    return fail(c, FERRY_EPROTO, "%s is missing, not a list or longer than %zu", what, max_len);
  *n = json_array_size(v);
  *out = calloc(*n ? *n : 1, sizeof **out);
  if (*out == NULL)
    return fail(c, FERRY_ENOMEM, "out of memory");
  for (size_t i = 0; i < *n; i++) {
    uint64_t x;
    if (get_index(json_array_get(v, i), limit, &x))
      return fail(c, FERRY_EPROTO, "%s[%zu] is not an integer below %llu", what, i,
                  (unsigned long long)limit);
    (*out)[i] = (uint32_t)x;
  }
  return FERRY_OK;
}

static int parse_doc(pctx *c, ferry_graph *g, json_t *doc) {
  if (!json_is_object(doc))
    return fail(c, FERRY_EPROTO, "the document is not an object");
  const json_t *nodes = NULL, *args = NULL, *heads = NULL, *rows = NULL, *attrs = NULL;
  const char *key;
  json_t *val;
  /* Keys in document order (JSON_PRESERVE_ORDER): TVM's reader stops at
   * "metadata", so anything after it is not looked at. */
  json_object_foreach(doc, key, val) {
    if (strcmp(key, "metadata") == 0)
      break;
    const json_t **slot = strcmp(key, "nodes") == 0          ? &nodes
                          : strcmp(key, "arg_nodes") == 0    ? &args
                          : strcmp(key, "heads") == 0        ? &heads
                          : strcmp(key, "node_row_ptr") == 0 ? &rows
                          : strcmp(key, "attrs") == 0        ? &attrs
                                                             : NULL;
    if (slot == NULL)
      return fail(c, FERRY_EPROTO, "unknown key '%.64s'", key);
    *slot = val;
  }
  if (!json_is_array(nodes) || json_array_size(nodes) == 0 ||
      json_array_size(nodes) > FERRY_GRAPH_MAX_NODES)
    return fail(c, FERRY_EPROTO, "nodes is missing, empty, not a list or over %u nodes",
                FERRY_GRAPH_MAX_NODES);
  size_t nn = json_array_size(nodes);
  size_t nrows;
  int rc = parse_u32_list(c, rows, "node_row_ptr", nn + 1, FERRY_GRAPH_MAX_ENTRIES + 1ull,
                          &g->node_row_ptr, &nrows);
  if (rc)
    return rc;
  if (nrows != nn + 1 || g->node_row_ptr[0] != 0)
    return fail(c, FERRY_EPROTO, "node_row_ptr must have %zu values starting at 0", nn + 1);
  for (size_t i = 0; i < nn; i++)
    if (g->node_row_ptr[i + 1] < g->node_row_ptr[i])
      return fail(c, FERRY_EPROTO, "node_row_ptr decreases at %zu", i + 1);
  g->nentries = g->node_row_ptr[nn];
  if (g->nentries == 0)
    return fail(c, FERRY_EPROTO, "the graph has no entries");
  g->nodes = calloc(nn, sizeof *g->nodes);
  g->entries = calloc(g->nentries, sizeof *g->entries);
  if (g->nodes == NULL || g->entries == NULL)
    return fail(c, FERRY_ENOMEM, "out of memory");
  for (size_t i = 0; i < nn; i++) {
    g->nnodes = i + 1; /* so that ferry_graph_free frees what was parsed */
    if ((rc = parse_node(c, g, i, json_array_get(nodes, i))))
      return rc;
  }
  if ((rc = parse_u32_list(c, args, "arg_nodes", nn, nn, &g->arg_nodes, &g->narg_nodes)))
    return rc;
  for (size_t i = 0; i < g->narg_nodes; i++)
    if (g->nodes[g->arg_nodes[i]].op != FERRY_GRAPH_NULL)
      return fail(c, FERRY_EPROTO, "arg_nodes[%zu] is not a null node", i);
  if (!json_is_array(heads) || json_array_size(heads) > g->nentries)
    return fail(c, FERRY_EPROTO, "heads is missing, not a list or too long");
  g->nheads = json_array_size(heads);
  g->heads = calloc(g->nheads ? g->nheads : 1, sizeof *g->heads);
  if (g->heads == NULL)
    return fail(c, FERRY_ENOMEM, "out of memory");
  for (size_t i = 0; i < g->nheads; i++) {
    char what[32];
    snprintf(what, sizeof what, "heads[%zu]", i);
    if ((rc = get_ref(c, g, json_array_get(heads, i), nn, what, &g->heads[i])))
      return rc;
  }
  return parse_entry_attrs(c, g, attrs);
}

int ferry_graph_parse(const char *json, size_t len, ferry_graph **out, char *msg,
                      size_t msg_cap) {
  pctx c = {msg, msg_cap};
  *out = NULL;
  if (msg_cap)
    msg[0] = 0;
  if (len > FERRY_GRAPH_MAX_JSON)
    return fail(&c, FERRY_ETOOBIG, "%zu bytes is over the limit of %u", len,
                FERRY_GRAPH_MAX_JSON);
  json_error_t jerr;
  json_t *doc = json_loadb(json, len, JSON_PRESERVE_ORDER | JSON_REJECT_DUPLICATES, &jerr);
  if (doc == NULL)
    return fail(&c, FERRY_EPROTO, "not valid JSON (%s at line %d)", jerr.text, jerr.line);
  ferry_graph *g = calloc(1, sizeof *g);
  int rc = g ? parse_doc(&c, g, doc) : fail(&c, FERRY_ENOMEM, "out of memory");
  json_decref(doc);
  if (rc) {
    ferry_graph_free(g);
    return rc;
  }
  *out = g;
  return FERRY_OK;
}
