/* Parser of __tvm_dev_mblob, the module blob TVM's export_library embeds in
 * a shared library (spec runtime-abi.md section 5):
 *
 *   u64 N | payload of N bytes: u64 count, count x (string type_key, payload)
 *
 * "_lib" has no payload; "_import_tree" carries two u64 vectors (CSR);
 * any other key's payload is written by that module type's serialiser and
 * only a loader of that type knows its length, so the reader hands it to
 * the caller, who reports how many bytes it consumed (ferry_mblob_skip).
 * Pure: no allocation, every read bounded. */
#ifndef FERRY_WIRE_MBLOB_H
#define FERRY_WIRE_MBLOB_H

#include <stddef.h>
#include <stdint.h>

#include "wire/stream.h"

#define FERRY_MBLOB_MAX_BYTES (1ull << 31) /* payload N */
#define FERRY_MBLOB_MAX_ENTRIES 4096
#define FERRY_MBLOB_MAX_KEY 256

enum ferry_mblob_kind {
  FERRY_MBLOB_END = 0,     /* no more entries */
  FERRY_MBLOB_LIB,         /* "_lib" */
  FERRY_MBLOB_IMPORT_TREE, /* "_import_tree": row_ptr / child_indices below */
  FERRY_MBLOB_MODULE,      /* any other type key: payload below */
};

typedef struct ferry_mblob_entry {
  enum ferry_mblob_kind kind;
  const char *key; /* type key, not NUL-terminated */
  size_t key_len;
  /* FERRY_MBLOB_MODULE: the rest of the blob, starting at the payload. */
  const uint8_t *payload;
  size_t payload_avail;
  /* FERRY_MBLOB_IMPORT_TREE: raw little-endian u64 arrays (read them with
   * ferry_mblob_u64). */
  const uint8_t *row_ptr;
  size_t nrow_ptr;
  const uint8_t *child;
  size_t nchild;
} ferry_mblob_entry;

typedef struct ferry_mblob_reader {
  ferry_stream s;
  uint64_t count;  /* entries declared */
  uint64_t index;  /* entries returned so far */
  int need_skip;   /* a MODULE payload is pending ferry_mblob_skip */
} ferry_mblob_reader;

/* data: the blob starting at its u64 N; avail: bytes known to be readable
 * there (at least 8 + N for a well-formed blob).  FERRY_EAGAIN: shorter than
 * its own header says; FERRY_ETOOBIG: N or count over the limits. */
int ferry_mblob_open(ferry_mblob_reader *r, const uint8_t *data, size_t avail) FERRY_MUST_CHECK;
/* Next entry (FERRY_MBLOB_END after the last).  FERRY_EPROTO for a second
 * call while a module payload is pending, FERRY_EAGAIN/ETOOBIG for a
 * truncated or oversized entry. */
int ferry_mblob_next(ferry_mblob_reader *r, ferry_mblob_entry *e) FERRY_MUST_CHECK;
/* Consumes n bytes of the pending module payload (n <= payload_avail). */
int ferry_mblob_skip(ferry_mblob_reader *r, size_t n) FERRY_MUST_CHECK;

static inline uint64_t ferry_mblob_u64(const uint8_t *arr, size_t i) {
  return get_le64(arr + 8 * i);
}

/* Checks an import tree against the number of modules: row_ptr has
 * nmodules + 1 entries, starts at 0, never decreases, ends at nchild; every
 * child index < nmodules.  FERRY_EPROTO otherwise. */
int ferry_mblob_check_tree(const ferry_mblob_entry *tree, size_t nmodules) FERRY_MUST_CHECK;

#endif
