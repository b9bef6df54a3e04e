/* Value payloads that both session dialects lay out alike.
 *
 * The classic dialect and the tvm-ffi dialect number their types
 * differently and place the type words differently (that is each dialect
 * file's business), but the bytes of a value are the same in both
 * (rpc-session.md §2.3 and §7.2): 8 bytes for int, bool, float, handles,
 * data types and devices; `u64 len` + bytes for strings and byte blobs.
 * Those layouts live here once. */
#ifndef FERRY_WIRE_RPC_PAYLOAD_H
#define FERRY_WIRE_RPC_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ferry/value.h"
#include "wire/rpc_arena.h"
#include "wire/rpc_error.h"

/* 1 for the kinds whose payload is one 8-byte word: INT, BOOL, FLOAT,
 * OPAQUE, FUNC, MODULE (handles), DTYPE (+ 4 bytes of padding), DEVICE. */
int ferry_rpc_is_word_kind(enum ferry_kind kind);

/* Decodes the 8-byte payload at p as a value of a word kind. */
void ferry_rpc_word_decode(enum ferry_kind kind, const uint8_t p[8], ferry_value *v);
/* Encodes a word-kind value's payload into b (the caller checked the kind). */
void ferry_rpc_word_encode(const ferry_value *v, uint8_t b[8]);

/* Decodes `u64 len` + bytes at p (n bytes available) into an arena copy
 * with a NUL after it; kind is FERRY_KIND_STR or FERRY_KIND_BYTES.
 * FERRY_EPROTO when the length runs past the packet, FERRY_ENOMEM when the
 * arena is exhausted (message in why). */
int ferry_rpc_str_decode(const uint8_t *p, size_t n, ferry_rpc_arena *a,
                         enum ferry_kind kind, ferry_value *v, size_t *used,
                         ferry_rpc_why *why) FERRY_MUST_CHECK;
/* Appends `u64 len` + the bytes of a STR or BYTES value. */
int ferry_rpc_str_encode(ferry_buf *out, const ferry_value *v) FERRY_MUST_CHECK;

#endif
