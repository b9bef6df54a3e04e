/* --allow-hop lists: the syntax check of ferry server's start-up and the
 * match of a client's rpc.Connect target (session_hop.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/server_main.h"
#include "server/session_internal.h"

static void syntax(void **state) {
  (void)state;
  char why[256];
  const char *good[] = {"127.0.0.1:9090", "board:*", "a:1,b:65535,[::1]:9091", "h:*,h2:22"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_int_equal(ferry_server_allow_hop_check(good[i], why, sizeof why), FERRY_OK);
  const char *bad[] = {"", "host", "host:", ":9090", "h:0", "h:65536", "h:123456",
                       "h:9x", "h:1,", "h:1,,g:2", "h:-1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why[0] = 0;
    assert_int_equal(ferry_server_allow_hop_check(bad[i], why, sizeof why), FERRY_EINVAL);
    assert_non_null(strstr(why, "--allow-hop"));
  }
}

static void matching(void **state) {
  (void)state;
  const char *list = "127.0.0.1:9091,Board.local:*,[::1]:9092";
  assert_true(session_hop_allowed(list, "127.0.0.1", 9091));
  assert_false(session_hop_allowed(list, "127.0.0.1", 9090));
  assert_false(session_hop_allowed(list, "127.0.0.10", 9091));
  assert_false(session_hop_allowed(list, "127.0.0.", 9091));
  assert_true(session_hop_allowed(list, "board.LOCAL", 1));
  assert_true(session_hop_allowed(list, "board.local", 65535));
  assert_false(session_hop_allowed(list, "board.local", 70000));
  assert_false(session_hop_allowed(list, "board", 1));
  assert_true(session_hop_allowed(list, "::1", 9092));
  assert_false(session_hop_allowed(list, "::1", 9091));
  assert_false(session_hop_allowed(NULL, "127.0.0.1", 9091));
  assert_false(session_hop_allowed("", "127.0.0.1", 9091));
  /* A port given as "09091" in the list still means 9091. */
  assert_true(session_hop_allowed("h:09091", "h", 9091));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(syntax),
      cmocka_unit_test(matching),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
