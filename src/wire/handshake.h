/* Data-plane handshakes (tracker-proxy-server.md §2.1, §3.1-3.3).
 *
 *   initiator -> acceptor : W(magic) S(key)
 *   acceptor -> initiator : W(code) [S(key) when code == SUCCESS]
 *
 * Both directions share one shape: a 4-byte word optionally followed by a
 * length-prefixed key.  The reader is push-style and bounds the key length
 * before buffering it. */
#ifndef FERRY_WIRE_HANDSHAKE_H
#define FERRY_WIRE_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct ferry_handshake_reader {
  uint8_t hdr[8];   /* word + key length */
  size_t hdr_len;   /* bytes of hdr filled */
  int want_key;     /* 1: a key follows every word; 0: only after SUCCESS */
  size_t max_key;
  ferry_buf key;    /* key bytes, NUL-terminated */
  int32_t word;     /* the first word, once read */
  int32_t unvalidated_key_len;
  int done;
} ferry_handshake_reader;

/* want_key_always: 1 when reading an initiator's W(magic) S(key); 0 when
 * reading an acceptor's answer (a key follows only a SUCCESS code). */
void ferry_handshake_reader_init(ferry_handshake_reader *r,
                                 int want_key_always, size_t max_key);
void ferry_handshake_reader_close(ferry_handshake_reader *r);

/* Consumes up to n bytes of p and stores in *used how many it took (bytes
 * after the handshake belong to the session and are left to the caller).
 * Returns 1 when the handshake is complete, FERRY_EAGAIN when more bytes are
 * needed, FERRY_EPROTO for a negative key length, FERRY_ETOOBIG for a key
 * longer than max_key.  The word is not judged here: check r->word. */
int ferry_handshake_reader_feed(ferry_handshake_reader *r, const uint8_t *p,
                                size_t n, size_t *used) FERRY_MUST_CHECK;

/* The key read (NUL-terminated, may be empty); valid until close. */
const char *ferry_handshake_key(const ferry_handshake_reader *r);
size_t ferry_handshake_key_len(const ferry_handshake_reader *r);

/* Appends W(word) and, if key != NULL, S(key). */
int ferry_handshake_encode(ferry_buf *out, int32_t word, const char *key,
                           size_t key_len) FERRY_MUST_CHECK;

/* A parsed key string "<role>:<body>[ <option>]*" (§2.1). */
typedef struct ferry_key_string {
  char role[8];      /* "client" or "server" (or what the peer sent) */
  const char *body;  /* points into the caller's string; not NUL-terminated */
  size_t body_len;
  double timeout_s;  /* from "-timeout=<seconds>"; 0 when absent */
  int has_timeout;
} ferry_key_string;

/* Splits a key string.  FERRY_EPROTO when there is no ':' in the first token
 * or the role is longer than 7 bytes, FERRY_EINVAL for a -timeout= value that
 * is not a non-negative finite number.  Unknown options are ignored, as TVM
 * ignores them. */
int ferry_key_string_parse(const char *s, size_t len,
                           ferry_key_string *out) FERRY_MUST_CHECK;

#endif
