/* libFuzzer target: the graph JSON parser.  Whatever parses must satisfy
 * the invariants the executor relies on without re-checking them. */
#include <stddef.h>
#include <stdint.h>

#include "wire/graph_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ferry_graph *g;
  char msg[256];
  if (ferry_graph_parse((const char *)data, size, &g, msg, sizeof msg) != FERRY_OK)
    return 0;
  for (size_t n = 0; n < g->nnodes; n++) {
    const ferry_graph_node *node = &g->nodes[n];
    if (g->node_row_ptr[n + 1] - g->node_row_ptr[n] != node->num_outputs)
      __builtin_trap();
    for (uint32_t i = 0; i < node->ninputs; i++)
      if (node->inputs[i].node >= n || ferry_graph_eid(g, node->inputs[i]) >= g->nentries)
        __builtin_trap();
  }
  for (size_t i = 0; i < g->nheads; i++)
    if (ferry_graph_eid(g, g->heads[i]) >= g->nentries)
      __builtin_trap();
  for (size_t i = 0; i < g->narg_nodes; i++)
    if (g->arg_nodes[i] >= g->nnodes)
      __builtin_trap();
  for (size_t e = 0; e < g->nentries; e++)
    if (g->entries[e].storage_id >= g->nstorage || g->entries[e].ndim > FERRY_GRAPH_MAX_NDIM)
      __builtin_trap();
  ferry_graph_free(g);
  return 0;
}
