/* The graph executor (spec runtime-abi.md 8): a module of type
 * "GraphExecutor" built from a parsed graph (wire/graph_json.h) and the
 * library module whose functions its tvm_op nodes call.
 *
 * Files: graph_executor.c (creation, storage, run), graph_exec_funcs.c
 * (the module functions GraphModule calls and tvm.graph_executor.create),
 * graph_factory.c (the GraphExecutorFactory module of __tvm_dev_mblob). */
#ifndef FERRY_RUNTIME_GRAPH_EXECUTOR_H
#define FERRY_RUNTIME_GRAPH_EXECUTOR_H

#include "runtime/rt_internal.h"
#include "wire/graph_json.h"

#define FERRY_GRAPH_EXEC_KEY "GraphExecutor"
#define FERRY_GRAPH_MAX_DEVICES 64

/* One prepared operation (a non-null node). */
struct graph_op {
  enum ferry_graph_op op;
  ferry_func *fn;      /* FERRY_GRAPH_CALL: owned reference */
  uint32_t nargs;      /* inputs then outputs */
  uint32_t *eids;      /* entry of each argument */
  DLTensor *targs;     /* argument tensors (data refreshed before each call) */
  int64_t *flat_shape; /* flatten_data: one 1-D extent per argument */
  ferry_value *vals;   /* FERRY_KIND_TENSOR values pointing at targs */
};

typedef struct ferry_graph_exec {
  ferry_module mod;
  ferry_rt *rt;
  ferry_graph *g;
  ferry_module *lib;   /* owned reference */
  DLDevice devs[FERRY_GRAPH_MAX_DEVICES];
  size_t ndevs;
  ferry_ndarray **pool;    /* nstorage owned arrays */
  ferry_ndarray **entries; /* nentries owned views (or shared arrays) */
  /* Zero-copy overrides: the data pointer used for an entry instead of
   * entries[e]'s.  The client may free that memory at any time, so it is
   * read only through ferry_graph_entry_data, which re-checks it against
   * the allocation table at every use (run, get_output into a tensor). */
  void **zc_data;
  struct graph_op *ops;
  size_t nops;
  uint8_t *is_param;       /* per input index: named by load_params */
} ferry_graph_exec;

/* Creates an executor (one reference in *out).  lib is borrowed (the
 * executor takes its own reference); devs are (type, id) pairs, at least
 * one; every device must exist on this server. */
int ferry_graph_exec_create(ferry_rt *rt, const char *json, size_t json_len, ferry_module *lib,
                            const DLDevice *devs, size_t ndevs, ferry_graph_exec **out,
                            ferry_err *err) FERRY_MUST_CHECK;
/* Executes every operation in order. */
int ferry_graph_exec_run(ferry_graph_exec *ge, ferry_err *err) FERRY_MUST_CHECK;
/* The executor inside m, or NULL. */
ferry_graph_exec *ferry_graph_exec_cast(ferry_module *m);

/* The data of entry e: the zero-copy tensor's when one is set (after
 * checking that it is still a live allocation of the session), else the
 * executor's own storage.  On error *out is unchanged and err says that
 * the client freed the tensor. */
int ferry_graph_entry_data(ferry_graph_exec *ge, uint32_t e, void **out,
                           ferry_err *err) FERRY_MUST_CHECK;
/* Input index of a name, or -1. */
int64_t ferry_graph_input_index(const ferry_graph_exec *ge, const char *name);
/* Entry id of input i (< narg_nodes) / output i (< nheads). */
uint32_t ferry_graph_input_eid(const ferry_graph_exec *ge, size_t i);
uint32_t ferry_graph_output_eid(const ferry_graph_exec *ge, size_t i);
/* Copies src into input i after checking dtype and shape. */
int ferry_graph_set_input(ferry_graph_exec *ge, size_t i, const DLTensor *src,
                          ferry_err *err) FERRY_MUST_CHECK;
/* A new NDArray sharing the memory of entry e (keeps that memory alive). */
int ferry_graph_entry_array(ferry_graph_exec *ge, uint32_t e, ferry_ndarray **out,
                            ferry_err *err) FERRY_MUST_CHECK;
/* Makes entry e use arr (shared memory, one reference taken). */
void ferry_graph_share_entry(ferry_graph_exec *ge, uint32_t e, ferry_ndarray *arr);

/* get_function of the executor module (graph_exec_funcs.c). */
int ferry_graph_exec_get_function(ferry_module *m, const char *name, ferry_func **out,
                                  ferry_err *err);

/* The global tvm.graph_executor.create (ferry_graph_builtins) and the
 * GraphExecutorFactory blob loader are declared in rt_internal.h. */

#endif
