/* The tvm-ffi dialect's packed sequences (rpc-session.md §7, recordings of
 * TVM v0.26 in tests/golden/ffi): spec examples, every recorded packet
 * decoded and re-encoded byte for byte (whole and every truncation),
 * hostile counts, indices and lengths, and detection against classic. */
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

static const ferry_dialect *D = &ferry_dialect_ffi;

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
  for (size_t cut = 0; cut < len; cut++)
    assert_int_not_equal(D->decode_call_return(want, cut, &a, &back, NULL), 0);
  ferry_rpc_arena_close(&a);
  ferry_buf_close(&out);
}

static void spec_examples(void **state) {
  (void)state;
  /* §7.2 add1(41): 1 arg, Int 41; reply [1:1][1:42]. */
  const uint8_t args[] = {1, 0, 0, 0, 1, 0, 0, 0, 0x29, 0, 0, 0, 0, 0, 0, 0};
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  ferry_value *v;
  int n;
  size_t used;
  assert_int_equal(D->decode_seq(args, sizeof args, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(n, 1);
  assert_int_equal(v[0].kind, FERRY_KIND_INT);
  assert_int_equal(v[0].v.i, 41);
  ferry_rpc_return r;
  memset(&r, 0, sizeof r);
  const uint8_t i42[] = {2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                         1, 0, 0, 0, 0x2A, 0, 0, 0, 0, 0, 0, 0};
  r.value.kind = FERRY_KIND_INT;
  r.value.v.i = 42;
  check_return(&r, i42, sizeof i42);
  /* None: [1:0][0] */
  const uint8_t none[] = {2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  r.value.kind = FERRY_KIND_NONE;
  check_return(&r, none, sizeof none);
  /* String: [1:65][8 "ab"]; bytes: [1:66][9 "ab"] (as recorded). */
  const uint8_t sab[] = {2, 0, 0, 0, 1, 0, 0, 0, 65, 0, 0, 0, 0, 0, 0, 0,
                         8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b'};
  r.value.kind = FERRY_KIND_STR;
  r.value.v.str.data = "ab";
  r.value.v.str.len = 2;
  check_return(&r, sab, sizeof sab);
  const uint8_t bab[] = {2, 0, 0, 0, 1, 0, 0, 0, 66, 0, 0, 0, 0, 0, 0, 0,
                         9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b'};
  r.value.kind = FERRY_KIND_BYTES;
  check_return(&r, bab, sizeof bab);
  /* Module [1:73][4 h], function [1:68][4 h], object [1:115][4 h]. */
  const int kinds[] = {FERRY_KIND_MODULE, FERRY_KIND_FUNC, FERRY_KIND_OBJECT};
  const uint8_t idx[] = {73, 68, 115};
  for (int i = 0; i < 3; i++) {
    uint8_t m[] = {2, 0, 0, 0, 1, 0, 0, 0, idx[i], 0, 0, 0, 0, 0, 0, 0,
                   4, 0, 0, 0, 0x18, 0xE5, 0xDD, 0x1E, 0x7F, 0x55, 0, 0};
    r.value.kind = (enum ferry_kind)kinds[i];
    r.value.v.handle = 0x557F1EDDE518ull;
    check_return(&r, m, sizeof m);
  }
  /* Tensor: [1:70][7 DLTensor][4 h]; v0.21's 72 decodes too. */
  int64_t shape[1] = {4};
  DLTensor t = {.data = (void *)(uintptr_t)0x1000,
                .device = {kDLCPU, 0},
                .ndim = 1,
                .dtype = {2, 32, 1},
                .shape = shape};
  uint8_t nd[] = {3, 0, 0, 0, 1, 0, 0, 0, 70, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0,
                  0, 0x10, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                  1, 0, 0, 0, 2, 0x20, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0,
                  0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0};
  r.value.kind = FERRY_KIND_NDARRAY;
  r.value.v.handle = 0x77;
  r.tensor = &t;
  check_return(&r, nd, sizeof nd);
  nd[8] = 72;
  ferry_rpc_return back;
  assert_int_equal(D->decode_call_return(nd, sizeof nd, &a, &back, NULL), 0);
  assert_int_equal(back.value.kind, FERRY_KIND_NDARRAY);
  assert_int_equal(back.value.v.handle, 0x77);
  /* A borrowed DLTensor cannot be returned; a mismatched pair is refused. */
  ferry_buf out;
  ferry_buf_init(&out, 1024);
  r.value.kind = FERRY_KIND_TENSOR;
  assert_int_equal(D->encode_call_return(&out, &r), FERRY_EINVAL);
  assert_int_equal(out.len, 0);
  uint8_t lie[sizeof i42];
  memcpy(lie, i42, sizeof lie);
  lie[8] = 3; /* claims Float, carries Int */
  assert_int_equal(D->decode_call_return(lie, sizeof lie, &a, &back, NULL), FERRY_EPROTO);
  lie[8] = 20; /* unknown index */
  assert_int_equal(D->decode_call_return(lie, sizeof lie, &a, &back, NULL), FERRY_EPROTO);
  /* §7.2 kGetGlobalFunc("test.add1") arguments. */
  const uint8_t ggf[] = {1, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,
                         't', 'e', 's', 't', '.', 'a', 'd', 'd', '1'};
  assert_int_equal(D->decode_seq(ggf, sizeof ggf, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(v[0].kind, FERRY_KIND_STR);
  assert_string_equal(v[0].v.str.data, "test.add1");
  out.len = 0;
  assert_int_equal(D->encode_seq(&out, v, n), 0);
  assert_int_equal(out.len, sizeof ggf);
  assert_memory_equal(out.data, ggf, sizeof ggf);
  ferry_buf_close(&out);
  ferry_rpc_arena_close(&a);
}

static void exception_and_free(void **state) {
  (void)state;
  /* Message only, as RawStr (8). */
  const uint8_t exc[] = {0x1C, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0,
                         8, 0, 0, 0, 0, 0, 0, 0, 'f', 'a', 'i', 'l', ':', ' ', 'n', 'o'};
  ferry_buf out;
  ferry_buf_init(&out, 1024);
  assert_int_equal(ferry_rpc_exception_encode(&out, D, "fail: no", 8), 0);
  assert_int_equal(out.len, sizeof exc);
  assert_memory_equal(out.data, exc, sizeof exc);
  /* kFreeHandle: one OpaquePtr. */
  const uint8_t fh[] = {1, 0, 0, 0, 4, 0, 0, 0, 0xE0, 0x86, 0, 0xD0, 0x82, 0x7F, 0, 0};
  out.len = 0;
  assert_int_equal(D->encode_free_handle(&out, 0x7F82D00086E0ull, FERRY_KIND_FUNC), 0);
  assert_int_equal(out.len, sizeof fh);
  assert_memory_equal(out.data, fh, sizeof fh);
  assert_int_equal(D->encode_free_handle(&out, 1, FERRY_KIND_INT), FERRY_EINVAL);
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 4096);
  ferry_value *v;
  int n;
  size_t used;
  assert_int_equal(D->decode_seq(fh, sizeof fh, &a, &v, &n, &used, NULL), 0);
  uint64_t h;
  enum ferry_kind k = FERRY_KIND_FUNC;
  assert_int_equal(D->decode_free_handle(v, n, &h, &k, NULL), 0);
  assert_int_equal(h, 0x7F82D00086E0ull);
  assert_int_equal(k, FERRY_KIND_NONE); /* the server looks the handle up */
  /* The classic two-argument form is refused, as is a non-pointer. */
  ferry_value two[2];
  two[0] = v[0];
  two[1].kind = FERRY_KIND_INT;
  two[1].v.i = 10;
  assert_int_equal(D->decode_free_handle(two, 2, &h, &k, NULL), FERRY_EPROTO);
  assert_int_equal(D->decode_free_handle(&two[1], 1, &h, &k, NULL), FERRY_EPROTO);
  ferry_rpc_arena_close(&a);
  ferry_buf_close(&out);
}

static void objects_with_second_type(void **state) {
  (void)state;
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  ferry_value *v;
  int n;
  size_t used;
  ferry_buf out;
  ferry_buf_init(&out, 1024);
  /* Bytes object 66/66 as the recorded upload sends it: re-encodes the same. */
  const uint8_t by[] = {1, 0, 0, 0, 66, 0, 0, 0, 66, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'h', 'i'};
  assert_int_equal(D->decode_seq(by, sizeof by, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(v[0].kind, FERRY_KIND_BYTES);
  assert_int_equal(v[0].v.str.len, 2);
  assert_int_equal(D->encode_seq(&out, v, n), 0);
  assert_int_equal(out.len, sizeof by);
  assert_memory_equal(out.data, by, sizeof by);
  /* Str object 65/65 and the small forms 11/65, 12/66 decode too. */
  uint8_t s[sizeof by];
  memcpy(s, by, sizeof s);
  const uint32_t pairs[][3] = {{65, 65, FERRY_KIND_STR},
                               {11, 65, FERRY_KIND_STR},
                               {12, 66, FERRY_KIND_BYTES}};
  for (int i = 0; i < 3; i++) {
    put_le32(s + 4, pairs[i][0]);
    put_le32(s + 8, pairs[i][1]);
    assert_int_equal(D->decode_seq(s, sizeof s, &a, &v, &n, &used, NULL), 0);
    assert_int_equal(v[0].kind, (int)pairs[i][2]);
  }
  /* Disagreeing second types are refused. */
  const uint32_t bad[][2] = {{65, 66}, {66, 65}, {11, 66}, {12, 65}, {65, 115}, {120, 65}};
  for (int i = 0; i < 6; i++) {
    put_le32(s + 4, bad[i][0]);
    put_le32(s + 8, bad[i][1]);
    assert_int_equal(D->decode_seq(s, sizeof s, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  }
  /* RPC object reference: 115, u32 115, u64 handle. */
  const uint8_t ref[] = {1, 0, 0, 0, 115, 0, 0, 0, 115, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0};
  assert_int_equal(D->decode_seq(ref, sizeof ref, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(v[0].kind, FERRY_KIND_OBJECT);
  assert_int_equal(v[0].v.handle, 0x11223344);
  out.len = 0;
  assert_int_equal(D->encode_seq(&out, v, n), 0);
  assert_int_equal(out.len, sizeof ref);
  assert_memory_equal(out.data, ref, sizeof ref);
  for (size_t cut = 0; cut < sizeof ref; cut++)
    assert_int_not_equal(D->decode_seq(ref, cut, &a, &v, &n, &used, NULL), 0);
  ferry_buf_close(&out);
  ferry_rpc_arena_close(&a);
}

static void hostile_sequences(void **state) {
  (void)state;
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 1 << 16);
  ferry_value *v;
  int n;
  size_t used;
  uint8_t b[64] = {0};
  put_le32(b, (uint32_t)-1);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  put_le32(b, FERRY_RPC_MAX_ARGS + 1);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  put_le32(b, 100); /* 100 indices cannot fit in 60 bytes */
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  /* Indices that never travel: ObjectRValueRef, 13..63, Tensor/NDArray, -1. */
  const int32_t bad[] = {10, 13, 20, 63, 70, 72, -1, 0x7fffffff};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(b, 0, sizeof b);
    put_le32(b, 1);
    put_le32(b + 4, (uint32_t)bad[i]);
    ferry_rpc_why why;
    ferry_rpc_why_clear(&why);
    assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, &why), FERRY_EPROTO);
    assert_true(why.msg[0] != 0);
  }
  /* Lengths of 2^62 and one byte past the packet. */
  memset(b, 0, sizeof b);
  put_le32(b, 1);
  put_le32(b + 4, 8);
  put_le64(b + 8, 1ull << 62);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  put_le64(b + 8, sizeof b - 16 + 1);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  put_le64(b + 8, sizeof b - 16);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), 0);
  put_le32(b + 4, 66);
  put_le32(b + 8, 66);
  put_le64(b + 12, ~0ull);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  /* A DLTensor with ndim 1000. */
  memset(b, 0, sizeof b);
  put_le32(b, 1);
  put_le32(b + 4, 7);
  put_le32(b + 8 + 16, 1000);
  assert_int_equal(D->decode_seq(b, sizeof b, &a, &v, &n, &used, NULL), FERRY_EPROTO);
  /* The most arguments allowed, as None: fits a big arena, not a tiny one. */
  static uint8_t many[4 + 4 * FERRY_RPC_MAX_ARGS];
  put_le32(many, FERRY_RPC_MAX_ARGS);
  ferry_rpc_arena tiny;
  ferry_rpc_arena_init(&tiny, 1024);
  assert_int_equal(D->decode_seq(many, sizeof many, &tiny, &v, &n, &used, NULL), FERRY_ENOMEM);
  ferry_rpc_arena_close(&tiny);
  ferry_rpc_arena_reset(&a);
  a.max = 1 << 20;
  assert_int_equal(D->decode_seq(many, sizeof many, &a, &v, &n, &used, NULL), 0);
  assert_int_equal(n, FERRY_RPC_MAX_ARGS);
  /* Values the dialect cannot carry leave the buffer as it was. */
  ferry_buf out;
  ferry_buf_init(&out, 1024);
  ferry_value nd = {.kind = FERRY_KIND_NDARRAY};
  assert_int_equal(D->encode_seq(&out, &nd, 1), FERRY_EINVAL);
  assert_int_equal(out.len, 0);
  ferry_buf_close(&out);
  ferry_rpc_arena_close(&a);
}

static void detection(void **state) {
  (void)state;
  int decided;
  const ferry_dialect *C = &ferry_dialect_classic;
  assert_ptr_equal(ferry_dialect_get(FERRY_DIALECT_FFI), D);
  /* kGetGlobalFunc("x"): 8 -> ffi; 11 -> classic. */
  const uint8_t ggf[] = {1, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'};
  assert_ptr_equal(ferry_dialect_detect(9, ggf, sizeof ggf, &decided), D);
  assert_int_equal(decided, 1);
  const uint8_t cggf[] = {1, 0, 0, 0, 11, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'};
  assert_ptr_equal(ferry_dialect_detect(9, cggf, sizeof cggf, &decided), C);
  assert_int_equal(decided, 1);
  /* kDevAllocDataWithScope as recorded (v0.26): tensor right after 7. */
  const uint8_t alloc[] = {2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                           0, 0, 0, 0, 2, 0, 0, 0, 2, 0x20, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0,
                           4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  assert_ptr_equal(ferry_dialect_detect(17, alloc, sizeof alloc, &decided), D);
  assert_int_equal(decided, 1);
  /* kFreeHandle with one OpaquePtr. */
  const uint8_t fh[] = {1, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  assert_ptr_equal(ferry_dialect_detect(10, fh, sizeof fh, &decided), D);
  assert_int_equal(decided, 1);
  /* kDevSetDevice [1][6][device] reads the same in both: decides nothing. */
  const uint8_t setdev[] = {1, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  assert_non_null(ferry_dialect_detect(13, setdev, sizeof setdev, &decided));
  assert_int_equal(decided, 0);
  /* Neither. */
  const uint8_t junk[] = {1, 0, 0, 0, 99, 0, 0, 0};
  assert_null(ferry_dialect_detect(9, junk, sizeof junk, &decided));
  assert_int_equal(decided, 0);
}

/* Every packet of a recorded v0.26 session: requests and replies decode
 * and re-encode to the same bytes (kCallFunc returns through the return
 * codec); every truncation of a small packet fails cleanly. */
static int truncations_fail(const uint8_t *seq, size_t n, ferry_rpc_arena *a) {
  if (n > 4096)
    return 1;
  for (size_t cut = 0; cut < n; cut++) {
    ferry_value *v;
    int nv;
    size_t su;
    if (D->decode_seq(seq, cut, a, &v, &nv, &su, NULL) == 0)
      return 0;
  }
  return 1;
}

static int replay_file(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/ffi/%s/client-server.jsonl", FERRY_GOLDEN_DIR, name);
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
  int requests = 0, replies = 0, returns = 0;
  for (int w = 0; w < 2; w++) {
    const uint8_t *p = dir[w].data;
    size_t n = dir[w].len;
    size_t off = 8 + get_le32(p + 4); /* handshake: magic, len, key */
    ferry_rpc_arena a;
    ferry_rpc_arena_init(&a, 1 << 26);
    int first_args = 1;
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
        /* The first request with arguments decides ffi (§7.4). */
        if (first_args && get_le32(seq) != 0) {
          int decided = 0;
          assert_ptr_equal(ferry_dialect_detect(pkt.code, seq, seqlen, &decided), D);
          assert_int_equal(decided, 1);
          first_args = 0;
        }
      } else if (w == 1 && (pkt.code == 4 || pkt.code == 5)) {
        seq = pkt.body;
        seqlen = pkt.body_len;
        replies++;
      }
      if (!seq)
        continue;
      assert_int_equal(D->decode_seq(seq, seqlen, &a, &v, &nv, &su, NULL), 0);
      assert_int_equal(su, seqlen);
      assert_true(truncations_fail(seq, seqlen, &a));
      ferry_buf re;
      ferry_buf_init(&re, 1 << 26);
      if (w == 1 && pkt.code == 4 && nv >= 2) {
        /* A kCallFunc return: through the return codec. */
        ferry_rpc_return r;
        assert_int_equal(D->decode_call_return(seq, seqlen, &a, &r, NULL), 0);
        assert_int_equal(D->encode_call_return(&re, &r), 0);
        returns++;
      } else {
        assert_int_equal(D->encode_seq(&re, v, nv), 0);
      }
      assert_int_equal(re.len, seqlen);
      assert_memory_equal(re.data, seq, seqlen);
      ferry_buf_close(&re);
    }
    ferry_rpc_arena_close(&a);
  }
  assert_true(requests > 2);
  assert_true(replies > 2);
  ferry_buf_close(&dir[0]);
  ferry_buf_close(&dir[1]);
  return returns;
}

static void recorded_sessions(void **state) {
  (void)state;
  int returns = replay_file("session-files") + replay_file("session-tensor") +
                replay_file("session-module") + replay_file("session-errors");
  assert_true(returns >= 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spec_examples),     cmocka_unit_test(exception_and_free),
      cmocka_unit_test(objects_with_second_type), cmocka_unit_test(hostile_sequences),
      cmocka_unit_test(detection),         cmocka_unit_test(recorded_sessions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
