/* Recordings for `ferry dump --read` and `--raw`: the golden .jsonl format
 * (tests/golden/README.md), one chunk of one direction per line:
 *
 *   {"conn": 2, "dir": "c2s", "t": 0.1684, "hex": "71f20f00"}
 *
 * with dir "open", "c2s", "s2c" or "close" (hex then spells the direction
 * that ended).  And a set of connections that routes records by number to
 * their ferry_dump_conn, shared by the jsonl and pcap readers. */
#ifndef FERRY_WIRE_DUMP_RECORD_H
#define FERRY_WIRE_DUMP_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "wire/dump.h"

/* Ceiling on one record line (a chunk is at most this / 2 bytes). */
#define FERRY_DUMP_MAX_RECORD (4u << 20)
/* Ceiling on connections open at once in a set. */
#define FERRY_DUMP_MAX_CONNS 1024

enum ferry_dump_rec_kind {
  FERRY_DUMP_REC_OPEN = 0,
  FERRY_DUMP_REC_DATA,
  FERRY_DUMP_REC_CLOSE,
};

typedef struct ferry_dump_record {
  unsigned conn;
  enum ferry_dump_rec_kind kind;
  int dir;       /* FERRY_DUMP_C2S/S2C for DATA and CLOSE */
  double t;
  ferry_buf bytes; /* DATA: the chunk (owned; reused across parses) */
} ferry_dump_record;

void ferry_dump_record_init(ferry_dump_record *r);
void ferry_dump_record_close(ferry_dump_record *r);
/* Parses one line (without its newline).  FERRY_EPROTO with err filled for
 * anything but the shape above; r->bytes then holds nothing useful. */
int ferry_dump_record_parse(const char *line, size_t len, ferry_dump_record *r, char *err,
                            size_t errcap) FERRY_MUST_CHECK;
/* Appends one record line describing a chunk (kind DATA) or an event. */
int ferry_dump_record_write(ferry_buf *out, unsigned conn, enum ferry_dump_rec_kind kind,
                            int dir, double t, const uint8_t *p, size_t n) FERRY_MUST_CHECK;

typedef struct ferry_dump_set {
  ferry_dump_opts opts;
  ferry_dump_conn *conns[FERRY_DUMP_MAX_CONNS];
  size_t n;
} ferry_dump_set;

void ferry_dump_set_init(ferry_dump_set *s, const ferry_dump_opts *o);
/* Ends every connection still open (reporting what each cut short). */
int ferry_dump_set_finish(ferry_dump_set *s, double t, ferry_buf *out) FERRY_MUST_CHECK;
void ferry_dump_set_close(ferry_dump_set *s);
/* Routes one record (a connection is created at its first record and
 * freed when both directions closed).  FERRY_ETOOBIG past
 * FERRY_DUMP_MAX_CONNS open connections. */
int ferry_dump_set_feed(ferry_dump_set *s, unsigned conn, enum ferry_dump_rec_kind kind,
                        int dir, double t, const uint8_t *p, size_t n,
                        ferry_buf *out) FERRY_MUST_CHECK;

/* A line about connection conn (nothing if it is not open). */
int ferry_dump_set_event(ferry_dump_set *s, unsigned conn, double t, const char *what,
                         ferry_buf *out) FERRY_MUST_CHECK;

#endif
