/* Access lists for the daemons' --allow CIDR[,CIDR...] flags: which peer
 * addresses may connect.  Pure: parsing text and matching an address do no
 * I/O, so the tracker, proxy and server share one implementation and its
 * unit test covers all three. */
#ifndef FERRY_BASE_ALLOW_H
#define FERRY_BASE_ALLOW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ferry/error.h"

/* Entries of one list: more would be a configuration mistake, and the
 * bound keeps the per-accept cost a small constant. */
#define FERRY_ALLOW_MAX 64

typedef struct ferry_allow_net {
  int family;        /* AF_INET or AF_INET6 */
  uint8_t addr[16];  /* network address, host bits cleared */
  int prefix;        /* 0..32 or 0..128 */
} ferry_allow_net;

/* An empty list (n == 0) allows everybody: access control is off by
 * default so that TVM setups keep working. */
typedef struct ferry_allow {
  size_t n;
  ferry_allow_net nets[FERRY_ALLOW_MAX];
} ferry_allow;

void ferry_allow_init(ferry_allow *a);

/* Adds the comma-separated networks of spec ("10.0.0.0/8,127.0.0.1,::1/128";
 * a bare address is a /32 or /128) to a.  Host bits set below the prefix
 * are refused, as a likely typo.  On error a is unchanged and err (capacity
 * errcap) names the offending entry: FERRY_EINVAL, or FERRY_ETOOBIG past
 * FERRY_ALLOW_MAX entries. */
int ferry_allow_parse(ferry_allow *a, const char *spec, char *err,
                      size_t errcap) FERRY_MUST_CHECK;

/* 1 if sa (an AF_INET or AF_INET6 address; IPv4-mapped IPv6 addresses
 * match IPv4 entries) is allowed by a, else 0.  An empty list allows all. */
int ferry_allow_match(const ferry_allow *a, const struct sockaddr *sa);

/* The same for the peer of a connected socket; 0 when getpeername fails
 * (a list is set) so that an unknown peer is never let in. */
int ferry_allow_fd(const ferry_allow *a, int fd);

/* Writes the list as text ("127.0.0.0/8,::1/128") for log lines. */
void ferry_allow_format(const ferry_allow *a, char *out, size_t cap);

#endif
