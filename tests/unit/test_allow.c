/* --allow lists: parsing (good, bad, at the limit) and matching IPv4,
 * IPv6 and IPv4-mapped addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "base/allow.h"

static int match4(const ferry_allow *a, const char *ip) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
  return ferry_allow_match(a, (struct sockaddr *)&sin);
}

static int match6(const ferry_allow *a, const char *ip) {
  struct sockaddr_in6 sin6;
  memset(&sin6, 0, sizeof sin6);
  sin6.sin6_family = AF_INET6;
  assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
  return ferry_allow_match(a, (struct sockaddr *)&sin6);
}

static void empty_allows_all(void **state) {
  (void)state;
  ferry_allow a;
  ferry_allow_init(&a);
  assert_true(match4(&a, "8.8.8.8"));
  assert_true(match6(&a, "2001:db8::1"));
}

static void ipv4_networks(void **state) {
  (void)state;
  ferry_allow a;
  char err[128];
  ferry_allow_init(&a);
  assert_int_equal(ferry_allow_parse(&a, "10.0.0.0/8,192.168.1.7", err, sizeof err), 0);
  assert_int_equal(a.n, 2);
  assert_true(match4(&a, "10.255.1.2"));
  assert_false(match4(&a, "11.0.0.1"));
  assert_true(match4(&a, "192.168.1.7"));
  assert_false(match4(&a, "192.168.1.8"));
  /* IPv4 peers on a dual-stack socket arrive mapped. */
  assert_true(match6(&a, "::ffff:10.1.2.3"));
  assert_false(match6(&a, "::ffff:11.1.2.3"));
  assert_false(match6(&a, "2001:db8::1"));
  char text[128];
  ferry_allow_format(&a, text, sizeof text);
  assert_string_equal(text, "10.0.0.0/8,192.168.1.7/32");
}

static void odd_prefixes(void **state) {
  (void)state;
  ferry_allow a;
  char err[128];
  ferry_allow_init(&a);
  assert_int_equal(ferry_allow_parse(&a, "172.16.0.0/12,0.0.0.0/0", err, sizeof err), 0);
  assert_true(match4(&a, "172.31.255.255"));
  assert_true(match4(&a, "1.2.3.4")); /* /0 */
  ferry_allow_init(&a);
  assert_int_equal(ferry_allow_parse(&a, "172.16.0.0/12", err, sizeof err), 0);
  assert_false(match4(&a, "172.32.0.0"));
  assert_false(match4(&a, "172.15.255.255"));
}

static void ipv6_networks(void **state) {
  (void)state;
  ferry_allow a;
  char err[128];
  ferry_allow_init(&a);
  assert_int_equal(ferry_allow_parse(&a, "::1,2001:db8::/32", err, sizeof err), 0);
  assert_true(match6(&a, "::1"));
  assert_true(match6(&a, "2001:db8:ffff::5"));
  assert_false(match6(&a, "2001:db9::5"));
  assert_false(match4(&a, "127.0.0.1"));
}

static void bad_entries(void **state) {
  (void)state;
  ferry_allow a;
  char err[128];
  ferry_allow_init(&a);
  const char *bad[] = {"", ",", "10.0.0.0/33", "10.0.0.1/8", "nothost", "1.2.3.4/",
                       "1.2.3.4/x", "::1/129", "10.0.0.0/8,", "1.2.3.4/-1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_int_equal(ferry_allow_parse(&a, bad[i], err, sizeof err), FERRY_EINVAL);
    assert_non_null(strstr(err, "--allow"));
    assert_int_equal(a.n, 0); /* unchanged on error */
  }
}

static void at_the_limit(void **state) {
  (void)state;
  ferry_allow a;
  char err[128], spec[64 * 20];
  size_t used = 0;
  for (int i = 0; i < FERRY_ALLOW_MAX; i++)
    used += (size_t)snprintf(spec + used, sizeof spec - used, "%s10.0.%d.0/24", i ? "," : "", i);
  ferry_allow_init(&a);
  assert_int_equal(ferry_allow_parse(&a, spec, err, sizeof err), 0);
  assert_int_equal(a.n, FERRY_ALLOW_MAX);
  assert_true(match4(&a, "10.0.63.9"));
  assert_int_equal(ferry_allow_parse(&a, "1.1.1.1", err, sizeof err), FERRY_ETOOBIG);
  assert_int_equal(a.n, FERRY_ALLOW_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(empty_allows_all), cmocka_unit_test(ipv4_networks),
      cmocka_unit_test(odd_prefixes),     cmocka_unit_test(ipv6_networks),
      cmocka_unit_test(bad_entries),      cmocka_unit_test(at_the_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
