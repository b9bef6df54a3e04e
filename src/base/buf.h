/* A growable byte buffer with a hard ceiling.
 *
 * Everything that grows in ferry has a limit chosen by the code, never by a
 * peer: ferry_buf refuses (FERRY_ETOOBIG) to grow past `max`. */
#ifndef FERRY_BASE_BUF_H
#define FERRY_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"

typedef struct ferry_buf {
  uint8_t *data; /* owned; NULL until the first append */
  size_t len;    /* bytes in use */
  size_t cap;    /* bytes allocated */
  size_t max;    /* ceiling on len */
} ferry_buf;

/* An empty buffer that will hold at most `max` bytes.  Allocates nothing. */
void ferry_buf_init(ferry_buf *b, size_t max);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void ferry_buf_close(ferry_buf *b);
/* Appends n bytes.  On failure (FERRY_ETOOBIG, FERRY_ENOMEM) the buffer is
 * unchanged. */
int ferry_buf_append(ferry_buf *b, const void *p, size_t n) FERRY_MUST_CHECK;
/* Makes room for n more bytes and returns where they go (len unchanged:
 * call ferry_buf_commit after writing).  NULL on failure. */
uint8_t *ferry_buf_reserve(ferry_buf *b, size_t n);
void ferry_buf_commit(ferry_buf *b, size_t n);
/* Drops the first n bytes (n <= len), moving the rest to the front. */
void ferry_buf_consume(ferry_buf *b, size_t n);
/* Appends printf-formatted text (no NUL counted in len, but one is kept
 * after the data so the content can be used as a C string). */
int ferry_buf_printf(ferry_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))) FERRY_MUST_CHECK;

#endif
