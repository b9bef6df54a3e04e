#include "proxy/addrcount.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/random.h"

int ferry_addrcount_init(ferry_addrcount *a, size_t max) {
  memset(a, 0, sizeof *a);
  size_t cap = 16;
  while (cap < 2 * max + 2)
    cap <<= 1;
  int rc = ferry_random_bytes(&a->seed, sizeof a->seed);
  if (rc)
    return rc;
  a->slots = calloc(cap, sizeof *a->slots);
  if (!a->slots)
    return FERRY_ENOMEM;
  a->mask = cap - 1;
  a->max = max;
  return 0;
}

void ferry_addrcount_close(ferry_addrcount *a) {
  free(a->slots);
  memset(a, 0, sizeof *a);
}

int ferry_addrcount_key(const struct sockaddr *sa, uint8_t key[16]) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    memset(key, 0, 10);
    key[10] = key[11] = 0xff;
    memcpy(key + 12, &v4->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 0;
  }
  return FERRY_EINVAL;
}

/* Seeded FNV-1a, finished with a multiply-xorshift so that the low bits
 * (the ones the mask keeps) depend on every byte. */
static size_t hash(const ferry_addrcount *a, const uint8_t *k) {
  uint64_t h = 1469598103934665603ull ^ a->seed;
  for (int i = 0; i < 16; i++) {
    h ^= k[i];
    h *= 1099511628211ull;
  }
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return (size_t)h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const ferry_addrcount *a, const uint8_t *k) {
  size_t i = hash(a, k) & a->mask;
  while (a->slots[i].count && memcmp(a->slots[i].addr, k, 16) != 0)
    i = (i + 1) & a->mask;
  return i;
}

uint32_t ferry_addrcount_get(const ferry_addrcount *a, const uint8_t key[16]) {
  return a->slots ? a->slots[find(a, key)].count : 0;
}

int ferry_addrcount_add(ferry_addrcount *a, const uint8_t key[16]) {
  size_t i = find(a, key);
  ferry_addrcount_slot *s = &a->slots[i];
  if (s->count == 0) {
    if (a->used >= a->max)
      return FERRY_ETOOBIG;
    memcpy(s->addr, key, 16);
    a->used++;
  }
  s->count++;
  return 0;
}

void ferry_addrcount_sub(ferry_addrcount *a, const uint8_t key[16]) {
  size_t i = find(a, key);
  if (a->slots[i].count == 0 || --a->slots[i].count > 0)
    return;
  a->used--;
  /* Backward-shift deletion: move later members of the probe run into the
   * hole so that no lookup stops early (no tombstones to accumulate). */
  size_t hole = i, j = i;
  for (;;) {
    j = (j + 1) & a->mask;
    if (a->slots[j].count == 0)
      break;
    size_t home = hash(a, a->slots[j].addr) & a->mask;
    /* j may move to hole unless its home lies cyclically in (hole, j]. */
    int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays)
      continue;
    a->slots[hole] = a->slots[j];
    a->slots[j].count = 0;
    hole = j;
  }
}
