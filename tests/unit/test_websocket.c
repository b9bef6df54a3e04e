/* WebSocket codec: RFC 6455 test vectors, frames whole and one byte at a
 * time, every bound, and the HTTP upgrade head. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/websocket.h"

static void sha1_vectors(void **state) {
  (void)state;
  uint8_t d[20];
  ferry_sha1("abc", 3, d);
  static const uint8_t abc[20] = {0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81,
                                  0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
                                  0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d};
  assert_memory_equal(d, abc, 20);
  /* 56 bytes: the padding spills into a second block. */
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  static const uint8_t two_d[20] = {0x84, 0x98, 0x3e, 0x44, 0x1c, 0x3b, 0xd2,
                                    0x6e, 0xba, 0xae, 0x4a, 0xa1, 0xf9, 0x51,
                                    0x29, 0xe5, 0xe5, 0x46, 0x70, 0xf1};
  ferry_sha1(two, strlen(two), d);
  assert_memory_equal(d, two_d, 20);
}

static void accept_key_rfc_example(void **state) {
  (void)state;
  char out[29];
  ferry_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* A masked client frame. */
static size_t client_frame(uint8_t *out, int opcode, int fin,
                           const uint8_t *payload, size_t n) {
  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t hl = ferry_ws_frame_header(out, opcode, n, mask);
  if (!fin)
    out[0] &= 0x7f;
  memcpy(out + hl, payload, n);
  ferry_ws_mask(out + hl, n, mask, 0);
  return hl + n;
}

/* Decodes a whole buffer (fed in pieces of `step` bytes), collecting the
 * data payload; returns the last event or error. */
static int decode_all(ferry_ws_decoder *d, uint8_t *in, size_t n, size_t step,
                      uint8_t *data_out, size_t *data_len, int *events) {
  size_t off = 0;
  int last = 0;
  *data_len = 0;
  *events = 0;
  while (off < n) {
    size_t piece = n - off < step ? n - off : step;
    size_t pos = 0;
    while (pos < piece) {
      size_t used;
      const uint8_t *data;
      size_t len;
      int rc = ferry_ws_decode(d, in + off + pos, piece - pos, &used, &data, &len);
      pos += used;
      if (rc == FERRY_EAGAIN)
        break;
      if (rc < 0)
        return rc;
      last = rc;
      (*events)++;
      if (rc == FERRY_WS_EV_DATA) {
        memcpy(data_out + *data_len, data, len);
        *data_len += len;
      }
    }
    off += piece;
  }
  return last;
}

static void frames_whole_and_bytewise(void **state) {
  (void)state;
  uint8_t payload[70000];
  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (uint8_t)(i * 7);
  size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 70000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t steps[] = {1, 3, 1000000};
    for (size_t k = 0; k < 3; k++) {
      uint8_t *in = malloc(sizes[s] + 14);
      size_t n = client_frame(in, FERRY_WS_BINARY, 1, payload, sizes[s]);
      uint8_t *got = malloc(sizes[s] + 1);
      size_t got_len;
      int events;
      ferry_ws_decoder d;
      ferry_ws_decoder_init(&d, 1, FERRY_WS_MAX_MESSAGE);
      int rc = decode_all(&d, in, n, steps[k], got, &got_len, &events);
      assert_true(rc >= 0);
      assert_int_equal(got_len, sizes[s]);
      assert_memory_equal(got, payload, sizes[s]);
      free(in);
      free(got);
    }
  }
}

static void control_frames_and_fragments(void **state) {
  (void)state;
  uint8_t in[256];
  size_t n = 0;
  n += client_frame(in + n, FERRY_WS_BINARY, 0, (const uint8_t *)"ab", 2);
  n += client_frame(in + n, FERRY_WS_PING, 1, (const uint8_t *)"hi", 2);
  n += client_frame(in + n, FERRY_WS_CONT, 1, (const uint8_t *)"cd", 2);
  n += client_frame(in + n, FERRY_WS_CLOSE, 1, (const uint8_t *)"\x03\xe8", 2);
  ferry_ws_decoder d;
  ferry_ws_decoder_init(&d, 1, 100);
  size_t off = 0, used, len;
  const uint8_t *data;
  assert_int_equal(ferry_ws_decode(&d, in, n, &used, &data, &len), FERRY_WS_EV_DATA);
  assert_memory_equal(data, "ab", 2);
  off += used;
  assert_int_equal(ferry_ws_decode(&d, in + off, n - off, &used, &data, &len),
                   FERRY_WS_EV_PING);
  assert_int_equal(len, 2);
  assert_memory_equal(data, "hi", 2);
  off += used;
  assert_int_equal(ferry_ws_decode(&d, in + off, n - off, &used, &data, &len),
                   FERRY_WS_EV_DATA);
  assert_memory_equal(data, "cd", 2);
  off += used;
  assert_int_equal(ferry_ws_decode(&d, in + off, n - off, &used, &data, &len),
                   FERRY_WS_EV_CLOSE);
  assert_memory_equal(data, "\x03\xe8", 2);
  off += used;
  assert_int_equal(off, n);
}

static int decode_one(uint8_t *in, size_t n, uint64_t max, const char **why) {
  ferry_ws_decoder d;
  ferry_ws_decoder_init(&d, 1, max);
  uint8_t out[256];
  size_t out_len;
  int events;
  int rc = decode_all(&d, in, n, n, out, &out_len, &events);
  *why = d.why;
  return rc;
}

static void bounds_and_errors(void **state) {
  (void)state;
  const char *why;
  uint8_t in[300];
  uint8_t pl[200];
  memset(pl, 'x', sizeof pl);
  /* At the bound: fine; one past: FERRY_ETOOBIG before any payload. */
  size_t n = client_frame(in, FERRY_WS_BINARY, 1, pl, 100);
  assert_true(decode_one(in, n, 100, &why) >= 0);
  n = client_frame(in, FERRY_WS_BINARY, 1, pl, 101);
  assert_int_equal(decode_one(in, 14, 100, &why), FERRY_ETOOBIG);
  /* The bound is per message: fragments add up. */
  n = client_frame(in, FERRY_WS_BINARY, 0, pl, 60);
  n += client_frame(in + n, FERRY_WS_CONT, 1, pl, 60);
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_ETOOBIG);
  /* A 2^63 length header. */
  uint8_t huge[14] = {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
  assert_int_equal(decode_one(huge, sizeof huge, FERRY_WS_MAX_MESSAGE, &why), FERRY_ETOOBIG);
  /* Text is refused. */
  n = client_frame(in, FERRY_WS_TEXT, 1, pl, 3);
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_EUNSUPPORTED);
  /* Unmasked client frame. */
  uint8_t unmasked[] = {0x82, 0x01, 'a'};
  assert_int_equal(decode_one(unmasked, 3, 100, &why), FERRY_EPROTO);
  assert_non_null(why);
  /* Reserved bits, unknown opcode, continuation without start. */
  n = client_frame(in, FERRY_WS_BINARY, 1, pl, 1);
  in[0] |= 0x40;
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_EPROTO);
  n = client_frame(in, 0x3, 1, pl, 1);
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_EPROTO);
  n = client_frame(in, FERRY_WS_CONT, 1, pl, 1);
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_EPROTO);
  /* Control frames: at most 125 bytes, never fragmented. */
  n = client_frame(in, FERRY_WS_PING, 1, pl, 125);
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_WS_EV_PING);
  n = client_frame(in, FERRY_WS_PING, 1, pl, 126);
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_EPROTO);
  n = client_frame(in, FERRY_WS_PING, 0, pl, 1);
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_EPROTO);
  /* A new message inside a fragmented one. */
  n = client_frame(in, FERRY_WS_BINARY, 0, pl, 1);
  n += client_frame(in + n, FERRY_WS_BINARY, 1, pl, 1);
  assert_int_equal(decode_one(in, n, 100, &why), FERRY_EPROTO);
}

static void server_header_sizes(void **state) {
  (void)state;
  uint8_t h[FERRY_WS_MAX_HEADER];
  assert_int_equal(ferry_ws_frame_header(h, FERRY_WS_BINARY, 125, NULL), 2);
  assert_int_equal(h[0], 0x82);
  assert_int_equal(h[1], 125);
  assert_int_equal(ferry_ws_frame_header(h, FERRY_WS_BINARY, 126, NULL), 4);
  assert_int_equal(h[1], 126);
  assert_int_equal(ferry_ws_frame_header(h, FERRY_WS_BINARY, 65536, NULL), 10);
  assert_int_equal(h[1], 127);
  assert_int_equal(h[7], 1);
}

static int feed_head(ferry_http_request *r, const char *s, size_t step) {
  size_t n = strlen(s), off = 0;
  int rc = FERRY_EAGAIN;
  while (off < n && rc == FERRY_EAGAIN) {
    size_t used;
    size_t piece = n - off < step ? n - off : step;
    rc = ferry_http_request_feed(r, (const uint8_t *)s + off, piece, &used);
    off += used;
  }
  return rc;
}

static void http_upgrade_head(void **state) {
  (void)state;
  const char *req = "GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8888\r\n"
                    "upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "Origin: http://127.0.0.1:8888\r\n\r\n";
  size_t steps[] = {1, 7, 100000};
  for (size_t k = 0; k < 3; k++) {
    ferry_http_request r;
    ferry_http_request_init(&r);
    assert_int_equal(feed_head(&r, req, steps[k]), 1);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/ws");
    assert_true(ferry_http_is_ws_upgrade(&r));
    assert_true(ferry_http_origin_allowed(&r));
    ferry_buf out;
    ferry_buf_init(&out, 4096);
    assert_int_equal(ferry_ws_upgrade_response(&out, r.ws_key), 0);
    assert_non_null(strstr((char *)out.data, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    ferry_buf_close(&out);
    ferry_http_request_close(&r);
  }
  /* Bytes after the head stay with the caller. */
  ferry_http_request r;
  ferry_http_request_init(&r);
  const char *two = "GET / HTTP/1.1\r\nHost: a\r\n\r\nXYZ";
  size_t used;
  assert_int_equal(ferry_http_request_feed(&r, (const uint8_t *)two, strlen(two), &used), 1);
  assert_int_equal(strlen(two) - used, 3);
  assert_false(ferry_http_is_ws_upgrade(&r));
  assert_true(ferry_http_origin_allowed(&r)); /* no Origin: not a browser */
  ferry_http_request_close(&r);
}

static void http_origin_and_bounds(void **state) {
  (void)state;
  ferry_http_request r;
  ferry_http_request_init(&r);
  assert_int_equal(feed_head(&r, "GET /ws HTTP/1.1\r\nHost: localhost:8888\r\n"
                                 "Origin: http://evil.example:8888\r\n\r\n", 64), 1);
  assert_false(ferry_http_origin_allowed(&r));
  ferry_http_request_close(&r);
  ferry_http_request_init(&r);
  assert_int_equal(feed_head(&r, "GET /ws HTTP/1.1\r\nHost: LocalHost:8888\r\n"
                                 "Sec-WebSocket-Origin: http://localhost:8888\r\n\r\n", 64), 1);
  assert_true(ferry_http_origin_allowed(&r));
  ferry_http_request_close(&r);
  /* Malformed heads. */
  const char *bad[] = {"GARBAGE\r\n\r\n", "GET ws HTTP/1.1\r\n\r\n",
                       "GET / FTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n"};
  for (size_t i = 0; i < 4; i++) {
    ferry_http_request_init(&r);
    assert_int_equal(feed_head(&r, bad[i], 1000), FERRY_EPROTO);
    ferry_http_request_close(&r);
  }
  /* At and past the head bound. */
  char *big = malloc(FERRY_HTTP_MAX_HEAD + 100);
  const char *start = "GET / HTTP/1.1\r\nX: ";
  size_t sl = strlen(start);
  memcpy(big, start, sl);
  memset(big + sl, 'a', FERRY_HTTP_MAX_HEAD - sl - 4);
  memcpy(big + FERRY_HTTP_MAX_HEAD - 4, "\r\n\r\n", 5);
  ferry_http_request_init(&r);
  assert_int_equal(feed_head(&r, big, 4096), 1);
  ferry_http_request_close(&r);
  memset(big + sl, 'a', FERRY_HTTP_MAX_HEAD - sl - 3);
  memcpy(big + FERRY_HTTP_MAX_HEAD - 3, "\r\n\r\n", 5);
  ferry_http_request_init(&r);
  assert_int_equal(feed_head(&r, big, 4096), FERRY_ETOOBIG);
  ferry_http_request_close(&r);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sha1_vectors),
      cmocka_unit_test(accept_key_rfc_example),
      cmocka_unit_test(frames_whole_and_bytewise),
      cmocka_unit_test(control_frames_and_fragments),
      cmocka_unit_test(bounds_and_errors),
      cmocka_unit_test(server_header_sizes),
      cmocka_unit_test(http_upgrade_head),
      cmocka_unit_test(http_origin_and_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
