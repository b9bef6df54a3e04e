/* Graph executor: creation (storage plan, prepared operations) and run
 * (spec runtime-abi.md 8.2, 8.3, 8.5).  The JSON was checked by
 * wire/graph_json.c, so every node/entry/storage index used here is in
 * range; what remains to check is what depends on this server: devices,
 * allocation limits, the library's functions, and client tensors. */
#include "runtime/graph/graph_executor.h"

#include <stdlib.h>
#include <string.h>

/* Sum of the arguments of all operations: bounds the prepared tables
 * (a graph of 2^20 nodes of 4096 arguments each would be ~300 GiB). */
#define GRAPH_MAX_TOTAL_ARGS (1u << 22)

/* ---- NDArray views --------------------------------------------------------
 * An NDArray sharing another's memory: it keeps the owner alive and never
 * frees the data itself, so a client can hold an output after the
 * executor is gone. */
struct graph_view {
  ferry_ndarray nd;
  ferry_ndarray *owner;
};

static void view_destroy(ferry_obj *o) {
  struct graph_view *v = (struct graph_view *)o;
  ferry_obj_release(&v->owner->base);
  free(v);
}

static int view_new(ferry_ndarray *owner, const ferry_graph_entry *en, ferry_ndarray **out,
                    ferry_err *err) {
  struct graph_view *v = calloc(1, sizeof *v);
  if (v == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  ferry_obj_init(&v->nd.base, FERRY_OBJ_NDARRAY, view_destroy);
  v->nd.rt = owner->rt;
  v->nd.tensor.data = (char *)owner->tensor.data + owner->tensor.byte_offset;
  v->nd.tensor.device = owner->tensor.device;
  v->nd.tensor.ndim = en->ndim;
  v->nd.tensor.dtype = en->dtype;
  v->nd.tensor.shape = v->nd.shape_storage;
  if (en->ndim)
    memcpy(v->nd.shape_storage, en->shape, (size_t)en->ndim * sizeof en->shape[0]);
  ferry_obj_retain(&owner->base);
  v->owner = owner;
  *out = &v->nd;
  return FERRY_OK;
}

int ferry_graph_entry_array(ferry_graph_exec *ge, uint32_t e, ferry_ndarray **out,
                            ferry_err *err) {
  return view_new(ge->entries[e], &ge->g->entries[e], out, err);
}

void ferry_graph_share_entry(ferry_graph_exec *ge, uint32_t e, ferry_ndarray *arr) {
  ferry_obj_retain(&arr->base);
  ferry_obj_release(&ge->entries[e]->base);
  ge->entries[e] = arr;
  ge->zc_data[e] = NULL;
}

/* ---- module object --------------------------------------------------------- */

static void free_ops(ferry_graph_exec *ge) {
  for (size_t i = 0; i < ge->nops; i++) {
    struct graph_op *op = &ge->ops[i];
    ferry_obj_release(op->fn ? &op->fn->base : NULL);
    free(op->eids);
    free(op->targs);
    free(op->flat_shape);
    free(op->vals);
  }
  free(ge->ops);
  ge->ops = NULL;
  ge->nops = 0;
}

static void exec_destroy(ferry_obj *o) {
  ferry_graph_exec *ge = (ferry_graph_exec *)o;
  free_ops(ge);
  if (ge->g) {
    for (size_t e = 0; ge->entries && e < ge->g->nentries; e++)
      ferry_obj_release(ge->entries[e] ? &ge->entries[e]->base : NULL);
    for (size_t s = 0; ge->pool && s < ge->g->nstorage; s++)
      ferry_obj_release(ge->pool[s] ? &ge->pool[s]->base : NULL);
  }
  free(ge->entries);
  free(ge->pool);
  free(ge->zc_data);
  free(ge->is_param);
  ferry_obj_release(ge->lib ? &ge->lib->base : NULL);
  ferry_module_release_imports(&ge->mod);
  ferry_graph_free(ge->g);
  free(ge);
}

ferry_graph_exec *ferry_graph_exec_cast(ferry_module *m) {
  if (m == NULL || m->base.type != FERRY_OBJ_MODULE || m->type_key == NULL ||
      strcmp(m->type_key, FERRY_GRAPH_EXEC_KEY) != 0)
    return NULL;
  return (ferry_graph_exec *)m;
}

/* ---- storage (8.2) ------------------------------------------------------------ */

static const DLDevice *device_of_type(const ferry_graph_exec *ge, int32_t type) {
  for (size_t i = 0; i < ge->ndevs; i++)
    if ((int32_t)ge->devs[i].device_type == type)
      return &ge->devs[i];
  return &ge->devs[0];
}

static int setup_storage(ferry_graph_exec *ge, ferry_err *err) {
  const ferry_graph *g = ge->g;
  uint64_t *size = calloc(g->nstorage, sizeof *size);
  int32_t *type = calloc(g->nstorage, sizeof *type);
  ge->pool = calloc(g->nstorage, sizeof *ge->pool);
  ge->entries = calloc(g->nentries, sizeof *ge->entries);
  ge->zc_data = calloc(g->nentries, sizeof *ge->zc_data);
  int rc = size && type && ge->pool && ge->entries && ge->zc_data
               ? FERRY_OK
               : ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  for (size_t s = 0; rc == FERRY_OK && s < g->nstorage; s++)
    type[s] = -1;
  uint64_t total = 0;
  for (size_t e = 0; rc == FERRY_OK && e < g->nentries; e++) {
    const ferry_graph_entry *en = &g->entries[e];
    int32_t t = g->has_device_index ? en->device_type : (int32_t)ge->devs[0].device_type;
    if (type[en->storage_id] >= 0 && type[en->storage_id] != t)
      rc = ferry_err_set(err, FERRY_EINVAL,
                         "graph: storage %u is shared by entries on device types %d and %d",
                         en->storage_id, (int)type[en->storage_id], (int)t);
    type[en->storage_id] = t;
    if (en->nbytes > size[en->storage_id]) {
      total += en->nbytes - size[en->storage_id];
      size[en->storage_id] = en->nbytes;
    }
    if (total > FERRY_RT_MAX_ALLOC_TOTAL)
      rc = ferry_err_set(err, FERRY_ETOOBIG,
                         "graph: its storage needs more than %llu bytes",
                         (unsigned long long)FERRY_RT_MAX_ALLOC_TOTAL);
  }
  /* Pool entries are float32 arrays of ceil(bytes / 4) elements, as TVM
   * allocates them; a storage id no entry uses gets an empty one. */
  DLDataType f32 = {kDLFloat, 32, 1};
  for (size_t s = 0; rc == FERRY_OK && s < g->nstorage; s++) {
    int64_t n = (int64_t)((size[s] + 3) / 4);
    const DLDevice *dev = device_of_type(ge, type[s] < 0 ? (int32_t)ge->devs[0].device_type : type[s]);
    rc = ferry_ndarray_new(ge->rt, 1, &n, f32, *dev, &ge->pool[s], err);
  }
  for (size_t e = 0; rc == FERRY_OK && e < g->nentries; e++)
    rc = view_new(ge->pool[g->entries[e].storage_id], &g->entries[e], &ge->entries[e], err);
  free(size);
  free(type);
  return rc;
}

/* ---- operations (8.3) ----------------------------------------------------------- */

static void fill_tensor(const ferry_graph_exec *ge, DLTensor *t, uint32_t e, int64_t *flat) {
  const ferry_graph_entry *en = &ge->g->entries[e];
  memset(t, 0, sizeof *t);
  t->device = ge->entries[e]->tensor.device;
  t->dtype = en->dtype;
  if (flat) {
    *flat = 1;
    for (int k = 0; k < en->ndim; k++)
      *flat *= en->shape[k];
    t->ndim = 1;
    t->shape = flat;
  } else {
    t->ndim = en->ndim;
    t->shape = (int64_t *)en->shape;
  }
}

static int setup_ops(ferry_graph_exec *ge, ferry_err *err) {
  const ferry_graph *g = ge->g;
  uint64_t total = 0;
  size_t nops = 0;
  for (size_t n = 0; n < g->nnodes; n++)
    if (g->nodes[n].op != FERRY_GRAPH_NULL) {
      nops++;
      total += g->nodes[n].ninputs + g->nodes[n].num_outputs;
    }
  if (total > GRAPH_MAX_TOTAL_ARGS)
    return ferry_err_set(err, FERRY_ETOOBIG, "graph: %llu operation arguments is over %u",
                         (unsigned long long)total, GRAPH_MAX_TOTAL_ARGS);
  ge->ops = calloc(nops ? nops : 1, sizeof *ge->ops);
  if (ge->ops == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  for (size_t n = 0; n < g->nnodes; n++) {
    const ferry_graph_node *node = &g->nodes[n];
    if (node->op == FERRY_GRAPH_NULL)
      continue;
    struct graph_op *op = &ge->ops[ge->nops++];
    op->op = node->op;
    op->nargs = node->ninputs + node->num_outputs;
    size_t na = op->nargs ? op->nargs : 1;
    op->eids = calloc(na, sizeof *op->eids);
    op->targs = calloc(na, sizeof *op->targs);
    op->vals = calloc(na, sizeof *op->vals);
    op->flat_shape = node->flatten_data ? calloc(na, sizeof *op->flat_shape) : NULL;
    if (!op->eids || !op->targs || !op->vals || (node->flatten_data && !op->flat_shape))
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    for (uint32_t k = 0; k < op->nargs; k++) {
      op->eids[k] = k < node->ninputs ? ferry_graph_eid(g, node->inputs[k])
                                      : g->node_row_ptr[n] + (k - node->ninputs);
      fill_tensor(ge, &op->targs[k], op->eids[k], op->flat_shape ? &op->flat_shape[k] : NULL);
      op->vals[k].kind = FERRY_KIND_TENSOR;
      op->vals[k].v.tensor = &op->targs[k];
    }
    if (node->op != FERRY_GRAPH_CALL)
      continue;
    int rc = ferry_module_get_function(ge->lib, node->func_name, 1, &op->fn, err);
    if (rc == FERRY_ENOTFOUND)
      return ferry_err_set(err, FERRY_ENOTFOUND,
                           "graph: node '%s' calls function '%s', which the module does not "
                           "define",
                           node->name, node->func_name);
    if (rc)
      return rc;
  }
  return FERRY_OK;
}

int ferry_graph_exec_create(ferry_rt *rt, const char *json, size_t json_len, ferry_module *lib,
                            const DLDevice *devs, size_t ndevs, ferry_graph_exec **out,
                            ferry_err *err) {
  *out = NULL;
  if (ndevs == 0 || ndevs > FERRY_GRAPH_MAX_DEVICES)
    return ferry_err_set(err, FERRY_EINVAL, "graph executor: %zu devices given (1..%d)", ndevs,
                         FERRY_GRAPH_MAX_DEVICES);
  for (size_t i = 0; i < ndevs; i++) {
    int rc = ferry_rt_check_device(devs[i], err);
    if (rc)
      return rc;
  }
  ferry_graph_exec *ge = calloc(1, sizeof *ge);
  if (ge == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  ferry_obj_init(&ge->mod.base, FERRY_OBJ_MODULE, exec_destroy);
  ge->mod.type_key = FERRY_GRAPH_EXEC_KEY;
  ge->mod.get_function = ferry_graph_exec_get_function;
  ge->rt = rt;
  ferry_obj_retain(&lib->base);
  ge->lib = lib;
  memcpy(ge->devs, devs, ndevs * sizeof devs[0]);
  ge->ndevs = ndevs;
  int rc = ferry_graph_parse(json, json_len, &ge->g, err->code ? NULL : err->msg,
                             err->code ? 0 : sizeof err->msg);
  if (rc) {
    if (err->code == 0)
      err->code = rc;
    ferry_obj_release(&ge->mod.base);
    return rc;
  }
  ge->is_param = calloc(ge->g->narg_nodes ? ge->g->narg_nodes : 1, 1);
  if (ge->is_param == NULL)
    rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  if (rc == FERRY_OK)
    rc = setup_storage(ge, err);
  if (rc == FERRY_OK)
    rc = setup_ops(ge, err);
  if (rc) {
    ferry_obj_release(&ge->mod.base);
    return rc;
  }
  *out = ge;
  return FERRY_OK;
}

/* ---- run ------------------------------------------------------------------------ */

int ferry_graph_entry_data(ferry_graph_exec *ge, uint32_t e, void **out, ferry_err *err) {
  if (ge->zc_data[e] == NULL) {
    const DLTensor *t = &ge->entries[e]->tensor;
    *out = (char *)t->data + t->byte_offset;
    return FERRY_OK;
  }
  /* Zero-copy memory belongs to the client, who may have freed it (or
   * freed it and allocated something smaller in its place) since it was
   * set: it is checked against the allocation table at every use. */
  int rc = ferry_rt_check_range(ge->rt, ge->zc_data[e], ge->g->entries[e].nbytes, NULL);
  if (rc)
    return ferry_err_set(err, rc,
                         "graph: the zero-copy tensor of entry %u (%p, %llu bytes) is no "
                         "longer a live allocation of this session: it was freed (set it "
                         "again)",
                         e, ge->zc_data[e], (unsigned long long)ge->g->entries[e].nbytes);
  *out = ge->zc_data[e];
  return FERRY_OK;
}

int ferry_graph_exec_run(ferry_graph_exec *ge, ferry_err *err) {
  /* Every zero-copy entry is checked before the first operation runs, so
   * that a freed one fails the run before any output is half written. */
  for (size_t e = 0; e < ge->g->nentries; e++) {
    void *p;
    int rc = ferry_graph_entry_data(ge, (uint32_t)e, &p, err);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < ge->nops; i++) {
    struct graph_op *op = &ge->ops[i];
    /* Checked above; nothing between there and here frees memory. */
    for (uint32_t k = 0; k < op->nargs; k++) {
      uint32_t e = op->eids[k];
      op->targs[k].data = ge->zc_data[e] ? ge->zc_data[e]
                                         : (char *)ge->entries[e]->tensor.data +
                                               ge->entries[e]->tensor.byte_offset;
    }
    int rc = FERRY_OK;
    if (op->op == FERRY_GRAPH_COPY) {
      rc = ferry_rt_copy_tensor(ge->rt, &op->targs[0], &op->targs[1], err);
    } else if (op->op == FERRY_GRAPH_CALL) {
      ferry_call c;
      ferry_call_init(&c, ge->rt, op->vals, (int)op->nargs, err, 1 << 16);
      rc = ferry_func_call(op->fn, &c);
      ferry_call_close(&c);
    }
    if (rc)
      return rc;
  }
  return FERRY_OK;
}

/* ---- inputs and outputs ------------------------------------------------------------ */

int64_t ferry_graph_input_index(const ferry_graph_exec *ge, const char *name) {
  for (size_t i = 0; i < ge->g->narg_nodes; i++)
    if (strcmp(ge->g->nodes[ge->g->arg_nodes[i]].name, name) == 0)
      return (int64_t)i;
  return -1;
}

uint32_t ferry_graph_input_eid(const ferry_graph_exec *ge, size_t i) {
  return ge->g->node_row_ptr[ge->g->arg_nodes[i]];
}

uint32_t ferry_graph_output_eid(const ferry_graph_exec *ge, size_t i) {
  return ferry_graph_eid(ge->g, ge->g->heads[i]);
}

int ferry_graph_set_input(ferry_graph_exec *ge, size_t i, const DLTensor *src, ferry_err *err) {
  uint32_t e = ferry_graph_input_eid(ge, i);
  const ferry_graph_entry *en = &ge->g->entries[e];
  const char *name = ge->g->nodes[ge->g->arg_nodes[i]].name;
  int same = src->ndim == en->ndim && src->dtype.code == en->dtype.code &&
             src->dtype.bits == en->dtype.bits && src->dtype.lanes == en->dtype.lanes;
  for (int k = 0; same && k < en->ndim; k++)
    same = src->shape[k] == en->shape[k];
  if (!same)
    return ferry_err_set(err, FERRY_EINVAL,
                         "graph input '%s': tensor of a different shape or dtype than the "
                         "graph's",
                         name);
  int rc = ferry_rt_check_range(ge->rt, (const char *)src->data + src->byte_offset, en->nbytes,
                                err);
  if (rc)
    return rc;
  ge->zc_data[e] = NULL;
  return ferry_rt_copy_tensor(ge->rt, src, &ge->entries[e]->tensor, err);
}
