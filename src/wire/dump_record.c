/* The .jsonl recording format of `ferry dump` and the connection set that
 * --read feeds (see dump_record.h). */
#include "wire/dump_record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ferry_dump_record_init(ferry_dump_record *r) {
  memset(r, 0, sizeof *r);
  ferry_buf_init(&r->bytes, FERRY_DUMP_MAX_RECORD / 2);
}

void ferry_dump_record_close(ferry_dump_record *r) {
  ferry_buf_close(&r->bytes);
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

static int bad(char *err, size_t errcap, const char *why) {
  if (err && errcap)
    snprintf(err, errcap, "%s", why);
  return FERRY_EPROTO;
}

int ferry_dump_record_parse(const char *line, size_t len, ferry_dump_record *r, char *err,
                            size_t errcap) {
  r->bytes.len = 0;
  if (len > FERRY_DUMP_MAX_RECORD)
    return bad(err, errcap, "record line over the 4 MiB ceiling");
  json_error_t jerr;
  json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!o)
    return bad(err, errcap, "record is not JSON");
  int rc = FERRY_EPROTO;
  json_t *jc = json_object_get(o, "conn"), *jd = json_object_get(o, "dir"),
         *jt = json_object_get(o, "t"), *jh = json_object_get(o, "hex");
  if (!json_is_object(o) || !json_is_integer(jc) || !json_is_string(jd) ||
      !json_is_number(jt) || !json_is_string(jh)) {
    rc = bad(err, errcap, "record lacks conn, dir, t or hex");
    goto done;
  }
  json_int_t conn = json_integer_value(jc);
  if (conn < 0 || conn > (json_int_t)UINT32_MAX) {
    rc = bad(err, errcap, "record conn out of range");
    goto done;
  }
  r->conn = (unsigned)conn;
  r->t = json_number_value(jt);
  const char *d = json_string_value(jd);
  const char *h = json_string_value(jh);
  size_t hl = json_string_length(jh);
  if (!strcmp(d, "open")) {
    r->kind = FERRY_DUMP_REC_OPEN;
  } else if (!strcmp(d, "close")) {
    r->kind = FERRY_DUMP_REC_CLOSE;
    /* The hex spells which direction stopped: "c2s" or "s2c". */
    if (!strcmp(h, "633273"))
      r->dir = 0;
    else if (!strcmp(h, "733263"))
      r->dir = 1;
    else {
      rc = bad(err, errcap, "close record names no direction");
      goto done;
    }
  } else if (!strcmp(d, "c2s") || !strcmp(d, "s2c")) {
    r->kind = FERRY_DUMP_REC_DATA;
    r->dir = d[0] == 's';
    if (hl % 2) {
      rc = bad(err, errcap, "odd number of hex digits");
      goto done;
    }
    uint8_t *dst = ferry_buf_reserve(&r->bytes, hl / 2 + 1);
    if (!dst) {
      rc = bad(err, errcap, "chunk over the ceiling");
      goto done;
    }
    for (size_t i = 0; i < hl; i += 2) {
      int hi = hexval(h[i]), lo = hexval(h[i + 1]);
      if (hi < 0 || lo < 0) {
        rc = bad(err, errcap, "bad hex digit");
        goto done;
      }
      dst[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    ferry_buf_commit(&r->bytes, hl / 2);
  } else {
    rc = bad(err, errcap, "unknown dir");
    goto done;
  }
  rc = FERRY_OK;
done:
  json_decref(o);
  return rc;
}

int ferry_dump_record_write(ferry_buf *out, unsigned conn, enum ferry_dump_rec_kind kind,
                            int dir, double t, const uint8_t *p, size_t n) {
  static const char *const names[2] = {"c2s", "s2c"};
  static const char digits[] = "0123456789abcdef";
  const char *d = kind == FERRY_DUMP_REC_OPEN ? "open"
                  : kind == FERRY_DUMP_REC_CLOSE ? "close"
                                                 : names[dir & 1];
  size_t start = out->len;
  int rc = ferry_buf_printf(out, "{\"conn\": %u, \"dir\": \"%s\", \"t\": %.6f, \"hex\": \"",
                            conn, d, t);
  if (!rc && kind == FERRY_DUMP_REC_CLOSE) {
    p = (const uint8_t *)names[dir & 1];
    n = 3;
  }
  if (!rc && kind != FERRY_DUMP_REC_OPEN) {
    uint8_t *dst = ferry_buf_reserve(out, 2 * n + 1);
    if (!dst) {
      rc = FERRY_ETOOBIG;
    } else {
      for (size_t i = 0; i < n; i++) {
        dst[2 * i] = (uint8_t)digits[p[i] >> 4];
        dst[2 * i + 1] = (uint8_t)digits[p[i] & 15];
      }
      ferry_buf_commit(out, 2 * n);
    }
  }
  if (!rc)
    rc = ferry_buf_printf(out, "\"}\n");
  if (rc)
    out->len = start;
  return rc;
}

/* ---- the connection set --------------------------------------------------- */

typedef struct set_conn {
  ferry_dump_conn c;
  int ended[2];
} set_conn;

void ferry_dump_set_init(ferry_dump_set *s, const ferry_dump_opts *o) {
  memset(s, 0, sizeof *s);
  s->opts = *o;
}

static void drop(ferry_dump_set *s, size_t i) {
  ferry_dump_conn_close(s->conns[i]);
  free(s->conns[i]);
  s->conns[i] = s->conns[--s->n];
}

int ferry_dump_set_finish(ferry_dump_set *s, double t, ferry_buf *out) {
  int rc = 0;
  for (size_t i = 0; i < s->n; i++) {
    set_conn *sc = (set_conn *)s->conns[i];
    for (int d = 0; d < 2; d++)
      if (!sc->ended[d]) {
        int r = ferry_dump_conn_end(&sc->c, d, t, out);
        sc->ended[d] = 1;
        if (!rc)
          rc = r;
      }
  }
  return rc;
}

void ferry_dump_set_close(ferry_dump_set *s) {
  while (s->n)
    drop(s, s->n - 1);
}

int ferry_dump_set_feed(ferry_dump_set *s, unsigned conn, enum ferry_dump_rec_kind kind,
                        int dir, double t, const uint8_t *p, size_t n, ferry_buf *out) {
  size_t i = 0;
  while (i < s->n && s->conns[i]->id != conn)
    i++;
  if (i == s->n) {
    if (s->n == FERRY_DUMP_MAX_CONNS)
      return FERRY_ETOOBIG;
    set_conn *sc = calloc(1, sizeof *sc);
    if (!sc)
      return FERRY_ENOMEM;
    ferry_dump_conn_init(&sc->c, conn, &s->opts);
    s->conns[s->n++] = &sc->c;
  }
  set_conn *sc = (set_conn *)s->conns[i];
  switch (kind) {
  case FERRY_DUMP_REC_OPEN:
    return ferry_dump_conn_event(&sc->c, t, "open", out);
  case FERRY_DUMP_REC_DATA:
    return ferry_dump_conn_feed(&sc->c, dir, t, p, n, out);
  case FERRY_DUMP_REC_CLOSE: {
    int rc = 0;
    if (!sc->ended[dir & 1]) {
      rc = ferry_dump_conn_end(&sc->c, dir, t, out);
      sc->ended[dir & 1] = 1;
    }
    if (sc->ended[0] && sc->ended[1]) {
      int r = ferry_dump_conn_event(&sc->c, t, "closed", out);
      if (!rc)
        rc = r;
      drop(s, i);
    }
    return rc;
  }
  }
  return FERRY_EINVAL;
}

int ferry_dump_set_event(ferry_dump_set *s, unsigned conn, double t, const char *what,
                         ferry_buf *out) {
  for (size_t i = 0; i < s->n; i++)
    if (s->conns[i]->id == conn)
      return ferry_dump_conn_event(s->conns[i], t, what, out);
  return 0;
}
