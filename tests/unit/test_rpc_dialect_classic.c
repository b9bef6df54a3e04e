/* The classic dialect's packed sequences (rpc-session.md §2, §6): golden
 * bytes, every packet of the recorded TVM sessions decoded and re-encoded
 * byte for byte, truncations, and hostile counts and type codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/bytes.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"

static const ferry_dialect *D = &ferry_dialect_classic;

/* §6.4 arguments: (42, "hi", float32 (2,3) tensor). */
static const uint8_t call_args[] = {
    3, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 7, 0, 0, 0,
    0x2A, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 0, 0, 0, 0, 0, 'h', 'i',
    0x40, 0xE8, 0xDD, 0x1E, 0x7F, 0x55, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 0, 2, 0x20, 1, 0,
    2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

static void golden_call_args(void **state) {
  (void)state;
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  ferry_value *v;
  int n;
  size_t used;
  assert_int_equal(D->decode_seq(call_args, sizeof call_args, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(used, sizeof call_args);
  assert_int_equal(n, 3);
  assert_int_equal(v[0].kind, FERRY_KIND_INT);
  assert_int_equal(v[0].v.i, 42);
  assert_int_equal(v[1].kind, FERRY_KIND_STR);
  assert_string_equal(v[1].v.str.data, "hi");
  assert_int_equal(v[2].kind, FERRY_KIND_TENSOR);
  assert_int_equal(v[2].v.tensor->shape[0], 2);
  ferry_buf out;
  ferry_buf_init(&out, 1 << 16);
  assert_int_equal(D->encode_seq(&out, v, n), 0);
  assert_int_equal(out.len, sizeof call_args);
  assert_memory_equal(out.data, call_args, sizeof call_args);
  /* Every truncation fails cleanly. */
  for (size_t cut = 0; cut < sizeof call_args; cut++) {
    ferry_rpc_why why;
    ferry_rpc_why_clear(&why);
    assert_int_not_equal(D->decode_seq(call_args, cut, &a, &v, &n, &used, &why), 0);
    assert_true(why.msg[0] != 0);
  }
  ferry_buf_close(&out);
  ferry_rpc_arena_close(&a);
}

/* Encodes ret as a kCallFunc reply body and compares with want. */
static void check_return(const ferry_rpc_return *ret, const uint8_t *want, size_t len) {
  ferry_buf out;
  ferry_buf_init(&out, 1 << 16);
  assert_int_equal(D->encode_call_return(&out, ret), 0);
  assert_int_equal(out.len, len);
  assert_memory_equal(out.data, want, len);
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  ferry_rpc_return back;
  assert_int_equal(D->decode_call_return(want, len, &a, &back, NULL), 0);
  assert_int_equal(back.value.kind, ret->value.kind);
  ferry_rpc_arena_close(&a);
  ferry_buf_close(&out);
}

static void golden_returns(void **state) {
  (void)state;
  ferry_rpc_return r;
  memset(&r, 0, sizeof r);
  /* void: [0:4][4] (§6.4) */
  const uint8_t none[] = {2, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0};
  r.value.kind = FERRY_KIND_NONE;
  check_return(&r, none, sizeof none);
  /* int 42 (§6.5) */
  const uint8_t i42[] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                         0x2A, 0, 0, 0, 0, 0, 0, 0};
  r.value.kind = FERRY_KIND_INT;
  r.value.v.i = 42;
  check_return(&r, i42, sizeof i42);
  /* float 2.5 */
  const uint8_t f25[] = {2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
                         0, 0, 0, 0, 0, 0, 4, 0x40};
  r.value.kind = FERRY_KIND_FLOAT;
  r.value.v.f = 2.5;
  check_return(&r, f25, sizeof f25);
  /* string "abc" */
  const uint8_t sabc[] = {2, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0,
                          3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'};
  r.value.kind = FERRY_KIND_STR;
  r.value.v.str.data = "abc";
  r.value.v.str.len = 3;
  check_return(&r, sabc, sizeof sabc);
  /* module: [0:9][3 h] */
  const uint8_t mod[] = {2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,
                         0x18, 0xE5, 0xDD, 0x1E, 0x7F, 0x55, 0, 0};
  r.value.kind = FERRY_KIND_MODULE;
  r.value.v.handle = 0x557F1EDDE518ull;
  check_return(&r, mod, sizeof mod);
  /* NDArray int32 (4) (§6.5) */
  const uint8_t nd[] = {3, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0,
                        0x0D, 0, 0, 0, 0, 0, 0, 0,
                        0x80, 0x01, 0xDE, 0x1E, 0x7F, 0x55, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                        1, 0, 0, 0, 0, 0x20, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0,
                        0, 0, 0, 0, 0, 0, 0, 0,
                        0x00, 0xEB, 0xDD, 0x1E, 0x7F, 0x55, 0, 0};
  int64_t shape[1] = {4};
  DLTensor t = {.data = (void *)(uintptr_t)0x557F1EDE0180ull,
                .device = {kDLCPU, 0},
                .ndim = 1,
                .dtype = {0, 32, 1},
                .shape = shape};
  r.value.kind = FERRY_KIND_NDARRAY;
  r.value.v.handle = 0x557F1EDDEB00ull;
  r.tensor = &t;
  check_return(&r, nd, sizeof nd);
  /* A borrowed DLTensor cannot be returned. */
  ferry_buf out;
  ferry_buf_init(&out, 1024);
  r.value.kind = FERRY_KIND_TENSOR;
  assert_int_equal(D->encode_call_return(&out, &r), FERRY_EINVAL);
  assert_int_equal(out.len, 0);
  ferry_buf_close(&out);
}

static void exception_and_free(void **state) {
  (void)state;
  /* §6.6 */
  const uint8_t exc[] = {0x24, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 11, 0, 0, 0,
                         16, 0, 0, 0, 0, 0, 0, 0, 'V', 'a', 'l', 'u', 'e', 'E', 'r', 'r',
                         'o', 'r', ':', ' ', 'b', 'o', 'o', 'm'};
  ferry_buf out;
  ferry_buf_init(&out, 1024);
  assert_int_equal(ferry_rpc_exception_encode(&out, D, "ValueError: boom", 16), 0);
  assert_int_equal(out.len, sizeof exc);
  assert_memory_equal(out.data, exc, sizeof exc);
  /* §6.9 kFreeHandle(function handle, 10) */
  const uint8_t fh[] = {2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0xE0, 0x76, 0xDD, 0x1E,
                        0x7F, 0x55, 0, 0, 0x0A, 0, 0, 0, 0, 0, 0, 0};
  out.len = 0;
  assert_int_equal(D->encode_free_handle(&out, 0x557F1EDD76E0ull, FERRY_KIND_FUNC), 0);
  assert_memory_equal(out.data, fh, sizeof fh);
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 4096);
  ferry_value *v;
  int n;
  size_t used;
  assert_int_equal(D->decode_seq(fh, sizeof fh, &a, &v, &n, &used, NULL), 0);
  uint64_t h;
  enum ferry_kind k;
  assert_int_equal(D->decode_free_handle(v, n, &h, &k, NULL), 0);
  assert_int_equal(h, 0x557F1EDD76E0ull);
  assert_int_equal(k, FERRY_KIND_FUNC);
  /* Type code 3 is not a releasable kind. */
  v[1].v.i = 3;
  assert_int_equal(D->decode_free_handle(v, n, &h, &k, NULL), FERRY_EPROTO);
  assert_int_equal(D->encode_free_handle(&out, 1, FERRY_KIND_INT), FERRY_EINVAL);
  ferry_rpc_arena_close(&a);
  ferry_buf_close(&out);
}

static void hostile_sequences(void **state) {
  (void)state;
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  ferry_value *v;
  int n;
  size_t used;
  uint8_t b[64] = {0};
  /* Negative and huge counts. */
  put_le32(b, (uint32_t)-1);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  put_le32(b, FERRY_RPC_MAX_ARGS + 1);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  /* A count whose type codes alone run past the data. */
  put_le32(b, 100);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  /* Unknown type codes: 13 (NDArray), 14, 16, 99, -1. */
  const int32_t bad[] = {13, 14, 16, 20, 64, 99, -1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    put_le32(b, 1);
    put_le32(b + 4, (uint32_t)bad[i]);
    ferry_rpc_why why;
    ferry_rpc_why_clear(&why);
    assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, &why), FERRY_EPROTO);
    assert_non_null(strstr(why.msg, "unknown type code"));
  }
  /* Object argument with a type index other than 9. */
  put_le32(b, 1);
  put_le32(b + 4, 8);
  put_le32(b + 8, 10);
  assert_int_equal(D->decode_seq(b, 20, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  put_le32(b + 8, 9);
  assert_int_equal(D->decode_seq(b, 20, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(v[0].kind, FERRY_KIND_OBJECT);
  /* A string length of 2^62. */
  put_le32(b + 4, 11);
  put_le64(b + 8, 1ull << 62);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  /* Zero arguments. */
  put_le32(b, 0);
  assert_int_equal(D->decode_seq(b, 4, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(n, 0);
  assert_int_equal(used, 4);
  /* Many null arguments stay within the arena's ceiling or fail cleanly. */
  static uint8_t many[4 + 4 * FERRY_RPC_MAX_ARGS];
  put_le32(many, FERRY_RPC_MAX_ARGS);
  for (int i = 0; i < FERRY_RPC_MAX_ARGS; i++)
    put_le32(many + 4 + 4 * i, 4);
  ferry_rpc_arena tiny;
  ferry_rpc_arena_init(&tiny, 1024);
  assert_int_equal(D->decode_seq(many, sizeof many, &tiny, &v, &n, &used, NULL), FERRY_ENOMEM);
  ferry_rpc_arena_close(&tiny);
  ferry_rpc_arena_reset(&a);
  a.max = 1 << 20;
  assert_int_equal(D->decode_seq(many, sizeof many, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(n, FERRY_RPC_MAX_ARGS);
  ferry_rpc_arena_close(&a);
}

static void detection(void **state) {
  (void)state;
  int decided;
  /* kGetGlobalFunc("x") in classic. */
  const uint8_t ggf[] = {1, 0, 0, 0, 11, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'};
  assert_ptr_equal(ferry_dialect_detect(9, ggf, sizeof ggf, &decided), D);
  assert_int_equal(decided, 1);
  /* No arguments: decodable, but decides nothing. */
  const uint8_t zero[] = {0, 0, 0, 0};
  assert_ptr_equal(ferry_dialect_detect(9, zero, sizeof zero, &decided), D);
  assert_int_equal(decided, 0);
  /* The tvm-ffi form of the same lookup (type index 8, interleaved) is not
   * classic (test_rpc_dialect_ffi.c checks that it is ffi). */
  const uint8_t ffi[] = {1, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'};
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 4096);
  ferry_value *v = NULL;
  int n = 0;
  size_t used = 0;
  assert_int_not_equal(D->decode_seq(ffi, sizeof ffi, &a, &v, &n, &used, NULL), 0);
  ferry_rpc_arena_close(&a);
  assert_ptr_not_equal(ferry_dialect_detect(9, ffi, sizeof ffi, &decided), D);
  /* Trailing bytes: no exact parse. */
  assert_null(ferry_dialect_detect(9, ggf, sizeof ggf - 1, &decided));
  assert_ptr_equal(ferry_dialect_get(FERRY_DIALECT_CLASSIC), D);
}

/* Every packet of a recorded session: requests decode and re-encode to the
 * same bytes; kReturn replies decode as syscall values or call returns. */
static void replay_file(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/classic/%s/client-server.jsonl", FERRY_GOLDEN_DIR, name);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  ferry_buf dir[2];
  ferry_buf_init(&dir[0], 1 << 26);
  ferry_buf_init(&dir[1], 1 << 26);
  static char big[1 << 23];
  while (fgets(big, sizeof big, f)) {
    json_error_t je;
    json_t *o = json_loads(big, 0, &je);
    assert_non_null(o);
    const char *d = json_string_value(json_object_get(o, "dir"));
    const char *hex = json_string_value(json_object_get(o, "hex"));
    int which = strcmp(d, "c2s") == 0 ? 0 : strcmp(d, "s2c") == 0 ? 1 : -1;
    if (which >= 0 && json_integer_value(json_object_get(o, "conn")) == 2) {
      for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
        unsigned byte;
        sscanf(hex + i, "%2x", &byte);
        uint8_t c = (uint8_t)byte;
        assert_int_equal(ferry_buf_append(&dir[which], &c, 1), 0);
      }
    }
    json_decref(o);
  }
  fclose(f);
  int requests = 0, replies = 0;
  for (int w = 0; w < 2; w++) {
    const uint8_t *p = dir[w].data;
    size_t n = dir[w].len;
    size_t off = 8 + get_le32(p + 4); /* handshake: magic, len, key */
    ferry_rpc_arena a;
    ferry_rpc_arena_init(&a, 1 << 26);
    while (off < n) {
      ferry_rpc_packet pkt;
      size_t used;
      assert_int_equal(ferry_rpc_packet_parse(p + off, n - off, 1 << 26, &pkt, &used), 0);
      off += used;
      ferry_rpc_arena_reset(&a);
      ferry_value *v;
      int nv;
      size_t su;
      const uint8_t *seq = NULL;
      size_t seqlen = 0;
      if (w == 0 && (pkt.code == 3 || pkt.code >= 9)) {
        seq = pkt.body + (pkt.code == 3 ? 8 : 0);
        seqlen = pkt.body_len - (pkt.code == 3 ? 8 : 0);
        requests++;
      } else if (w == 1 && (pkt.code == 4 || pkt.code == 5)) {
        seq = pkt.body;
        seqlen = pkt.body_len;
        replies++;
      }
      if (!seq)
        continue;
      assert_int_equal(D->decode_seq(seq, seqlen, &a, &v, &nv, &su, NULL), 0);
      assert_int_equal(su, seqlen);
      ferry_buf re;
      ferry_buf_init(&re, 1 << 26);
      assert_int_equal(D->encode_seq(&re, v, nv), 0);
      assert_int_equal(re.len, seqlen);
      assert_memory_equal(re.data, seq, seqlen);
      ferry_buf_close(&re);
      if (w == 1 && pkt.code == 4 && nv >= 2) {
        ferry_rpc_return r;
        assert_int_equal(D->decode_call_return(seq, seqlen, &a, &r, NULL), 0);
      }
    }
    ferry_rpc_arena_close(&a);
  }
  assert_true(requests > 2);
  assert_true(replies > 2);
  ferry_buf_close(&dir[0]);
  ferry_buf_close(&dir[1]);
}

static void recorded_sessions(void **state) {
  (void)state;
  replay_file("session-files");
  replay_file("session-tensor");
  replay_file("session-module");
  replay_file("session-errors");
  replay_file("session-graph");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(golden_call_args),   cmocka_unit_test(golden_returns),
      cmocka_unit_test(exception_and_free), cmocka_unit_test(hostile_sequences),
      cmocka_unit_test(detection),          cmocka_unit_test(recorded_sessions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
