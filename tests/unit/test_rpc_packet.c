/* RPC packet framing and the dialect-free bodies: golden bytes of
 * rpc-session.md §6, whole, one byte at a time, and at and past every
 * limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "wire/rpc_packet.h"
#include "wire/rpc_tensor.h"

/* §6.8: kCopyToRemote of 24 bytes into a float32 (2,3) tensor. */
static const uint8_t copy_to[] = {
    0x54, 0, 0, 0, 0, 0, 0, 0, 0x07, 0, 0, 0,                   /* 84, code 7 */
    0x40, 0xE8, 0xDD, 0x1E, 0x7F, 0x55, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, /* data, cpu 0 */
    2, 0, 0, 0, 2, 0x20, 1, 0,                                  /* ndim 2, float32 */
    2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,             /* shape */
    0, 0, 0, 0, 0, 0, 0, 0,                                     /* byte_offset */
    0x18, 0, 0, 0, 0, 0, 0, 0,                                  /* nbytes 24 */
    0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40,
    0, 0, 0x80, 0x40, 0, 0, 0xA0, 0x40, 0, 0, 0xC0, 0x40};
static const uint8_t shutdown_pkt[] = {4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};

static void code_names(void **state) {
  (void)state;
  assert_string_equal(ferry_rpc_code_name(3), "kCallFunc");
  assert_string_equal(ferry_rpc_code_name(21), "kDevGetCurrentStream");
  assert_string_equal(ferry_rpc_code_name(22), "unknown");
  assert_string_equal(ferry_rpc_code_name(-1), "unknown");
}

static void whole_packets(void **state) {
  (void)state;
  ferry_rpc_reader r;
  ferry_rpc_reader_init(&r, 1 << 20);
  assert_int_equal(ferry_rpc_reader_want(&r), 8);
  assert_int_equal(ferry_rpc_reader_feed(&r, copy_to, sizeof copy_to), 0);
  assert_int_equal(ferry_rpc_reader_feed(&r, shutdown_pkt, sizeof shutdown_pkt), 0);
  ferry_rpc_packet pkt;
  assert_int_equal(ferry_rpc_reader_next(&r, &pkt), 0);
  assert_int_equal(pkt.code, FERRY_RPC_COPY_TO_REMOTE);
  assert_int_equal(pkt.body_len, sizeof copy_to - 12);
  assert_false(ferry_rpc_reader_at_boundary(&r));

  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  DLTensor *t;
  uint64_t nbytes;
  const uint8_t *data;
  assert_int_equal(ferry_rpc_copy_to_decode(pkt.body, pkt.body_len, &a, &t, &nbytes, &data, NULL), 0);
  assert_int_equal(nbytes, 24);
  assert_int_equal(t->ndim, 2);
  assert_int_equal(t->shape[1], 3);
  assert_int_equal((uintptr_t)t->data, 0x557F1EDDE840ull);
  assert_int_equal(t->dtype.bits, 32);
  assert_int_equal(get_le32(data), 0x3F800000);

  /* Re-encode: identical bytes. */
  ferry_buf out;
  ferry_buf_init(&out, 1 << 16);
  size_t mark;
  assert_int_equal(ferry_rpc_packet_begin(&out, FERRY_RPC_COPY_TO_REMOTE, &mark), 0);
  assert_int_equal(ferry_rpc_copy_to_encode(&out, t, data, nbytes), 0);
  ferry_rpc_packet_end(&out, mark);
  assert_int_equal(out.len, sizeof copy_to);
  assert_memory_equal(out.data, copy_to, sizeof copy_to);

  assert_int_equal(ferry_rpc_reader_next(&r, &pkt), 0);
  assert_int_equal(pkt.code, FERRY_RPC_SHUTDOWN);
  assert_int_equal(pkt.body_len, 0);
  assert_int_equal(ferry_rpc_reader_next(&r, &pkt), FERRY_EAGAIN);
  assert_true(ferry_rpc_reader_at_boundary(&r));
  ferry_buf_close(&out);
  ferry_rpc_arena_close(&a);
  ferry_rpc_reader_close(&r);
}

static void byte_at_a_time(void **state) {
  (void)state;
  ferry_rpc_reader r;
  ferry_rpc_reader_init(&r, 1 << 20);
  /* An empty packet between the two: skipped without a packet. */
  uint8_t in[sizeof copy_to + 8 + sizeof shutdown_pkt];
  memcpy(in, copy_to, sizeof copy_to);
  memset(in + sizeof copy_to, 0, 8);
  memcpy(in + sizeof copy_to + 8, shutdown_pkt, sizeof shutdown_pkt);
  int codes[4], n = 0;
  for (size_t i = 0; i < sizeof in; i++) {
    size_t want = ferry_rpc_reader_want(&r);
    assert_true(want >= 1);
    assert_int_equal(ferry_rpc_reader_feed(&r, in + i, 1), 0);
    ferry_rpc_packet pkt;
    int rc;
    while ((rc = ferry_rpc_reader_next(&r, &pkt)) == 0)
      codes[n++] = pkt.code;
    assert_int_equal(rc, FERRY_EAGAIN);
  }
  assert_int_equal(n, 2);
  assert_int_equal(codes[0], 7);
  assert_int_equal(codes[1], 1);
  ferry_rpc_reader_close(&r);
}

static void want_counts_exactly(void **state) {
  (void)state;
  ferry_rpc_reader r;
  ferry_rpc_reader_init(&r, 1 << 20);
  assert_int_equal(ferry_rpc_reader_feed(&r, copy_to, 8), 0);
  assert_int_equal(ferry_rpc_reader_want(&r), sizeof copy_to - 8);
  uint8_t *space = ferry_rpc_reader_space(&r, sizeof copy_to - 8);
  assert_non_null(space);
  memcpy(space, copy_to + 8, sizeof copy_to - 8);
  ferry_rpc_reader_commit(&r, sizeof copy_to - 8);
  assert_int_equal(ferry_rpc_reader_want(&r), 0);
  ferry_rpc_packet pkt;
  assert_int_equal(ferry_rpc_reader_next(&r, &pkt), 0);
  assert_int_equal(pkt.code, 7);
  ferry_rpc_reader_close(&r);
}

static void limits(void **state) {
  (void)state;
  uint8_t hdr[12] = {0};
  ferry_rpc_packet pkt;
  size_t used;
  /* At the limit: fine (needs more bytes); one past: refused before any
   * allocation. */
  uint64_t max = 1 << 16;
  put_le64(hdr, max);
  assert_int_equal(ferry_rpc_packet_parse(hdr, sizeof hdr, max, &pkt, &used), FERRY_EAGAIN);
  put_le64(hdr, max + 1);
  assert_int_equal(ferry_rpc_packet_parse(hdr, sizeof hdr, max, &pkt, &used), FERRY_ETOOBIG);
  /* 2^62 and 2^64-1. */
  put_le64(hdr, 1ull << 62);
  ferry_rpc_reader r;
  ferry_rpc_reader_init(&r, max);
  assert_int_equal(ferry_rpc_reader_feed(&r, hdr, sizeof hdr), 0);
  assert_int_equal(ferry_rpc_reader_want(&r), 0);
  assert_int_equal(ferry_rpc_reader_next(&r, &pkt), FERRY_ETOOBIG);
  assert_int_equal(r.bad_length, 1ull << 62);
  ferry_rpc_reader_close(&r);
  put_le64(hdr, UINT64_MAX);
  assert_int_equal(ferry_rpc_packet_parse(hdr, sizeof hdr, max, &pkt, &used), FERRY_ETOOBIG);
  /* 1..3 bytes cannot hold the code. */
  for (uint64_t len = 1; len < 4; len++) {
    put_le64(hdr, len);
    assert_int_equal(ferry_rpc_packet_parse(hdr, sizeof hdr, max, &pkt, &used), FERRY_EPROTO);
  }
  /* The reader's buffer cannot outgrow one maximal packet. */
  ferry_rpc_reader_init(&r, max);
  static uint8_t junk[(1 << 16) + 16];
  memset(junk, 0, sizeof junk);
  put_le64(junk, 4);
  assert_int_equal(ferry_rpc_reader_feed(&r, junk, sizeof junk), FERRY_ETOOBIG);
  ferry_rpc_reader_close(&r);
  /* A ceiling below the minimum is raised to it. */
  ferry_rpc_reader_init(&r, 10);
  assert_int_equal(r.max_packet, FERRY_RPC_MIN_MAX_PACKET);
  ferry_rpc_reader_close(&r);
}

static void init_server_body(void **state) {
  (void)state;
  /* §6.2 */
  const uint8_t body[] = {5, 0, 0, 0, 0, 0, 0, 0, '0', '.', '8', '.', '0', 0, 0, 0, 0};
  const char *v;
  size_t vlen, off;
  assert_int_equal(ferry_rpc_init_server_decode(body, sizeof body, &v, &vlen, &off), 0);
  assert_int_equal(vlen, 5);
  assert_memory_equal(v, "0.8.0", 5);
  assert_int_equal(off, 13);
  ferry_buf out;
  ferry_buf_init(&out, 64);
  assert_int_equal(ferry_rpc_init_server_encode(&out, "0.8.0"), 0);
  assert_memory_equal(out.data, body, 13);
  ferry_buf_close(&out);
  /* A version length past the body, including 2^62. */
  uint8_t bad[16] = {0};
  put_le64(bad, 8);
  assert_int_equal(ferry_rpc_init_server_decode(bad, 16, &v, &vlen, &off), 0);
  assert_int_equal(off, 16);
  put_le64(bad, 9);
  assert_int_equal(ferry_rpc_init_server_decode(bad, 16, &v, &vlen, &off), FERRY_EPROTO);
  put_le64(bad, 1ull << 62);
  assert_int_equal(ferry_rpc_init_server_decode(bad, 16, &v, &vlen, &off), FERRY_EPROTO);
  assert_int_equal(ferry_rpc_init_server_decode(bad, 7, &v, &vlen, &off), FERRY_EPROTO);
}

static void call_func_body(void **state) {
  (void)state;
  uint8_t body[12] = {0xE0, 0x76, 0xDD, 0x1E, 0x7F, 0x55, 0, 0, 0, 0, 0, 0};
  uint64_t h;
  size_t off;
  assert_int_equal(ferry_rpc_call_func_decode(body, sizeof body, &h, &off), 0);
  assert_int_equal(h, 0x557F1EDD76E0ull);
  assert_int_equal(off, 8);
  assert_int_equal(ferry_rpc_call_func_decode(body, 7, &h, &off), FERRY_EPROTO);
}

static void copy_lengths(void **state) {
  (void)state;
  const uint8_t *body = copy_to + 12;
  size_t n = sizeof copy_to - 12;
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  DLTensor *t;
  uint64_t nbytes;
  const uint8_t *data;
  ferry_rpc_why why;
  /* One data byte short, one too many, every truncation. */
  for (size_t cut = 0; cut < n; cut++) {
    ferry_rpc_why_clear(&why);
    assert_int_not_equal(ferry_rpc_copy_to_decode(body, cut, &a, &t, &nbytes, &data, &why), 0);
    assert_true(why.msg[0] != 0);
  }
  uint8_t longer[sizeof copy_to + 1];
  memcpy(longer, copy_to, sizeof copy_to);
  longer[sizeof copy_to] = 0;
  assert_int_equal(ferry_rpc_copy_to_decode(longer + 12, n + 1, &a, &t, &nbytes, &data, NULL),
                   FERRY_EPROTO);
  /* nbytes 2^62 with 24 bytes present. */
  uint8_t huge[sizeof copy_to];
  memcpy(huge, copy_to, sizeof copy_to);
  put_le64(huge + 12 + 48, 1ull << 62);
  assert_int_equal(ferry_rpc_copy_to_decode(huge + 12, n, &a, &t, &nbytes, &data, NULL),
                   FERRY_EPROTO);
  /* kCopyFromRemote: exactly tensor + nbytes. */
  assert_int_equal(ferry_rpc_copy_from_decode(body, 56, &a, &t, &nbytes, NULL), 0);
  assert_int_equal(nbytes, 24);
  assert_int_equal(ferry_rpc_copy_from_decode(body, 57, &a, &t, &nbytes, NULL), FERRY_EPROTO);
  assert_int_equal(ferry_rpc_copy_from_decode(body, 55, &a, &t, &nbytes, NULL), FERRY_EPROTO);
  ferry_rpc_arena_close(&a);
}

static void tensor_limits(void **state) {
  (void)state;
  uint8_t buf[32 + 8 * 40] = {0};
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  DLTensor *t;
  size_t used;
  ferry_rpc_why why;
  put_le32(buf + 8, 1);
  for (int ndim = 0; ndim <= 33; ndim++) {
    put_le32(buf + 16, (uint32_t)ndim);
    int rc = ferry_rpc_tensor_decode(buf, sizeof buf, &a, &t, &used, NULL);
    assert_int_equal(rc, ndim <= 32 ? 0 : FERRY_EPROTO);
    if (!rc)
      assert_int_equal(used, 32 + 8 * (size_t)ndim);
  }
  put_le32(buf + 16, 1000);
  ferry_rpc_why_clear(&why);
  assert_int_equal(ferry_rpc_tensor_decode(buf, sizeof buf, &a, &t, &used, &why), FERRY_EPROTO);
  assert_non_null(strstr(why.msg, "ndim 1000"));
  put_le32(buf + 16, (uint32_t)-1);
  assert_int_equal(ferry_rpc_tensor_decode(buf, sizeof buf, &a, &t, &used, NULL), FERRY_EPROTO);
  /* Negative extent. */
  put_le32(buf + 16, 2);
  put_le64(buf + 24, 4);
  put_le64(buf + 32, (uint64_t)-3);
  assert_int_equal(ferry_rpc_tensor_decode(buf, sizeof buf, &a, &t, &used, NULL), FERRY_EPROTO);
  /* Device type with the session mask. */
  put_le64(buf + 32, 5);
  put_le32(buf + 8, 129);
  assert_int_equal(ferry_rpc_tensor_decode(buf, sizeof buf, &a, &t, &used, NULL), FERRY_EPROTO);
  put_le32(buf + 8, 1);
  /* Truncated shape. */
  assert_int_equal(ferry_rpc_tensor_decode(buf, 32 + 8, &a, &t, &used, NULL), FERRY_EAGAIN);
  assert_int_equal(ferry_rpc_tensor_decode(buf, 47, &a, &t, &used, NULL), FERRY_EAGAIN);
  assert_int_equal(ferry_rpc_tensor_decode(buf, 48, &a, &t, &used, NULL), 0);
  /* Sizes: overflow refused. */
  int64_t shape[3] = {1ll << 31, 1ll << 31, 1ll << 10};
  DLTensor big = {.ndim = 3, .shape = shape, .dtype = {0, 8, 1}};
  uint64_t nb;
  assert_int_equal(ferry_rpc_tensor_nbytes(&big, &nb), FERRY_ERANGE);
  shape[2] = 1;
  assert_int_equal(ferry_rpc_tensor_nbytes(&big, &nb), 0);
  assert_int_equal(nb, 1ull << 62);
  /* Exhausted arena. */
  ferry_rpc_arena small;
  ferry_rpc_arena_init(&small, 16);
  assert_int_equal(ferry_rpc_tensor_decode(buf, 48, &small, &t, &used, NULL), FERRY_ENOMEM);
  ferry_rpc_arena_close(&small);
  ferry_rpc_arena_close(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(code_names),      cmocka_unit_test(whole_packets),
      cmocka_unit_test(byte_at_a_time),  cmocka_unit_test(want_counts_exactly),
      cmocka_unit_test(limits),          cmocka_unit_test(init_server_body),
      cmocka_unit_test(call_func_body),  cmocka_unit_test(copy_lengths),
      cmocka_unit_test(tensor_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
