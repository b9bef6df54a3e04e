/* Tracker framing and data-plane handshake codecs: whole, one byte at a
 * time, and at and past every limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "wire/constants.h"
#include "wire/frame.h"
#include "wire/handshake.h"

static void magic_then_frame(void **state) {
  (void)state;
  ferry_frame_reader r;
  ferry_frame_reader_init(&r, 1, FERRY_RPC_TRACKER_MAGIC, FERRY_TRACKER_MAX_FRAME);
  /* Magic and the first frame in one read: v0.20 TVM rejected this. */
  const uint8_t in[] = {0x71, 0xf2, 0x02, 0x00, 3, 0, 0, 0, '[', '6', ']'};
  assert_int_equal(ferry_frame_reader_feed(&r, in, sizeof in), 0);
  const uint8_t *body;
  size_t len;
  assert_int_equal(ferry_frame_reader_next(&r, &body, &len), FERRY_FRAME_MAGIC);
  assert_int_equal(ferry_frame_reader_next(&r, &body, &len), FERRY_FRAME_MESSAGE);
  assert_int_equal(len, 3);
  assert_memory_equal(body, "[6]", 3);
  assert_int_equal(ferry_frame_reader_next(&r, &body, &len), FERRY_EAGAIN);
  ferry_frame_reader_close(&r);
}

static void byte_at_a_time(void **state) {
  (void)state;
  ferry_frame_reader r;
  ferry_frame_reader_init(&r, 1, FERRY_RPC_TRACKER_MAGIC, FERRY_TRACKER_MAX_FRAME);
  const uint8_t in[] = {0x71, 0xf2, 0x02, 0x00, 1, 0, 0, 0, '1', 2, 0, 0, 0, '[', ']'};
  const uint8_t *body;
  size_t len;
  int events[4], nev = 0;
  const char *bodies[2] = {"1", "[]"};
  for (size_t i = 0; i < sizeof in; i++) {
    assert_int_equal(ferry_frame_reader_feed(&r, in + i, 1), 0);
    int rc;
    while ((rc = ferry_frame_reader_next(&r, &body, &len)) > 0) {
      if (rc == FERRY_FRAME_MESSAGE) {
        assert_memory_equal(body, bodies[nev - 1], len);
      }
      events[nev++] = rc;
    }
    assert_int_equal(rc, FERRY_EAGAIN);
  }
  assert_int_equal(nev, 3);
  assert_int_equal(events[0], FERRY_FRAME_MAGIC);
  assert_int_equal(events[2], FERRY_FRAME_MESSAGE);
  ferry_frame_reader_close(&r);
}

static void wrong_magic(void **state) {
  (void)state;
  ferry_frame_reader r;
  ferry_frame_reader_init(&r, 1, FERRY_RPC_TRACKER_MAGIC, FERRY_TRACKER_MAX_FRAME);
  const uint8_t in[] = {0x71, 0xf2, 0x0f, 0x00};
  assert_int_equal(ferry_frame_reader_feed(&r, in, sizeof in), 0);
  const uint8_t *body;
  size_t len;
  assert_int_equal(ferry_frame_reader_next(&r, &body, &len), FERRY_EMAGIC);
  ferry_frame_reader_close(&r);
}

static int next_after_header(int32_t n) {
  ferry_frame_reader r;
  ferry_frame_reader_init(&r, 0, 0, FERRY_TRACKER_MAX_FRAME);
  uint8_t hdr[4];
  put_le32(hdr, (uint32_t)n);
  assert_int_equal(ferry_frame_reader_feed(&r, hdr, 4), 0);
  const uint8_t *body;
  size_t len;
  int rc = ferry_frame_reader_next(&r, &body, &len);
  ferry_frame_reader_close(&r);
  return rc;
}

static void length_limits(void **state) {
  (void)state;
  assert_int_equal(next_after_header(0), FERRY_EPROTO);
  assert_int_equal(next_after_header(-1), FERRY_EPROTO);
  assert_int_equal(next_after_header(INT32_MIN), FERRY_EPROTO);
  assert_int_equal(next_after_header(1), FERRY_EAGAIN);
  assert_int_equal(next_after_header(1 << 20), FERRY_EAGAIN);
  assert_int_equal(next_after_header((1 << 20) + 1), FERRY_ETOOBIG);
  assert_int_equal(next_after_header(INT32_MAX), FERRY_ETOOBIG);
}

static void largest_frame_fits(void **state) {
  (void)state;
  ferry_frame_reader r;
  ferry_frame_reader_init(&r, 0, 0, FERRY_TRACKER_MAX_FRAME);
  ferry_buf out;
  ferry_buf_init(&out, 2u << 20);
  static uint8_t body[1 << 20];
  memset(body, 'x', sizeof body);
  assert_int_equal(ferry_frame_encode(&out, body, sizeof body), 0);
  assert_int_equal(ferry_frame_reader_feed(&r, out.data, out.len), 0);
  const uint8_t *got;
  size_t len;
  assert_int_equal(ferry_frame_reader_next(&r, &got, &len), FERRY_FRAME_MESSAGE);
  assert_int_equal(len, sizeof body);
  /* A peer cannot make the reader buffer more than one maximal frame. */
  assert_int_equal(ferry_frame_reader_feed(&r, body, sizeof body), 0);
  assert_int_equal(ferry_frame_reader_feed(&r, body, 16), FERRY_ETOOBIG);
  ferry_buf_close(&out);
  ferry_frame_reader_close(&r);
}

static void handshake_client_key(void **state) {
  (void)state;
  ferry_buf out;
  ferry_buf_init(&out, 1024);
  const char *key = "client:cpu:0.8444218515250481 -timeout=10";
  assert_int_equal(ferry_handshake_encode(&out, FERRY_RPC_MAGIC, key, strlen(key)), 0);
  assert_int_equal(out.len, 8 + strlen(key));
  assert_int_equal(out.data[4], 41);
  for (int whole = 0; whole < 2; whole++) {
    ferry_handshake_reader r;
    ferry_handshake_reader_init(&r, 1, FERRY_HANDSHAKE_MAX_KEY);
    int rc = FERRY_EAGAIN;
    size_t used, off = 0;
    while (rc == FERRY_EAGAIN) {
      size_t n = whole ? out.len : 1;
      rc = ferry_handshake_reader_feed(&r, out.data + off, n, &used);
      off += used;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(off, out.len);
    assert_int_equal(r.word, FERRY_RPC_MAGIC);
    assert_string_equal(ferry_handshake_key(&r), key);
    ferry_key_string ks;
    assert_int_equal(ferry_key_string_parse(ferry_handshake_key(&r),
                                            ferry_handshake_key_len(&r), &ks), 0);
    assert_string_equal(ks.role, "client");
    assert_int_equal(ks.body_len, strlen("cpu:0.8444218515250481"));
    assert_true(ks.has_timeout);
    assert_true(ks.timeout_s == 10.0);
    ferry_handshake_reader_close(&r);
  }
  ferry_buf_close(&out);
}

static void handshake_limits(void **state) {
  (void)state;
  uint8_t hdr[8];
  put_le32(hdr, FERRY_RPC_MAGIC);
  ferry_handshake_reader r;
  size_t used;
  put_le32(hdr + 4, (uint32_t)-1);
  ferry_handshake_reader_init(&r, 1, FERRY_HANDSHAKE_MAX_KEY);
  assert_int_equal(ferry_handshake_reader_feed(&r, hdr, 8, &used), FERRY_EPROTO);
  ferry_handshake_reader_close(&r);
  put_le32(hdr + 4, FERRY_HANDSHAKE_MAX_KEY + 1);
  ferry_handshake_reader_init(&r, 1, FERRY_HANDSHAKE_MAX_KEY);
  assert_int_equal(ferry_handshake_reader_feed(&r, hdr, 8, &used), FERRY_ETOOBIG);
  ferry_handshake_reader_close(&r);
  /* An answer other than SUCCESS carries no key. */
  put_le32(hdr, FERRY_RPC_CODE_MISMATCH);
  ferry_handshake_reader_init(&r, 0, FERRY_HANDSHAKE_MAX_KEY);
  assert_int_equal(ferry_handshake_reader_feed(&r, hdr, 4, &used), 1);
  assert_int_equal(r.word, FERRY_RPC_CODE_MISMATCH);
  ferry_handshake_reader_close(&r);
}

static void key_string_forms(void **state) {
  (void)state;
  ferry_key_string ks;
  assert_int_equal(ferry_key_string_parse("client:", 7, &ks), 0);
  assert_int_equal(ks.body_len, 0);
  assert_int_equal(ferry_key_string_parse("server:127.0.0.1:5555", 21, &ks), 0);
  assert_int_equal(ks.body_len, 14);
  const char *f = "client:k -timeout=0.01";
  assert_int_equal(ferry_key_string_parse(f, strlen(f), &ks), 0);
  assert_true(ks.timeout_s > 0.0099 && ks.timeout_s < 0.0101);
  const char *bad = "client:k -timeout=abc";
  assert_int_equal(ferry_key_string_parse(bad, strlen(bad), &ks), FERRY_EINVAL);
  assert_int_equal(ferry_key_string_parse("nocolon", 7, &ks), FERRY_EPROTO);
  assert_int_equal(ferry_key_string_parse("", 0, &ks), FERRY_EPROTO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(magic_then_frame),   cmocka_unit_test(byte_at_a_time),
      cmocka_unit_test(wrong_magic),        cmocka_unit_test(length_limits),
      cmocka_unit_test(largest_frame_fits), cmocka_unit_test(handshake_client_key),
      cmocka_unit_test(handshake_limits),   cmocka_unit_test(key_string_forms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
