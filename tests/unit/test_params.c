/* NDArray and parameter-dict codec (runtime-abi.md 10): the spec's worked
 * example, every truncation, and at and past every limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "wire/params.h"

/* {"w": float32 [1.0, 2.0]}, 97 bytes, from the spec. */
static const uint8_t example[] = {
    0xB7, 0x9C, 0x04, 0x05, 0x4F, 0x8D, 0xE5, 0xF7, 0, 0, 0, 0, 0, 0, 0, 0, /* magic, reserved */
    1, 0, 0, 0, 0, 0, 0, 0,                                                 /* 1 name */
    1, 0, 0, 0, 0, 0, 0, 0, 'w',                                            /* "w" */
    1, 0, 0, 0, 0, 0, 0, 0,                                                 /* 1 array */
    0x3F, 0xA1, 0xB4, 0x96, 0xF0, 0x40, 0x5E, 0xDD, 0, 0, 0, 0, 0, 0, 0, 0, /* magic */
    1, 0, 0, 0, 0, 0, 0, 0,                                                 /* CPU 0 */
    1, 0, 0, 0,                                                             /* ndim */
    2, 32, 1, 0,                                                            /* float32 */
    2, 0, 0, 0, 0, 0, 0, 0,                                                 /* shape */
    8, 0, 0, 0, 0, 0, 0, 0,                                                 /* bytes */
    0, 0, 0x80, 0x3F, 0, 0, 0, 0x40,                                        /* 1.0f 2.0f */
};

static void decode_example(void **state) {
  (void)state;
  assert_int_equal(sizeof example, 97);
  ferry_params_reader r;
  assert_int_equal(ferry_params_open(&r, example, sizeof example), 0);
  assert_int_equal(r.count, 1);
  const char *name;
  size_t nlen;
  ferry_params_tensor t;
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), 0);
  assert_int_equal(nlen, 1);
  assert_memory_equal(name, "w", 1);
  assert_int_equal(t.ndim, 1);
  assert_int_equal(t.shape[0], 2);
  assert_int_equal(t.dtype.code, kDLFloat);
  assert_int_equal(t.dtype.bits, 32);
  assert_int_equal(t.nbytes, 8);
  float v[2];
  memcpy(v, t.data, 8);
  assert_true(v[0] == 1.0f && v[1] == 2.0f);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EINVAL);
}

static void encode_example(void **state) {
  (void)state;
  float data[2] = {1.0f, 2.0f};
  int64_t shape[1] = {2};
  DLTensor t = {.data = data, .device = {kDLCPU, 0}, .ndim = 1, .dtype = {kDLFloat, 32, 1},
                .shape = shape};
  const char *names[1] = {"w"};
  const DLTensor *ts[1] = {&t};
  ferry_buf out;
  ferry_buf_init(&out, 1 << 20);
  assert_int_equal(ferry_params_encode(&out, 1, names, ts), 0);
  assert_int_equal(out.len, sizeof example);
  assert_memory_equal(out.data, example, sizeof example);
  /* Too small a ceiling: refused, buffer unchanged. */
  ferry_buf small;
  ferry_buf_init(&small, 96);
  assert_int_equal(ferry_params_encode(&small, 1, names, ts), FERRY_ETOOBIG);
  assert_int_equal(small.len, 0);
  ferry_buf_close(&small);
  /* lanes != 1 does not round-trip in TVM's format: refused. */
  t.dtype.lanes = 4;
  assert_int_equal(ferry_params_encode(&out, 1, names, ts), FERRY_EINVAL);
  ferry_buf_close(&out);
}

/* Every proper prefix is "truncated", never a crash or a success. */
static void every_truncation(void **state) {
  (void)state;
  for (size_t n = 0; n < sizeof example; n++) {
    ferry_params_reader r;
    int rc = ferry_params_open(&r, example, n);
    if (rc == FERRY_OK) {
      const char *name;
      size_t nlen;
      ferry_params_tensor t;
      rc = ferry_params_next(&r, &name, &nlen, &t);
    }
    assert_int_equal(rc, FERRY_EAGAIN);
  }
}

static void bad_fields(void **state) {
  (void)state;
  uint8_t b[sizeof example];
  ferry_params_reader r;
  const char *name;
  size_t nlen;
  ferry_params_tensor t;
  /* list magic */
  memcpy(b, example, sizeof b);
  b[0] ^= 1;
  assert_int_equal(ferry_params_open(&r, b, sizeof b), FERRY_EMAGIC);
  /* array magic */
  memcpy(b, example, sizeof b);
  b[41] ^= 1;
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EMAGIC);
  /* count differs from the number of names */
  memcpy(b, example, sizeof b);
  b[33] = 2;
  assert_int_equal(ferry_params_open(&r, b, sizeof b), FERRY_EPROTO);
  /* names over the limit, name longer than the limit, name past the end */
  memcpy(b, example, sizeof b);
  put_le64(b + 16, FERRY_PARAMS_MAX_ENTRIES + 1);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), FERRY_ETOOBIG);
  memcpy(b, example, sizeof b);
  put_le64(b + 24, FERRY_PARAMS_MAX_NAME + 1);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), FERRY_ETOOBIG);
  memcpy(b, example, sizeof b);
  put_le64(b + 24, 1ull << 62);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), FERRY_ETOOBIG);
  /* device not CPU */
  memcpy(b, example, sizeof b);
  b[57] = 2;
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EPROTO);
  /* ndim negative, at and past the limit */
  memcpy(b, example, sizeof b);
  put_le32(b + 65, (uint32_t)-1);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EPROTO);
  put_le32(b + 65, FERRY_PARAMS_MAX_NDIM + 1);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EPROTO);
  put_le32(b + 65, FERRY_PARAMS_MAX_NDIM);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EAGAIN);
  /* lanes */
  memcpy(b, example, sizeof b);
  b[71] = 4;
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EPROTO);
  /* negative extent, overflowing extent */
  memcpy(b, example, sizeof b);
  put_le64(b + 73, (uint64_t)-2);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EPROTO);
  put_le64(b + 73, 1ull << 62);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_ETOOBIG);
  /* data_byte_size that lies (smaller, larger, huge) */
  memcpy(b, example, sizeof b);
  put_le64(b + 81, 4);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EPROTO);
  put_le64(b + 81, 1ull << 62);
  assert_int_equal(ferry_params_open(&r, b, sizeof b), 0);
  assert_int_equal(ferry_params_next(&r, &name, &nlen, &t), FERRY_EPROTO);
}

static void ndarray_roundtrip(void **state) {
  (void)state;
  int32_t data[6] = {1, -2, 3, -4, 5, -6};
  int64_t shape[3] = {1, 2, 3};
  DLTensor t = {.data = data, .device = {kDLCPU, 0}, .ndim = 3, .dtype = {kDLInt, 32, 1},
                .shape = shape};
  ferry_buf out;
  ferry_buf_init(&out, 1 << 20);
  assert_int_equal(ferry_ndarray_encode(&out, &t), 0);
  assert_int_equal(out.len, 32 + 24 + 8 + 24);
  ferry_stream s;
  ferry_stream_init(&s, out.data, out.len);
  ferry_params_tensor d;
  assert_int_equal(ferry_ndarray_decode(&s, &d), 0);
  assert_int_equal(ferry_stream_left(&s), 0);
  assert_int_equal(d.ndim, 3);
  assert_memory_equal(d.shape, shape, sizeof shape);
  assert_memory_equal(d.data, data, sizeof data);
  /* A zero-size array has no data bytes. */
  int64_t zero[1] = {0};
  t.shape = zero;
  t.ndim = 1;
  out.len = 0;
  assert_int_equal(ferry_ndarray_encode(&out, &t), 0);
  ferry_stream_init(&s, out.data, out.len);
  assert_int_equal(ferry_ndarray_decode(&s, &d), 0);
  assert_int_equal(d.nbytes, 0);
  /* Failure leaves the cursor where it was. */
  ferry_stream_init(&s, out.data, out.len - 1);
  assert_int_equal(ferry_ndarray_decode(&s, &d), FERRY_EAGAIN);
  assert_int_equal(s.pos, 0);
  ferry_buf_close(&out);
}

static void empty_dict(void **state) {
  (void)state;
  ferry_buf out;
  ferry_buf_init(&out, 1 << 10);
  assert_int_equal(ferry_params_encode(&out, 0, NULL, NULL), 0);
  assert_int_equal(out.len, 32);
  ferry_params_reader r;
  assert_int_equal(ferry_params_open(&r, out.data, out.len), 0);
  assert_int_equal(r.count, 0);
  ferry_buf_close(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(decode_example), cmocka_unit_test(encode_example),
      cmocka_unit_test(every_truncation), cmocka_unit_test(bad_fields),
      cmocka_unit_test(ndarray_roundtrip), cmocka_unit_test(empty_dict),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
