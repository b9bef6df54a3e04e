/* NumPy .npy files (format versions 1.0, 2.0 and 3.0), the tensor files the
 * `ferry run` command reads and writes.
 *
 *   "\x93NUMPY" u8 major u8 minor
 *   u16 header_len (v1) | u32 header_len (v2, v3)
 *   header: an ASCII (v3: UTF-8) Python dict literal
 *           {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 *           padded with spaces and ended by '\n' so that the data starts
 *           at a multiple of 64 bytes
 *   data:   prod(shape) elements, C order
 *
 * Pure codec: bytes in, description out; no file I/O.  Only the plain
 * numeric dtypes a DLTensor can describe are accepted (bool, int8..64,
 * uint8..64, float16/32/64, complex64/128); structured, object, string and
 * Fortran-ordered arrays are refused with a message, never guessed at. */
#ifndef FERRY_WIRE_NPY_H
#define FERRY_WIRE_NPY_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#include "base/buf.h"
#include "ferry/error.h"

#define FERRY_NPY_MAX_NDIM 32
/* Ceiling on the header dict: numpy itself refuses headers over 10000 bytes
 * by default when loading; 64 KiB leaves room for any shape we accept. */
#define FERRY_NPY_MAX_HEADER 65536
/* Length of the fixed prefix (magic, version, v1 length field). */
#define FERRY_NPY_PREFIX_V1 10
#define FERRY_NPY_PREFIX_V2 12

typedef struct ferry_npy_info {
  DLDataType dtype;           /* e.g. {kDLFloat, 32, 1} */
  int big_endian;             /* data bytes are big-endian ('>' descr) */
  int ndim;                   /* 0 for a scalar array */
  int64_t shape[FERRY_NPY_MAX_NDIM];
  uint64_t nbytes;            /* prod(shape) * itemsize */
  size_t data_offset;         /* where the data starts in the file */
  int major, minor;           /* format version read */
} ferry_npy_info;

/* Parses the header at the start of a .npy image of n bytes (n may be only
 * a prefix of the file: the data need not be present).
 *
 * Returns 0 and fills *out; FERRY_EAGAIN when the header is not complete in
 * p[0..n) (call again with more bytes); FERRY_EMAGIC when the bytes are not
 * a .npy file; FERRY_EPROTO for a malformed header; FERRY_EUNSUPPORTED for
 * a dtype, ordering or version this codec does not handle; FERRY_ETOOBIG
 * for a header over FERRY_NPY_MAX_HEADER, more than FERRY_NPY_MAX_NDIM
 * dimensions or a data size over max_data_bytes.  On failure err (capacity
 * errcap, may be NULL) gets a one-line reason and *out is unspecified. */
int ferry_npy_parse_header(const uint8_t *p, size_t n, uint64_t max_data_bytes,
                           ferry_npy_info *out, char *err,
                           size_t errcap) FERRY_MUST_CHECK;

/* Appends a version 1.0 header for a C-ordered little-endian array to out
 * (the data bytes follow it, written by the caller).  FERRY_EUNSUPPORTED
 * for a dtype with no NumPy equivalent (bfloat16, lanes != 1, ...),
 * FERRY_EINVAL for ndim outside [0, FERRY_NPY_MAX_NDIM] or a negative
 * extent, FERRY_ETOOBIG / FERRY_ENOMEM from the buffer (out unchanged). */
int ferry_npy_write_header(ferry_buf *out, DLDataType dtype, int ndim,
                           const int64_t *shape) FERRY_MUST_CHECK;

/* The NumPy descr of a dtype without the byte-order character ("f4",
 * "i8", "b1", ...) into buf (at least 8 bytes); FERRY_EUNSUPPORTED if there
 * is none.  Used for messages and by the writer. */
int ferry_npy_descr(DLDataType dtype, char *buf, size_t cap) FERRY_MUST_CHECK;

/* Bytes per element of dtype ((bits * lanes + 7) / 8). */
size_t ferry_npy_itemsize(DLDataType dtype);

/* Reverses the byte order of every itemsize-byte element of data in place
 * (for big-endian files).  Complex elements swap each half separately. */
void ferry_npy_swap(void *data, uint64_t nbytes, DLDataType dtype);

/* "float32", "int64", "bool", ... for messages; "?" when unknown. */
const char *ferry_npy_dtype_name(DLDataType dtype);

/* Parses a TVM-style dtype name ("float32", "int8", "uint1"/"bool",
 * "complex64").  FERRY_EINVAL when it is not one. */
int ferry_npy_dtype_parse(const char *name, DLDataType *out) FERRY_MUST_CHECK;

#endif
