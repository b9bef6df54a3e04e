#include "base/random.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>

int ferry_random_bytes(void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return FERRY_ESYS;
    }
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

int ferry_random_suffix(char out[FERRY_RANDOM_SUFFIX_LEN]) {
  uint64_t v;
  int rc = ferry_random_bytes(&v, sizeof v);
  if (rc)
    return rc;
  /* 10^19 > 2^63, so reduce to keep exactly 19 digits after "0.". */
  v %= UINT64_C(10000000000000000000);
  snprintf(out, FERRY_RANDOM_SUFFIX_LEN, "0.%019" PRIu64, v);
  return 0;
}
