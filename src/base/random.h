/* Unpredictable values from the kernel's CSPRNG (getrandom). */
#ifndef FERRY_BASE_RANDOM_H
#define FERRY_BASE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"

/* Fills buf with n random bytes.  FERRY_ESYS if the kernel refuses. */
int ferry_random_bytes(void *buf, size_t n) FERRY_MUST_CHECK;

/* Writes a match-key suffix: "0." followed by 19 decimal digits of a 64-bit
 * random number (no ':' and no whitespace, so peers that split a match key
 * at its last ':' recover the device key).  out must hold 22 bytes. */
#define FERRY_RANDOM_SUFFIX_LEN 22
int ferry_random_suffix(char out[FERRY_RANDOM_SUFFIX_LEN]) FERRY_MUST_CHECK;

#endif
