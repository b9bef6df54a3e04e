/* Explicit little-endian encoding.  Every protocol ferry speaks is
 * little-endian on the wire; these helpers make that independent of the
 * host and of alignment, so no struct is ever written raw. */
#ifndef FERRY_BASE_BYTES_H
#define FERRY_BASE_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void put_le16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t get_le16(const uint8_t *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t get_le32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}
static inline uint64_t get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}
static inline void put_f64(uint8_t *p, double d) {
  uint64_t v;
  memcpy(&v, &d, sizeof v);
  put_le64(p, v);
}
static inline double get_f64(const uint8_t *p) {
  uint64_t v = get_le64(p);
  double d;
  memcpy(&d, &v, sizeof d);
  return d;
}

#endif
