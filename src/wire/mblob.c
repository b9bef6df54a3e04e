#include "wire/mblob.h"

#include <string.h>

int ferry_mblob_open(ferry_mblob_reader *r, const uint8_t *data, size_t avail) {
  memset(r, 0, sizeof *r);
  if (avail < 8)
    return FERRY_EAGAIN;
  uint64_t unvalidated_n = get_le64(data);
  if (unvalidated_n > FERRY_MBLOB_MAX_BYTES)
    return FERRY_ETOOBIG;
  if (unvalidated_n > avail - 8)
    return FERRY_EAGAIN;
  ferry_stream_init(&r->s, data + 8, (size_t)unvalidated_n);
  uint64_t unvalidated_count;
  int rc = ferry_stream_u64(&r->s, &unvalidated_count);
  if (rc)
    return rc;
  if (unvalidated_count > FERRY_MBLOB_MAX_ENTRIES)
    return FERRY_ETOOBIG;
  r->count = unvalidated_count;
  return FERRY_OK;
}

/* A u64 vector of at most max elements, in place. */
static int read_u64_vec(ferry_stream *s, size_t max, const uint8_t **out, size_t *n) {
  uint64_t unvalidated_n;
  int rc = ferry_stream_u64(s, &unvalidated_n);
  if (rc)
    return rc;
  if (unvalidated_n > max)
    return FERRY_ETOOBIG;
  *n = (size_t)unvalidated_n;
  return ferry_stream_bytes(s, (size_t)unvalidated_n * 8, out);
}

int ferry_mblob_next(ferry_mblob_reader *r, ferry_mblob_entry *e) {
  memset(e, 0, sizeof *e);
  if (r->need_skip)
    return FERRY_EPROTO;
  if (r->index == r->count) {
    e->kind = FERRY_MBLOB_END;
    return FERRY_OK;
  }
  int rc = ferry_stream_str(&r->s, FERRY_MBLOB_MAX_KEY, &e->key, &e->key_len);
  if (rc)
    return rc;
  r->index++;
  if (e->key_len == 4 && memcmp(e->key, "_lib", 4) == 0) {
    e->kind = FERRY_MBLOB_LIB;
    return FERRY_OK;
  }
  if (e->key_len == 12 && memcmp(e->key, "_import_tree", 12) == 0) {
    e->kind = FERRY_MBLOB_IMPORT_TREE;
    rc = read_u64_vec(&r->s, FERRY_MBLOB_MAX_ENTRIES + 1, &e->row_ptr, &e->nrow_ptr);
    if (rc == FERRY_OK)
      rc = read_u64_vec(&r->s, FERRY_MBLOB_MAX_ENTRIES * (size_t)FERRY_MBLOB_MAX_ENTRIES,
                        &e->child, &e->nchild);
    return rc;
  }
  e->kind = FERRY_MBLOB_MODULE;
  e->payload = r->s.p + r->s.pos;
  e->payload_avail = ferry_stream_left(&r->s);
  r->need_skip = 1;
  return FERRY_OK;
}

int ferry_mblob_skip(ferry_mblob_reader *r, size_t n) {
  if (!r->need_skip || n > ferry_stream_left(&r->s))
    return FERRY_EPROTO;
  r->s.pos += n;
  r->need_skip = 0;
  return FERRY_OK;
}

int ferry_mblob_check_tree(const ferry_mblob_entry *tree, size_t nmodules) {
  if (tree->nrow_ptr != nmodules + 1 || ferry_mblob_u64(tree->row_ptr, 0) != 0)
    return FERRY_EPROTO;
  for (size_t i = 0; i < nmodules; i++)
    if (ferry_mblob_u64(tree->row_ptr, i + 1) < ferry_mblob_u64(tree->row_ptr, i))
      return FERRY_EPROTO;
  if (ferry_mblob_u64(tree->row_ptr, nmodules) != tree->nchild)
    return FERRY_EPROTO;
  /* TVM's writer numbers children after their parent; requiring it here
   * also rules out cycles (which would make lookups loop forever). */
  for (size_t i = 0; i < nmodules; i++)
    for (uint64_t j = ferry_mblob_u64(tree->row_ptr, i); j < ferry_mblob_u64(tree->row_ptr, i + 1);
         j++) {
      uint64_t c = ferry_mblob_u64(tree->child, (size_t)j);
      if (c >= nmodules || c <= i)
        return FERRY_EPROTO;
    }
  return FERRY_OK;
}
