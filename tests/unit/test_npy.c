/* .npy header codec: NumPy-written headers (bytes copied from NumPy 1.24's
 * np.save), whole and one byte at a time, writer round trips, and every
 * limit at and past its edge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "wire/npy.h"

/* Builds "\x93NUMPY" v1 + header text (padded by NumPy's rule) into out. */
static size_t make_v1(uint8_t *out, size_t cap, const char *dict, int pad_to) {
  size_t len = strlen(dict);
  size_t total = 10 + len + 1;
  size_t pad = (pad_to - total % pad_to) % pad_to;
  size_t hlen = len + pad + 1;
  assert_true(10 + hlen <= cap);
  memcpy(out, "\x93NUMPY\x01\x00", 8);
  put_le16(out + 8, (uint16_t)hlen);
  memcpy(out + 10, dict, len);
  memset(out + 10 + len, ' ', pad);
  out[10 + len + pad] = '\n';
  return 10 + hlen;
}

static int parse(const uint8_t *p, size_t n, uint64_t max, ferry_npy_info *info) {
  char err[256];
  return ferry_npy_parse_header(p, n, max, info, err, sizeof err);
}

static void test_numpy_float32(void **state) {
  (void)state;
  uint8_t b[256];
  /* NumPy 1.24 pads to 128 bytes (room for the shape to grow). */
  size_t n = make_v1(b, sizeof b,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
                     128);
  assert_int_equal(n, 128);
  ferry_npy_info info;
  assert_int_equal(parse(b, n, UINT64_MAX, &info), 0);
  assert_int_equal(info.dtype.code, kDLFloat);
  assert_int_equal(info.dtype.bits, 32);
  assert_int_equal(info.dtype.lanes, 1);
  assert_int_equal(info.ndim, 2);
  assert_int_equal(info.shape[0], 3);
  assert_int_equal(info.shape[1], 4);
  assert_int_equal(info.nbytes, 48);
  assert_int_equal(info.data_offset, 128);
  assert_false(info.big_endian);
}

static void test_byte_at_a_time(void **state) {
  (void)state;
  uint8_t b[256];
  size_t n = make_v1(b, sizeof b,
                     "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 64);
  ferry_npy_info info;
  for (size_t k = 0; k < n; k++)
    assert_int_equal(parse(b, k, UINT64_MAX, &info), FERRY_EAGAIN);
  assert_int_equal(parse(b, n, UINT64_MAX, &info), 0);
  assert_int_equal(info.dtype.code, kDLUInt);
  assert_int_equal(info.dtype.bits, 1);
  assert_int_equal(info.nbytes, 2);
  assert_int_equal(info.ndim, 1);
}

static void test_scalar_big_endian(void **state) {
  (void)state;
  uint8_t b[256];
  size_t n = make_v1(b, sizeof b,
                     "{'descr': '>i8', 'fortran_order': False, 'shape': (), }", 64);
  ferry_npy_info info;
  assert_int_equal(parse(b, n, UINT64_MAX, &info), 0);
  assert_int_equal(info.ndim, 0);
  assert_int_equal(info.nbytes, 8);
  assert_true(info.big_endian);
  uint8_t v[8] = {0, 0, 0, 0, 0, 0, 0, 42};
  ferry_npy_swap(v, 8, info.dtype);
  assert_int_equal(get_le64(v), 42);
}

static void test_v2_and_key_order(void **state) {
  (void)state;
  const char *dict = "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<u2\"}";
  uint8_t b[128];
  size_t len = strlen(dict);
  memcpy(b, "\x93NUMPY\x02\x00", 8);
  put_le32(b + 8, (uint32_t)len + 1);
  memcpy(b + 12, dict, len);
  b[12 + len] = '\n';
  ferry_npy_info info;
  for (size_t k = 0; k < 13 + len; k++)
    assert_int_equal(parse(b, k, UINT64_MAX, &info), FERRY_EAGAIN);
  assert_int_equal(parse(b, 13 + len, UINT64_MAX, &info), 0);
  assert_int_equal(info.major, 2);
  assert_int_equal(info.dtype.bits, 16);
  assert_int_equal(info.nbytes, 6);
  assert_int_equal(info.data_offset, 13 + len);
}

static void test_writer_round_trip(void **state) {
  (void)state;
  static const struct {
    DLDataType t;
    const char *name;
  } types[] = {
      {{kDLFloat, 32, 1}, "float32"}, {{kDLFloat, 64, 1}, "float64"},
      {{kDLFloat, 16, 1}, "float16"}, {{kDLInt, 8, 1}, "int8"},
      {{kDLInt, 64, 1}, "int64"},     {{kDLUInt, 8, 1}, "uint8"},
      {{kDLUInt, 1, 1}, "bool"},      {{kDLComplex, 128, 1}, "complex128"},
  };
  int64_t shapes[3][4] = {{0}, {7}, {2, 3, 4, 5}};
  int ndims[3] = {0, 1, 4};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    DLDataType parsed;
    assert_int_equal(ferry_npy_dtype_parse(types[t].name, &parsed), 0);
    assert_memory_equal(&parsed, &types[t].t, sizeof parsed);
    assert_string_equal(ferry_npy_dtype_name(types[t].t), types[t].name);
    for (int s = 0; s < 3; s++) {
      ferry_buf out;
      ferry_buf_init(&out, 4096);
      assert_int_equal(ferry_npy_write_header(&out, types[t].t, ndims[s], shapes[s]), 0);
      assert_int_equal(out.len % 64, 0);
      assert_int_equal(out.data[out.len - 1], '\n');
      ferry_npy_info info;
      assert_int_equal(parse(out.data, out.len, UINT64_MAX, &info), 0);
      assert_int_equal(info.ndim, ndims[s]);
      assert_memory_equal(&info.dtype, &types[t].t, sizeof info.dtype);
      for (int i = 0; i < ndims[s]; i++)
        assert_int_equal(info.shape[i], shapes[s][i]);
      assert_int_equal(info.data_offset, out.len);
      ferry_buf_close(&out);
    }
  }
  /* No NumPy equivalent: refused, buffer unchanged. */
  ferry_buf out;
  ferry_buf_init(&out, 4096);
  int64_t shp[1] = {1};
  assert_int_equal(ferry_npy_write_header(&out, (DLDataType){kDLBfloat, 16, 1}, 1, shp),
                   FERRY_EUNSUPPORTED);
  assert_int_equal(ferry_npy_write_header(&out, (DLDataType){kDLFloat, 32, 4}, 1, shp),
                   FERRY_EUNSUPPORTED);
  assert_int_equal(ferry_npy_write_header(&out, (DLDataType){kDLFloat, 32, 1}, 33, shp),
                   FERRY_EINVAL);
  int64_t neg[1] = {-1};
  assert_int_equal(ferry_npy_write_header(&out, (DLDataType){kDLFloat, 32, 1}, 1, neg),
                   FERRY_EINVAL);
  assert_int_equal(out.len, 0);
  /* A buffer too small for the header: ETOOBIG, unchanged. */
  ferry_buf small;
  ferry_buf_init(&small, 32);
  assert_int_equal(ferry_npy_write_header(&small, (DLDataType){kDLFloat, 32, 1}, 1, shp),
                   FERRY_ETOOBIG);
  assert_int_equal(small.len, 0);
  ferry_buf_close(&small);
  ferry_buf_close(&out);
}

static void test_limits(void **state) {
  (void)state;
  uint8_t b[1024];
  ferry_npy_info info;
  char dict[900];
  /* 32 dimensions: fine.  33: refused. */
  for (int nd = 32; nd <= 33; nd++) {
    size_t len = (size_t)snprintf(dict, sizeof dict,
                                  "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < nd; i++)
      len += (size_t)snprintf(dict + len, sizeof dict - len, "1, ");
    snprintf(dict + len, sizeof dict - len, "), }");
    size_t n = make_v1(b, sizeof b, dict, 64);
    assert_int_equal(parse(b, n, UINT64_MAX, &info), nd == 32 ? 0 : FERRY_ETOOBIG);
  }
  /* Data size exactly at the limit, then one byte over. */
  size_t n = make_v1(b, sizeof b,
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 2), }", 64);
  assert_int_equal(parse(b, n, 64, &info), 0);
  assert_int_equal(parse(b, n, 63, &info), FERRY_ETOOBIG);
  /* Size overflow across extents. */
  n = make_v1(b, sizeof b,
              "{'descr': '<f8', 'fortran_order': False, "
              "'shape': (4294967296, 4294967296), }", 64);
  assert_int_equal(parse(b, n, UINT64_MAX, &info), FERRY_ETOOBIG);
  /* An extent past INT64_MAX. */
  n = make_v1(b, sizeof b,
              "{'descr': '<f8', 'fortran_order': False, "
              "'shape': (9223372036854775808,), }", 64);
  assert_int_equal(parse(b, n, UINT64_MAX, &info), FERRY_ETOOBIG);
  /* A v2 header of exactly the ceiling (the dict padded with spaces): fine. */
  {
    const char *small = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    size_t total = 12 + FERRY_NPY_MAX_HEADER;
    uint8_t *big = malloc(total);
    assert_non_null(big);
    memcpy(big, "\x93NUMPY\x02\x00", 8);
    put_le32(big + 8, FERRY_NPY_MAX_HEADER);
    memset(big + 12, ' ', FERRY_NPY_MAX_HEADER);
    memcpy(big + 12, small, strlen(small));
    big[total - 1] = '\n';
    assert_int_equal(parse(big, total - 1, UINT64_MAX, &info), FERRY_EAGAIN);
    assert_int_equal(parse(big, total, UINT64_MAX, &info), 0);
    assert_int_equal(info.data_offset, total);
    free(big);
  }
  /* Header length over the ceiling (v2, 4-byte length): refused before any
   * of it is needed. */
  memcpy(b, "\x93NUMPY\x02\x00", 8);
  put_le32(b + 8, FERRY_NPY_MAX_HEADER + 1);
  assert_int_equal(parse(b, 12, UINT64_MAX, &info), FERRY_ETOOBIG);
  put_le32(b + 8, 0xFFFFFFFFu);
  assert_int_equal(parse(b, 12, UINT64_MAX, &info), FERRY_ETOOBIG);
}

static void test_bad_input(void **state) {
  (void)state;
  static const struct {
    const char *dict;
    int rc;
  } cases[] = {
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", FERRY_EUNSUPPORTED},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
       FERRY_EUNSUPPORTED},
      {"{'descr': '<U8', 'fortran_order': False, 'shape': (3,), }", FERRY_EUNSUPPORTED},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", FERRY_EUNSUPPORTED},
      {"{'descr': '<f3', 'fortran_order': False, 'shape': (3,), }", FERRY_EUNSUPPORTED},
      {"{'descr': '<f4', 'shape': (3,), }", FERRY_EPROTO},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", FERRY_EPROTO},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
       FERRY_EPROTO},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", FERRY_EPROTO},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } x", FERRY_EPROTO},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [3], }", FERRY_EPROTO},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,,), }", FERRY_EPROTO},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (3,), }", FERRY_EPROTO},
      {"{'descr': '<f4', 'fortran_order': Fals, 'shape': (3,), }", FERRY_EPROTO},
      {"{'descr': 'a\\'b', 'fortran_order': False, 'shape': (3,), }", FERRY_EPROTO},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3", FERRY_EPROTO},
      {"[1, 2]", FERRY_EPROTO},
      {"", FERRY_EPROTO},
  };
  uint8_t b[512];
  ferry_npy_info info;
  char err[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = make_v1(b, sizeof b, cases[i].dict, 64);
    err[0] = 0;
    int rc = ferry_npy_parse_header(b, n, UINT64_MAX, &info, err, sizeof err);
    if (rc != cases[i].rc)
      fail_msg("case %zu (%s): got %d want %d", i, cases[i].dict, rc, cases[i].rc);
    assert_true(err[0] != 0);
  }
  /* Not .npy at all, from the first byte. */
  assert_int_equal(parse((const uint8_t *)"PK", 2, UINT64_MAX, &info), FERRY_EMAGIC);
  assert_int_equal(parse((const uint8_t *)"\x93NUMPZ", 6, UINT64_MAX, &info), FERRY_EMAGIC);
  /* Unknown major version. */
  memcpy(b, "\x93NUMPY\x04\x00\x10\x00", 10);
  assert_int_equal(parse(b, 10, UINT64_MAX, &info), FERRY_EUNSUPPORTED);
  /* Empty input: need more. */
  assert_int_equal(parse(b, 0, UINT64_MAX, &info), FERRY_EAGAIN);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_numpy_float32),   cmocka_unit_test(test_byte_at_a_time),
      cmocka_unit_test(test_scalar_big_endian), cmocka_unit_test(test_v2_and_key_order),
      cmocka_unit_test(test_writer_round_trip), cmocka_unit_test(test_limits),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
