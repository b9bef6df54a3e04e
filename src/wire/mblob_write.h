/* Writer of the __tvm_dev_mblob a compiled network carries (spec
 * runtime-abi.md 5.3 and 8.6), as TVM's ModuleSerializer writes it for a
 * relay.build export on CPU:
 *
 *   u64 N | u64 3
 *         | string "GraphExecutorFactory" | factory payload
 *         | string "_lib"
 *         | string "_import_tree" | vector<u64> [0, 1, 1] | vector<u64> [1]
 *
 *   factory payload: string graph_json | u64 count | vector<string> names
 *                    | count x NDArray | string module_name
 *
 * The parameters come in as a TVM parameter dict (spec 10.2, what
 * relay.save_param_dict writes); each entry is decoded and checked before
 * its bytes are copied.  Pure: no I/O, output bounded by the buffer. */
#ifndef FERRY_WIRE_MBLOB_WRITE_H
#define FERRY_WIRE_MBLOB_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define FERRY_MBLOB_FACTORY_KEY "GraphExecutorFactory"

/* Appends the whole blob (starting at its u64 N) to out.  params may be
 * NULL with params_len 0 (a network without parameters).  Errors:
 * FERRY_EINVAL for an empty graph or module name; the params decoder's
 * FERRY_EAGAIN/EMAGIC/EPROTO/ETOOBIG for a bad dict (FERRY_EPROTO also for
 * trailing bytes after its last array); FERRY_ETOOBIG when the blob would
 * exceed FERRY_MBLOB_MAX_BYTES or out's ceiling.  On failure out is as it
 * was. */
int ferry_mblob_write_graph_factory(ferry_buf *out, const char *graph_json, size_t json_len,
                                    const uint8_t *params, size_t params_len,
                                    const char *module_name) FERRY_MUST_CHECK;

#endif
