/* The proxy's per-address connection counts: IPv4 and IPv6 keys, the
 * address ceiling, and deletion that keeps every other address findable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "proxy/addrcount.h"

static void key4(const char *ip, uint8_t k[16]) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
  assert_int_equal(ferry_addrcount_key((struct sockaddr *)&sa, k), 0);
}

static void counts_per_address(void **state) {
  (void)state;
  ferry_addrcount a;
  assert_int_equal(ferry_addrcount_init(&a, 3), 0);
  uint8_t k1[16], k2[16], k3[16], k4[16], k6[16];
  key4("127.0.0.1", k1);
  key4("127.0.0.2", k2);
  key4("10.0.0.1", k3);
  key4("10.0.0.2", k4);
  /* ::ffff:127.0.0.1 is the same peer as 127.0.0.1. */
  struct sockaddr_in6 s6;
  memset(&s6, 0, sizeof s6);
  s6.sin6_family = AF_INET6;
  assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr), 1);
  assert_int_equal(ferry_addrcount_key((struct sockaddr *)&s6, k6), 0);
  assert_memory_equal(k1, k6, 16);
  struct sockaddr other = {.sa_family = AF_UNIX};
  assert_int_equal(ferry_addrcount_key(&other, k6), FERRY_EINVAL);

  assert_int_equal(ferry_addrcount_get(&a, k1), 0);
  assert_int_equal(ferry_addrcount_add(&a, k1), 0);
  assert_int_equal(ferry_addrcount_add(&a, k1), 0);
  assert_int_equal(ferry_addrcount_add(&a, k2), 0);
  assert_int_equal(ferry_addrcount_get(&a, k1), 2);
  assert_int_equal(ferry_addrcount_get(&a, k2), 1);
  assert_int_equal(ferry_addrcount_add(&a, k3), 0);
  /* A fourth address is over the ceiling; more of a known one is fine. */
  assert_int_equal(ferry_addrcount_add(&a, k4), FERRY_ETOOBIG);
  assert_int_equal(ferry_addrcount_get(&a, k4), 0);
  assert_int_equal(ferry_addrcount_add(&a, k3), 0);
  ferry_addrcount_sub(&a, k2);
  assert_int_equal(ferry_addrcount_get(&a, k2), 0);
  assert_int_equal(ferry_addrcount_add(&a, k4), 0);
  ferry_addrcount_sub(&a, k2); /* none left: nothing happens */
  assert_int_equal(ferry_addrcount_get(&a, k1), 2);
  ferry_addrcount_close(&a);
}

static void many_addresses_survive_deletions(void **state) {
  (void)state;
  enum { N = 3000 };
  ferry_addrcount a;
  assert_int_equal(ferry_addrcount_init(&a, N), 0);
  uint8_t k[16];
  memset(k, 0, sizeof k);
  for (uint32_t i = 0; i < N; i++) {
    memcpy(k, &i, 4);
    for (uint32_t j = 0; j <= i % 3; j++)
      assert_int_equal(ferry_addrcount_add(&a, k), 0);
  }
  assert_int_equal(a.used, N);
  /* Remove every other address entirely; the rest keep their counts. */
  for (uint32_t i = 0; i < N; i += 2) {
    memcpy(k, &i, 4);
    for (uint32_t j = 0; j <= i % 3; j++)
      ferry_addrcount_sub(&a, k);
  }
  for (uint32_t i = 0; i < N; i++) {
    memcpy(k, &i, 4);
    assert_int_equal(ferry_addrcount_get(&a, k), i % 2 ? i % 3 + 1 : 0);
  }
  assert_int_equal(a.used, N / 2);
  ferry_addrcount_close(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counts_per_address),
      cmocka_unit_test(many_addresses_survive_deletions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
