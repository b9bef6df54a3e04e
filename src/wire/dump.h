/* Describe what passes on one TCP connection of the TVM RPC system, one
 * message at a time, for `ferry dump` (docs/internals/dump.md).
 *
 * A connection is fed the bytes of its two directions as they pass (in any
 * chunking), and appends to a caller's buffer one text line, or one JSON
 * object on a line, per message: handshake words and keys (session and
 * proxy), tracker requests and replies, and every RPC packet of both
 * session dialects with its code and decoded arguments.  The dialect is
 * detected per connection with ferry_dialect_detect, as the server does.
 *
 * Pure: no I/O, no globals.  Framing and decoding reuse the wire layer's
 * bounded decoders (handshake, frame, tracker_msg, rpc_packet, the
 * dialects); this layer only picks which one reads next and prints.
 * Memory is bounded: a packet is buffered only up to max_decode bytes; a
 * larger one is summarised from its header and its body skipped.  Bad
 * input is described (offset in its direction and the reason) and the
 * rest of that direction is shown as raw chunks. */
#ifndef FERRY_WIRE_DUMP_H
#define FERRY_WIRE_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ferry/error.h"
#include "ferry/value.h"
#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/rpc_arena.h"

#define FERRY_DUMP_C2S 0 /* bytes sent by the side that connected */
#define FERRY_DUMP_S2C 1 /* bytes sent back */

/* Defaults of the knobs below (the cli exposes them as flags). */
#define FERRY_DUMP_DEFAULT_MAX_STR 80               /* chars of a string shown */
#define FERRY_DUMP_DEFAULT_MAX_DECODE (4u << 20)    /* bytes of a packet decoded */
#define FERRY_DUMP_MAX_FUNCS 256                    /* function names remembered */
#define FERRY_DUMP_MAX_ERROR_TEXT 4096              /* chars of an exception shown */
#define FERRY_DUMP_MAX_PENDING 256                  /* requests awaiting replies */

typedef struct ferry_dump_opts {
  int json;           /* 1: one JSON object per line instead of text */
  size_t max_str;     /* strings are cut to this many bytes */
  size_t max_decode;  /* packets larger than this are summarised, not buffered */
} ferry_dump_opts;

enum ferry_dump_stage {
  FERRY_DUMP_WORD = 0, /* collecting the first 4 bytes */
  FERRY_DUMP_HANDSHAKE,
  FERRY_DUMP_TRACKER,
  FERRY_DUMP_RPC,
  FERRY_DUMP_RAW, /* after an error: the rest is shown as raw chunks */
};

typedef struct ferry_dump_dir_state {
  enum ferry_dump_stage stage;
  const char *proto;     /* "handshake", "tracker", "rpc" once known */
  uint8_t word[4];
  size_t word_len;
  uint64_t off;      /* bytes of this direction fed so far */
  uint64_t msg_off;  /* where the message being read started */
  ferry_handshake_reader hs;
  ferry_frame_reader fr;
  ferry_buf pkt;         /* the RPC packet being read (<= max_decode + 8) */
  uint64_t skip_left;    /* bytes of an oversized packet still to pass */
  uint64_t skip_total;
} ferry_dump_dir_state;

typedef struct ferry_dump_func {
  uint64_t handle;
  char name[64];
} ferry_dump_func;

typedef struct ferry_dump_conn {
  unsigned id;
  ferry_dump_opts opts;
  size_t str_limit;       /* max_str, or more for an exception's text */
  ferry_dump_dir_state dir[2];
  const struct ferry_dialect *dialect; /* NULL until detected */
  /* Requests not answered yet, oldest first: clients pipeline (ferry's
   * sends kGetGlobalFunc before kInitServer's reply), replies come in order. */
  struct {
    int code;
    char name[64]; /* the function name the reply will hold a handle of */
  } pend[FERRY_DUMP_MAX_PENDING];
  size_t pend_head, pend_n;
  int pending_code;       /* the request the reply being read answers */
  char pending_name[64];
  ferry_dump_func funcs[FERRY_DUMP_MAX_FUNCS];
  size_t nfuncs, next_func;
  ferry_rpc_arena arena;  /* reset at every packet */
  ferry_buf line;         /* one message's text */
  struct json_t *jf;      /* --json: the fields of the line being built */
} ferry_dump_conn;

/* Fills o with the defaults. */
void ferry_dump_opts_default(ferry_dump_opts *o);

/* Starts connection number id.  Allocates nothing until fed. */
void ferry_dump_conn_init(ferry_dump_conn *c, unsigned id, const ferry_dump_opts *o);
void ferry_dump_conn_close(ferry_dump_conn *c);

/* Feeds n bytes that passed in direction dir (FERRY_DUMP_C2S/S2C) at time
 * t (seconds, printed as given) and appends the description of every
 * message they complete to out.  Returns 0, or FERRY_ENOMEM/FERRY_ETOOBIG
 * when out (or memory) is full; what could not be described is then lost,
 * never the caller's bytes. */
int ferry_dump_conn_feed(ferry_dump_conn *c, int dir, double t, const uint8_t *p,
                         size_t n, ferry_buf *out) FERRY_MUST_CHECK;

/* Direction dir ended (EOF).  Appends a line for a message it cut short. */
int ferry_dump_conn_end(ferry_dump_conn *c, int dir, double t,
                        ferry_buf *out) FERRY_MUST_CHECK;

/* A connection opened or closed, as a line of its own ("open", "close"). */
int ferry_dump_conn_event(ferry_dump_conn *c, double t, const char *what,
                          ferry_buf *out) FERRY_MUST_CHECK;

/* ---- shared by dump*.c --------------------------------------------------- */

/* Appends s[0..n) to b quoted, with non-printing bytes as \xNN, cut to max
 * bytes (then "..." and the full length follow). */
int dump_quote(ferry_buf *b, const char *s, size_t n, size_t max) FERRY_MUST_CHECK;
/* Emits c->line as one message of layer `layer` ("handshake", "tracker",
 * "rpc", "error", "raw", "event") and empties it. */
int dump_emit(ferry_dump_conn *c, int dir, double t, const char *layer, ferry_buf *out);
/* dump_rpc.c: the name of a DLPack device type ("cpu", "cuda", ...;
 * "device" when unknown), and a dtype as text ("float32", "int8x4") in s,
 * cut to n bytes; DUMP_DTYPE_TEXT_MAX always holds it whole. */
#define DUMP_DTYPE_TEXT_MAX 48
const char *dump_device_name(int type);
void dump_dtype_text(char *s, size_t n, DLDataType t);
/* Describes one whole RPC packet (8-byte prefix included) in c->line and
 * emits it. */
int dump_rpc_packet(ferry_dump_conn *c, int dir, double t, const uint8_t *p, size_t n,
                    ferry_buf *out);

/* ---- the structured JSON fields (dump_json.c) ----------------------------
 * With opts.json off the setters do nothing and return 0.  Setters take
 * the value even when they fail (it is freed); NULL means out of memory. */
struct json_t;
struct json_t *dump_json_str(const char *s, size_t n, size_t max, int *truncated);
struct json_t *dump_json_tensor(const DLTensor *t);
/* An unsigned 64-bit number (a handle); see dump_json_fix_u64. */
struct json_t *dump_json_u64(uint64_t v);
/* Rewrites, in place, the marks dump_json_u64 left in dumped JSON text j
 * into bare numbers (the text only shrinks). */
void dump_json_fix_u64(char *j);
/* One argument as {"type": ..., "value": ...}; fname names a function. */
struct json_t *dump_json_value(const ferry_dump_conn *c, const ferry_value *v,
                               const char *fname);
struct json_t *dump_json_parse(const uint8_t *body, size_t len, size_t max);
int dump_jset(ferry_dump_conn *c, const char *key, struct json_t *v) FERRY_MUST_CHECK;
int dump_jint(ferry_dump_conn *c, const char *key, long long v) FERRY_MUST_CHECK;
int dump_jtext(ferry_dump_conn *c, const char *key, const char *s) FERRY_MUST_CHECK;
/* s[0..n) cut to max bytes, invalid UTF-8 as U+FFFD; adds key_truncated. */
int dump_jstr(ferry_dump_conn *c, const char *key, const char *s, size_t n,
              size_t max) FERRY_MUST_CHECK;
void dump_json_reset(ferry_dump_conn *c);

#endif
