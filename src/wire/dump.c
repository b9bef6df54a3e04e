/* The per-direction state machine of `ferry dump`: which decoder reads the
 * next bytes (first word, handshake, tracker frames, RPC packets, raw), and
 * the output line.  Packet descriptions are in dump_rpc.c. */
#include "wire/dump.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/bytes.h"
#include "wire/constants.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"
#include "wire/tracker_msg.h"

#define LINE_MAX_BYTES (64u << 10)
/* Raw chunks show this many bytes in hex. */
#define RAW_SHOW 32

static const char *const dir_name[2] = {"c2s", "s2c"};

void ferry_dump_opts_default(ferry_dump_opts *o) {
  o->json = 0;
  o->max_str = FERRY_DUMP_DEFAULT_MAX_STR;
  o->max_decode = FERRY_DUMP_DEFAULT_MAX_DECODE;
}

void ferry_dump_conn_init(ferry_dump_conn *c, unsigned id, const ferry_dump_opts *o) {
  memset(c, 0, sizeof *c);
  c->id = id;
  c->opts = *o;
  if (c->opts.max_decode < FERRY_RPC_MIN_MAX_PACKET)
    c->opts.max_decode = FERRY_RPC_MIN_MAX_PACKET;
  c->pending_code = -1;
  for (int d = 0; d < 2; d++) {
    ferry_dump_dir_state *s = &c->dir[d];
    ferry_handshake_reader_init(&s->hs, d == FERRY_DUMP_C2S, FERRY_HANDSHAKE_MAX_KEY);
    ferry_frame_reader_init(&s->fr, 1, FERRY_RPC_TRACKER_MAGIC, FERRY_TRACKER_MAX_FRAME);
    ferry_buf_init(&s->pkt, c->opts.max_decode + 8);
  }
  /* Decoded values take a few times the bytes they came from (see the
   * server's session.c); the arena is bounded by the packet ceiling. */
  ferry_rpc_arena_init(&c->arena, 8 * c->opts.max_decode + (64u << 10));
  ferry_buf_init(&c->line, LINE_MAX_BYTES);
}

void ferry_dump_conn_close(ferry_dump_conn *c) {
  for (int d = 0; d < 2; d++) {
    ferry_handshake_reader_close(&c->dir[d].hs);
    ferry_frame_reader_close(&c->dir[d].fr);
    ferry_buf_close(&c->dir[d].pkt);
  }
  ferry_rpc_arena_close(&c->arena);
  ferry_buf_close(&c->line);
  dump_json_reset(c);
}

int dump_quote(ferry_buf *b, const char *s, size_t n, size_t max) {
  size_t show = n < max ? n : max;
  int rc = ferry_buf_append(b, "\"", 1);
  for (size_t i = 0; !rc && i < show; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      rc = ferry_buf_printf(b, "\\%c", ch);
    else if (ch == '\n')
      rc = ferry_buf_append(b, "\\n", 2);
    else if (ch < 0x20 || ch >= 0x7f)
      rc = ferry_buf_printf(b, "\\x%02x", ch);
    else
      rc = ferry_buf_append(b, &ch, 1);
  }
  if (!rc)
    rc = ferry_buf_append(b, "\"", 1);
  if (!rc && show < n)
    rc = ferry_buf_printf(b, "...(%zu bytes)", n);
  return rc;
}

int dump_emit(ferry_dump_conn *c, int dir, double t, const char *layer, ferry_buf *out) {
  /* A line cut by its own ceiling is still emitted: the text is ASCII, so
   * any prefix of it is too. */
  const char *text = c->line.data ? (const char *)c->line.data : "";
  size_t len = c->line.len;
  int rc;
  if (c->opts.json) {
    /* json_object_set_new takes the value even when it fails, so each
     * value is made where it is set and nothing leaks on a failure.  The
     * common fields come first, then the message's own, then the text. */
    const char *proto = dir >= 0 ? c->dir[dir].proto : NULL;
    if (!proto && (!strcmp(layer, "handshake") || !strcmp(layer, "tracker") ||
                   !strcmp(layer, "rpc")))
      proto = layer;
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "t", json_real(t)) ||
        json_object_set_new(o, "conn", json_integer(c->id)) ||
        json_object_set_new(o, "dir", json_string(dir >= 0 ? dir_name[dir] : "-")) ||
        json_object_set_new(o, "layer", json_string(layer)) ||
        (proto && json_object_set_new(o, "proto", json_string(proto))) ||
        (proto && !strcmp(proto, "rpc") && c->dialect &&
         json_object_set_new(o, "dialect", json_string(c->dialect->name))) ||
        (c->jf && json_object_update(o, c->jf)) ||
        json_object_set_new(o, "text", json_stringn(text, len))) {
      json_decref(o);
      dump_json_reset(c);
      c->line.len = 0;
      return FERRY_ENOMEM;
    }
    dump_json_reset(c);
    char *j = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER |
                                JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!j) {
      c->line.len = 0;
      return FERRY_ENOMEM;
    }
    dump_json_fix_u64(j);
    rc = ferry_buf_printf(out, "%s\n", j);
    free(j);
  } else {
    rc = ferry_buf_printf(out, "%11.6f #%u %s %-9s %.*s\n", t, c->id,
                          dir >= 0 ? dir_name[dir] : "---", layer, (int)len, text);
  }
  c->line.len = 0;
  return rc;
}

int ferry_dump_conn_event(ferry_dump_conn *c, double t, const char *what, ferry_buf *out) {
  c->line.len = 0;
  if (ferry_buf_printf(&c->line, "%s", what) || dump_jtext(c, "event", what))
    return FERRY_ENOMEM;
  return dump_emit(c, -1, t, "event", out);
}

/* Describes an error at `off` and turns the direction raw. */
static int fail(ferry_dump_conn *c, int dir, double t, uint64_t off, const char *why,
                ferry_buf *out) {
  c->line.len = 0;
  if (ferry_buf_printf(&c->line, "at offset %llu: %s; the rest is shown raw",
                       (unsigned long long)off, why) ||
      dump_jint(c, "offset", (long long)off) || dump_jtext(c, "reason", why))
    return FERRY_ENOMEM;
  c->dir[dir].stage = FERRY_DUMP_RAW;
  return dump_emit(c, dir, t, "error", out);
}

static int raw_chunk(ferry_dump_conn *c, int dir, double t, const uint8_t *p, size_t n,
                     ferry_buf *out) {
  c->line.len = 0;
  int rc = ferry_buf_printf(&c->line, "offset %llu, %zu bytes:",
                            (unsigned long long)c->dir[dir].off, n);
  for (size_t i = 0; !rc && i < n && i < RAW_SHOW; i++)
    rc = ferry_buf_printf(&c->line, " %02x", p[i]);
  if (!rc && n > RAW_SHOW)
    rc = ferry_buf_printf(&c->line, " ...");
  if (!rc && c->opts.json) {
    char hex[2 * RAW_SHOW + 1];
    size_t k = n < RAW_SHOW ? n : RAW_SHOW;
    for (size_t i = 0; i < k; i++)
      snprintf(hex + 2 * i, 3, "%02x", p[i]);
    hex[2 * k] = 0;
    rc = dump_jint(c, "offset", (long long)c->dir[dir].off);
    if (!rc)
      rc = dump_jint(c, "bytes", (long long)n);
    if (!rc)
      rc = dump_jtext(c, "hex", hex);
  }
  return rc ? rc : dump_emit(c, dir, t, "raw", out);
}

static const char *hs_word_name(int dir, int32_t w) {
  if (dir == FERRY_DUMP_C2S)
    return w == FERRY_RPC_MAGIC ? "RPC magic" : "unknown word";
  switch (w) {
  case FERRY_RPC_CODE_SUCCESS:
    return "SUCCESS";
  case FERRY_RPC_CODE_DUPLICATE:
    return "DUPLICATE (a peer with that key is already waiting)";
  case FERRY_RPC_CODE_MISMATCH:
    return "MISMATCH (no peer with that key)";
  default:
    return "unknown code";
  }
}

/* One handshake message: the word and the key, and for an initiator's key
 * its parts (role, body, -timeout) as the proxy reads them. */
static int describe_handshake(ferry_dump_conn *c, int dir, double t, ferry_buf *out) {
  ferry_dump_dir_state *s = &c->dir[dir];
  c->line.len = 0;
  int rc = ferry_buf_printf(&c->line, "%s 0x%x", hs_word_name(dir, s->hs.word),
                            (unsigned)s->hs.word);
  if (!rc)
    rc = dump_jint(c, "word", (long long)s->hs.word);
  if (!rc)
    rc = dump_jtext(c, "word_name", hs_word_name(dir, s->hs.word));
  const char *key = ferry_handshake_key(&s->hs);
  size_t klen = ferry_handshake_key_len(&s->hs);
  int has_key = dir == FERRY_DUMP_C2S || s->hs.word == FERRY_RPC_CODE_SUCCESS;
  if (!rc && has_key) {
    rc = ferry_buf_printf(&c->line, " key ");
    if (!rc)
      rc = dump_quote(&c->line, key, klen, FERRY_HANDSHAKE_MAX_KEY);
    if (!rc)
      rc = dump_jstr(c, "key", key, klen, FERRY_HANDSHAKE_MAX_KEY);
    ferry_key_string ks;
    if (!rc && klen && ferry_key_string_parse(key, klen, &ks) == FERRY_OK) {
      rc = ferry_buf_printf(&c->line, " (role %s, match key ", ks.role);
      if (!rc)
        rc = dump_jtext(c, "role", ks.role);
      if (!rc)
        rc = dump_jstr(c, "match_key", ks.body, ks.body_len, FERRY_HANDSHAKE_MAX_KEY);
      if (!rc && ks.has_timeout)
        rc = dump_jset(c, "timeout", json_real(ks.timeout_s));
      if (!rc)
        rc = dump_quote(&c->line, ks.body, ks.body_len, FERRY_HANDSHAKE_MAX_KEY);
      if (!rc && ks.has_timeout)
        rc = ferry_buf_printf(&c->line, ", timeout %gs", ks.timeout_s);
      if (!rc)
        rc = ferry_buf_printf(&c->line, ")");
    }
  }
  if (rc)
    return rc;
  return dump_emit(c, dir, t, "handshake", out);
}

static const char *tracker_code_name(int code) {
  switch (code) {
#define TRACKER_NAME_(name, v)                                                 \
  case v:                                                                      \
    return #name;
    FERRY_TRACKER_CODE_MAP(TRACKER_NAME_)
#undef TRACKER_NAME_
  default:
    return "unknown";
  }
}

/* The fields of a request the tracker accepts, as it read them. */
static int tracker_fields(ferry_dump_conn *c, const ferry_tracker_request *req) {
  int rc = dump_jtext(c, "kind", "request");
  if (!rc)
    rc = dump_jint(c, "code", req->code);
  if (!rc)
    rc = dump_jtext(c, "code_name", tracker_code_name(req->code));
  if (!rc && req->key)
    rc = dump_jstr(c, "key", req->key, strlen(req->key), 4 * c->opts.max_str);
  if (!rc && req->matchkey)
    rc = dump_jstr(c, "matchkey", req->matchkey, strlen(req->matchkey), 4 * c->opts.max_str);
  if (!rc && req->port_json)
    rc = dump_jset(c, "port", json_loads(req->port_json, JSON_DECODE_ANY, NULL));
  if (!rc && req->addr_json)
    rc = dump_jset(c, "addr", json_loads(req->addr_json, JSON_DECODE_ANY, NULL));
  if (!rc && req->user)
    rc = dump_jstr(c, "user", req->user, strlen(req->user), c->opts.max_str);
  if (!rc && req->code == FERRY_TRACKER_REQUEST)
    rc = dump_jset(c, "priority", json_real(req->priority));
  return rc;
}

/* One tracker frame: requests are checked with the tracker's own decoder
 * (so what the tracker would refuse is marked), replies shown as sent. */
static int describe_tracker(ferry_dump_conn *c, int dir, double t, const uint8_t *body,
                            size_t len, ferry_buf *out) {
  c->line.len = 0;
  int rc = 0;
  if (dir == FERRY_DUMP_C2S) {
    ferry_tracker_request req;
    char err[160];
    int drc = ferry_tracker_request_decode(body, len, &req, err, sizeof err);
    if (drc == FERRY_OK) {
      rc = ferry_buf_printf(&c->line, "%s ", tracker_code_name(req.code));
      if (!rc && c->opts.json)
        rc = tracker_fields(c, &req);
      ferry_tracker_request_close(&req);
    } else {
      rc = ferry_buf_printf(&c->line, "request the tracker refuses (%s): ", err);
      if (!rc)
        rc = dump_jtext(c, "reason", err);
    }
  } else {
    rc = dump_jtext(c, "kind", "reply");
    if (!rc)
      rc = ferry_buf_printf(&c->line, "reply ");
  }
  if (!rc && c->opts.json) {
    /* The frame is JSON already: repeated as a value when it parses and is
     * small enough for a line; the text has it cut either way. */
    json_t *msg = dump_json_parse(body, len, LINE_MAX_BYTES / 2);
    rc = msg ? dump_jset(c, "msg", msg)
             : dump_jstr(c, "msg_text", (const char *)body, len, 4 * c->opts.max_str);
  }
  if (!rc)
    rc = dump_quote(&c->line, (const char *)body, len, 4 * c->opts.max_str);
  return rc ? rc : dump_emit(c, dir, t, "tracker", out);
}

/* Passes bytes to the tracker frame reader, never more than it can hold
 * after draining, and describes each frame. */
static int feed_tracker(ferry_dump_conn *c, int dir, double t, const uint8_t *p, size_t n,
                        ferry_buf *out) {
  ferry_dump_dir_state *s = &c->dir[dir];
  while (n > 0 && s->stage == FERRY_DUMP_TRACKER) {
    size_t room = s->fr.in.max - (s->fr.in.len - s->fr.consumed);
    size_t k = n < room ? n : room;
    if (ferry_frame_reader_feed(&s->fr, p, k))
      return fail(c, dir, t, s->msg_off, "out of memory for a tracker frame", out);
    p += k;
    n -= k;
    for (;;) {
      const uint8_t *body = NULL;
      size_t len = 0;
      int ev = ferry_frame_reader_next(&s->fr, &body, &len);
      if (ev == FERRY_EAGAIN)
        break;
      if (ev == FERRY_FRAME_MAGIC) {
        c->line.len = 0;
        if (ferry_buf_printf(&c->line, "tracker magic 0x%x", FERRY_RPC_TRACKER_MAGIC) ||
            dump_jint(c, "word", FERRY_RPC_TRACKER_MAGIC) ||
            dump_jtext(c, "word_name", "tracker magic") ||
            dump_emit(c, dir, t, "handshake", out))
          return FERRY_ENOMEM;
        s->msg_off += 4;
        continue;
      }
      if (ev == FERRY_FRAME_MESSAGE) {
        int rc = describe_tracker(c, dir, t, body, len, out);
        if (rc)
          return rc;
        s->msg_off += 4 + len;
        continue;
      }
      char why[96];
      snprintf(why, sizeof why, "bad tracker frame length %d (%s)", (int)s->fr.bad_length,
               ferry_strerror(ev));
      if (ev == FERRY_EMAGIC)
        snprintf(why, sizeof why, "wrong tracker magic");
      return fail(c, dir, t, s->msg_off, why, out);
    }
  }
  return n ? raw_chunk(c, dir, t, p, n, out) : 0;
}

/* RPC packets.  The 12-byte header (length and code) is always gathered;
 * then a packet within max_decode is buffered whole and described, a larger
 * one is described from its header and its body passes uncounted. */
/* 1 when the buffered header calls for action before more bytes come: an
 * empty packet, a length too short for its code, or one over the ceiling. */
static int header_pending(const ferry_dump_dir_state *s, size_t max_decode) {
  if (s->skip_left || s->pkt.len < 8)
    return 0;
  uint64_t nb = get_le64(s->pkt.data);
  return nb < 4 || (s->pkt.len >= 12 && nb > max_decode);
}

static int feed_rpc(ferry_dump_conn *c, int dir, double t, const uint8_t *p, size_t n,
                    ferry_buf *out) {
  ferry_dump_dir_state *s = &c->dir[dir];
  while (n > 0 || header_pending(s, c->opts.max_decode)) {
    if (s->skip_left) {
      size_t k = s->skip_left < n ? (size_t)s->skip_left : n;
      s->skip_left -= k;
      p += k;
      n -= k;
      s->off += k;
      if (!s->skip_left)
        s->msg_off = s->off;
      continue;
    }
    size_t want = 12;
    if (s->pkt.len >= 8) {
      uint64_t unvalidated_nbytes = get_le64(s->pkt.data);
      if (unvalidated_nbytes == 0) {
        /* TVM skips empty packets; so does the server. */
        ferry_buf_consume(&s->pkt, 8);
        s->msg_off += 8;
        continue;
      }
      if (unvalidated_nbytes < 4) {
        char why[80];
        snprintf(why, sizeof why, "packet length %llu leaves no room for its code",
                 (unsigned long long)unvalidated_nbytes);
        s->pkt.len = 0;
        int rc = fail(c, dir, t, s->msg_off, why, out);
        if (!rc && n)
          rc = raw_chunk(c, dir, t, p, n, out);
        s->off += n;
        return rc;
      }
      if (s->pkt.len >= 12 && unvalidated_nbytes > c->opts.max_decode) {
        int32_t code = (int32_t)get_le32(s->pkt.data + 8);
        c->line.len = 0;
        int rc = ferry_buf_printf(&c->line,
                                  "%s (code %d), %llu bytes: over the %zu-byte decode "
                                  "ceiling, passed without decoding",
                                  ferry_rpc_code_name(code), code,
                                  (unsigned long long)unvalidated_nbytes - 4,
                                  c->opts.max_decode);
        if (!rc)
          rc = dump_jint(c, "code", code);
        if (!rc)
          rc = dump_jtext(c, "code_name", ferry_rpc_code_name(code));
        if (!rc)
          rc = dump_jint(c, "bytes", (long long)unvalidated_nbytes - 4);
        if (!rc)
          rc = dump_jint(c, "offset", (long long)s->msg_off);
        if (!rc)
          rc = dump_jtext(c, "reason", "over the decode ceiling, passed without decoding");
        if (!rc)
          rc = dump_emit(c, dir, t, "rpc", out);
        if (rc)
          return rc;
        s->skip_total = unvalidated_nbytes + 8;
        s->skip_left = unvalidated_nbytes - 4;
        s->pkt.len = 0;
        continue;
      }
      if (s->pkt.len >= 12)
        want = (size_t)unvalidated_nbytes + 8;
    }
    size_t k = want - s->pkt.len;
    if (k > n)
      k = n;
    if (ferry_buf_append(&s->pkt, p, k))
      return fail(c, dir, t, s->msg_off, "out of memory for a packet", out);
    p += k;
    n -= k;
    s->off += k;
    if (s->pkt.len >= 12 && s->pkt.len == get_le64(s->pkt.data) + 8) {
      int rc = dump_rpc_packet(c, dir, t, s->pkt.data, s->pkt.len, out);
      s->msg_off += s->pkt.len;
      s->pkt.len = 0;
      if (rc)
        return rc;
    }
  }
  return 0;
}

int ferry_dump_conn_feed(ferry_dump_conn *c, int dir, double t, const uint8_t *p, size_t n,
                         ferry_buf *out) {
  ferry_dump_dir_state *s = &c->dir[dir & 1];
  dir &= 1;
  while (n > 0) {
    switch (s->stage) {
    case FERRY_DUMP_WORD: {
      /* The first word says what the connection is; both readers below
       * read it again, so it is only peeked at here. */
      size_t k = 4 - s->word_len < n ? 4 - s->word_len : n;
      memcpy(s->word + s->word_len, p, k);
      s->word_len += k;
      p += k;
      n -= k;
      if (s->word_len < 4)
        return 0;
      uint32_t w = get_le32(s->word);
      int hs = dir == FERRY_DUMP_C2S
                   ? w == FERRY_RPC_MAGIC
                   : (w == FERRY_RPC_CODE_SUCCESS || w == FERRY_RPC_CODE_DUPLICATE ||
                      w == FERRY_RPC_CODE_MISMATCH);
      if (w == FERRY_RPC_TRACKER_MAGIC) {
        s->stage = FERRY_DUMP_TRACKER;
        s->proto = "tracker";
        int rc = feed_tracker(c, dir, t, s->word, 4, out);
        s->off = 4;
        if (rc)
          return rc;
      } else if (hs) {
        s->stage = FERRY_DUMP_HANDSHAKE;
        s->proto = "handshake";
        size_t used = 0;
        int rc = ferry_handshake_reader_feed(&s->hs, s->word, 4, &used);
        s->off = 4;
        if (rc == 1) {
          /* A refusal code has no key after it. */
          rc = describe_handshake(c, dir, t, out);
          s->msg_off = s->off;
          s->stage = FERRY_DUMP_RPC;
          s->proto = "rpc";
          if (rc)
            return rc;
        } else if (rc != FERRY_EAGAIN) {
          return fail(c, dir, t, 0, "bad handshake", out);
        }
      } else {
        char why[64];
        snprintf(why, sizeof why, "first word 0x%08x is neither RPC nor tracker magic", w);
        int rc = fail(c, dir, t, 0, why, out);
        s->off = 0;
        if (!rc)
          rc = raw_chunk(c, dir, t, s->word, 4, out);
        s->off = 4;
        if (rc)
          return rc;
      }
      break;
    }
    case FERRY_DUMP_HANDSHAKE: {
      size_t used = 0;
      int rc = ferry_handshake_reader_feed(&s->hs, p, n, &used);
      p += used;
      n -= used;
      s->off += used;
      if (rc == FERRY_EAGAIN)
        return 0;
      if (rc != 1) {
        char why[96];
        snprintf(why, sizeof why, "handshake key length %d: %s",
                 (int)s->hs.unvalidated_key_len, ferry_strerror(rc));
        rc = fail(c, dir, t, 4, why, out);
        if (rc)
          return rc;
        break;
      }
      rc = describe_handshake(c, dir, t, out);
      s->msg_off = s->off;
      s->stage = FERRY_DUMP_RPC;
      s->proto = "rpc";
      if (rc)
        return rc;
      break;
    }
    case FERRY_DUMP_TRACKER: {
      size_t before = n;
      int rc = feed_tracker(c, dir, t, p, n, out);
      s->off += before;
      return rc;
    }
    case FERRY_DUMP_RPC:
      return feed_rpc(c, dir, t, p, n, out);
    case FERRY_DUMP_RAW: {
      int rc = raw_chunk(c, dir, t, p, n, out);
      s->off += n;
      return rc;
    }
    }
  }
  return 0;
}

int ferry_dump_conn_end(ferry_dump_conn *c, int dir, double t, ferry_buf *out) {
  ferry_dump_dir_state *s = &c->dir[dir & 1];
  dir &= 1;
  uint64_t have = 0, whole = 0;
  switch (s->stage) {
  case FERRY_DUMP_WORD:
    have = s->word_len;
    whole = 4;
    break;
  case FERRY_DUMP_HANDSHAKE:
    have = s->off;
    whole = 0;
    break;
  case FERRY_DUMP_TRACKER:
    have = s->fr.in.len - s->fr.consumed;
    whole = have >= 4 && !s->fr.expect_magic ? 4 + (uint64_t)get_le32(s->fr.in.data + s->fr.consumed) : 0;
    break;
  case FERRY_DUMP_RPC:
    have = s->skip_left ? s->skip_total - s->skip_left : s->pkt.len;
    whole = s->skip_left ? s->skip_total : s->pkt.len >= 8 ? get_le64(s->pkt.data) + 8 : 0;
    break;
  case FERRY_DUMP_RAW:
    break;
  }
  if (!have)
    return 0;
  c->line.len = 0;
  int rc;
  if (whole)
    rc = ferry_buf_printf(&c->line,
                          "truncated at offset %llu: the stream ended %llu bytes into a "
                          "%llu-byte message",
                          (unsigned long long)s->msg_off, (unsigned long long)have,
                          (unsigned long long)whole);
  else
    rc = ferry_buf_printf(&c->line,
                          "truncated at offset %llu: the stream ended %llu bytes into a "
                          "message",
                          (unsigned long long)s->msg_off, (unsigned long long)have);
  if (!rc)
    rc = dump_jint(c, "offset", (long long)s->msg_off);
  if (!rc)
    rc = dump_jtext(c, "reason", "truncated");
  if (!rc)
    rc = dump_jint(c, "have", (long long)have);
  if (!rc && whole)
    rc = dump_jint(c, "whole", (long long)whole);
  return rc ? rc : dump_emit(c, dir, t, "error", out);
}
