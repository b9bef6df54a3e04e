#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ferry_buf_init(ferry_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void ferry_buf_close(ferry_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

uint8_t *ferry_buf_reserve(ferry_buf *b, size_t n) {
  /* One spare byte beyond max so printf output can stay NUL-terminated. */
  if (n > b->max || b->len > b->max - n)
    return NULL;
  size_t need = b->len + n + 1;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
      cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
      cap = b->max + 1;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
      return NULL;
    b->data = p;
    b->cap = cap;
  }
  return b->data + b->len;
}

void ferry_buf_commit(ferry_buf *b, size_t n) {
  b->len += n;
  b->data[b->len] = 0;
}

int ferry_buf_append(ferry_buf *b, const void *p, size_t n) {
  if (n > b->max || b->len > b->max - n)
    return FERRY_ETOOBIG;
  uint8_t *dst = ferry_buf_reserve(b, n);
  if (!dst)
    return FERRY_ENOMEM;
  if (n)
    memcpy(dst, p, n);
  ferry_buf_commit(b, n);
  return 0;
}

void ferry_buf_consume(ferry_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
  }
  if (b->data)
    b->data[b->len] = 0;
}

int ferry_buf_printf(ferry_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return FERRY_EINVAL;
  if ((size_t)n > b->max || b->len > b->max - (size_t)n)
    return FERRY_ETOOBIG;
  uint8_t *dst = ferry_buf_reserve(b, (size_t)n);
  if (!dst)
    return FERRY_ENOMEM;
  va_start(ap, fmt);
  vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}
