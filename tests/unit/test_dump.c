/* The `ferry dump` decoder (src/wire/dump*.c): every golden recording
 * decoded to the checked-in text in tests/unit/dump_expected/ (made once
 * with `ferry dump --read` and reviewed by eye), the same text when fed one
 * byte at a time, and bad input printed with its offset and reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "wire/constants.h"
#include "wire/dump.h"
#include "wire/dump_record.h"
#include "wire/rpc_packet.h"

#include "dump_golden.h"

static void test_golden_expected(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof recordings / sizeof recordings[0]; i++) {
    char path[512];
    expected_path(path, sizeof path, recordings[i], ".txt");
    size_t elen = 0;
    char *expected = slurp(path, &elen);
    assert_non_null(expected);
    ferry_buf out;
    ferry_buf_init(&out, 64u << 20);
    decode_opts(recordings[i], 0, 0, &out);
    if (out.len != elen || memcmp(out.data, expected, elen)) {
      fprintf(stderr, "%s differs from %s:\n%.*s\n", recordings[i], path, (int)out.len,
              (const char *)out.data);
      fail();
    }
    /* Chunking must not matter: one byte at a time gives the same text. */
    ferry_buf one;
    ferry_buf_init(&one, 64u << 20);
    decode_opts(recordings[i], 1, 0, &one);
    assert_int_equal(one.len, elen);
    assert_memory_equal(one.data, expected, elen);
    /* No golden message is shown as an error. */
    assert_null(strstr(expected, " error     "));
    assert_null(strstr(expected, "MALFORMED"));
    ferry_buf_close(&out);
    ferry_buf_close(&one);
    free(expected);
  }
}

/* ---- bad input ------------------------------------------------------------ */

static void fx_init(fx *f, size_t max_decode) {
  ferry_dump_opts o;
  ferry_dump_opts_default(&o);
  o.max_decode = max_decode;
  ferry_dump_conn_init(&f->c, 7, &o);
  ferry_buf_init(&f->out, 1u << 20);
}

static void test_garbage_first_word(void **state) {
  (void)state;
  fx f;
  fx_init(&f, FERRY_DUMP_DEFAULT_MAX_DECODE);
  feed(&f, FERRY_DUMP_C2S, "GET / HTTP/1.1\r\n", 16);
  const char *t = fx_text(&f);
  assert_non_null(strstr(t, "at offset 0: first word 0x20544547 is neither RPC nor tracker"));
  assert_non_null(strstr(t, "raw       offset 0, 4 bytes: 47 45 54 20"));
  assert_non_null(strstr(t, "raw       offset 4, 12 bytes:"));
  fx_close(&f);
}

static void test_negative_key_length(void **state) {
  (void)state;
  fx f;
  fx_init(&f, FERRY_DUMP_DEFAULT_MAX_DECODE);
  uint8_t hs[8];
  put_le32(hs, FERRY_RPC_MAGIC);
  put_le32(hs + 4, 0x80000000u);
  feed(&f, FERRY_DUMP_C2S, hs, sizeof hs);
  assert_non_null(strstr(fx_text(&f), "at offset 4: handshake key length -2147483648"));
  fx_close(&f);
}

static void test_tracker_frame_too_big(void **state) {
  (void)state;
  fx f;
  fx_init(&f, FERRY_DUMP_DEFAULT_MAX_DECODE);
  uint8_t m[12];
  put_le32(m, FERRY_RPC_TRACKER_MAGIC);
  put_le32(m + 4, 0x7fffffff);
  memcpy(m + 8, "[1]x", 4);
  feed(&f, FERRY_DUMP_C2S, m, sizeof m);
  const char *t = fx_text(&f);
  assert_non_null(strstr(t, "tracker magic"));
  assert_non_null(strstr(t, "at offset 4: bad tracker frame length 2147483647"));
  fx_close(&f);
}

/* A packet over the decode ceiling is summarised from its header, its body
 * passes, and the packet after it is decoded as usual. */
static void test_oversized_packet_skipped(void **state) {
  (void)state;
  fx f;
  fx_init(&f, FERRY_RPC_MIN_MAX_PACKET);
  handshake(&f);
  size_t body = 100000;
  uint8_t *p = calloc(1, 12 + body + 12);
  assert_non_null(p);
  put_le64(p, 4 + body);
  put_le32(p + 8, FERRY_RPC_COPY_ACK);
  put_le64(p + 12 + body, 4);
  put_le32(p + 20 + body, FERRY_RPC_SHUTDOWN);
  /* In odd chunks, so the skip crosses feeds. */
  for (size_t off = 0; off < 24 + body; off += 4099)
    feed(&f, FERRY_DUMP_S2C, p + off, 24 + body - off < 4099 ? 24 + body - off : 4099);
  const char *t = fx_text(&f);
  assert_non_null(strstr(t, "kCopyAck (code 8), 100000 bytes: over the 65536-byte decode"));
  assert_non_null(strstr(t, "rpc       kShutdown\n"));
  free(p);
  fx_close(&f);
}

/* A body that does not decode is marked with the decoder's reason, and the
 * next packet is decoded. */
static void test_malformed_body_then_resync(void **state) {
  (void)state;
  fx f;
  fx_init(&f, FERRY_DUMP_DEFAULT_MAX_DECODE);
  handshake(&f);
  uint8_t p[12 + 4 + 12];
  put_le64(p, 8);
  put_le32(p + 8, FERRY_RPC_GET_GLOBAL_FUNC);
  put_le32(p + 12, 5000); /* num_args over any ceiling, nothing after */
  put_le64(p + 16, 4);
  put_le32(p + 24, FERRY_RPC_SHUTDOWN);
  feed(&f, FERRY_DUMP_C2S, p, sizeof p);
  const char *t = fx_text(&f);
  assert_non_null(strstr(t, "error     kGetGlobalFunc  MALFORMED at offset 15 (4-byte body)"));
  assert_non_null(strstr(t, "rpc       kShutdown\n"));
  fx_close(&f);
}

static void test_short_packet_length(void **state) {
  (void)state;
  fx f;
  fx_init(&f, FERRY_DUMP_DEFAULT_MAX_DECODE);
  handshake(&f);
  uint8_t p[12];
  put_le64(p, 2);
  put_le32(p + 8, 0);
  feed(&f, FERRY_DUMP_C2S, p, sizeof p);
  assert_non_null(
      strstr(fx_text(&f), "at offset 15: packet length 2 leaves no room for its code"));
  fx_close(&f);
}

static void test_truncated_at_eof(void **state) {
  (void)state;
  fx f;
  fx_init(&f, FERRY_DUMP_DEFAULT_MAX_DECODE);
  handshake(&f);
  uint8_t p[20];
  put_le64(p, 100);
  put_le32(p + 8, FERRY_RPC_CALL_FUNC);
  feed(&f, FERRY_DUMP_C2S, p, sizeof p);
  assert_int_equal(ferry_dump_conn_end(&f.c, FERRY_DUMP_C2S, 2.0, &f.out), 0);
  assert_non_null(strstr(fx_text(&f), "truncated at offset 15: the stream ended 20 bytes "
                                      "into a 108-byte message"));
  fx_close(&f);
}

static void test_mismatch_reply(void **state) {
  (void)state;
  fx f;
  fx_init(&f, FERRY_DUMP_DEFAULT_MAX_DECODE);
  uint8_t w[4];
  put_le32(w, FERRY_RPC_CODE_MISMATCH);
  feed(&f, FERRY_DUMP_S2C, w, 4);
  assert_non_null(strstr(fx_text(&f), "MISMATCH (no peer with that key) 0xff273"));
  fx_close(&f);
}

static void test_record_roundtrip(void **state) {
  (void)state;
  ferry_buf b;
  ferry_buf_init(&b, 1024);
  assert_int_equal(ferry_dump_record_write(&b, 4, FERRY_DUMP_REC_DATA, 1, 0.5,
                                           (const uint8_t *)"\x01\xff", 2),
                   0);
  ferry_dump_record r;
  ferry_dump_record_init(&r);
  char err[64];
  assert_int_equal(ferry_dump_record_parse((const char *)b.data, b.len - 1, &r, err,
                                           sizeof err),
                   0);
  assert_int_equal(r.conn, 4);
  assert_int_equal(r.dir, 1);
  assert_int_equal(r.bytes.len, 2);
  assert_int_equal(r.bytes.data[1], 0xff);
  assert_int_equal(ferry_dump_record_parse("{\"conn\": 1, \"dir\": \"c2s\", \"t\": 0, "
                                           "\"hex\": \"0g\"}",
                                           45, &r, err, sizeof err),
                   FERRY_EPROTO);
  assert_int_equal(ferry_dump_record_parse("[1]", 3, &r, err, sizeof err), FERRY_EPROTO);
  ferry_dump_record_close(&r);
  ferry_buf_close(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_expected),
      cmocka_unit_test(test_garbage_first_word),
      cmocka_unit_test(test_negative_key_length),
      cmocka_unit_test(test_tracker_frame_too_big),
      cmocka_unit_test(test_oversized_packet_skipped),
      cmocka_unit_test(test_malformed_body_then_resync),
      cmocka_unit_test(test_short_packet_length),
      cmocka_unit_test(test_truncated_at_eof),
      cmocka_unit_test(test_mismatch_reply),
      cmocka_unit_test(test_record_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
