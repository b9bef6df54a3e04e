/* The proxy's pairing table: both modes, codes, expiry, key regeneration
 * (B1/B2 fixed), the key set of server:proxy[...]. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/pairing.h"
#include "wire/tracker_json.h"

static int A, B, C, D; /* stand-ins for connections */

static int offer(ferry_pairing *t, int role, const char *k, void *conn,
                 int64_t now, void **partner) {
  return ferry_pairing_offer(t, role, k, strlen(k), conn, now, partner);
}

static void match_key_parsing(void **state) {
  (void)state;
  const char *k;
  size_t n;
  const char s1[] = "client:K0:0.5 -timeout=30";
  assert_int_equal(ferry_pairing_match_key(s1, strlen(s1), &k, &n), 0);
  assert_int_equal(n, 6);
  assert_memory_equal(k, "K0:0.5", 6);
  const char s2[] = "server:K0";
  assert_int_equal(ferry_pairing_match_key(s2, strlen(s2), &k, &n), 0);
  assert_int_equal(n, 2);
  /* Empty bodies hung TVM's proxy; here they are an error. */
  assert_int_equal(ferry_pairing_match_key("server:", 7, &k, &n), FERRY_EPROTO);
  assert_int_equal(ferry_pairing_match_key("client:   ", 10, &k, &n), FERRY_EPROTO);
  assert_int_equal(ferry_pairing_match_key("", 0, &k, &n), FERRY_EPROTO);
  /* The role prefix is skipped without looking at it, as TVM does. */
  assert_int_equal(ferry_pairing_match_key("xxxxxxxabc", 10, &k, &n), 0);
  assert_memory_equal(k, "abc", 3);
  assert_int_equal(ferry_pairing_role("server:K0", 9), FERRY_PAIR_SERVER);
  assert_int_equal(ferry_pairing_role("client:K0", 9), FERRY_PAIR_CLIENT);
  assert_int_equal(ferry_pairing_role("bogus:K0", 8), FERRY_PAIR_CLIENT);
  assert_int_equal(ferry_pairing_role("serv", 4), FERRY_PAIR_CLIENT);
}

static void proxy_mode_both_orders(void **state) {
  (void)state;
  ferry_pairing t;
  ferry_pairing_init(&t, 0, 16, 600000);
  void *p;
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K0", &A, 0, &p), FERRY_PAIR_PARKED);
  assert_null(p);
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K0", &B, 1, &p), FERRY_PAIR_DUPLICATE);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, "K1", &C, 2, &p), FERRY_PAIR_PARKED);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, "K1", &D, 2, &p), FERRY_PAIR_DUPLICATE);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, "K0", &B, 3, &p), FERRY_PAIR_PAIRED);
  assert_ptr_equal(p, &A);
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K1", &D, 4, &p), FERRY_PAIR_PAIRED);
  assert_ptr_equal(p, &C);
  assert_int_equal(t.count, 0);
  /* Keys compare whole: K0 does not match K00. */
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K00", &A, 5, &p), FERRY_PAIR_PARKED);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, "K0", &B, 5, &p), FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_remove(&t, &A), 0);
  assert_int_equal(ferry_pairing_remove(&t, &A), -1);
  /* After the waiter left, the key is free again. */
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K0", &C, 6, &p), FERRY_PAIR_PAIRED);
  assert_ptr_equal(p, &B);
  ferry_pairing_close(&t);
}

static void proxy_mode_expiry_and_cap(void **state) {
  (void)state;
  ferry_pairing t;
  ferry_pairing_init(&t, 0, 2, 1000);
  void *p, *out[4];
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K0", &A, 0, &p), FERRY_PAIR_PARKED);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, "K1", &B, 500, &p), FERRY_PAIR_PARKED);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, "K2", &C, 500, &p), FERRY_ETOOBIG);
  assert_int_equal(ferry_pairing_expire(&t, 999, out, 4), 0);
  assert_int_equal(ferry_pairing_expire(&t, 1000, out, 4), 1);
  assert_ptr_equal(out[0], &A);
  assert_int_equal(ferry_pairing_expire(&t, 5000, out, 4), 1);
  assert_ptr_equal(out[0], &B);
  assert_int_equal(t.count, 0);
  ferry_pairing_close(&t);
}

static int has_device_prefix(const char *k, const char *dev) {
  size_t n = strlen(dev);
  if (strncmp(k, dev, n) != 0 || k[n] != ':')
    return 0;
  /* The suffix never contains ':' or whitespace, so the last ':' of the
   * key is the one after the device key (B1). */
  return strchr(k + n + 1, ':') == NULL && strpbrk(k + n + 1, " \t") == NULL;
}

static void tracker_mode_park_put_pair(void **state) {
  (void)state;
  ferry_pairing t;
  ferry_pairing_init(&t, 1, 16, 600000);
  void *p;
  char dev[64], mk[128], mk2[128];
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K2", &A, 0, &p), FERRY_PAIR_PARKED);
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K0", &B, 0, &p), FERRY_PAIR_PARKED);
  /* A second server with the same device key is fine in tracker mode. */
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K0", &C, 0, &p), FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_string_equal(dev, "K2");
  assert_true(has_device_prefix(mk, "K2"));
  assert_int_equal(ferry_pairing_take_keyset_change(&t), 1);
  assert_int_equal(ferry_pairing_take_keyset_change(&t), 0);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk2, sizeof mk2), 1);
  assert_string_equal(dev, "K0");
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk2, sizeof mk2), 1);
  assert_string_equal(dev, "K0");
  assert_int_equal(ferry_pairing_take_keyset_change(&t), 1);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk2, sizeof mk2), 0);
  ferry_buf b;
  ferry_buf_init(&b, 1024);
  assert_int_equal(ferry_pairing_info_key(&t, &b), 0);
  assert_string_equal((char *)b.data, "server:proxy[K2,K0]");
  ferry_buf_close(&b);
  /* Clients: the device key alone or a wrong suffix mismatch. */
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, "K2", &D, 1, &p), FERRY_PAIR_MISMATCH);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, "K2:0.1", &D, 1, &p), FERRY_PAIR_MISMATCH);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, mk, &D, 1, &p), FERRY_PAIR_PAIRED);
  assert_ptr_equal(p, &A);
  /* The same key cannot be used twice. */
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, mk, &D, 1, &p), FERRY_PAIR_MISMATCH);
  /* A parked, offered server that leaves reports a stale offer. */
  assert_int_equal(ferry_pairing_remove(&t, &B), 1);
  ferry_pairing_close(&t);
}

static void tracker_mode_regenerate_unused(void **state) {
  (void)state;
  ferry_pairing t;
  ferry_pairing_init(&t, 1, 16, 600000);
  void *p;
  char dev[64], mk[128], mk2[128];
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "dev:with:colons", &A, 0, &p),
                   FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_string_equal(dev, "dev:with:colons");
  ferry_pairing_poll_sent(&t);
  const char *listed[] = {mk};
  assert_int_equal(ferry_pairing_pending_reply(&t, listed, 1, 1000), 0);
  /* Key handed out: missing from the reply; new key only after > 5 s. */
  ferry_pairing_poll_sent(&t);
  assert_int_equal(ferry_pairing_pending_reply(&t, NULL, 0, 2000), 0);
  ferry_pairing_poll_sent(&t);
  assert_int_equal(ferry_pairing_pending_reply(&t, NULL, 0, 7000), 0);
  ferry_pairing_poll_sent(&t);
  assert_int_equal(ferry_pairing_pending_reply(&t, NULL, 0, 7001), 1);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk2, sizeof mk2), 1);
  assert_string_equal(dev, "dev:with:colons"); /* B1: device key intact */
  assert_true(has_device_prefix(mk2, "dev:with:colons"));
  assert_string_not_equal(mk, mk2);
  /* Same device key: the key set does not change. */
  assert_int_equal(ferry_pairing_take_keyset_change(&t), 1);
  assert_int_equal(ferry_pairing_take_keyset_change(&t), 0);
  /* The replaced key still works during the grace period, then not. */
  assert_non_null(ferry_pairing_find(&t, &A));
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, mk, &B, 7001 + 5000, &p), FERRY_PAIR_MISMATCH);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, mk, &B, 8000, &p), FERRY_PAIR_PAIRED);
  assert_ptr_equal(p, &A);
  assert_int_equal(t.stale_offer, 1); /* mk2 is on offer for a taken server */
  /* Through the current key: nothing stale. */
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K9", &C, 9000, &p), FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, mk, &D, 9000, &p), FERRY_PAIR_PAIRED);
  assert_int_equal(t.stale_offer, 0);
  ferry_pairing_close(&t);
}

static void tracker_mode_not_judged_before_offer(void **state) {
  (void)state;
  ferry_pairing t;
  ferry_pairing_init(&t, 1, 16, 600000);
  void *p;
  char dev[64], mk[128];
  ferry_pairing_poll_sent(&t);
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K0", &A, 0, &p), FERRY_PAIR_PARKED);
  /* Parked after the poll went out: its absence from the reply means
   * nothing, however long it takes. */
  assert_int_equal(ferry_pairing_pending_reply(&t, NULL, 0, 100000), 0);
  assert_int_equal(ferry_pairing_pending_reply(&t, NULL, 0, 200000), 0);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_int_equal(ferry_pairing_pending_reply(&t, NULL, 0, 300000), 0);
  ferry_pairing_close(&t);
}

static void tracker_mode_reoffer_all(void **state) {
  (void)state;
  ferry_pairing t;
  ferry_pairing_init(&t, 1, 16, 600000);
  void *p;
  char dev[64], mk[128], mk2[128], small[4];
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "K0", &A, 0, &p), FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_next_put(&t, small, sizeof small, mk, sizeof mk),
                   1); /* "K0" fits in 4 */
  assert_int_equal(ferry_pairing_take_keyset_change(&t), 1);
  assert_int_equal(ferry_pairing_reoffer_all(&t, 10), 0);
  ferry_buf b;
  ferry_buf_init(&b, 1024);
  assert_int_equal(ferry_pairing_info_key(&t, &b), 0);
  assert_string_equal((char *)b.data, "server:proxy[]");
  ferry_buf_close(&b);
  assert_int_equal(ferry_pairing_next_put(&t, dev, 2, mk2, sizeof mk2), FERRY_ETOOBIG);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk2, sizeof mk2), 1);
  assert_string_not_equal(mk, mk2);
  assert_int_equal(ferry_pairing_take_keyset_change(&t), 1);
  /* A server that was never offered since reports no stale offer. */
  assert_int_equal(ferry_pairing_reoffer_all(&t, 20), 0);
  assert_int_equal(ferry_pairing_remove(&t, &A), 0);
  ferry_pairing_close(&t);
}

/* A flood of servers parked after a device cannot take its offer slots:
 * free slots go to the device key with the fewest offers. */
static void tracker_mode_offer_cap_is_fair(void **state) {
  (void)state;
  ferry_pairing t;
  ferry_pairing_init(&t, 1, 64, 600000);
  t.max_offers = 3;
  static int fl[8];
  void *p;
  char dev[64], mk[128], amk[128];
  int why = 0;
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "REAL", &A, 0, &p), FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, amk, sizeof amk), 1);
  for (int i = 0; i < 8; i++)
    assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "FAKE", &fl[i], 0, &p),
                     FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_string_equal(dev, "FAKE");
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 0);
  assert_int_equal(t.noffers, 3);
  /* Each held server is reported once, naming the offer limit. */
  for (int i = 2; i < 8; i++) {
    assert_ptr_equal(ferry_pairing_take_held(&t, &why), &fl[i]);
    assert_int_equal(why, FERRY_PAIR_HOLD_OFFERS);
  }
  assert_null(ferry_pairing_take_held(&t, &why));
  /* The real device's session starts; it dials in again and gets the
   * freed slot although six fakes waited longer. */
  assert_int_equal(offer(&t, FERRY_PAIR_CLIENT, amk, &D, 1, &p), FERRY_PAIR_PAIRED);
  assert_int_equal(t.noffers, 2);
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "REAL", &B, 2, &p), FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_string_equal(dev, "REAL");
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 0);
  /* A refused PUT makes its server due again and frees its slot. */
  ferry_pairing_put_refused(&t, mk);
  assert_int_equal(t.noffers, 2);
  assert_true(ferry_pairing_find(&t, &B)->needs_put);
  ferry_pairing_put_refused(&t, "no-such-key");
  assert_int_equal(t.noffers, 2);
  /* Leaving servers free their slots; a reoffer starts from zero. */
  assert_int_equal(ferry_pairing_remove(&t, &fl[0]), 1);
  assert_int_equal(t.noffers, 1);
  assert_int_equal(ferry_pairing_reoffer_all(&t, 3), 0);
  assert_int_equal(t.noffers, 0);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_string_equal(dev, "REAL"); /* first seen, kept while in a session */
  ferry_pairing_close(&t);
}

/* At most FERRY_PAIRING_MAX_KEYSET device keys are listed; later keys
 * wait, the servers of listed keys are still offered. */
static void tracker_mode_keyset_cap(void **state) {
  (void)state;
  enum { N = FERRY_PAIRING_MAX_KEYSET + 6 };
  static int conns[N + 1];
  ferry_pairing t;
  ferry_pairing_init(&t, 1, N + 1, 600000);
  t.max_offers = 2 * N;
  void *p;
  char k[32], dev[64], mk[128];
  for (int i = 0; i < N; i++) {
    snprintf(k, sizeof k, "D%d", i);
    assert_int_equal(offer(&t, FERRY_PAIR_SERVER, k, &conns[i], 0, &p), FERRY_PAIR_PARKED);
  }
  int puts = 0;
  while (ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk) == 1)
    puts++;
  assert_int_equal(puts, FERRY_PAIRING_MAX_KEYSET);
  assert_int_equal(t.nkeys, FERRY_PAIRING_MAX_KEYSET);
  int why = 0;
  assert_ptr_equal(ferry_pairing_take_held(&t, &why), &conns[FERRY_PAIRING_MAX_KEYSET]);
  assert_int_equal(why, FERRY_PAIR_HOLD_KEYS);
  /* One more server of a listed key is offered. */
  assert_int_equal(offer(&t, FERRY_PAIR_SERVER, "D0", &conns[N], 0, &p), FERRY_PAIR_PARKED);
  assert_int_equal(ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk), 1);
  assert_string_equal(dev, "D0");
  ferry_pairing_close(&t);
}

/* The info key stays under FERRY_PAIRING_MAX_INFO_KEY once JSON-escaped;
 * keys that are not UTF-8 text are refused at parking. */
static void tracker_mode_info_key_bytes(void **state) {
  (void)state;
  static int conns[40];
  ferry_pairing t;
  ferry_pairing_init(&t, 1, 64, 600000);
  void *p;
  char dev[4096], mk[4200];
  /* 2000 quotes each: 4000 bytes escaped. */
  char k[2002];
  memset(k, '"', 2000);
  for (int i = 0; i < 40; i++) {
    k[2000] = (char)('A' + i % 26);
    k[2001] = (char)('a' + i / 26);
    assert_int_equal(ferry_pairing_offer(&t, FERRY_PAIR_SERVER, k, 2002, &conns[i], 0, &p),
                     FERRY_PAIR_PARKED);
  }
  int puts = 0;
  while (ferry_pairing_next_put(&t, dev, sizeof dev, mk, sizeof mk) == 1)
    puts++;
  assert_true(puts > 10 && puts < 40);
  int why = 0;
  assert_ptr_equal(ferry_pairing_take_held(&t, &why), &conns[puts]);
  assert_int_equal(why, FERRY_PAIR_HOLD_INFO);
  ferry_buf b, esc;
  ferry_buf_init(&b, 1 << 20);
  ferry_buf_init(&esc, 1 << 22);
  assert_int_equal(ferry_pairing_info_key(&t, &b), 0);
  assert_int_equal(ferry_tracker_json_string(&esc, (const char *)b.data, b.len), 0);
  assert_true(esc.len - 2 <= FERRY_PAIRING_MAX_INFO_KEY);
  ferry_buf_close(&b);
  ferry_buf_close(&esc);
  assert_int_equal(ferry_pairing_offer(&t, FERRY_PAIR_SERVER, "bad\xff", 4, &A, 0, &p),
                   FERRY_EINVAL);
  assert_int_equal(ferry_pairing_offer(&t, FERRY_PAIR_SERVER, "nul\0x", 5, &A, 0, &p),
                   FERRY_EINVAL);
  assert_null(ferry_pairing_find(&t, &A));
  ferry_pairing_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(match_key_parsing),
      cmocka_unit_test(proxy_mode_both_orders),
      cmocka_unit_test(proxy_mode_expiry_and_cap),
      cmocka_unit_test(tracker_mode_park_put_pair),
      cmocka_unit_test(tracker_mode_regenerate_unused),
      cmocka_unit_test(tracker_mode_not_judged_before_offer),
      cmocka_unit_test(tracker_mode_reoffer_all),
      cmocka_unit_test(tracker_mode_offer_cap_is_fair),
      cmocka_unit_test(tracker_mode_keyset_cap),
      cmocka_unit_test(tracker_mode_info_key_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
