/* Parser of the graph executor's JSON (spec runtime-abi.md 8.1) into plain
 * C structs.  Pure: no I/O, no runtime objects; every count, index and
 * shape is bounded and cross-checked here, so the executor can index its
 * tables with the parsed values without further checks:
 *
 *   - node inputs reference earlier nodes only (so the graph has no cycle)
 *     and an output that node has;
 *   - node_row_ptr starts at 0 and gives null nodes one output and tvm_op
 *     nodes num_outputs outputs;
 *   - arg_nodes and heads reference existing nodes / entries;
 *   - attrs lists have one value per entry, storage ids lie in
 *     [0, number of entries), dtypes have a byte-sized element (or are
 *     1- or 4-bit), shapes have at most FERRY_GRAPH_MAX_NDIM non-negative
 *     extents whose byte size fits in 63 bits. */
#ifndef FERRY_WIRE_GRAPH_JSON_H
#define FERRY_WIRE_GRAPH_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#include "ferry/error.h"

#define FERRY_GRAPH_MAX_JSON (64u << 20) /* bytes of graph JSON */
#define FERRY_GRAPH_MAX_NODES (1u << 20)
#define FERRY_GRAPH_MAX_ENTRIES (1u << 20)
#define FERRY_GRAPH_MAX_NODE_ARGS 4096 /* inputs + outputs of one operation */
#define FERRY_GRAPH_MAX_NDIM 32
#define FERRY_GRAPH_MAX_NAME 4096

typedef struct ferry_graph_ref {
  uint32_t node;
  uint32_t index; /* output of that node */
} ferry_graph_ref;

enum ferry_graph_op {
  FERRY_GRAPH_NULL = 0, /* an input or parameter */
  FERRY_GRAPH_CALL,     /* tvm_op calling func_name */
  FERRY_GRAPH_NOP,      /* tvm_op "__nop" */
  FERRY_GRAPH_COPY,     /* tvm_op "__copy" */
};

typedef struct ferry_graph_node {
  enum ferry_graph_op op;
  char *name;
  char *func_name; /* NULL for null nodes */
  uint32_t num_outputs;
  int flatten_data;
  ferry_graph_ref *inputs;
  uint32_t ninputs; /* == num_inputs for tvm_op */
} ferry_graph_node;

typedef struct ferry_graph_entry {
  DLDataType dtype;
  uint32_t storage_id;
  int32_t device_type; /* from device_index; 0 when the graph has none */
  int ndim;
  int64_t shape[FERRY_GRAPH_MAX_NDIM];
  uint64_t nbytes; /* ((bits*lanes+7)/8) * prod(shape) */
} ferry_graph_entry;

typedef struct ferry_graph {
  ferry_graph_node *nodes;
  size_t nnodes;
  uint32_t *arg_nodes;
  size_t narg_nodes;
  ferry_graph_ref *heads;
  size_t nheads;
  uint32_t *node_row_ptr; /* nnodes + 1 */
  ferry_graph_entry *entries;
  size_t nentries;
  uint32_t nstorage; /* 1 + largest storage id */
  int has_device_index;
} ferry_graph;

/* Parses len bytes of JSON.  On failure returns FERRY_EPROTO (or
 * FERRY_ETOOBIG / FERRY_ENOMEM) with a message in msg (msg_cap bytes) and
 * *out NULL. */
int ferry_graph_parse(const char *json, size_t len, ferry_graph **out, char *msg,
                      size_t msg_cap) FERRY_MUST_CHECK;
void ferry_graph_free(ferry_graph *g);

/* Entry id of (node, output index). */
static inline uint32_t ferry_graph_eid(const ferry_graph *g, ferry_graph_ref r) {
  return g->node_row_ptr[r.node] + r.index;
}

/* "float32" / "int8x4" / "bool" ... -> DLDataType; FERRY_EINVAL otherwise. */
int ferry_graph_dtype_parse(const char *s, DLDataType *out) FERRY_MUST_CHECK;

#endif
