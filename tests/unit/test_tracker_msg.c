/* Tracker JSON message codec: the shapes TVM's peers send (taken from the
 * golden recordings), Python-exact encodings, and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "wire/tracker_json.h"
#include "wire/tracker_msg.h"

static int decode(const char *text, ferry_tracker_request *req) {
  char err[128] = "";
  int rc = ferry_tracker_request_decode((const uint8_t *)text, strlen(text),
                                        req, err, sizeof err);
  if (rc)
    assert_true(err[0] != 0); /* every rejection says why */
  return rc;
}

static void expect_text(ferry_buf *b, const char *want) {
  assert_int_equal(b->len, strlen(want));
  assert_memory_equal(b->data, want, b->len);
}

static void put_forms(void **state) {
  (void)state;
  ferry_tracker_request r;
  /* Python server, C++ server (both from tests/golden/classic/tracker). */
  assert_int_equal(decode("[3, \"cpu\", [19200, \"cpu:0.6150703241096933\"], null]", &r), 0);
  assert_int_equal(r.code, FERRY_TRACKER_PUT);
  assert_string_equal(r.key, "cpu");
  assert_string_equal(r.matchkey, "cpu:0.6150703241096933");
  assert_string_equal(r.port_json, "19200");
  assert_null(r.addr_json);
  ferry_tracker_request_close(&r);
  /* 3-element form, string port, custom address, key containing ':'. */
  assert_int_equal(decode("[3,\"127.0.0.1:5555\",[\"9090\",\"127.0.0.1:5555:0.5\"]]", &r), 0);
  assert_string_equal(r.key, "127.0.0.1:5555");
  assert_string_equal(r.port_json, "\"9090\"");
  assert_null(r.addr_json);
  ferry_tracker_request_close(&r);
  assert_int_equal(decode("[3, \"rasp\", [9090, \"rasp:0.1\"], \"10.0.0.5\"]", &r), 0);
  assert_string_equal(r.addr_json, "\"10.0.0.5\"");
  ferry_tracker_request_close(&r);
}

static void request_and_others(void **state) {
  (void)state;
  ferry_tracker_request r;
  assert_int_equal(decode("[4, \"cppcpu\", \"\", 1]", &r), 0);
  assert_int_equal(r.code, FERRY_TRACKER_REQUEST);
  assert_string_equal(r.key, "cppcpu");
  assert_true(r.priority == 1.0);
  ferry_tracker_request_close(&r);
  assert_int_equal(decode("[4, \"k\", null, -2.5]", &r), 0);
  assert_true(r.priority == -2.5);
  ferry_tracker_request_close(&r);
  assert_int_equal(decode("[6]", &r), 0);
  assert_int_equal(r.code, FERRY_TRACKER_SUMMARY);
  ferry_tracker_request_close(&r);
  assert_int_equal(decode(" [7] ", &r), 0);
  assert_int_equal(r.code, FERRY_TRACKER_GET_PENDING_MATCHKEYS);
  ferry_tracker_request_close(&r);
  assert_int_equal(decode("[1]", &r), 0);
  ferry_tracker_request_close(&r);
  assert_int_equal(decode("[2, \"tracker:0.1\"]", &r), 0);
  assert_string_equal(r.stop_key, "tracker:0.1");
  ferry_tracker_request_close(&r);
}

static void update_info_merge(void **state) {
  (void)state;
  ferry_tracker_request r;
  assert_int_equal(decode("[5, {\"key\": \"server:cppcpu\", \"addr\": [null, \"19220\"]}]", &r), 0);
  ferry_tracker_info *info = ferry_tracker_info_new();
  assert_non_null(info);
  assert_false(ferry_tracker_info_has_key(info));
  assert_int_equal(ferry_tracker_info_merge(info, r.info, "127.0.0.1"), 0);
  ferry_tracker_request_close(&r);
  assert_string_equal(ferry_tracker_info_key(info), "server:cppcpu");
  ferry_buf b;
  ferry_buf_init(&b, 4096);
  assert_int_equal(ferry_tracker_info_encode(info, &b), 0);
  expect_text(&b, "{\"key\": \"server:cppcpu\", \"addr\": [\"127.0.0.1\", \"19220\"]}");
  assert_int_equal(ferry_tracker_info_size(info), b.len);
  /* A second update overwrites in place and appends new keys. */
  assert_int_equal(decode("[5, {\"extra\": 1, \"key\": \"server:x\", \"addr\": [\"h\", 1]}]", &r), 0);
  assert_int_equal(ferry_tracker_info_merge(info, r.info, "127.0.0.1"), 0);
  ferry_tracker_request_close(&r);
  b.len = 0;
  assert_int_equal(ferry_tracker_info_encode(info, &b), 0);
  expect_text(&b, "{\"key\": \"server:x\", \"addr\": [\"h\", 1], \"extra\": 1}");
  ferry_buf_close(&b);
  ferry_tracker_info_free(info);
}

static void info_growth_bounded(void **state) {
  (void)state;
  ferry_tracker_info *info = ferry_tracker_info_new();
  char *big = malloc(40000);
  assert_non_null(big);
  for (int i = 0; i < 2; i++) {
    snprintf(big, 40000, "[5, {\"addr\": [null, 1], \"f%d\": \"", i);
    size_t n = strlen(big);
    memset(big + n, 'x', 30000);
    strcpy(big + n + 30000, "\"}]");
    ferry_tracker_request r;
    assert_int_equal(decode(big, &r), 0);
    int rc = ferry_tracker_info_merge(info, r.info, "1.2.3.4");
    ferry_tracker_request_close(&r);
    assert_int_equal(rc, 0); /* 2 x 30 KB still fits in 64 KiB */
  }
  snprintf(big, 40000, "[5, {\"addr\": [null, 1], \"f9\": \"");
  size_t n = strlen(big);
  memset(big + n, 'y', 30000);
  strcpy(big + n + 30000, "\"}]");
  ferry_tracker_request r;
  assert_int_equal(decode(big, &r), 0);
  assert_int_equal(ferry_tracker_info_merge(info, r.info, "1.2.3.4"), FERRY_ETOOBIG);
  ferry_tracker_request_close(&r);
  free(big);
  ferry_tracker_info_free(info);
}

static void rejections(void **state) {
  (void)state;
  ferry_tracker_request r;
  const char *bad[] = {
      "",      "{}",     "[]",     "3",       "[\"3\"]",  "[3.0]",  "[true]",
      "[6] x", "[6",     "nul",    "[3, \"k\", [1], null]",
      "[3, 1, [1, \"k:1\"], null]", "[3, \"k\", [1, 2], null]",
      "[3, \"k\", [[1], \"k:1\"], null]", "[3, \"k\", [1, \"k:1\"], [1]]",
      "[3, \"k\", [1, \"k:1\"], null, 5]", "[4, \"k\", \"\"]",
      "[4, \"k\", \"\", \"1\"]", "[4, 5, \"\", 1]", "[5]", "[5, []]",
      "[5, {\"key\": \"server:x\"}]", "[5, {\"addr\": []}]", "[2]", "[2, 7]",
      "[\"a\\u0000b\"]", "[3, \"a\\u0000\", [1, \"k\"], null]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = decode(bad[i], &r);
    if (rc != FERRY_EPROTO)
      fail_msg("%s -> %d", bad[i], rc);
    ferry_tracker_request_close(&r);
  }
  assert_int_equal(decode("[0]", &r), FERRY_EUNSUPPORTED);
  assert_int_equal(r.code, 0);
  ferry_tracker_request_close(&r);
  assert_int_equal(decode("[-1]", &r), FERRY_EUNSUPPORTED);
  assert_int_equal(decode("[99, 1]", &r), FERRY_EUNSUPPORTED);
  assert_int_equal(r.code, 99);
  ferry_tracker_request_close(&r);
}

static void key_limits(void **state) {
  (void)state;
  /* At the key ceiling: accepted; one byte past: FERRY_ETOOBIG. */
  for (size_t n = FERRY_TRACKER_MAX_KEY; n <= FERRY_TRACKER_MAX_KEY + 1; n++) {
    char *t = malloc(n + 64);
    strcpy(t, "[4, \"");
    memset(t + 5, 'k', n);
    strcpy(t + 5 + n, "\", \"\", 1]");
    ferry_tracker_request r;
    int rc = decode(t, &r);
    assert_int_equal(rc, n == FERRY_TRACKER_MAX_KEY ? 0 : FERRY_ETOOBIG);
    ferry_tracker_request_close(&r);
    free(t);
  }
}

static void replies_python_exact(void **state) {
  (void)state;
  ferry_buf b;
  ferry_buf_init(&b, 1 << 20);
  assert_int_equal(ferry_tracker_encode_status(&b, 0), 0);
  expect_text(&b, "0");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_status(&b, -1), 0);
  expect_text(&b, "-1");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_grant(&b, "\"127.0.0.1\"", "19220", "cppcpu:0.624546"), 0);
  expect_text(&b, "[0, [\"127.0.0.1\", 19220, \"cppcpu:0.624546\"]]");
  b.len = 0;
  const char *keys[] = {"K0:0.7029491653930237", "a/b:\"q\"\\", "\xc3\xa9\x01\x7f:1",
                        "\xf0\x9f\x98\x80:2"};
  assert_int_equal(ferry_tracker_encode_pending(&b, keys, 4), 0);
  expect_text(&b, "[\"K0:0.7029491653930237\", \"a/b:\\\"q\\\"\\\\\", "
                  "\"\\u00e9\\u0001\\u007f:1\", \"\\ud83d\\ude00:2\"]");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_pending(&b, NULL, 0), 0);
  expect_text(&b, "[]");
  b.len = 0;
  const char *badutf[] = {"\xff"};
  assert_int_equal(ferry_tracker_encode_pending(&b, badutf, 1), FERRY_EINVAL);
  assert_int_equal(b.len, 0);
  ferry_tracker_request r;
  assert_int_equal(decode("[5, {\"key\": \"server:cpu\", \"addr\": [null, 19200]}]", &r), 0);
  ferry_tracker_info *info = ferry_tracker_info_new();
  assert_int_equal(ferry_tracker_info_merge(info, r.info, "127.0.0.1"), 0);
  ferry_tracker_request_close(&r);
  ferry_tracker_queue_stat q[] = {{"cppcpu", 1, 0}, {"cpu", 1, 0}};
  const ferry_tracker_info *servers[] = {info};
  assert_int_equal(ferry_tracker_encode_summary(&b, q, 2, servers, 1), 0);
  expect_text(&b, "[0, {\"queue_info\": {\"cppcpu\": {\"free\": 1, \"pending\": 0}, "
                  "\"cpu\": {\"free\": 1, \"pending\": 0}}, \"server_info\": "
                  "[{\"key\": \"server:cpu\", \"addr\": [\"127.0.0.1\", 19200]}]}]");
  ferry_tracker_info_free(info);
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_summary(&b, NULL, 0, NULL, 0), 0);
  expect_text(&b, "[0, {\"queue_info\": {}, \"server_info\": []}]");
  ferry_buf_close(&b);
}

static void requests_python_exact(void **state) {
  (void)state;
  ferry_buf b;
  ferry_buf_init(&b, 4096);
  assert_int_equal(ferry_tracker_encode_put(&b, "cpu", 19200, "cpu:0.61", NULL), 0);
  expect_text(&b, "[3, \"cpu\", [19200, \"cpu:0.61\"], null]");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_put(&b, "rasp", 9090, "rasp:0.1", "10.0.0.5"), 0);
  expect_text(&b, "[3, \"rasp\", [9090, \"rasp:0.1\"], \"10.0.0.5\"]");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_update_info(&b, "server:proxy[K2,K0]", NULL, 19400, 0), 0);
  expect_text(&b, "[5, {\"key\": \"server:proxy[K2,K0]\", \"addr\": [null, 19400]}]");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_update_info(&b, "server:cppcpu", "h", 19220, 1), 0);
  expect_text(&b, "[5, {\"key\": \"server:cppcpu\", \"addr\": [\"h\", \"19220\"]}]");
  b.len = 0;
  /* ferry's servers add the devices they serve (issue 12). */
  assert_int_equal(ferry_tracker_encode_update_info_devices(&b, "server:k", NULL, 9090, 0,
                                                            "cpu, opencl:0 (\"x\")"),
                   0);
  expect_text(&b, "[5, {\"key\": \"server:k\", \"addr\": [null, 9090], \"devices\": "
                  "\"cpu, opencl:0 (\\\"x\\\")\"}]");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_request(&b, "cpu", "", 1), 0);
  expect_text(&b, "[4, \"cpu\", \"\", 1]");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_code(&b, FERRY_TRACKER_SUMMARY), 0);
  expect_text(&b, "[6]");
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_stop(&b, "tracker:0.5"), 0);
  expect_text(&b, "[2, \"tracker:0.5\"]");
  ferry_buf_close(&b);
}

static void python_reals(void **state) {
  (void)state;
  struct {
    double d;
    const char *want;
  } cases[] = {{1.0, "1.0"},     {0.1, "0.1"},         {-2.5, "-2.5"},
               {1e16, "1e+16"},  {1e15, "1000000000000000.0"},
               {1.5e-5, "1.5e-05"}, {0.0001, "0.0001"}, {123.456, "123.456"},
               {0.6150703241096933, "0.6150703241096933"}, {1e100, "1e+100"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[40];
    ferry_tracker_json_real(out, cases[i].d);
    assert_string_equal(out, cases[i].want);
  }
}

static void reply_decoders(void **state) {
  (void)state;
  char err[128] = "";
  int st = 7;
  assert_int_equal(ferry_tracker_decode_status((const uint8_t *)"0", 1, &st, err, sizeof err), 0);
  assert_int_equal(st, 0);
  assert_int_equal(ferry_tracker_decode_status((const uint8_t *)"-1", 2, &st, err, sizeof err), 0);
  assert_int_equal(st, -1);
  assert_int_equal(ferry_tracker_decode_status((const uint8_t *)"[0]", 3, &st, err, sizeof err),
                   FERRY_EPROTO);
  ferry_tracker_grant g;
  const char *gt = "[0, [\"127.0.0.1\", \"19220\", \"cppcpu:0.624546\"]]";
  assert_int_equal(ferry_tracker_decode_grant((const uint8_t *)gt, strlen(gt), &g, err, sizeof err), 0);
  assert_string_equal(g.host, "127.0.0.1");
  assert_int_equal(g.port, 19220);
  assert_string_equal(g.matchkey, "cppcpu:0.624546");
  ferry_tracker_grant_close(&g);
  const char *badg[] = {"[0, [\"h\", 70000, \"k\"]]", "[1, [\"h\", 1, \"k\"]]",
                        "[0, [null, 1, \"k\"]]", "[0, [\"h\", \"x1\", \"k\"]]", "0"};
  for (size_t i = 0; i < 5; i++) {
    assert_int_not_equal(ferry_tracker_decode_grant((const uint8_t *)badg[i], strlen(badg[i]),
                                                    &g, err, sizeof err), 0);
    assert_null(g.host);
  }
  ferry_tracker_strlist l;
  const char *pt = "[\"K0:0.70\", \"K1:0.33\"]";
  assert_int_equal(ferry_tracker_decode_pending((const uint8_t *)pt, strlen(pt), &l, err, sizeof err), 0);
  assert_int_equal(l.n, 2);
  assert_true(ferry_tracker_strlist_contains(&l, "K1:0.33"));
  assert_false(ferry_tracker_strlist_contains(&l, "K1:0.3"));
  ferry_tracker_strlist_close(&l);
  assert_int_equal(ferry_tracker_decode_pending((const uint8_t *)"[1]", 3, &l, err, sizeof err),
                   FERRY_EPROTO);
  const char *st_text =
      "[0, {\"queue_info\": {\"cppcpu\": {\"free\": 1, \"pending\": 0}, \"cpu\": "
      "{\"free\": 0, \"pending\": 2}}, \"server_info\": [{\"key\": \"server:cppcpu\", "
      "\"addr\": [\"127.0.0.1\", \"19220\"]}, {\"key\": \"server:cpu\", \"addr\": "
      "[null, 19200]}]}]";
  ferry_tracker_summary s;
  assert_int_equal(ferry_tracker_decode_summary((const uint8_t *)st_text, strlen(st_text), &s,
                                                err, sizeof err), 0);
  assert_int_equal(s.nqueues, 2);
  assert_string_equal(s.queues[0].key, "cppcpu");
  assert_int_equal(s.queues[1].pending, 2);
  assert_int_equal(s.nservers, 2);
  assert_string_equal(s.servers[0].addr, "127.0.0.1:19220");
  assert_string_equal(s.servers[1].addr, "None:19200");
  assert_string_equal(s.servers[1].key, "server:cpu");
  ferry_tracker_summary_close(&s);
  const char *bads = "[0, {\"queue_info\": {\"a\": {\"free\": \"1\"}}, \"server_info\": []}]";
  assert_int_equal(ferry_tracker_decode_summary((const uint8_t *)bads, strlen(bads), &s, err,
                                                sizeof err), FERRY_EPROTO);
  assert_int_equal(s.nqueues, 0);
}

/* Every prefix of a valid message is rejected without crashing (a frame is
 * always whole, so a cut message is malformed, never "need more"). */
static void every_prefix(void **state) {
  (void)state;
  const char *msgs[] = {"[3, \"cpu\", [19200, \"cpu:0.6150703241096933\"], null]",
                        "[5, {\"key\": \"server:cpu\", \"addr\": [null, 19200]}]",
                        "[4, \"cpu\", \"\", 1]"};
  for (size_t m = 0; m < 3; m++) {
    size_t n = strlen(msgs[m]);
    for (size_t i = 0; i < n; i++) {
      ferry_tracker_request r;
      char err[128] = "";
      int rc = ferry_tracker_request_decode((const uint8_t *)msgs[m], i, &r, err, sizeof err);
      assert_int_not_equal(rc, 0);
      ferry_tracker_request_close(&r);
    }
  }
}

/* Allocation failures inside jansson: fail the n-th allocation for every n
 * until a decode succeeds; each attempt must fail cleanly (no crash, and
 * under ASan no leak) and leave nothing to free. */
static long alloc_budget = -1;
static void *failing_malloc(size_t n) {
  if (alloc_budget == 0)
    return NULL;
  if (alloc_budget > 0)
    alloc_budget--;
  return malloc(n);
}

static void allocation_failures(void **state) {
  (void)state;
  const char *msgs[] = {"[5, {\"key\": \"server:cpu\", \"addr\": [null, 19200]}]",
                        "[3, \"cpu\", [19200, \"cpu:0.61\"], \"10.0.0.5\"]",
                        "[4, \"cpu\", \"\", 1]"};
  json_set_alloc_funcs(failing_malloc, free);
  for (size_t m = 0; m < 3; m++) {
    int ok = 0;
    for (long n = 0; n < 200 && !ok; n++) {
      alloc_budget = n;
      ferry_tracker_request r;
      char err[128] = "";
      int rc = ferry_tracker_request_decode((const uint8_t *)msgs[m], strlen(msgs[m]), &r,
                                            err, sizeof err);
      if (rc == 0) {
        ok = 1;
        if (r.info) {
          ferry_tracker_info *info = ferry_tracker_info_new();
          if (info) {
            rc = ferry_tracker_info_merge(info, r.info, "1.2.3.4");
            assert_true(rc == 0 || rc == FERRY_ENOMEM);
            ferry_tracker_info_free(info);
          }
        }
      } else {
        assert_true(rc == FERRY_EPROTO || rc == FERRY_ENOMEM);
      }
      ferry_tracker_request_close(&r);
    }
    assert_true(ok);
  }
  /* The merge too: it works on copies, so a failure leaves info intact. */
  alloc_budget = -1;
  ferry_tracker_request r;
  assert_int_equal(decode(msgs[0], &r), 0);
  ferry_tracker_info *info = ferry_tracker_info_new();
  int merged = 0;
  for (long n = 0; n < 200 && !merged; n++) {
    alloc_budget = n;
    int rc = ferry_tracker_info_merge(info, r.info, "1.2.3.4");
    alloc_budget = -1;
    if (rc == 0) {
      merged = 1;
    } else {
      assert_int_equal(rc, FERRY_ENOMEM);
      assert_false(ferry_tracker_info_has_key(info));
    }
  }
  assert_true(merged);
  assert_string_equal(ferry_tracker_info_key(info), "server:cpu");
  ferry_tracker_info_free(info);
  ferry_tracker_request_close(&r);
  alloc_budget = -1;
  json_set_alloc_funcs(malloc, free);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(put_forms),        cmocka_unit_test(request_and_others),
      cmocka_unit_test(update_info_merge), cmocka_unit_test(info_growth_bounded),
      cmocka_unit_test(rejections),       cmocka_unit_test(key_limits),
      cmocka_unit_test(replies_python_exact), cmocka_unit_test(requests_python_exact),
      cmocka_unit_test(python_reals),     cmocka_unit_test(reply_decoders),
      cmocka_unit_test(every_prefix),
      cmocka_unit_test(allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
