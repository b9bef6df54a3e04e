/* The farm's pure logic (src/tracker/farm.c) and the scheduler's farm
 * additions: states, holders, reports, leases, history, user names,
 * deadlines, holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tracker/farm.h"
#include "tracker/farm_json.h"
#include "tracker/metrics.h"
#include "wire/tracker_msg.h"
#include "tracker/scheduler.h"

static int owner_a, owner_b;

static void test_states_and_holder(void **st) {
  (void)st;
  ferry_farm f;
  ferry_farm_init(&f);
  ferry_farm_device *d = ferry_farm_device_get(&f, &owner_a, "cpu");
  assert_non_null(d);
  assert_ptr_equal(ferry_farm_device_get(&f, &owner_a, "cpu"), d);
  assert_int_equal(ferry_farm_state_of(d, 0), FERRY_FARM_STARTING);
  ferry_farm_offered(d);
  assert_int_equal(ferry_farm_state_of(d, 1), FERRY_FARM_FREE);
  assert_int_equal(ferry_farm_granted(d, "cpu:1", "alice", "10.0.0.2", 1000), 0);
  assert_int_equal(ferry_farm_state_of(d, 0), FERRY_FARM_IN_USE);
  double lease;
  char err[160];
  assert_int_equal(ferry_farm_report(&f, &owner_a, 1, 7, "cpu:1", NULL, 2000, &lease, err,
                                     sizeof err), 0);
  assert_true(lease == 0);
  assert_int_equal(d->session, 7);
  assert_int_equal(ferry_farm_report(&f, &owner_a, 2, 7, "cpu:1", "ok", 5000, &lease, err,
                                     sizeof err), 0);
  /* Between the end and the next PUT it stays in use, never missing. */
  assert_int_equal(ferry_farm_state_of(d, 0), FERRY_FARM_IN_USE);
  assert_int_equal(f.nhistory, 1);
  const ferry_farm_record *r = ferry_farm_history_at(&f, 0);
  assert_string_equal(r->user, "alice");
  assert_int_equal(r->start_ms, 2000);
  assert_int_equal(r->end_ms, 5000);
  ferry_farm_offered(d);
  assert_int_equal(ferry_farm_state_of(d, 1), FERRY_FARM_FREE);
  assert_string_equal(d->user, "");
  d->drained = 1;
  assert_int_equal(ferry_farm_state_of(d, 1), FERRY_FARM_DRAINED);
  d->health_failures = 3;
  assert_int_equal(ferry_farm_state_of(d, 1), FERRY_FARM_OFFLINE);
  ferry_farm_forget(&f, &owner_a);
  assert_int_equal(f.ndevices, 0);
  ferry_farm_close(&f);
}

static void test_reports_refused(void **st) {
  (void)st;
  ferry_farm f;
  ferry_farm_init(&f);
  ferry_farm_device *d = ferry_farm_device_get(&f, &owner_a, "cpu");
  assert_int_equal(ferry_farm_granted(d, "cpu:1", "", "h", 1), 0);
  double lease;
  char err[160];
  /* Another owner, an unknown key, an end without a start. */
  assert_int_equal(ferry_farm_report(&f, &owner_b, 1, 1, "cpu:1", NULL, 2, &lease, err,
                                     sizeof err), FERRY_EINVAL);
  assert_int_equal(ferry_farm_report(&f, &owner_a, 1, 1, "cpu:2", NULL, 2, &lease, err,
                                     sizeof err), FERRY_EINVAL);
  assert_int_equal(ferry_farm_report(&f, &owner_a, 2, 1, "cpu:1", "ok", 2, &lease, err,
                                     sizeof err), FERRY_EINVAL);
  assert_int_equal(f.reports_refused, 3);
  assert_int_equal(d->session, 0);
  ferry_farm_close(&f);
}

static void test_leases(void **st) {
  (void)st;
  ferry_farm f;
  ferry_farm_init(&f);
  char err[160];
  assert_int_equal(ferry_farm_parse_leases(&f, "cpu=30,*=600", err, sizeof err), 0);
  assert_true(ferry_farm_lease_for(&f, "cpu") == 30);
  assert_true(ferry_farm_lease_for(&f, "gpu") == 600);
  assert_int_equal(ferry_farm_parse_leases(&f, "45", err, sizeof err), 0);
  assert_true(ferry_farm_lease_for(&f, "x") == 45);
  assert_int_equal(ferry_farm_parse_leases(&f, "cpu=-1", err, sizeof err), FERRY_EINVAL);
  assert_int_equal(ferry_farm_parse_leases(&f, "=5", err, sizeof err), FERRY_EINVAL);
  assert_int_equal(ferry_farm_parse_leases(&f, "cpu=abc", err, sizeof err), FERRY_EINVAL);
  assert_true(ferry_farm_lease_for(&f, "x") == 45); /* unchanged after errors */
  ferry_farm_device *d = ferry_farm_device_get(&f, &owner_a, "cpu");
  assert_int_equal(ferry_farm_granted(d, "m", "", "h", 0), 0);
  double lease;
  assert_int_equal(ferry_farm_report(&f, &owner_a, 1, 1, "m", NULL, 1000, &lease, err,
                                     sizeof err), 0);
  assert_true(lease == 45);
  assert_int_equal(d->lease_end_ms, 46000);
  ferry_farm_close(&f);
}

static void test_history_ring(void **st) {
  (void)st;
  ferry_farm f;
  ferry_farm_init(&f);
  ferry_farm_device *d = ferry_farm_device_get(&f, &owner_a, "cpu");
  double lease;
  char err[160];
  for (int i = 1; i <= FERRY_FARM_HISTORY + 5; i++) {
    assert_int_equal(ferry_farm_granted(d, "m", "", "h", i), 0);
    assert_int_equal(ferry_farm_report(&f, &owner_a, 1, i, "m", NULL, i, &lease, err,
                                       sizeof err), 0);
    assert_int_equal(ferry_farm_report(&f, &owner_a, 2, i, "m", "ok", i + 1, &lease, err,
                                       sizeof err), 0);
  }
  assert_int_equal(f.nhistory, FERRY_FARM_HISTORY);
  assert_int_equal(ferry_farm_history_at(&f, 0)->session, 6);
  assert_int_equal(ferry_farm_history_at(&f, FERRY_FARM_HISTORY - 1)->session,
                   FERRY_FARM_HISTORY + 5);
  assert_null(ferry_farm_history_at(&f, FERRY_FARM_HISTORY));
  ferry_farm_close(&f);
}

static void test_user_clean(void **st) {
  (void)st;
  char out[FERRY_FARM_MAX_USER + 1];
  assert_int_equal(ferry_farm_user_clean("alice@lab-3", out), 0);
  assert_string_equal(out, "alice@lab-3");
  assert_int_equal(ferry_farm_user_clean("eve\x1b[2J", out), FERRY_EINVAL);
  assert_string_equal(out, "?");
  assert_int_equal(ferry_farm_user_clean("<script>", out), FERRY_EINVAL);
  char longname[FERRY_FARM_MAX_USER + 2];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  assert_int_equal(ferry_farm_user_clean(longname, out), FERRY_EINVAL);
}

/* ---- scheduler: deadlines, positions, holds ----------------------------- */

static int grants;
static char granted_user[64]; /* g->user is valid during the call only */
static int grant_cb(void *ctx, const ferry_sched_grant *g) {
  (void)ctx;
  grants++;
  snprintf(granted_user, sizeof granted_user, "%s", g->user);
  return 0;
}
static int expired;
static size_t expired_pos;
static void expire_cb(void *ctx, const ferry_sched_waiting *w) {
  (void)ctx;
  expired++;
  expired_pos = w->position;
}

static void test_sched_deadline_and_positions(void **st) {
  (void)st;
  ferry_sched s;
  ferry_sched_owner a, b, c;
  ferry_sched_init(&s, grant_cb, NULL);
  ferry_sched_owner_init(&a);
  ferry_sched_owner_init(&b);
  ferry_sched_owner_init(&c);
  assert_int_equal(ferry_sched_request_ex(&s, &a, "k", 1, "first", 100, 0), 0);
  assert_int_equal(ferry_sched_request_ex(&s, &b, "k", 1, "second", 200, 1200), 0);
  assert_int_equal(ferry_sched_request_ex(&s, &c, "k", 5, "urgent", 300, 0), 0);
  ferry_sched_waiting w[8];
  assert_int_equal(ferry_sched_waiting_list(&s, w, 8), 3);
  assert_string_equal(w[0].user, "urgent");
  assert_int_equal(w[0].position, 1);
  assert_string_equal(w[2].user, "second");
  assert_int_equal(w[2].position, 3);
  expired = 0;
  ferry_sched_expire(&s, 1199, expire_cb, NULL);
  assert_int_equal(expired, 0);
  ferry_sched_expire(&s, 1200, expire_cb, NULL);
  assert_int_equal(expired, 1);
  assert_int_equal(expired_pos, 3);
  assert_int_equal(ferry_sched_waiting_list(&s, w, 8), 2);
  ferry_sched_owner_release(&s, &a);
  ferry_sched_owner_release(&s, &b);
  ferry_sched_owner_release(&s, &c);
  ferry_sched_close(&s);
}

static void test_sched_hold(void **st) {
  (void)st;
  ferry_sched s;
  ferry_sched_owner srv, cli;
  ferry_sched_init(&s, grant_cb, NULL);
  ferry_sched_owner_init(&srv);
  ferry_sched_owner_init(&cli);
  grants = 0;
  assert_int_equal(ferry_sched_put_ex(&s, &srv, "k", "k:1", "\"h\"", "1", 1), 0);
  assert_int_equal(ferry_sched_owner_free(&srv, "k"), 1);
  assert_int_equal(ferry_sched_request_ex(&s, &cli, "k", 0, "bob", 0, 0), 0);
  assert_int_equal(grants, 0); /* held */
  ferry_sched_hold(&s, &srv, "k", 0);
  assert_int_equal(grants, 1);
  assert_string_equal(granted_user, "bob");
  assert_int_equal(ferry_sched_owner_free(&srv, "k"), 0);
  ferry_sched_owner_release(&s, &srv);
  ferry_sched_owner_release(&s, &cli);
  ferry_sched_close(&s);
}

/* ---- metrics ------------------------------------------------------------ */

static void test_metrics(void **st) {
  (void)st;
  static ferry_metrics m;
  ferry_metrics_init(&m);
  ferry_metrics_key *k = ferry_metrics_for(&m, "cpu");
  assert_ptr_equal(ferry_metrics_for(&m, "cpu"), k);
  k->grants = 2;
  ferry_metrics_observe(&k->wait, 0.05);
  ferry_metrics_observe(&k->wait, 7);
  assert_int_equal(k->wait.buckets[0], 0); /* le 0.01 */
  assert_int_equal(k->wait.buckets[1], 1); /* le 0.1 */
  assert_int_equal(k->wait.buckets[5], 2); /* le 10 */
  /* Past the key ceiling everything goes to "_other". */
  char name[32];
  for (int i = 0; i < FERRY_METRICS_MAX_KEYS + 10; i++) {
    snprintf(name, sizeof name, "k%d", i);
    ferry_metrics_for(&m, name)->grants++;
  }
  assert_int_equal(m.nkeys, FERRY_METRICS_MAX_KEYS);
  assert_string_equal(ferry_metrics_for(&m, "new")->key, "_other");
  /* Label values are escaped. */
  static ferry_metrics m2;
  ferry_metrics_init(&m2);
  ferry_metrics_for(&m2, "a\"b\\c\nd")->grants = 1;
  ferry_buf b;
  ferry_buf_init(&b, 1 << 20);
  assert_int_equal(ferry_metrics_format(&m2, &b), 0);
  assert_int_equal(ferry_buf_append(&b, "", 1), 0);
  assert_non_null(strstr((char *)b.data,
                         "ferry_tracker_grants_total{key=\"a\\\"b\\\\c\\nd\"} 1\n"));
  assert_non_null(strstr((char *)b.data, "ferry_tracker_wait_seconds_count{key="));
  assert_non_null(strstr((char *)b.data, "le=\"+Inf\"} 0"));
  ferry_buf_close(&b);
}

/* The status JSON stays valid JSON whatever the peers named things. */
static size_t describe(void *ctx, const ferry_farm_device *d, char *server, size_t cap) {
  (void)ctx, (void)d;
  snprintf(server, cap, "1.2.3.4:5");
  return 0;
}

static void test_status_json(void **st) {
  (void)st;
  ferry_farm f;
  ferry_farm_init(&f);
  ferry_sched s;
  ferry_sched_owner o;
  ferry_sched_init(&s, grant_cb, NULL);
  ferry_sched_owner_init(&o);
  ferry_farm_device *d = ferry_farm_device_get(&f, &owner_a, "we\"ird\\key\n");
  assert_int_equal(ferry_farm_granted(d, "m", "u", "h", 1000), 0);
  assert_int_equal(ferry_sched_request_ex(&s, &o, "q\"", 0, "w\\", 0, 0), 0);
  ferry_buf b;
  ferry_buf_init(&b, 1 << 20);
  assert_int_equal(ferry_farm_encode_status(&b, &f, &s, describe, NULL, 2000, 500), 0);
  ferry_farm_status fs;
  char err[160] = "";
  assert_int_equal(ferry_farm_status_decode(b.data, b.len, &fs, err, sizeof err), 0);
  assert_int_equal(fs.ndevices, 1);
  assert_string_equal(fs.devices[0].key, "we\"ird\\key\n");
  assert_string_equal(fs.devices[0].state, "in use");
  assert_true(fs.devices[0].since == 1.0);
  assert_int_equal(fs.nwaiting, 1);
  assert_string_equal(fs.waiting[0].user, "w\\");
  assert_true(fs.waiting[0].wait == 0.5);
  ferry_farm_status_close(&fs);
  ferry_buf_close(&b);
  ferry_sched_owner_release(&s, &o);
  ferry_sched_close(&s);
  ferry_farm_close(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_states_and_holder),
      cmocka_unit_test(test_reports_refused),
      cmocka_unit_test(test_leases),
      cmocka_unit_test(test_history_ring),
      cmocka_unit_test(test_user_clean),
      cmocka_unit_test(test_sched_deadline_and_positions),
      cmocka_unit_test(test_sched_hold),
      cmocka_unit_test(test_metrics),
      cmocka_unit_test(test_status_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
