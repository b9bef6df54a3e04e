/* Connections per peer address, for the proxy's per-address limit
 * (--max-per-address): pure, no sockets, unit-tested without I/O
 * (tests/unit/test_proxy_addrcount.c).
 *
 * An open-addressing hash table keyed by the 16-byte address (IPv4 as
 * IPv4-mapped IPv6, so a dual-stack peer counts once).  Its capacity is
 * fixed at init to at least twice the most addresses it will hold (the
 * proxy's connection limit), so an insertion never fails and a lookup is
 * O(1) on average whatever the peers do; the hash is seeded from the
 * CSPRNG so that a peer cannot choose addresses that collide. */
#ifndef FERRY_PROXY_ADDRCOUNT_H
#define FERRY_PROXY_ADDRCOUNT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ferry/error.h"

typedef struct ferry_addrcount_slot {
  uint8_t addr[16];
  uint32_t count; /* 0: empty slot */
} ferry_addrcount_slot;

typedef struct ferry_addrcount {
  ferry_addrcount_slot *slots;
  size_t mask;     /* capacity - 1 (a power of two) */
  size_t max;      /* addresses it may hold */
  size_t used;     /* slots in use */
  uint64_t seed;
} ferry_addrcount;

/* A table for at most max distinct addresses.  FERRY_ENOMEM, FERRY_ESYS
 * (no randomness): then nothing needs freeing. */
int ferry_addrcount_init(ferry_addrcount *a, size_t max) FERRY_MUST_CHECK;
void ferry_addrcount_close(ferry_addrcount *a);

/* The 16-byte key of an AF_INET or AF_INET6 address; 0, or FERRY_EINVAL
 * for another family. */
int ferry_addrcount_key(const struct sockaddr *sa, uint8_t key[16]) FERRY_MUST_CHECK;

/* How many connections key has. */
uint32_t ferry_addrcount_get(const ferry_addrcount *a, const uint8_t key[16]);
/* One more for key: 0, or FERRY_ETOOBIG when it would be the max+1-th
 * address (then nothing changed). */
int ferry_addrcount_add(ferry_addrcount *a, const uint8_t key[16]) FERRY_MUST_CHECK;
/* One fewer for key; nothing if it has none. */
void ferry_addrcount_sub(ferry_addrcount *a, const uint8_t key[16]);

#endif
