/* DLTensor on the wire (rpc-session.md §2.4), the same in both dialects:
 *
 *   u64 data, i32 device_type, i32 device_id, i32 ndim,
 *   u8 code, u8 bits, u16 lanes, i64 shape[ndim], u64 byte_offset
 *
 * The decoder refuses ndim outside 0..FERRY_RPC_MAX_NDIM and negative
 * extents, so a decoded tensor's size can be computed without overflow
 * checks elsewhere only through ferry_rpc_tensor_nbytes() (which still
 * checks).  `data` is the peer's value: unvalidated until the session has
 * checked it against its allocations. */
#ifndef FERRY_WIRE_RPC_TENSOR_H
#define FERRY_WIRE_RPC_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#include "base/buf.h"
#include "wire/rpc_arena.h"
#include "wire/rpc_error.h"

#define FERRY_RPC_MAX_NDIM 32

/* Bytes of the wire form for ndim dimensions (32 + 8 * ndim). */
static inline size_t ferry_rpc_tensor_wire_size(int ndim) {
  return 32u + 8u * (size_t)ndim;
}

/* Decodes one DLTensor from p[0..n).  On success *out is an arena DLTensor
 * (shape in the arena, strides NULL, data = the wire u64 as a pointer) and
 * *used the bytes consumed.  FERRY_EAGAIN: n too short (the tensor runs
 * past the end); FERRY_EPROTO: ndim < 0 or > FERRY_RPC_MAX_NDIM, a negative
 * extent, or device type >= 128; FERRY_ENOMEM: arena exhausted.  On error
 * nothing is returned and why says which field. */

int ferry_rpc_tensor_decode(const uint8_t *p, size_t n, ferry_rpc_arena *a,
                            DLTensor **out, size_t *used,
                            ferry_rpc_why *why) FERRY_MUST_CHECK;

/* Appends the wire form of t (data as a u64, strides ignored: the wire has
 * none, so callers send compact tensors only).  FERRY_EINVAL for ndim out of
 * range. */
int ferry_rpc_tensor_encode(ferry_buf *out, const DLTensor *t) FERRY_MUST_CHECK;

/* prod(shape) * ((bits * lanes + 7) / 8); FERRY_ERANGE on overflow of
 * uint64 or a negative extent. */
int ferry_rpc_tensor_nbytes(const DLTensor *t, uint64_t *out) FERRY_MUST_CHECK;

#endif
