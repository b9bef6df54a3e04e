/* Tracker scheduler: priorities, FIFO within a priority, oldest offer
 * first, withdrawal, dropped requests, failed delivery, pruning, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tracker/scheduler.h"

typedef struct rec {
  char log[64][64]; /* "requester:matchkey" per grant */
  double prio[64];
  int n;
  ferry_sched_owner *refuse; /* deliveries to this owner fail */
  ferry_sched_owner *owners[16];
} rec;

static int owner_id(rec *r, ferry_sched_owner *o) {
  for (int i = 0; i < 16; i++)
    if (r->owners[i] == o)
      return i;
  return -1;
}

static int grant_cb(void *ctx, const ferry_sched_grant *g) {
  rec *r = ctx;
  if (g->requester == r->refuse)
    return -1;
  r->prio[r->n] = g->priority;
  snprintf(r->log[r->n++], 64, "c%d:%s", owner_id(r, g->requester), g->matchkey);
  return 0;
}

typedef struct fixture {
  ferry_sched s;
  rec r;
  ferry_sched_owner o[16];
} fixture;

static fixture *fx_new(void) {
  static fixture f;
  memset(&f, 0, sizeof f);
  ferry_sched_init(&f.s, grant_cb, &f.r);
  for (int i = 0; i < 16; i++) {
    ferry_sched_owner_init(&f.o[i]);
    f.r.owners[i] = &f.o[i];
  }
  return &f;
}

static void fx_free(fixture *f) {
  for (int i = 0; i < 16; i++)
    ferry_sched_owner_release(&f->s, &f->o[i]);
  ferry_sched_close(&f->s);
}

static void put(fixture *f, int owner, const char *key, const char *mk) {
  assert_int_equal(ferry_sched_put(&f->s, &f->o[owner], key, mk, "\"127.0.0.1\"", "9090"), 0);
}
static void req(fixture *f, int owner, const char *key, double prio) {
  assert_int_equal(ferry_sched_request(&f->s, &f->o[owner], key, prio), 0);
}

static void immediate_and_deferred(void **state) {
  (void)state;
  fixture *f = fx_new();
  put(f, 0, "cpu", "cpu:1");
  req(f, 5, "cpu", 1);
  assert_int_equal(f->r.n, 1);
  assert_string_equal(f->r.log[0], "c5:cpu:1");
  req(f, 6, "cpu", 1); /* nothing free: waits */
  assert_int_equal(f->r.n, 1);
  put(f, 0, "cpu", "cpu:2"); /* re-offer after the session: granted */
  assert_int_equal(f->r.n, 2);
  assert_string_equal(f->r.log[1], "c6:cpu:2");
  fx_free(f);
}

static void priority_then_fifo(void **state) {
  (void)state;
  fixture *f = fx_new();
  req(f, 5, "k", 1);
  req(f, 6, "k", 5);
  req(f, 7, "k", 1);
  req(f, 8, "k", 5);
  req(f, 9, "k", -3);
  req(f, 10, "k", 1.5);
  const char *want[] = {"c6:", "c8:", "c10:", "c5:", "c7:", "c9:"};
  for (int i = 0; i < 6; i++) {
    char mk[16];
    snprintf(mk, sizeof mk, "k:%d", i);
    put(f, 0, "k", mk);
    assert_int_equal(f->r.n, i + 1);
    assert_true(strncmp(f->r.log[i], want[i], strlen(want[i])) == 0);
  }
  fx_free(f);
}

static void oldest_offer_first(void **state) {
  (void)state;
  fixture *f = fx_new();
  put(f, 0, "k", "k:a");
  put(f, 1, "k", "k:b");
  put(f, 2, "k", "k:c");
  req(f, 5, "k", 1);
  req(f, 5, "k", 1);
  assert_string_equal(f->r.log[0], "c5:k:a");
  assert_string_equal(f->r.log[1], "c5:k:b");
  fx_free(f);
}

static void keys_are_separate_and_colons_ok(void **state) {
  (void)state;
  fixture *f = fx_new();
  put(f, 0, "127.0.0.1:5555", "127.0.0.1:5555:0.1");
  req(f, 5, "127.0.0.1", 1);
  assert_int_equal(f->r.n, 0);
  req(f, 5, "127.0.0.1:5555", 1);
  assert_int_equal(f->r.n, 1);
  assert_string_equal(f->r.log[0], "c5:127.0.0.1:5555:0.1");
  fx_free(f);
}

static void withdraw_on_release(void **state) {
  (void)state;
  fixture *f = fx_new();
  /* Odd match keys (no ':' or a prefix naming another queue) are withdrawn
   * too: the queue is stored with each offer (TVM aborted on these). */
  put(f, 0, "k", "nocolon");
  put(f, 0, "k", "other:1");
  put(f, 1, "k", "k:good");
  ferry_sched_owner_release(&f->s, &f->o[0]);
  assert_int_equal(f->o[0].noffers, 0);
  req(f, 5, "k", 1);
  req(f, 5, "k", 1);
  assert_int_equal(f->r.n, 1);
  assert_string_equal(f->r.log[0], "c5:k:good");
  ferry_tracker_queue_stat st[4];
  assert_int_equal(ferry_sched_nqueues(&f->s), 1);
  ferry_sched_stats(&f->s, st);
  assert_int_equal(st[0].free, 0);
  assert_int_equal(st[0].pending, 1);
  fx_free(f);
}

static void departed_client_dropped(void **state) {
  (void)state;
  fixture *f = fx_new();
  req(f, 5, "k", 9);
  req(f, 6, "k", 1);
  ferry_sched_owner_release(&f->s, &f->o[5]);
  ferry_tracker_queue_stat st[1];
  ferry_sched_stats(&f->s, st);
  assert_int_equal(st[0].pending, 1);
  put(f, 0, "k", "k:1");
  assert_int_equal(f->r.n, 1);
  assert_string_equal(f->r.log[0], "c6:k:1");
  fx_free(f);
}

static void failed_delivery_requeues_offer(void **state) {
  (void)state;
  fixture *f = fx_new();
  put(f, 0, "k", "k:a");
  put(f, 1, "k", "k:b");
  f->r.refuse = &f->o[5];
  req(f, 5, "k", 1); /* k:a fails, goes to the end: free = [k:b, k:a] */
  assert_int_equal(f->r.n, 0);
  req(f, 6, "k", 1);
  assert_string_equal(f->r.log[0], "c6:k:b");
  req(f, 6, "k", 1);
  assert_string_equal(f->r.log[1], "c6:k:a");
  fx_free(f);
}

static void pending_keys(void **state) {
  (void)state;
  fixture *f = fx_new();
  put(f, 0, "k", "k:1");
  put(f, 0, "j", "j:1");
  put(f, 0, "k", "k:1"); /* re-offered twice: listed once */
  const char *out[8];
  assert_int_equal(ferry_sched_pending(&f->o[0], out, 8), 2);
  assert_string_equal(out[0], "k:1");
  assert_string_equal(out[1], "j:1");
  req(f, 5, "j", 1);
  assert_int_equal(ferry_sched_pending(&f->o[0], out, 8), 1);
  assert_string_equal(out[0], "k:1");
  fx_free(f);
}

static void creation_order_and_pruning(void **state) {
  (void)state;
  fixture *f = fx_new();
  put(f, 0, "b", "b:1");
  req(f, 5, "a", 1);
  put(f, 0, "c", "c:1");
  req(f, 5, "b", 1); /* b becomes empty but stays (few queues) */
  ferry_tracker_queue_stat st[4];
  assert_int_equal(ferry_sched_nqueues(&f->s), 3);
  ferry_sched_stats(&f->s, st);
  assert_string_equal(st[0].key, "b");
  assert_string_equal(st[1].key, "a");
  assert_string_equal(st[2].key, "c");
  assert_int_equal(st[0].free + st[0].pending, 0);
  /* Requests for ever new keys by departing clients: bounded. */
  for (int i = 0; i < 5000; i++) {
    char k[32];
    snprintf(k, sizeof k, "junk%d", i);
    req(f, 7, k, 1);
    ferry_sched_owner_release(&f->s, &f->o[7]);
  }
  assert_true(ferry_sched_nqueues(&f->s) <= FERRY_SCHED_KEEP_EMPTY_QUEUES + 1);
  fx_free(f);
}

static void per_owner_limits(void **state) {
  (void)state;
  fixture *f = fx_new();
  for (int i = 0; i < FERRY_SCHED_MAX_OFFERS_PER_OWNER; i++)
    put(f, 0, "k", "k:x");
  assert_int_equal(ferry_sched_put(&f->s, &f->o[0], "k", "k:y", "null", "1"), FERRY_ETOOBIG);
  for (int i = 0; i < FERRY_SCHED_MAX_REQUESTS_PER_OWNER; i++)
    req(f, 1, "z", 1);
  assert_int_equal(ferry_sched_request(&f->s, &f->o[1], "z", 1), FERRY_ETOOBIG);
  fx_free(f);
}

/* Heap removal from the middle keeps the order: 40 requests, one owner's
 * ten dropped, the other 30 must come out sorted by (-priority, arrival). */
static void heap_removal_keeps_order(void **state) {
  (void)state;
  fixture *f = fx_new();
  int owner_of[40];
  double prio_of[40];
  for (int i = 0; i < 40; i++) {
    owner_of[i] = i % 4 + 4;
    prio_of[i] = (double)((i * 7) % 5);
    req(f, owner_of[i], "k", prio_of[i]);
  }
  ferry_sched_owner_release(&f->s, &f->o[5]);
  int expect[40], ne = 0;
  for (int p = 4; p >= 0; p--)
    for (int i = 0; i < 40; i++)
      if (owner_of[i] != 5 && prio_of[i] == p)
        expect[ne++] = i;
  assert_int_equal(ne, 30);
  for (int i = 0; i < 30; i++)
    put(f, 0, "k", "k:1");
  assert_int_equal(f->r.n, 30);
  for (int i = 0; i < 30; i++) {
    char want[16];
    snprintf(want, sizeof want, "c%d:", owner_of[expect[i]]);
    assert_true(strncmp(f->r.log[i], want, strlen(want)) == 0);
    assert_true(f->r.prio[i] == prio_of[expect[i]]);
  }
  fx_free(f);
}

/* The byte budget refuses offers and requests past max_bytes, and every
 * release gives the bytes back (bytes returns to 0). */
static void byte_budget(void **state) {
  (void)state;
  fixture *f = fx_new();
  f->s.max_bytes = 64 * 1024;
  char key[2048];
  memset(key, 'q', sizeof key - 1);
  key[sizeof key - 1] = 0;
  int refused = 0;
  for (int i = 0; i < 200 && !refused; i++) {
    key[0] = (char)('A' + i % 26);
    key[1] = (char)('A' + i / 26);
    int rc = ferry_sched_put(&f->s, &f->o[0], key, key, "\"127.0.0.1\"", "1");
    if (rc == FERRY_ETOOBIG)
      refused = 1;
    else
      assert_int_equal(rc, 0);
  }
  assert_true(refused);
  assert_true(f->s.bytes <= f->s.max_bytes);
  assert_int_equal(ferry_sched_request(&f->s, &f->o[1], key, 1), FERRY_ETOOBIG);
  ferry_sched_owner_release(&f->s, &f->o[0]);
  assert_int_equal(ferry_sched_request(&f->s, &f->o[1], key, 1), 0);
  ferry_sched_owner_release(&f->s, &f->o[1]);
  fx_free(f);
  assert_int_equal(f->s.bytes, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(immediate_and_deferred),
      cmocka_unit_test(priority_then_fifo),
      cmocka_unit_test(oldest_offer_first),
      cmocka_unit_test(keys_are_separate_and_colons_ok),
      cmocka_unit_test(withdraw_on_release),
      cmocka_unit_test(departed_client_dropped),
      cmocka_unit_test(failed_delivery_requeues_offer),
      cmocka_unit_test(pending_keys),
      cmocka_unit_test(creation_order_and_pruning),
      cmocka_unit_test(per_owner_limits),
      cmocka_unit_test(heap_removal_keeps_order),
      cmocka_unit_test(byte_budget),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
