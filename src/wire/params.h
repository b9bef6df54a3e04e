/* The NDArray and parameter-dict binary formats (spec runtime-abi.md 10):
 *
 *   NDArray: u64 magic 0xDD5E40F096B4A13F, u64 reserved, i32 device_type,
 *            i32 device_id, i32 ndim, u8 code, u8 bits, u16 lanes,
 *            i64 shape[ndim], i64 data_byte_size, data
 *   dict:    u64 magic 0xF7E58D4F05049CB7, u64 reserved, vector<string>
 *            names, u64 count (== number of names), count x NDArray
 *
 * Pure codec: decoding works in place on a whole blob (tensor data and
 * names point into it) and bounds every count and length; encoding appends
 * to a bounded ferry_buf.  Arrays with lanes != 1 are refused both ways:
 * TVM's format sizes data without lanes, so they do not round-trip. */
#ifndef FERRY_WIRE_PARAMS_H
#define FERRY_WIRE_PARAMS_H

#include <dlpack/dlpack.h>

#include "base/buf.h"
#include "wire/stream.h"

#define FERRY_NDARRAY_MAGIC 0xDD5E40F096B4A13Full
#define FERRY_PARAMS_MAGIC 0xF7E58D4F05049CB7ull
#define FERRY_PARAMS_MAX_NDIM 32
#define FERRY_PARAMS_MAX_ENTRIES 65536
#define FERRY_PARAMS_MAX_NAME 4096

typedef struct ferry_params_tensor {
  DLDevice device; /* as stored: always CPU 0 for valid blobs */
  int32_t ndim;
  DLDataType dtype;
  int64_t shape[FERRY_PARAMS_MAX_NDIM];
  const uint8_t *data; /* points into the blob */
  uint64_t nbytes;
} ferry_params_tensor;

/* Decodes one NDArray at the cursor.  FERRY_EAGAIN: truncated;
 * FERRY_EMAGIC: wrong magic; FERRY_EPROTO: device not CPU, ndim out of
 * range, negative extent, lanes != 1, data_byte_size not the formula;
 * FERRY_ETOOBIG: size overflows.  On failure the cursor is unchanged. */
int ferry_ndarray_decode(ferry_stream *s, ferry_params_tensor *out) FERRY_MUST_CHECK;
/* Appends one NDArray (data at t->data + byte_offset, compact row-major). */
int ferry_ndarray_encode(ferry_buf *out, const DLTensor *t) FERRY_MUST_CHECK;

typedef struct ferry_params_reader {
  ferry_stream names;  /* cursor over the names vector */
  ferry_stream arrays; /* cursor over the arrays */
  uint64_t count;      /* entries in the dict */
  uint64_t index;      /* entries returned */
} ferry_params_reader;

/* Checks magic and header, walks the names and reads count.  Errors as
 * for ferry_ndarray_decode, plus FERRY_EPROTO when count differs from the
 * number of names. */
int ferry_params_open(ferry_params_reader *r, const uint8_t *p, size_t len) FERRY_MUST_CHECK;
/* Entry r->index (call while r->index < r->count); name not NUL-terminated. */
int ferry_params_next(ferry_params_reader *r, const char **name, size_t *name_len,
                      ferry_params_tensor *t) FERRY_MUST_CHECK;
/* Encodes a whole dict of n entries. */
int ferry_params_encode(ferry_buf *out, size_t n, const char *const *names,
                        const DLTensor *const *tensors) FERRY_MUST_CHECK;

#endif
