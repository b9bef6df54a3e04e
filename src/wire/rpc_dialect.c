/* Dialect registry and per-session detection (rpc-session.md §7.4). */
#include "wire/rpc_dialect.h"

#include "base/bytes.h"
#include "wire/rpc_packet.h"

/* Built-in dialects, in tie-break order. */
static const ferry_dialect *const dialects[] = {
    &ferry_dialect_classic,
    &ferry_dialect_ffi,
};
#define NDIALECTS (sizeof dialects / sizeof dialects[0])

const ferry_dialect *ferry_dialect_get(enum ferry_dialect_id id) {
  for (size_t i = 0; i < NDIALECTS; i++)
    if (dialects[i]->id == id)
      return dialects[i];
  return NULL;
}

const ferry_dialect *ferry_dialect_detect(int code, const uint8_t *seq, size_t n,
                                          int *decided) {
  *decided = 0;
  /* num_args is the first word in every dialect; zero arguments read the
   * same everywhere. */
  if (n == 4 && get_le32(seq) == 0)
    return dialects[0];
  const ferry_dialect *best = NULL;
  int best_score = 0, ties = 0;
  for (size_t i = 0; i < NDIALECTS; i++) {
    int score = dialects[i]->probe(code, seq, n);
    if (score > best_score) {
      best = dialects[i];
      best_score = score;
      ties = 0;
    } else if (score > 0 && score == best_score) {
      ties++;
    }
  }
  *decided = best != NULL && ties == 0;
  return best;
}

int ferry_rpc_exception_encode(ferry_buf *out, const ferry_dialect *d, const char *msg,
                               size_t len) {
  size_t start = out->len, mark = 0;
  ferry_value v;
  v.kind = FERRY_KIND_STR;
  v.v.str.data = msg;
  v.v.str.len = len;
  int rc = ferry_rpc_packet_begin(out, FERRY_RPC_EXCEPTION, &mark);
  if (!rc)
    rc = d->encode_seq(out, &v, 1);
  if (rc) {
    out->len = start;
    return rc;
  }
  ferry_rpc_packet_end(out, mark);
  return FERRY_OK;
}
