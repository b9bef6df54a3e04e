/* Tracker link framing (tracker-proxy-server.md §3.4, §4.3).
 *
 * A tracker link starts with the 4-byte tracker magic, then carries frames
 * of `i32le N` + N bytes of JSON text, 1 <= N <= FERRY_TRACKER_MAX_FRAME.
 * The reader is push-style: feed whatever recv() returned, then pull
 * events until it says FERRY_EAGAIN.  It never trusts the peer's lengths:
 * a bad length is an error before anything is allocated for it. */
#ifndef FERRY_WIRE_FRAME_H
#define FERRY_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct ferry_frame_reader {
  ferry_buf in;       /* bytes fed and not yet consumed */
  int expect_magic;   /* 1 until the magic word was seen */
  uint32_t magic;     /* the magic expected first */
  size_t max_frame;   /* ceiling on N */
  size_t consumed;    /* bytes to drop before the next parse */
  int32_t bad_length; /* the offending N after FERRY_ETOOBIG/FERRY_EPROTO */
} ferry_frame_reader;

enum ferry_frame_event {
  FERRY_FRAME_MAGIC = 1, /* the magic word arrived (and matched) */
  FERRY_FRAME_MESSAGE,   /* one whole frame: *body and *len valid until the next call */
};

/* expect_magic: 1 for the side that receives the magic first (the tracker),
 * 0 if the magic was handled elsewhere. max_frame: usually
 * FERRY_TRACKER_MAX_FRAME. Allocates nothing until bytes are fed. */
void ferry_frame_reader_init(ferry_frame_reader *r, int expect_magic,
                             uint32_t magic, size_t max_frame);
void ferry_frame_reader_close(ferry_frame_reader *r);

/* Copies n bytes in.  FERRY_ETOOBIG if more than one maximal frame would be
 * buffered (a peer cannot make the reader grow beyond that). */
int ferry_frame_reader_feed(ferry_frame_reader *r, const void *p,
                            size_t n) FERRY_MUST_CHECK;

/* Next event: FERRY_FRAME_MAGIC, FERRY_FRAME_MESSAGE (body in *body and *len,
 * valid until the next call of any ferry_frame_reader_* function),
 * FERRY_EAGAIN (need more bytes), FERRY_EMAGIC (wrong magic word),
 * FERRY_EPROTO (N <= 0) or FERRY_ETOOBIG (N > max_frame; N in bad_length).
 * After an error the reader is spent: close the connection. */
int ferry_frame_reader_next(ferry_frame_reader *r, const uint8_t **body,
                            size_t *len) FERRY_MUST_CHECK;

/* Appends `i32le len` + body to out. */
int ferry_frame_encode(ferry_buf *out, const void *body,
                       size_t len) FERRY_MUST_CHECK;

#endif
