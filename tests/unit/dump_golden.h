/* What the tests of `ferry dump` share (test_dump.c, test_dump_json.c):
 * the golden recordings, reading a file whole, decoding a recording as
 * `ferry dump --read` does, and the one-connection fixture (fx) of the
 * single-message tests (each file has its own fx_init: the options differ).  Included by each; uses cmocka's assertions. */
#ifndef FERRY_TESTS_DUMP_GOLDEN_H
#define FERRY_TESTS_DUMP_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "wire/constants.h"
#include "wire/dump.h"
#include "wire/dump_record.h"

#define EXPECTED_DIR FERRY_GOLDEN_DIR "/../unit/dump_expected"

/* Every golden recording; the first DUMP_TVM_RECORDINGS are TVM's own
 * classic and ffi sessions, the rest ferry's OpenCL ones. */
static const char *const recordings[] = {
    "classic/proxy/client-proxy",         "classic/proxy/proxy-tracker",
    "classic/proxy/server-proxy",         "classic/proxy-notracker/client-proxy",
    "classic/proxy-notracker/server-proxy", "classic/session-errors/client-server",
    "classic/session-files/client-server", "classic/session-graph/client-server",
    "classic/session-module/client-server", "classic/session-tensor/client-server",
    "classic/tracker/tracker",            "ffi/proxy/client-proxy",
    "ffi/proxy/proxy-tracker",            "ffi/proxy/server-proxy",
    "ffi/proxy-notracker/client-proxy",   "ffi/proxy-notracker/server-proxy",
    "ffi/session-errors/client-server",   "ffi/session-files/client-server",
    "ffi/session-module/client-server",   "ffi/session-tensor/client-server",
    "ffi/tracker/tracker",                "opencl/cl-attrs/client-server",
    "opencl/cl-errors/client-server",     "opencl/cl-kernels/client-server",
    "opencl/cl-tensor/client-server",
};
#define DUMP_TVM_RECORDINGS 21

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  p[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return p;
}

/* Decodes a recording through a connection set as `ferry dump --read`
 * does (--json when json is 1); bytewise feeds each chunk one byte at a
 * time. */
static void decode_opts(const char *rel, int bytewise, int json, ferry_buf *out) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.jsonl", FERRY_GOLDEN_DIR, rel);
  size_t len = 0;
  char *text = slurp(path, &len);
  assert_non_null(text);
  ferry_dump_opts o;
  ferry_dump_opts_default(&o);
  o.json = json;
  ferry_dump_set set;
  ferry_dump_set_init(&set, &o);
  ferry_dump_record rec;
  ferry_dump_record_init(&rec);
  double last = 0;
  for (char *line = text; *line;) {
    char *nl = strchr(line, '\n');
    size_t ll = nl ? (size_t)(nl - line) : strlen(line);
    char err[128];
    assert_int_equal(ferry_dump_record_parse(line, ll, &rec, err, sizeof err), 0);
    last = rec.t;
    if (bytewise && rec.kind == FERRY_DUMP_REC_DATA) {
      for (size_t i = 0; i < rec.bytes.len; i++)
        assert_int_equal(ferry_dump_set_feed(&set, rec.conn, rec.kind, rec.dir, rec.t,
                                             rec.bytes.data + i, 1, out),
                         0);
    } else {
      assert_int_equal(ferry_dump_set_feed(&set, rec.conn, rec.kind, rec.dir, rec.t,
                                           rec.bytes.data, rec.bytes.len, out),
                       0);
    }
    line = nl ? nl + 1 : line + ll;
  }
  assert_int_equal(ferry_dump_set_finish(&set, last, out), 0);
  ferry_dump_set_close(&set);
  ferry_dump_record_close(&rec);
  free(text);
}

/* The checked-in expected output of recording rel: EXPECTED_DIR/<rel with
 * '/' as '_'><ext>. */
static void expected_path(char *path, size_t cap, const char *rel, const char *ext) {
  char name[256];
  snprintf(name, sizeof name, "%s", rel);
  for (char *p = name; *p; p++)
    if (*p == '/')
      *p = '_';
  snprintf(path, cap, "%s/%s%s", EXPECTED_DIR, name, ext);
}

/* ---- one connection fed by hand ------------------------------------------ */

typedef struct fx {
  ferry_dump_conn c;
  ferry_buf out;
} fx;

static void fx_close(fx *f) {
  ferry_dump_conn_close(&f->c);
  ferry_buf_close(&f->out);
}

static const char *fx_text(fx *f) {
  if (ferry_buf_append(&f->out, "", 1))
    fail();
  f->out.len--;
  return (const char *)f->out.data;
}

static void feed(fx *f, int dir, const void *p, size_t n) {
  assert_int_equal(ferry_dump_conn_feed(&f->c, dir, 1.0, p, n, &f->out), 0);
}

/* A session handshake in both directions. */
static void handshake(fx *f) {
  uint8_t hs[8 + 7];
  put_le32(hs, FERRY_RPC_MAGIC);
  put_le32(hs + 4, 7);
  memcpy(hs + 8, "client:", 7);
  feed(f, FERRY_DUMP_C2S, hs, sizeof hs);
  put_le32(hs + 4, 7);
  memcpy(hs + 8, "server:", 7);
  feed(f, FERRY_DUMP_S2C, hs, sizeof hs);
}

#endif
