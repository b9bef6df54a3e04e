/* The module functions of a graph executor (spec runtime-abi.md 8.4) —
 * every name TVM's Python GraphModule looks up — and the global
 * tvm.graph_executor.create (8.5).  Each lookup returns a closure holding a
 * reference on the executor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "runtime/graph/graph_executor.h"
#include "wire/params.h"

typedef int (*exec_fn)(ferry_graph_exec *ge, ferry_call *c);

/* Input index from an int or a name argument; *idx -1 for an unknown name. */
static int input_key(ferry_graph_exec *ge, ferry_call *c, const char *fname, int64_t *idx) {
  if (c->nargs > 0 && c->args[0].kind == FERRY_KIND_STR) {
    *idx = ferry_graph_input_index(ge, c->args[0].v.str.data);
    return FERRY_OK;
  }
  int rc = ferry_arg_int(c, fname, 0, idx);
  if (rc)
    return rc;
  if (*idx < 0 || (uint64_t)*idx >= ge->g->narg_nodes)
    return ferry_err_set(c->err, FERRY_ERANGE, "%s: input index %lld is out of range (%zu inputs)",
                         fname, (long long)*idx, ge->g->narg_nodes);
  return FERRY_OK;
}

static int output_key(ferry_graph_exec *ge, ferry_call *c, const char *fname, int64_t *idx) {
  if (c->nargs > 0 && c->args[0].kind == FERRY_KIND_STR) {
    /* An output node's name; the last match wins, as in TVM. */
    *idx = -1;
    for (size_t i = 0; i < ge->g->nheads; i++)
      if (strcmp(ge->g->nodes[ge->g->heads[i].node].name, c->args[0].v.str.data) == 0)
        *idx = (int64_t)i;
    if (*idx < 0)
      return ferry_err_set(c->err, FERRY_ENOTFOUND, "%s: no output named '%s'", fname,
                           c->args[0].v.str.data);
    return FERRY_OK;
  }
  int rc = ferry_arg_int(c, fname, 0, idx);
  if (rc)
    return rc;
  if (*idx < 0 || (uint64_t)*idx >= ge->g->nheads)
    return ferry_err_set(c->err, FERRY_ERANGE,
                         "%s: output index %lld is out of range (%zu outputs)", fname,
                         (long long)*idx, ge->g->nheads);
  return FERRY_OK;
}

static int return_entry(ferry_graph_exec *ge, ferry_call *c, uint32_t e) {
  ferry_ndarray *nd;
  int rc = ferry_graph_entry_array(ge, e, &nd, c->err);
  if (rc == FERRY_OK)
    ferry_call_return_obj(c, FERRY_KIND_NDARRAY, &nd->base);
  return rc;
}

static int return_int(ferry_call *c, int64_t v) {
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = v;
  return FERRY_OK;
}

static int set_input_fn(ferry_graph_exec *ge, ferry_call *c) {
  int64_t i;
  DLTensor *t;
  int rc = ferry_arg_count(c, "set_input", 2, 2);
  if (rc == FERRY_OK)
    rc = input_key(ge, c, "set_input", &i);
  if (rc == FERRY_OK)
    rc = ferry_arg_tensor(c, "set_input", 1, &t);
  if (rc || i < 0) /* an unknown name is ignored, as in TVM */
    return rc;
  return ferry_graph_set_input(ge, (size_t)i, t, c->err);
}

/* Shared by set_input_zero_copy and set_output_zero_copy: the entry reads
 * or writes the client's tensor directly from now on. */
static int zero_copy(ferry_graph_exec *ge, ferry_call *c, uint32_t e, const char *fname) {
  DLTensor *t;
  int rc = ferry_arg_tensor(c, fname, 1, &t);
  if (rc)
    return rc;
  const ferry_graph_entry *en = &ge->g->entries[e];
  int same = t->ndim == en->ndim && t->dtype.code == en->dtype.code &&
             t->dtype.bits == en->dtype.bits && t->dtype.lanes == en->dtype.lanes &&
             t->device.device_type == ge->entries[e]->tensor.device.device_type &&
             t->device.device_id == ge->entries[e]->tensor.device.device_id;
  for (int k = 0; same && k < en->ndim; k++)
    same = t->shape[k] == en->shape[k];
  if (!same)
    return ferry_err_set(c->err, FERRY_EINVAL,
                         "%s: tensor shape, dtype or device differs from the graph's", fname);
  char *p = (char *)t->data + t->byte_offset;
  if ((uintptr_t)p % FERRY_RT_ALIGN != 0)
    return ferry_err_set(c->err, FERRY_EINVAL, "%s: tensor data is not %u-byte aligned", fname,
                         FERRY_RT_ALIGN);
  if ((rc = ferry_rt_check_range(ge->rt, p, en->nbytes, c->err)))
    return rc;
  ge->zc_data[e] = p;
  return FERRY_OK;
}

static int set_input_zero_copy_fn(ferry_graph_exec *ge, ferry_call *c) {
  int64_t i;
  int rc = ferry_arg_count(c, "set_input_zero_copy", 2, 2);
  if (rc == FERRY_OK)
    rc = input_key(ge, c, "set_input_zero_copy", &i);
  if (rc || i < 0)
    return rc;
  return zero_copy(ge, c, ferry_graph_input_eid(ge, (size_t)i), "set_input_zero_copy");
}

static int set_output_zero_copy_fn(ferry_graph_exec *ge, ferry_call *c) {
  int64_t i;
  int rc = ferry_arg_count(c, "set_output_zero_copy", 2, 2);
  if (rc == FERRY_OK && c->args[0].kind == FERRY_KIND_STR) {
    /* "<node name>:<index>" */
    const char *key = c->args[0].v.str.data;
    i = -1;
    for (size_t h = 0; h < ge->g->nheads; h++) {
      char buf[FERRY_GRAPH_MAX_NAME + 16];
      snprintf(buf, sizeof buf, "%s:%u", ge->g->nodes[ge->g->heads[h].node].name,
               ge->g->heads[h].index);
      if (strcmp(buf, key) == 0)
        i = (int64_t)h;
    }
    if (i < 0)
      return ferry_err_set(c->err, FERRY_ENOTFOUND, "set_output_zero_copy: no output '%s'", key);
  } else if (rc == FERRY_OK) {
    rc = output_key(ge, c, "set_output_zero_copy", &i);
  }
  if (rc)
    return rc;
  return zero_copy(ge, c, ferry_graph_output_eid(ge, (size_t)i), "set_output_zero_copy");
}

static int run_fn(ferry_graph_exec *ge, ferry_call *c) {
  int rc = ferry_arg_count(c, "run", 0, 0);
  return rc ? rc : ferry_graph_exec_run(ge, c->err);
}

static int get_output_fn(ferry_graph_exec *ge, ferry_call *c) {
  int64_t i;
  int rc = ferry_arg_count(c, "get_output", 1, 2);
  if (rc == FERRY_OK)
    rc = output_key(ge, c, "get_output", &i);
  if (rc)
    return rc;
  uint32_t e = ferry_graph_output_eid(ge, (size_t)i);
  if (c->nargs == 1)
    return return_entry(ge, c, e);
  DLTensor *out;
  if ((rc = ferry_arg_tensor(c, "get_output", 1, &out)))
    return rc;
  const ferry_graph_entry *en = &ge->g->entries[e];
  int same = out->ndim == en->ndim;
  for (int k = 0; same && k < en->ndim; k++)
    same = out->shape[k] == en->shape[k];
  if (!same)
    return ferry_err_set(c->err, FERRY_EINVAL, "get_output: the out tensor's shape differs");
  if ((rc = ferry_rt_check_range(ge->rt, (char *)out->data + out->byte_offset, en->nbytes,
                                 c->err)))
    return rc;
  DLTensor src = ge->entries[e]->tensor;
  void *data;
  if ((rc = ferry_graph_entry_data(ge, e, &data, c->err)))
    return rc;
  src.data = data;
  src.byte_offset = 0;
  return ferry_rt_copy_tensor(ge->rt, &src, out, c->err);
}

static int get_input_fn(ferry_graph_exec *ge, ferry_call *c) {
  int64_t i;
  int rc = ferry_arg_count(c, "get_input", 1, 1);
  if (rc == FERRY_OK)
    rc = input_key(ge, c, "get_input", &i);
  if (rc || i < 0) /* unknown name: None */
    return rc;
  return return_entry(ge, c, ferry_graph_input_eid(ge, (size_t)i));
}

static int get_num_outputs_fn(ferry_graph_exec *ge, ferry_call *c) {
  return return_int(c, (int64_t)ge->g->nheads);
}

static int get_num_inputs_fn(ferry_graph_exec *ge, ferry_call *c) {
  return return_int(c, (int64_t)ge->g->narg_nodes);
}

static int get_input_index_fn(ferry_graph_exec *ge, ferry_call *c) {
  const char *name;
  int rc = ferry_arg_count(c, "get_input_index", 1, 1);
  if (rc == FERRY_OK)
    rc = ferry_arg_str(c, "get_input_index", 0, &name);
  return rc ? rc : return_int(c, ferry_graph_input_index(ge, name));
}

static int get_output_index_fn(ferry_graph_exec *ge, ferry_call *c) {
  const char *name;
  int rc = ferry_arg_count(c, "get_output_index", 1, 1);
  if (rc == FERRY_OK)
    rc = ferry_arg_str(c, "get_output_index", 0, &name);
  if (rc)
    return rc;
  int64_t idx = -1;
  for (size_t i = 0; i < ge->g->nheads; i++)
    if (strcmp(ge->g->nodes[ge->g->heads[i].node].name, name) == 0)
      idx = (int64_t)i;
  return return_int(c, idx);
}

/* One "name": value pair of the info text, with JSON string escaping of
 * the name (node names come from the graph and may hold quotes). */
static int info_name(ferry_buf *b, const char *s) {
  int rc = ferry_buf_append(b, "\"", 1);
  for (; rc == FERRY_OK && *s; s++) {
    char esc[8];
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\' || ch < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", ch);
      rc = ferry_buf_append(b, esc, 6);
    } else {
      rc = ferry_buf_append(b, s, 1);
    }
  }
  return rc ? rc : ferry_buf_append(b, "\":", 2);
}

/* get_input_info / get_output_info: TVM returns a Map, which a classic RPC
 * client cannot read; ferry returns the same content as JSON text:
 * {"shape": {name: [..]}, "dtype": {name: "float32"}}. */
static int info_text(ferry_graph_exec *ge, ferry_call *c, int outputs) {
  ferry_buf tb, *b = &tb;
  ferry_buf_init(b, 64u << 20);
  size_t n = outputs ? ge->g->nheads : ge->g->narg_nodes;
  int rc = FERRY_OK;
  for (int pass = 0; pass < 2 && rc == FERRY_OK; pass++) {
    rc = ferry_buf_printf(b, "%s", pass ? "}, \"dtype\": {" : "{\"shape\": {");
    int first = 1;
    for (size_t i = 0; i < n && rc == FERRY_OK; i++) {
      if (!outputs && ge->is_param[i])
        continue;
      uint32_t e = outputs ? ferry_graph_output_eid(ge, i) : ferry_graph_input_eid(ge, i);
      const ferry_graph_entry *en = &ge->g->entries[e];
      const char *name =
          ge->g->nodes[outputs ? ge->g->heads[i].node : ge->g->arg_nodes[i]].name;
      if (!first)
        rc = ferry_buf_append(b, ", ", 2);
      first = 0;
      if (rc == FERRY_OK)
        rc = info_name(b, name);
      if (pass == 0) {
        rc = rc ? rc : ferry_buf_append(b, "[", 1);
        for (int k = 0; k < en->ndim && rc == FERRY_OK; k++)
          rc = ferry_buf_printf(b, "%s%lld", k ? ", " : "", (long long)en->shape[k]);
        rc = rc ? rc : ferry_buf_append(b, "]", 1);
      } else if (rc == FERRY_OK) {
        const char *kind = en->dtype.code == kDLInt     ? "int"
                           : en->dtype.code == kDLUInt  ? "uint"
                           : en->dtype.code == kDLFloat ? "float"
                                                        : "bfloat";
        rc = en->dtype.lanes > 1 ? ferry_buf_printf(b, "\"%s%ux%u\"", kind, en->dtype.bits,
                                                    en->dtype.lanes)
                                 : ferry_buf_printf(b, "\"%s%u\"", kind, en->dtype.bits);
      }
    }
  }
  rc = rc ? rc : ferry_buf_append(b, "}}", 2);
  if (rc == FERRY_OK)
    rc = ferry_call_return_str(c, (const char *)b->data, b->len);
  else
    rc = ferry_err_set(c->err, FERRY_ETOOBIG, "graph info is over the result size limit");
  ferry_buf_close(b);
  return rc;
}

static int get_input_info_fn(ferry_graph_exec *ge, ferry_call *c) { return info_text(ge, c, 0); }
static int get_output_info_fn(ferry_graph_exec *ge, ferry_call *c) { return info_text(ge, c, 1); }

static int load_params_fn(ferry_graph_exec *ge, ferry_call *c) {
  const char *p;
  size_t len;
  int rc = ferry_arg_count(c, "load_params", 1, 1);
  if (rc == FERRY_OK)
    rc = ferry_arg_bytes(c, "load_params", 0, &p, &len);
  if (rc)
    return rc;
  ferry_param_map *pm;
  if ((rc = ferry_param_map_decode(c->rt, (const uint8_t *)p, len, &pm, c->err)))
    return rc;
  for (size_t k = 0; k < pm->n && rc == FERRY_OK; k++) {
    int64_t i = ferry_graph_input_index(ge, pm->names[k]);
    if (i < 0)
      continue; /* a parameter the graph does not use: ignored, as in TVM */
    rc = ferry_graph_set_input(ge, (size_t)i, &pm->arrays[k]->tensor, c->err);
    if (rc == FERRY_OK)
      ge->is_param[i] = 1;
  }
  ferry_obj_release(&pm->hdr.base);
  return rc;
}

/* share_params(other, blob): only the names of the blob are read; each
 * name that is an input of both executors makes ours use other's memory. */
static int share_params_fn(ferry_graph_exec *ge, ferry_call *c) {
  ferry_module *om;
  const char *p;
  size_t len;
  int rc = ferry_arg_count(c, "share_params", 2, 2);
  if (rc == FERRY_OK)
    rc = ferry_arg_module(c, "share_params", 0, &om);
  if (rc == FERRY_OK)
    rc = ferry_arg_bytes(c, "share_params", 1, &p, &len);
  if (rc)
    return rc;
  ferry_graph_exec *other = ferry_graph_exec_cast(om);
  if (other == NULL)
    return ferry_err_set(c->err, FERRY_ETYPE, "share_params: argument 0 is not a GraphExecutor");
  ferry_params_reader r;
  if ((rc = ferry_params_open(&r, (const uint8_t *)p, len)))
    return ferry_err_set(c->err, rc == FERRY_EMAGIC ? rc : FERRY_EPROTO,
                         "share_params: parameter blob is %s",
                         rc == FERRY_EMAGIC ? "not a parameter dict (wrong magic)"
                                            : "truncated or malformed");
  char name[FERRY_PARAMS_MAX_NAME + 1];
  for (uint64_t k = 0; k < r.count; k++) {
    const char *np;
    size_t nlen;
    if (ferry_stream_str(&r.names, FERRY_PARAMS_MAX_NAME, &np, &nlen) != FERRY_OK)
      return ferry_err_set(c->err, FERRY_EPROTO, "share_params: names of the blob are malformed");
    memcpy(name, np, nlen);
    name[nlen] = 0;
    int64_t i = ferry_graph_input_index(ge, name), j = ferry_graph_input_index(other, name);
    if (i < 0 || j < 0)
      continue;
    uint32_t e = ferry_graph_input_eid(ge, (size_t)i), oe = ferry_graph_input_eid(other, (size_t)j);
    const ferry_graph_entry *a = &ge->g->entries[e], *b = &other->g->entries[oe];
    if (a->ndim != b->ndim || a->nbytes != b->nbytes || a->dtype.code != b->dtype.code ||
        a->dtype.bits != b->dtype.bits || a->dtype.lanes != b->dtype.lanes ||
        memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) != 0)
      return ferry_err_set(c->err, FERRY_EINVAL,
                           "share_params: '%s' has a different shape or dtype in the other "
                           "executor",
                           name);
    ferry_graph_share_entry(ge, e, other->entries[oe]);
    ge->is_param[i] = 1;
  }
  return FERRY_OK;
}

static const struct {
  const char *name;
  exec_fn fn;
} exec_funcs[] = {
    {"set_input", set_input_fn},
    {"set_input_zero_copy", set_input_zero_copy_fn},
    {"set_output_zero_copy", set_output_zero_copy_fn},
    {"run", run_fn},
    {"get_output", get_output_fn},
    {"get_input", get_input_fn},
    {"get_num_outputs", get_num_outputs_fn},
    {"get_num_inputs", get_num_inputs_fn},
    {"get_input_index", get_input_index_fn},
    {"get_output_index", get_output_index_fn},
    {"get_input_info", get_input_info_fn},
    {"get_output_info", get_output_info_fn},
    {"load_params", load_params_fn},
    {"share_params", share_params_fn},
};

struct exec_closure {
  ferry_graph_exec *ge;
  exec_fn fn;
};

static int exec_closure_call(void *ctx, ferry_call *c) {
  struct exec_closure *ec = ctx;
  return ec->fn(ec->ge, c);
}

static void exec_closure_free(void *ctx) {
  struct exec_closure *ec = ctx;
  ferry_obj_release(&ec->ge->mod.base);
  free(ec);
}

int ferry_graph_exec_get_function(ferry_module *m, const char *name, ferry_func **out,
                                  ferry_err *err) {
  *out = NULL;
  for (size_t i = 0; i < FERRY_ARRAY_SIZE(exec_funcs); i++) {
    if (strcmp(exec_funcs[i].name, name) != 0)
      continue;
    struct exec_closure *ec = malloc(sizeof *ec);
    if (ec == NULL)
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    ec->ge = (ferry_graph_exec *)m;
    ec->fn = exec_funcs[i].fn;
    if (ferry_closure_new(exec_closure_call, ec, exec_closure_free, out) != FERRY_OK) {
      free(ec);
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    }
    ferry_obj_retain(&m->base);
    return FERRY_OK;
  }
  return FERRY_ENOTFOUND;
}

/* tvm.graph_executor.create(json, module, dev_type0, dev_id0, ...). */
static int create_fn(ferry_call *c) {
  const char *fname = "tvm.graph_executor.create";
  const char *json;
  size_t json_len;
  ferry_module *lib;
  int rc = ferry_arg_count(c, fname, 4, 2 + 2 * FERRY_GRAPH_MAX_DEVICES);
  if (rc == FERRY_OK)
    rc = ferry_arg_bytes(c, fname, 0, &json, &json_len);
  if (rc == FERRY_OK)
    rc = ferry_arg_module(c, fname, 1, &lib);
  if (rc)
    return rc;
  if (c->args[2].kind == FERRY_KIND_FUNC)
    return ferry_err_set(c->err, FERRY_EUNSUPPORTED,
                         "%s: linked-parameter lookup functions are not supported", fname);
  if ((c->nargs - 2) % 2 != 0)
    return ferry_err_set(c->err, FERRY_EINVAL, "%s: devices must be (type, id) pairs", fname);
  DLDevice devs[FERRY_GRAPH_MAX_DEVICES];
  size_t ndevs = (size_t)(c->nargs - 2) / 2;
  for (size_t i = 0; i < ndevs; i++) {
    int64_t type, id;
    if ((rc = ferry_arg_int(c, fname, (int)(2 + 2 * i), &type)) ||
        (rc = ferry_arg_int(c, fname, (int)(3 + 2 * i), &id)))
      return rc;
    if (type < 0 || type > INT32_MAX || id < 0 || id > INT32_MAX)
      return ferry_err_set(c->err, FERRY_EINVAL, "%s: device (%lld, %lld) is out of range",
                           fname, (long long)type, (long long)id);
    devs[i] = (DLDevice){(DLDeviceType)type, (int32_t)id};
  }
  ferry_graph_exec *ge;
  if ((rc = ferry_graph_exec_create(c->rt, json, json_len, lib, devs, ndevs, &ge, c->err)))
    return rc;
  ferry_call_return_obj(c, FERRY_KIND_MODULE, &ge->mod.base);
  return FERRY_OK;
}

const struct ferry_builtin ferry_graph_builtins[] = {
    {"tvm.graph_executor.create", create_fn},
    {NULL, NULL},
};
