/* The capture readers of `ferry dump --read` (src/wire/dump_pcap.c):
 * headers of every supported link type, every ceiling, and the TCP
 * reassembly (retransmission, hole, RST, mid-stream start). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "wire/dump_pcap.h"

static void be16p(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void be32p(uint8_t *p, uint32_t v) {
  be16p(p, (uint16_t)(v >> 16));
  be16p(p + 2, (uint16_t)v);
}

/* IPv4 + TCP (no options) + payload at p; returns the length. */
static size_t ip4_tcp(uint8_t *p, uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags,
                      const void *data, size_t n) {
  memset(p, 0, 40);
  p[0] = 0x45;
  be16p(p + 2, (uint16_t)(40 + n));
  p[8] = 64;
  p[9] = 6;
  p[12] = 127, p[15] = 1;
  p[16] = 127, p[19] = 2;
  if (sport == 9090) { /* the server's packets come from .2 */
    p[15] = 2;
    p[19] = 1;
  }
  be16p(p + 20, sport);
  be16p(p + 22, dport);
  be32p(p + 24, seq);
  p[32] = 5 << 4;
  p[33] = flags;
  memcpy(p + 40, data, n);
  return 40 + n;
}

static void test_link_types(void **state) {
  (void)state;
  uint8_t f[200];
  ferry_tcp_segment s;
  /* Ethernet, with Ethernet padding after the datagram. */
  memset(f, 0, 14);
  be16p(f + 12, 0x0800);
  size_t n = ip4_tcp(f + 14, 40000, 9090, 7, 0x18, "abc", 3);
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_ETHERNET, f, 14 + n + 6, &s), 0);
  assert_int_equal(s.len, 3);
  assert_int_equal(s.sport, 40000);
  assert_int_equal(s.seq, 7);
  /* Linux cooked (SLL). */
  memmove(f + 16, f + 14, n);
  memset(f, 0, 16);
  be16p(f + 14, 0x0800);
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_SLL, f, 16 + n, &s), 0);
  assert_memory_equal(s.payload, "abc", 3);
  /* BSD loopback, host order. */
  memmove(f + 4, f + 16, n);
  put_le32(f, 2);
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_NULL, f, 4 + n, &s), 0);
  /* Raw IPv6. */
  uint8_t v6[80];
  memset(v6, 0, sizeof v6);
  v6[0] = 0x60;
  be16p(v6 + 4, 20 + 2);
  v6[6] = 6;
  be16p(v6 + 40, 1);
  be16p(v6 + 42, 2);
  v6[52] = 5 << 4;
  memcpy(v6 + 60, "hi", 2);
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_RAW, v6, 62, &s), 0);
  assert_int_equal(s.family, 6);
  assert_int_equal(s.len, 2);
  /* Not TCP, or bad lengths. */
  uint8_t u[60];
  memcpy(u, f + 4, 43);
  u[9] = 17;
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_RAW, u, 43, &s), FERRY_EUNSUPPORTED);
  memcpy(u, f + 4, 43);
  be16p(u + 2, 1000); /* total length past the frame */
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_RAW, u, 43, &s), FERRY_EPROTO);
  memcpy(u, f + 4, 43);
  u[32] = 15 << 4; /* data offset past the segment */
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_RAW, u, 43, &s), FERRY_EPROTO);
  memcpy(u, f + 4, 43);
  be16p(u + 6, 0x2000); /* a fragment */
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_RAW, u, 43, &s), FERRY_EUNSUPPORTED);
  for (size_t k = 0; k < 14 + n; k++) /* every truncation of the Ethernet frame */
    assert_true(ferry_pcap_tcp_parse(FERRY_LINK_ETHERNET, f, k, &s) < 0);
  assert_int_equal(ferry_pcap_tcp_parse(9999, f, 50, &s), FERRY_EUNSUPPORTED);
}

static void test_pcap_headers(void **state) {
  (void)state;
  uint8_t g[24] = {0};
  put_le32(g, 0xa1b2c3d4);
  put_le16(g + 4, 2);
  put_le32(g + 20, 1);
  ferry_pcap_file pf;
  assert_int_equal(ferry_pcap_magic(g), 1);
  assert_int_equal(ferry_pcap_global_parse(g, &pf), 0);
  assert_int_equal(pf.linktype, 1);
  uint8_t r[16] = {0};
  put_le32(r, 10);
  put_le32(r + 4, 500000);
  put_le32(r + 8, FERRY_PCAP_MAX_CAPLEN);
  double t = 0;
  uint32_t cap = 0;
  assert_int_equal(ferry_pcap_record_parse(&pf, r, &t, &cap), 0);
  assert_true(t > 10.49 && t < 10.51);
  put_le32(r + 8, FERRY_PCAP_MAX_CAPLEN + 1);
  assert_int_equal(ferry_pcap_record_parse(&pf, r, &t, &cap), FERRY_ETOOBIG);
  put_le16(g + 4, 3);
  assert_int_equal(ferry_pcap_global_parse(g, &pf), FERRY_EPROTO);
  put_le32(g, 0x12345678);
  assert_int_equal(ferry_pcap_magic(g), 0);
}

static void test_pcapng_blocks(void **state) {
  (void)state;
  ferry_pcapng g;
  memset(&g, 0, sizeof g);
  uint8_t shb[28] = {0};
  put_le32(shb, 0x0a0d0d0a);
  put_le32(shb + 4, 28);
  put_le32(shb + 8, 0x1a2b3c4d);
  put_le32(shb + 24, 28);
  uint32_t type = 0, total = 0;
  assert_int_equal(ferry_pcapng_block_start(&g, shb, &type, &total), 0);
  assert_int_equal(total, 28);
  const uint8_t *fr;
  size_t fl;
  uint32_t link;
  double t;
  assert_int_equal(ferry_pcapng_block_parse(&g, shb, 28, &fr, &fl, &link, &t), 0);
  /* An interface with nanosecond timestamps. */
  uint8_t idb[32] = {0};
  put_le32(idb, 1);
  put_le32(idb + 4, 32);
  put_le16(idb + 8, 1);
  put_le16(idb + 16, 9);
  put_le16(idb + 18, 1);
  idb[20] = 9;
  put_le32(idb + 28, 32);
  assert_int_equal(ferry_pcapng_block_start(&g, idb, &type, &total), 0);
  assert_int_equal(ferry_pcapng_block_parse(&g, idb, 32, &fr, &fl, &link, &t), 0);
  assert_int_equal(g.nifaces, 1);
  uint8_t epb[40] = {0};
  put_le32(epb, 6);
  put_le32(epb + 4, 40);
  put_le32(epb + 16, 2000000000u); /* ts low: 2 s in ns */
  put_le32(epb + 20, 6);
  put_le32(epb + 24, 6);
  memcpy(epb + 28, "abcdef", 6);
  put_le32(epb + 36, 40);
  assert_int_equal(ferry_pcapng_block_parse(&g, epb, 40, &fr, &fl, &link, &t), 1);
  assert_int_equal(fl, 6);
  assert_true(t > 1.99 && t < 2.01);
  put_le32(epb + 20, 9); /* caplen past the block */
  assert_int_equal(ferry_pcapng_block_parse(&g, epb, 40, &fr, &fl, &link, &t), FERRY_EPROTO);
  put_le32(epb + 20, 6);
  put_le32(epb + 8, 3); /* unknown interface */
  assert_int_equal(ferry_pcapng_block_parse(&g, epb, 40, &fr, &fl, &link, &t), FERRY_EPROTO);
  /* Block lengths: too short, unaligned, over the ceiling. */
  uint8_t b[12] = {0};
  put_le32(b, 6);
  put_le32(b + 4, 8);
  assert_int_equal(ferry_pcapng_block_start(&g, b, &type, &total), FERRY_EPROTO);
  put_le32(b + 4, 13);
  assert_int_equal(ferry_pcapng_block_start(&g, b, &type, &total), FERRY_EPROTO);
  put_le32(b + 4, FERRY_PCAPNG_MAX_BLOCK + 4);
  assert_int_equal(ferry_pcapng_block_start(&g, b, &type, &total), FERRY_ETOOBIG);
  put_le32(shb + 8, 0x11111111); /* bad byte-order magic */
  assert_int_equal(ferry_pcapng_block_start(&g, shb, &type, &total), FERRY_EPROTO);
}

typedef struct rs {
  ferry_tcp_streams st;
  ferry_dump_set set;
  ferry_buf out;
} rs;

/* Literal payloads may hold NUL bytes: their length is the literal's. */
#define seg(r, sp, dp, seq, fl, lit) seg_n(r, sp, dp, seq, fl, lit, sizeof(lit) - 1)

static void seg_n(rs *r, uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags,
                  const char *data, size_t len) {
  uint8_t f[200];
  size_t n = ip4_tcp(f, sport, dport, seq, flags, data, len);
  ferry_tcp_segment s;
  assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_RAW, f, n, &s), 0);
  assert_int_equal(ferry_tcp_streams_feed(&r->st, &s, 1.0, &r->set, &r->out), 0);
}

static const char *text(rs *r) {
  if (ferry_buf_append(&r->out, "", 1))
    fail();
  r->out.len--;
  return (const char *)r->out.data;
}

static void rs_init(rs *r, int port) {
  ferry_dump_opts o;
  ferry_dump_opts_default(&o);
  ferry_tcp_streams_init(&r->st, port);
  ferry_dump_set_init(&r->set, &o);
  ferry_buf_init(&r->out, 1u << 20);
}

static void rs_close(rs *r) {
  ferry_dump_set_close(&r->set);
  ferry_buf_close(&r->out);
}

/* Tracker magic and a frame "[1]" split, retransmitted and cut by a hole. */
static void test_reassembly(void **state) {
  (void)state;
  rs r;
  rs_init(&r, 0);
  seg(&r, 40000, 9090, 99, 0x02, "");
  seg(&r, 9090, 40000, 499, 0x12, "");
  seg(&r, 40000, 9090, 100, 0x18, "\x71\xf2\x02");
  seg(&r, 40000, 9090, 100, 0x18, "\x71\xf2\x02"); /* retransmission */
  seg(&r, 40000, 9090, 102, 0x18, "\x02\x00\x03\x00"); /* overlaps one byte */
  seg(&r, 40000, 9090, 106, 0x18, "\x00\x00[1]");
  seg(&r, 9090, 40000, 500, 0x18, "\x71\xf2\x02\x00");
  seg(&r, 9090, 40000, 510, 0x18, "zz"); /* 6 bytes never captured */
  seg(&r, 40000, 9090, 111, 0x11, "");
  seg(&r, 9090, 40000, 512, 0x04, ""); /* RST ends both */
  const char *t = text(&r);
  assert_non_null(strstr(t, "#1 c2s handshake tracker magic"));
  assert_non_null(strstr(t, "#1 c2s tracker   PING \"[1]\""));
  assert_non_null(strstr(t, "#1 s2c handshake tracker magic"));
  assert_non_null(strstr(t, "s2c: 6 bytes missing from the capture"));
  assert_non_null(strstr(t, "#1 --- event     closed"));
  assert_null(strstr(t, "#1 c2s error"));
  /* A stream caught mid-way: the side on --port is the server. */
  rs_close(&r);
  rs_init(&r, 9090);
  seg(&r, 9090, 40000, 7, 0x18, "\x71\xf2\x02\x00");
  seg(&r, 40000, 9090, 3, 0x18, "\x71\xf2\x02\x00");
  seg(&r, 40001, 9191, 3, 0x18, "other port");
  t = text(&r);
  assert_non_null(strstr(t, "#1 s2c handshake tracker magic"));
  assert_non_null(strstr(t, "#1 c2s handshake tracker magic"));
  assert_null(strstr(t, "#2"));
  rs_close(&r);
}

static void test_too_many_streams(void **state) {
  (void)state;
  rs r;
  rs_init(&r, 0);
  uint8_t f[100];
  for (unsigned i = 0; i <= FERRY_DUMP_MAX_CONNS; i++) {
    size_t n = ip4_tcp(f, (uint16_t)(1000 + i), 9191, 1, 0x02, "", 0);
    ferry_tcp_segment s;
    assert_int_equal(ferry_pcap_tcp_parse(FERRY_LINK_RAW, f, n, &s), 0);
    int rc = ferry_tcp_streams_feed(&r.st, &s, 1.0, &r.set, &r.out);
    assert_int_equal(rc, i < FERRY_DUMP_MAX_CONNS ? 0 : FERRY_ETOOBIG);
    r.out.len = 0;
  }
  rs_close(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_link_types),     cmocka_unit_test(test_pcap_headers),
      cmocka_unit_test(test_pcapng_blocks),  cmocka_unit_test(test_reassembly),
      cmocka_unit_test(test_too_many_streams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
