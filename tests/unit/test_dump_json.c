/* `ferry dump --json` (src/wire/dump_json.c and the describers): three
 * golden recordings decoded to the checked-in JSON in
 * tests/unit/dump_expected/<name>.jsonl (reviewed by eye), every recording's
 * lines parsed with their text equal to the text output's, escaping of
 * arbitrary bytes, unsigned handles, and the fields of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/bytes.h"
#include "wire/constants.h"
#include "wire/dump.h"
#include "wire/dump_record.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"

#include "dump_golden.h"

/* The recordings whose JSON decoding is checked in as well (one session of
 * each dialect and the tracker), reviewed by eye. */
static const char *const json_recordings[] = {
    "classic/session-module/client-server",
    "ffi/session-tensor/client-server",
    "classic/tracker/tracker",
};

static void test_golden_json_expected(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof json_recordings / sizeof json_recordings[0]; i++) {
    char path[512];
    expected_path(path, sizeof path, json_recordings[i], ".jsonl");
    size_t elen = 0;
    char *expected = slurp(path, &elen);
    assert_non_null(expected);
    ferry_buf out;
    ferry_buf_init(&out, 64u << 20);
    decode_opts(json_recordings[i], 0, 1, &out);
    if (out.len != elen || memcmp(out.data, expected, elen)) {
      fprintf(stderr, "%s differs from %s:\n%.*s\n", json_recordings[i], path,
              (int)out.len, (const char *)out.data);
      fail();
    }
    ferry_buf_close(&out);
    free(expected);
  }
}

/* Every golden recording in JSON: each line is one JSON object whose
 * "text" is the message part of the text line, and whose fields say the
 * same things (an RPC line names its code, a handshake its word). */
static void test_golden_json_matches_text(void **state) {
  (void)state;
  for (size_t i = 0; i < DUMP_TVM_RECORDINGS; i++) {
    ferry_buf txt, js;
    ferry_buf_init(&txt, 64u << 20);
    ferry_buf_init(&js, 64u << 20);
    decode_opts(recordings[i], 0, 0, &txt);
    decode_opts(recordings[i], 1, 1, &js);
    assert_int_equal(ferry_buf_append(&txt, "", 1), 0);
    assert_int_equal(ferry_buf_append(&js, "", 1), 0);
    char *tl = (char *)txt.data, *jl = (char *)js.data;
    size_t lines = 0;
    while (*tl) {
      char *tn = strchr(tl, '\n'), *jn = strchr(jl, '\n');
      assert_non_null(tn);
      assert_non_null(jn);
      json_error_t err;
      json_t *o = json_loadb(jl, (size_t)(jn - jl), 0, &err);
      if (!o)
        fprintf(stderr, "%s: %s in %.*s\n", recordings[i], err.text, (int)(jn - jl), jl);
      assert_non_null(o);
      /* The text line: "%11.6f #%u %s %-9s <text>". */
      const char *text = json_string_value(json_object_get(o, "text"));
      assert_non_null(text);
      size_t tlen = strlen(text);
      assert_true((size_t)(tn - tl) >= tlen);
      assert_memory_equal(tn - tlen, text, tlen);
      const char *layer = json_string_value(json_object_get(o, "layer"));
      assert_non_null(layer);
      if (!strcmp(layer, "rpc")) {
        assert_string_equal(json_string_value(json_object_get(o, "proto")), "rpc");
        assert_true(json_is_integer(json_object_get(o, "code")));
        const char *cn = json_string_value(json_object_get(o, "code_name"));
        assert_non_null(cn);
        assert_memory_equal(text, cn, strlen(cn));
      } else if (!strcmp(layer, "handshake")) {
        assert_true(json_is_integer(json_object_get(o, "word")));
      } else if (!strcmp(layer, "tracker")) {
        assert_string_equal(json_string_value(json_object_get(o, "proto")), "tracker");
        assert_non_null(json_object_get(o, "msg"));
      }
      json_decref(o);
      tl = tn + 1;
      jl = jn + 1;
      lines++;
    }
    assert_int_equal(*jl, 0);
    assert_true(lines > 0);
    ferry_buf_close(&txt);
    ferry_buf_close(&js);
  }
}

/* ---- single messages ------------------------------------------------------ */

static void test_json_line(void **state) {
  (void)state;
  fx f;
  ferry_dump_opts o;
  ferry_dump_opts_default(&o);
  o.json = 1;
  ferry_dump_conn_init(&f.c, 3, &o);
  ferry_buf_init(&f.out, 1u << 20);
  handshake(&f);
  assert_non_null(strstr(fx_text(&f),
                         "{\"t\":1.0,\"conn\":3,\"dir\":\"c2s\",\"layer\":\"handshake\","
                         "\"proto\":\"handshake\",\"word\":1045105,\"word_name\":\"RPC magic\","
                         "\"key\":\"client:\",\"role\":\"client\",\"match_key\":\"\","
                         "\"text\":\"RPC magic 0xff271 key \\\"client:\\\""));
  fx_close(&f);
}

/* Parses line number `which` (0-based) of the fixture's output. */
static json_t *fx_json_line(fx *f, int which) {
  const char *t = fx_text(f);
  for (int i = 0; i < which; i++) {
    t = strchr(t, '\n');
    assert_non_null(t);
    t++;
  }
  const char *nl = strchr(t, '\n');
  assert_non_null(nl);
  json_error_t err;
  json_t *o = json_loadb(t, (size_t)(nl - t), JSON_ALLOW_NUL, &err);
  if (!o)
    fprintf(stderr, "not JSON (%s): %.*s\n", err.text, (int)(nl - t), t);
  assert_non_null(o);
  return o;
}

static void fx_init_json(fx *f, size_t max_str) {
  ferry_dump_opts o;
  ferry_dump_opts_default(&o);
  o.json = 1;
  o.max_str = max_str;
  ferry_dump_conn_init(&f->c, 3, &o);
  ferry_buf_init(&f->out, 1u << 20);
}

/* Arbitrary bytes in a key and in a string argument: control bytes, quotes,
 * a backslash, NUL and invalid UTF-8 come out as valid JSON that parses
 * back to the same characters, invalid bytes as U+FFFD, valid UTF-8 kept. */
#define NASTY "a\x01\"\\\n\x7f\xff\xc3\x28\xe2\x82\xac\xed\xa0\x80\x00z"
#define NASTY_LEN (sizeof NASTY - 1)
/* What NASTY reads as: \xff, \xc3 (not followed by a continuation) and
 * each byte of the surrogate \xed\xa0\x80 are one U+FFFD each. */
#define NASTY_JSON "a\x01\"\\\n\x7f\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac" \
                   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
static void test_json_escaping(void **state) {
  (void)state;
  fx f;
  fx_init_json(&f, 80);
  uint8_t hs[8 + 7 + NASTY_LEN];
  put_le32(hs, FERRY_RPC_MAGIC);
  put_le32(hs + 4, 7 + NASTY_LEN);
  memcpy(hs + 8, "client:", 7);
  memcpy(hs + 15, NASTY, NASTY_LEN);
  feed(&f, FERRY_DUMP_C2S, hs, sizeof hs);
  json_t *o = fx_json_line(&f, 0);
  json_t *key = json_object_get(o, "key");
  assert_true(json_is_string(key));
  /* 7 + the nasty part: its NUL is kept as \u0000, so compare by length. */
  const char want[] = "client:" NASTY_JSON "\0z";
  assert_int_equal(json_string_length(key), sizeof want - 1);
  assert_memory_equal(json_string_value(key), want, sizeof want - 1);
  assert_string_equal(json_string_value(json_object_get(o, "role")), "client");
  json_decref(o);
  fx_close(&f);

  /* The same bytes as a string in a kException, over --max-str. */
  fx_init_json(&f, 12);
  handshake(&f);
  f.c.dialect = &ferry_dialect_classic;
  ferry_value v;
  memset(&v, 0, sizeof v);
  v.kind = FERRY_KIND_STR;
  v.v.str.data = NASTY;
  v.v.str.len = NASTY_LEN;
  ferry_buf pkt;
  ferry_buf_init(&pkt, 1024);
  uint8_t hdr[12] = {0};
  assert_int_equal(ferry_buf_append(&pkt, hdr, 12), 0);
  assert_int_equal(ferry_dialect_classic.encode_seq(&pkt, &v, 1), 0);
  put_le64(pkt.data, pkt.len - 8);
  put_le32(pkt.data + 8, FERRY_RPC_EXCEPTION);
  feed(&f, FERRY_DUMP_S2C, pkt.data, pkt.len);
  o = fx_json_line(&f, 2);
  assert_string_equal(json_string_value(json_object_get(o, "code_name")), "kException");
  assert_int_equal(json_integer_value(json_object_get(o, "code")), FERRY_RPC_EXCEPTION);
  /* An exception's text is shown up to 4096 bytes, whatever --max-str. */
  json_t *err = json_object_get(o, "error");
  assert_true(json_is_string(err));
  assert_int_equal(json_string_length(err), sizeof want - 1 - 7);
  assert_memory_equal(json_string_value(err), want + 7, sizeof want - 1 - 7);
  json_t *arg = json_array_get(json_object_get(o, "args"), 0);
  assert_string_equal(json_string_value(json_object_get(arg, "type")), "str");
  assert_int_equal(json_integer_value(json_object_get(arg, "len")), NASTY_LEN);
  assert_true(json_is_false(json_object_get(arg, "truncated")));
  json_decref(o);

  /* A string argument elsewhere is cut to --max-str and says so. */
  ferry_buf_close(&pkt);
  ferry_buf_init(&pkt, 1024);
  assert_int_equal(ferry_buf_append(&pkt, hdr, 12), 0);
  assert_int_equal(ferry_dialect_classic.encode_seq(&pkt, &v, 1), 0);
  put_le64(pkt.data, pkt.len - 8);
  put_le32(pkt.data + 8, FERRY_RPC_GET_GLOBAL_FUNC);
  feed(&f, FERRY_DUMP_C2S, pkt.data, pkt.len);
  o = fx_json_line(&f, 3);
  arg = json_array_get(json_object_get(o, "args"), 0);
  assert_true(json_is_true(json_object_get(arg, "truncated")));
  /* 12 bytes: a \x01 " \\ \n \x7f \xff \xc3 ( and the 3 of the euro sign. */
  const char cut[] = "a\x01\"\\\n\x7f\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac";
  assert_string_equal(json_string_value(json_object_get(arg, "value")), cut);
  json_decref(o);
  ferry_buf_close(&pkt);
  fx_close(&f);
}

/* Handles past INT64_MAX (ferry's server tags them in the top bits) are
 * printed as the unsigned numbers they are, and a string that looks like
 * the mark used for them stays a string. */
static void test_json_u64_handles(void **state) {
  (void)state;
  fx f;
  fx_init_json(&f, 80);
  handshake(&f);
  f.c.dialect = &ferry_dialect_classic;
  ferry_value v;
  memset(&v, 0, sizeof v);
  v.kind = FERRY_KIND_STR;
  v.v.str.data = "\xef\xbf\xbf" "123";
  v.v.str.len = 6;
  ferry_buf pkt;
  ferry_buf_init(&pkt, 1024);
  uint8_t hdr[20] = {0};
  assert_int_equal(ferry_buf_append(&pkt, hdr, 20), 0);
  assert_int_equal(ferry_dialect_classic.encode_seq(&pkt, &v, 1), 0);
  put_le64(pkt.data, pkt.len - 8);
  put_le32(pkt.data + 8, FERRY_RPC_CALL_FUNC);
  put_le64(pkt.data + 12, 0xfe77010000000001ull);
  feed(&f, FERRY_DUMP_C2S, pkt.data, pkt.len);
  const char *t = fx_text(&f);
  assert_non_null(strstr(t, "\"handle\":18336125507373891585,"));
  assert_non_null(strstr(t, "\"value\":\"\\uFFFD123\""));
  ferry_buf_close(&pkt);
  fx_close(&f);
}

/* Bad input in JSON: the offset and the reason as fields. */
static void test_json_bad_input_fields(void **state) {
  (void)state;
  fx f;
  fx_init_json(&f, 80);
  feed(&f, FERRY_DUMP_C2S, "GET / HTTP/1.1\r\n", 16);
  json_t *o = fx_json_line(&f, 0);
  assert_string_equal(json_string_value(json_object_get(o, "layer")), "error");
  assert_int_equal(json_integer_value(json_object_get(o, "offset")), 0);
  assert_non_null(strstr(json_string_value(json_object_get(o, "reason")),
                         "neither RPC nor tracker magic"));
  json_decref(o);
  o = fx_json_line(&f, 2);
  assert_string_equal(json_string_value(json_object_get(o, "layer")), "raw");
  assert_int_equal(json_integer_value(json_object_get(o, "offset")), 4);
  assert_int_equal(json_integer_value(json_object_get(o, "bytes")), 12);
  assert_string_equal(json_string_value(json_object_get(o, "hex")), "2f20485454502f312e310d0a");
  json_decref(o);
  fx_close(&f);

  fx_init_json(&f, 80);
  handshake(&f);
  uint8_t p[20];
  put_le64(p, 100);
  put_le32(p + 8, FERRY_RPC_CALL_FUNC);
  feed(&f, FERRY_DUMP_C2S, p, sizeof p);
  assert_int_equal(ferry_dump_conn_end(&f.c, FERRY_DUMP_C2S, 2.0, &f.out), 0);
  o = fx_json_line(&f, 2);
  assert_string_equal(json_string_value(json_object_get(o, "proto")), "rpc");
  assert_int_equal(json_integer_value(json_object_get(o, "offset")), 15);
  assert_string_equal(json_string_value(json_object_get(o, "reason")), "truncated");
  assert_int_equal(json_integer_value(json_object_get(o, "have")), 20);
  assert_int_equal(json_integer_value(json_object_get(o, "whole")), 108);
  json_decref(o);
  fx_close(&f);

  fx_init_json(&f, 80);
  handshake(&f);
  uint8_t m[16];
  put_le64(m, 8);
  put_le32(m + 8, FERRY_RPC_GET_GLOBAL_FUNC);
  put_le32(m + 12, 5000);
  feed(&f, FERRY_DUMP_C2S, m, sizeof m);
  o = fx_json_line(&f, 2);
  assert_true(json_is_true(json_object_get(o, "malformed")));
  assert_int_equal(json_integer_value(json_object_get(o, "offset")), 15);
  assert_string_equal(json_string_value(json_object_get(o, "code_name")), "kGetGlobalFunc");
  assert_non_null(json_string_value(json_object_get(o, "reason")));
  json_decref(o);
  fx_close(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_line),
      cmocka_unit_test(test_json_escaping),
      cmocka_unit_test(test_json_u64_handles),
      cmocka_unit_test(test_json_bad_input_fields),
      cmocka_unit_test(test_golden_json_expected),
      cmocka_unit_test(test_golden_json_matches_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
