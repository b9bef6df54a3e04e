/* The seam between the two TVM session dialects (rpc-session.md §2, §7).
 *
 * Classic (TVM <= 0.20, type codes of c_runtime_api.h, all type codes
 * before all payloads) and tvm-ffi (TVM >= 0.21, type indices interleaved
 * with payloads) share framing, codes and fixed bodies (rpc_packet.h) and
 * differ only in the packed sequence and in the shapes of a few values.
 * Each dialect is one file (dialect_classic.c, dialect_ffi.c) exporting one
 * ferry_dialect; nothing above this interface knows type numbers.
 *
 * Values on the wire are ferry_value (include/ferry/value.h) with these
 * conventions: FUNC/MODULE/NDARRAY/OBJECT carry the wire handle in
 * v.handle (never v.obj); TENSOR points at an arena DLTensor whose data is
 * the peer's unvalidated u64; STR and BYTES point at arena copies (STR
 * NUL-terminated).  All decoders are bounded by the given length, allocate
 * only from the arena, and never trust counts. */
#ifndef FERRY_WIRE_RPC_DIALECT_H
#define FERRY_WIRE_RPC_DIALECT_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#include "base/buf.h"
#include "ferry/value.h"
#include "wire/rpc_arena.h"
#include "wire/rpc_error.h"



enum ferry_dialect_id {
  FERRY_DIALECT_UNKNOWN = 0,
  FERRY_DIALECT_CLASSIC = 1, /* TVM <= 0.20 */
  FERRY_DIALECT_FFI = 2,     /* TVM >= 0.21 */
};

/* Ceiling on num_args of one packed sequence (rpc-session.md §2.3). */
#define FERRY_RPC_MAX_ARGS 4096

/* A decoded kCallFunc return (§2.7 / §7.2.3). */
typedef struct ferry_rpc_return {
  ferry_value value;        /* kind NONE for no result */
  const DLTensor *tensor;   /* NDARRAY only: the tensor description */
  /* OBJECT only, may be NULL: the object's type key ("runtime.Array",
   * "runtime.ShapeTuple", ...), for the tvm-ffi dialect, whose reply
   * names the result's type index as TVM's server does. */
  const char *object_type_key;
} ferry_rpc_return;

typedef struct ferry_dialect {
  enum ferry_dialect_id id;
  const char *name; /* "classic", "ffi" */

  /* Packed sequence in p[0..n): on success *vals (arena array, NULL when
   * empty), *nvals, *used (bytes consumed; callers require used == n when
   * the sequence ends the body).  FERRY_EPROTO for a bad count, an unknown
   * type, or a value running past n; FERRY_ENOMEM for arena exhaustion. */
  int (*decode_seq)(const uint8_t *p, size_t n, ferry_rpc_arena *a,
                    ferry_value **vals, int *nvals, size_t *used,
                    ferry_rpc_why *why);
  /* Appends a packed sequence.  FERRY_EINVAL for a value this dialect
   * cannot carry (TENSOR with NULL, OBJECT kinds without handle form...). */
  int (*encode_seq)(ferry_buf *out, const ferry_value *vals, int nvals);

  /* kCallFunc reply body (a packed sequence with the type prefix). */
  int (*encode_call_return)(ferry_buf *out, const ferry_rpc_return *ret);
  int (*decode_call_return)(const uint8_t *p, size_t n, ferry_rpc_arena *a,
                            ferry_rpc_return *ret, ferry_rpc_why *why);

  /* kFreeHandle arguments.  Encode: classic [3 h, 0 code], ffi [4 h].
   * Decode from already decoded values: *kind is NONE when the dialect
   * does not say (ffi) — the server then looks the handle up. */
  int (*encode_free_handle)(ferry_buf *out, uint64_t handle, enum ferry_kind kind);
  int (*decode_free_handle)(const ferry_value *vals, int nvals, uint64_t *handle,
                            enum ferry_kind *kind, ferry_rpc_why *why);

  /* How likely the packed sequence in p[0..n) (the whole rest of a packet
   * of this code) is in this dialect: 2 = parses exactly and is typical,
   * 1 = parses exactly, 0 = does not parse.  Used only until the session's
   * dialect is known. */
  int (*probe)(int code, const uint8_t *p, size_t n);
} ferry_dialect;

extern const ferry_dialect ferry_dialect_classic;
extern const ferry_dialect ferry_dialect_ffi;

/* The dialect with this id, or NULL if it is not built in. */
const ferry_dialect *ferry_dialect_get(enum ferry_dialect_id id);

/* Decides the dialect of a session from the packed sequence seq[0..n) that
 * ends a packet of this code (kInitServer with arguments, kCallFunc,
 * syscalls).  Returns the dialect to decode this packet with, or NULL when
 * no built-in dialect parses it.  *decided is 1 when the session should
 * keep that dialect from now on, 0 when this packet cannot tell: an empty
 * sequence (num_args 0 reads the same everywhere) or one that several
 * dialects parse equally well (kDevSetDevice's `[1][6][device]` is the same
 * bytes in both, but is never sent first by the reference clients); the
 * tie goes to classic, the dialect TVM <= 0.20 clients speak. */
const ferry_dialect *ferry_dialect_detect(int code, const uint8_t *seq, size_t n,
                                          int *decided);

/* Appends a whole kException packet (prefix included) carrying msg. */
int ferry_rpc_exception_encode(ferry_buf *out, const ferry_dialect *d, const char *msg,
                               size_t len) FERRY_MUST_CHECK;

#endif
