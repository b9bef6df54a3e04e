/* Recorded TVM sessions (tests/golden/<dialect>/session-*) split into
 * request/reply packet pairs, for the client replay tests of both dialects
 * (test_client_golden.c, test_client_golden_ffi.c).  Included by each;
 * uses cmocka's assertions. */
#ifndef FERRY_TESTS_GOLDEN_RECORDING_H
#define FERRY_TESTS_GOLDEN_RECORDING_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"


#define MAX_PKTS 256

typedef struct recording {
  uint8_t *c2s, *s2c; /* concatenated streams of the session connection */
  size_t c2s_len, s2c_len;
  size_t c_hello, s_hello; /* handshake bytes at the start of each */
  /* Requests (after the handshake) and the reply each got. */
  const uint8_t *req[MAX_PKTS], *rep[MAX_PKTS];
  size_t req_len[MAX_PKTS], rep_len[MAX_PKTS];
  int n;
} recording;

static void append_hex(uint8_t **buf, size_t *len, const char *h, size_t hl) {
  *buf = realloc(*buf, *len + hl / 2 + 1);
  assert_non_null(*buf);
  for (size_t i = 0; i + 1 < hl; i += 2) {
    unsigned v;
    assert_int_equal(sscanf(h + i, "%2x", &v), 1);
    (*buf)[(*len)++] = (uint8_t)v;
  }
}

static size_t packet_len(const uint8_t *p, size_t avail) {
  assert_true(avail >= 12);
  uint64_t n = get_le64(p);
  assert_true(8 + n <= avail);
  return (size_t)(8 + n);
}

/* Reads golden/<dialect>/<name>/client-server.jsonl: the connection with
 * data (connection 1 is a readiness probe), split into packets. */
static void load(recording *r, const char *dialect, const char *name) {
  memset(r, 0, sizeof *r);
  char path[512];
  snprintf(path, sizeof path, "%s/%s/%s/client-server.jsonl", FERRY_GOLDEN_DIR, dialect,
           name);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char line[1 << 20];
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, "\"conn\": 1,"))
      continue;
    int c2s = strstr(line, "\"dir\": \"c2s\"") != NULL;
    int s2c = strstr(line, "\"dir\": \"s2c\"") != NULL;
    const char *h = strstr(line, "\"hex\": \"");
    if (!(c2s || s2c) || !h)
      continue;
    h += 8;
    size_t hl = strcspn(h, "\"");
    if (c2s)
      append_hex(&r->c2s, &r->c2s_len, h, hl);
    else
      append_hex(&r->s2c, &r->s2c_len, h, hl);
  }
  fclose(f);
  r->c_hello = 8 + get_le32(r->c2s + 4);
  r->s_hello = 8 + get_le32(r->s2c + 4);
  size_t co = r->c_hello, so = r->s_hello;
  while (co < r->c2s_len) {
    assert_true(r->n < MAX_PKTS);
    size_t n = packet_len(r->c2s + co, r->c2s_len - co);
    r->req[r->n] = r->c2s + co;
    r->req_len[r->n] = n;
    /* Every request but kShutdown is answered; the recorder may have
     * stopped before the last answers (releases at the end) arrived. */
    if (get_le32(r->c2s + co + 8) != 1 && so < r->s2c_len) {
      size_t m = packet_len(r->s2c + so, r->s2c_len - so);
      r->rep[r->n] = r->s2c + so;
      r->rep_len[r->n] = m;
      so += m;
    }
    co += n;
    r->n++;
  }
  /* Anything left is unsolicited: the Python server's session-timeout
   * notice (a kException) sent when the client kept the session open. */
  if (so < r->s2c_len) {
    assert_int_equal(get_le32(r->s2c + so + 8), 5);
    assert_int_equal(packet_len(r->s2c + so, r->s2c_len - so), r->s2c_len - so);
  }
}

static void unload(recording *r) {
  free(r->c2s);
  free(r->s2c);
}

/* The body of recorded request i whose code is `code` (for test data). */
static const uint8_t *find_request(const recording *r, int code, int nth, size_t *len) {
  for (int i = 0; i < r->n; i++)
    if ((int)get_le32(r->req[i] + 8) == code && nth-- == 0) {
      *len = r->req_len[i] - 12;
      return r->req[i] + 12;
    }
  fail_msg("no request of code %d", code);
  return NULL;
}

#endif
