/* --allow lists: CIDR text to (family, network, prefix), and the match. */
#include "base/allow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ferry_allow_init(ferry_allow *a) { a->n = 0; }

/* Parses one entry of len bytes at s into *out. */
static int parse_net(const char *s, size_t len, ferry_allow_net *out, char *err,
                     size_t errcap) {
  char text[INET6_ADDRSTRLEN + 8];
  if (len == 0 || len >= sizeof text) {
    snprintf(err, errcap, "--allow: bad entry '%.*s' (want ADDR or ADDR/PREFIX)",
             (int)(len > 64 ? 64 : len), s);
    return FERRY_EINVAL;
  }
  memcpy(text, s, len);
  text[len] = '\0';
  char *slash = strchr(text, '/');
  if (slash)
    *slash = '\0';
  memset(out, 0, sizeof *out);
  int max;
  if (inet_pton(AF_INET, text, out->addr) == 1) {
    out->family = AF_INET;
    max = 32;
  } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
    out->family = AF_INET6;
    max = 128;
  } else {
    snprintf(err, errcap, "--allow: '%s' is not an IPv4 or IPv6 address", text);
    return FERRY_EINVAL;
  }
  out->prefix = max;
  if (slash) {
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (slash[1] == '\0' || *end != '\0' || p < 0 || p > max) {
      snprintf(err, errcap, "--allow: bad prefix '/%s' in '%.*s' (0 to %d)", slash + 1,
               (int)len, s, max);
      return FERRY_EINVAL;
    }
    out->prefix = (int)p;
  }
  /* Host bits below the prefix: "10.0.0.1/8" is more likely a typo for a
   * single host than a wish for all of 10/8. */
  for (int bit = out->prefix; bit < max; bit++) {
    if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
      snprintf(err, errcap, "--allow: '%.*s' has host bits set below /%d", (int)len, s,
               out->prefix);
      return FERRY_EINVAL;
    }
  }
  return 0;
}

int ferry_allow_parse(ferry_allow *a, const char *spec, char *err, size_t errcap) {
  ferry_allow tmp = *a;
  const char *p = spec;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (tmp.n == FERRY_ALLOW_MAX) {
      snprintf(err, errcap, "--allow: more than %d networks", FERRY_ALLOW_MAX);
      return FERRY_ETOOBIG;
    }
    int rc = parse_net(p, len, &tmp.nets[tmp.n], err, errcap);
    if (rc)
      return rc;
    tmp.n++;
    if (!comma)
      break;
    p = comma + 1;
  }
  *a = tmp;
  return 0;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, int prefix) {
  int whole = prefix / 8, rest = prefix % 8;
  if (memcmp(a, b, (size_t)whole) != 0)
    return 0;
  if (rest == 0)
    return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

int ferry_allow_match(const ferry_allow *a, const struct sockaddr *sa) {
  if (a->n == 0)
    return 1;
  uint8_t v4[4], v6[16];
  int have4 = 0, have6 = 0;
  if (sa->sa_family == AF_INET) {
    memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    have4 = 1;
  } else if (sa->sa_family == AF_INET6) {
    const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    memcpy(v6, in6, 16);
    have6 = 1;
    /* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d. */
    if (IN6_IS_ADDR_V4MAPPED(in6)) {
      memcpy(v4, v6 + 12, 4);
      have4 = 1;
    }
  } else {
    return 0;
  }
  for (size_t i = 0; i < a->n; i++) {
    const ferry_allow_net *n = &a->nets[i];
    if (n->family == AF_INET && have4 && prefix_equal(v4, n->addr, n->prefix))
      return 1;
    if (n->family == AF_INET6 && have6 && prefix_equal(v6, n->addr, n->prefix))
      return 1;
  }
  return 0;
}

int ferry_allow_fd(const ferry_allow *a, int fd) {
  if (a->n == 0)
    return 1;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  return ferry_allow_match(a, (const struct sockaddr *)&ss);
}

void ferry_allow_format(const ferry_allow *a, char *out, size_t cap) {
  size_t used = 0;
  if (cap == 0)
    return;
  out[0] = '\0';
  for (size_t i = 0; i < a->n && used < cap; i++) {
    char ip[INET6_ADDRSTRLEN];
    const ferry_allow_net *n = &a->nets[i];
    inet_ntop(n->family, n->addr, ip, sizeof ip);
    int w = snprintf(out + used, cap - used, "%s%s/%d", i ? "," : "", ip, n->prefix);
    if (w < 0)
      break;
    used += (size_t)w;
  }
}
