/* ferry's optional tracker fields (src/wire/tracker_farm.c): session
 * reports inside UPDATE_INFO, REQUEST deadlines, DRAIN, the refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/tracker_msg.h"

static int decode(const char *text, ferry_tracker_request *r) {
  char err[200] = "";
  return ferry_tracker_request_decode((const uint8_t *)text, strlen(text), r, err, sizeof err);
}

static void test_report_round_trip(void **st) {
  (void)st;
  ferry_buf b;
  ferry_buf_init(&b, 4096);
  assert_int_equal(ferry_tracker_encode_report(&b, FERRY_SESSION_END, 3, "cpu:x", "ok", 0, NULL),
                   0);
  ferry_tracker_request r;
  assert_int_equal(ferry_tracker_request_decode(b.data, b.len, &r, NULL, 0), 0);
  assert_int_equal(r.code, FERRY_TRACKER_UPDATE_INFO);
  assert_int_equal(r.report.event, FERRY_SESSION_END);
  assert_int_equal(r.report.n, 3);
  assert_string_equal(r.report.matchkey, "cpu:x");
  assert_string_equal(r.report.outcome, "ok");
  /* The report is taken out of the info: TVM's tools never see it. */
  ferry_buf info;
  ferry_buf_init(&info, 4096);
  assert_int_equal(ferry_tracker_info_encode(r.info, &info), 0);
  assert_int_equal(info.len, 2);
  assert_memory_equal(info.data, "{}", 2);
  ferry_buf_close(&info);
  ferry_tracker_request_close(&r);
  ferry_buf_close(&b);
}

static void test_bad_reports_are_marked_not_fatal(void **st) {
  (void)st;
  const char *bad[] = {
      "[5, {\"ferry_session\": 3}]",
      "[5, {\"ferry_session\": {\"event\": \"bogus\", \"n\": 1, \"matchkey\": \"k\"}}]",
      "[5, {\"ferry_session\": {\"event\": \"start\", \"n\": 0, \"matchkey\": \"k\"}}]",
      "[5, {\"ferry_session\": {\"event\": \"start\", \"n\": 1}}]",
      "[5, {\"ferry_session\": {\"event\": \"start\", \"n\": 1, \"matchkey\": 5}}]",
      "[5, {\"ferry_session\": {\"event\": \"end\", \"n\": 1, \"matchkey\": \"k\", "
      "\"health_failures\": -2}}]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ferry_tracker_request r;
    assert_int_equal(decode(bad[i], &r), 0);
    assert_int_equal(r.report.event, -1);
    assert_true(strncmp(r.report.bad, "ferry_session", 13) == 0);
    assert_null(r.report.matchkey);
    ferry_tracker_request_close(&r);
  }
}

static void test_request_deadline(void **st) {
  (void)st;
  ferry_buf b;
  ferry_buf_init(&b, 4096);
  assert_int_equal(ferry_tracker_encode_request_deadline(&b, "cpu", "bob", 1, 2.5), 0);
  assert_int_equal(b.len, strlen("[4, \"cpu\", \"bob\", 1, {\"deadline\": 2.5}]"));
  assert_memory_equal(b.data, "[4, \"cpu\", \"bob\", 1, {\"deadline\": 2.5}]", b.len);
  ferry_tracker_request r;
  assert_int_equal(ferry_tracker_request_decode(b.data, b.len, &r, NULL, 0), 0);
  assert_true(r.deadline_s == 2.5);
  ferry_tracker_request_close(&r);
  /* Without a deadline: TVM's four elements, byte for byte. */
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_request_deadline(&b, "cpu", "", 0, 0), 0);
  assert_memory_equal(b.data, "[4, \"cpu\", \"\", 0]", b.len);
  assert_int_equal(decode("[4, \"k\", \"u\", 0, {\"deadline\": -1}]", &r), FERRY_EPROTO);
  assert_int_equal(decode("[4, \"k\", \"u\", 0, 7]", &r), FERRY_EPROTO);
  assert_int_equal(decode("[4, \"k\", \"u\", 0, {}, 1]", &r), FERRY_EPROTO);
  ferry_buf_close(&b);
}

static void test_drain_and_refusal(void **st) {
  (void)st;
  ferry_buf b;
  ferry_buf_init(&b, 4096);
  assert_int_equal(ferry_tracker_encode_drain(&b, "cpu", "key", 1), 0);
  ferry_tracker_request r;
  assert_int_equal(ferry_tracker_request_decode(b.data, b.len, &r, NULL, 0), 0);
  assert_int_equal(r.code, FERRY_TRACKER_FARM_DRAIN);
  assert_string_equal(r.target, "cpu");
  assert_string_equal(r.stop_key, "key");
  assert_int_equal(r.undrain, 1);
  ferry_tracker_request_close(&r);
  assert_int_equal(decode("[101, \"cpu\"]", &r), FERRY_EPROTO);
  assert_int_equal(decode("[100]", &r), 0);
  assert_int_equal(r.code, FERRY_TRACKER_FARM_STATUS);
  b.len = 0;
  assert_int_equal(ferry_tracker_encode_refusal(&b, "no \"x\""), 0);
  assert_memory_equal(b.data, "[-1, \"no \\\"x\\\"\"]", b.len);
  ferry_buf_close(&b);
}

static void test_status_decode(void **st) {
  (void)st;
  const char *ok = "{\"devices\": [{\"key\": \"cpu\", \"state\": \"in use\", \"user\": \"a\", "
                   "\"session\": 2, \"since\": 5.5}], \"waiting\": [{\"key\": \"cpu\", "
                   "\"position\": 1, \"wait\": 0.5}]}";
  ferry_farm_status s;
  char err[160] = "";
  assert_int_equal(ferry_farm_status_decode((const uint8_t *)ok, strlen(ok), &s, err,
                                            sizeof err), 0);
  assert_int_equal(s.ndevices, 1);
  assert_string_equal(s.devices[0].user, "a");
  assert_int_equal(s.devices[0].session, 2);
  assert_int_equal(s.nwaiting, 1);
  ferry_farm_status_close(&s);
  const char *bad[] = {"[]", "{\"devices\": 1, \"waiting\": []}",
                       "{\"devices\": [{\"state\": \"x\"}], \"waiting\": []}", "{"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(ferry_farm_status_decode((const uint8_t *)bad[i], strlen(bad[i]), &s,
                                              err, sizeof err), FERRY_EPROTO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_report_round_trip),
      cmocka_unit_test(test_bad_reports_are_marked_not_fatal),
      cmocka_unit_test(test_request_deadline),
      cmocka_unit_test(test_drain_and_refusal),
      cmocka_unit_test(test_status_decode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
