/* A library whose constructor never returns, for the server's test of a
 * session whose client leaves while the session's code is stuck
 * (issue 10 item 7): dlopen in load_module never comes back.  It sleeps
 * rather than spins so the test costs no CPU; to the server both are the
 * same: a child that does not read its socket any more. */
#include <unistd.h>

#include "ferry/tvm_c_abi.h"

void (*__TVMAPISetLastError)(const char *) = 0;
void *__tvm_module_ctx = 0;

__attribute__((constructor)) static void never_returns(void) {
  for (;;)
    sleep(1);
}

__attribute__((visibility("default"))) int ctor_loop(TVMValue *args, int *codes, int n,
                                                     TVMValue *ret, int *rcode, void *res) {
  (void)args, (void)codes, (void)n, (void)ret, (void)rcode, (void)res;
  return 0;
}
