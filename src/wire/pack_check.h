/* What `ferry pack` checks before it builds a model library: the graph
 * JSON has the shape of TVM's graph executor format (spec runtime-abi.md
 * 8.1: nodes, arg_nodes, heads, node_row_ptr, attrs with dltype and
 * shape), and every parameter of the dict (spec 10.2) names an input of
 * the graph with the same dtype and shape.  A light check at packing time,
 * so that a mismatch is reported on the build machine instead of at
 * `default(dev)` on the device; the graph executor still checks everything
 * itself.  Pure: no I/O. */
#ifndef FERRY_WIRE_PACK_CHECK_H
#define FERRY_WIRE_PACK_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"
#include "wire/rpc_error.h"

#define FERRY_PACK_MAX_JSON (256u << 20)

/* FERRY_EPROTO (graph or params malformed, or they do not fit), the params
 * decoder's codes, FERRY_ETOOBIG for a graph over FERRY_PACK_MAX_JSON,
 * FERRY_ENOMEM; the reason in why.  params may be NULL (len 0).
 * *nparams: entries in the dict. */
int ferry_pack_check(const char *json, size_t json_len, const uint8_t *params,
                     size_t params_len, size_t *nparams, ferry_rpc_why *why) FERRY_MUST_CHECK;

#endif
