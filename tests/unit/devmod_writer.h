/* Test helper: writes device-module payloads (fmt, fmap, data) in either
 * generation's layout, for test_devmod.c and test_opencl.c. */
#ifndef FERRY_TEST_DEVMOD_WRITER_H
#define FERRY_TEST_DEVMOD_WRITER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dw {
  uint8_t *p;
  size_t len, cap;
};

static void dw_raw(struct dw *w, const void *b, size_t n) {
  if (w->len + n > w->cap) {
    w->cap = (w->len + n) * 2 + 64;
    w->p = realloc(w->p, w->cap);
  }
  memcpy(w->p + w->len, b, n);
  w->len += n;
}

static void dw_u64(struct dw *w, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)(v >> (8 * i));
  dw_raw(w, b, 8);
}

static void dw_str(struct dw *w, const char *s) {
  dw_u64(w, strlen(s));
  dw_raw(w, s, strlen(s));
}

/* One function: nbuf handles, then the scalar types in scalars ("i32",
 * "f32" ...), then tags.  v026 adds arg_extra_tags. */
static void dw_func(struct dw *w, const char *name, int nbuf, const char *const *scalars,
                    int nscalar, const char *const *tags, int ntags, int v026) {
  dw_str(w, name);
  dw_str(w, v026 ? name : "");
  dw_u64(w, (uint64_t)(nbuf + nscalar));
  for (int i = 0; i < nbuf; i++) {
    uint8_t h[4] = {3, 64, 1, 0};
    dw_raw(w, h, 4);
  }
  for (int i = 0; i < nscalar; i++) {
    uint8_t t[4] = {scalars[i][0] == 'f' ? 2 : scalars[i][0] == 'u' ? 1 : 0,
                    (uint8_t)atoi(scalars[i] + 1), 1, 0};
    dw_raw(w, t, 4);
  }
  dw_u64(w, (uint64_t)ntags);
  for (int i = 0; i < ntags; i++)
    dw_str(w, tags[i]);
  if (v026) {
    dw_u64(w, (uint64_t)(nbuf + nscalar));
    for (int i = 0; i < nbuf + nscalar; i++) {
      uint8_t z[4] = {0, 0, 0, 0};
      dw_raw(w, z, 4);
    }
  }
}

#endif
