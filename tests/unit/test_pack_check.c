/* ferry pack's graph/params check (pack_check.h): a consistent pair
 * passes; every prefix of either input, every mismatch and every
 * malformed field is refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "wire/pack_check.h"
#include "wire/params.h"

/* x[1,4] -> f(x, w[2,4]) -> y[1,2] */
static const char graph[] =
    "{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []},"
    " {\"op\": \"null\", \"name\": \"w\", \"inputs\": []},"
    " {\"op\": \"tvm_op\", \"name\": \"f\", \"inputs\": [[0, 0, 0], [1, 0, 0]],"
    "  \"attrs\": {\"func_name\": \"f\", \"num_inputs\": \"2\", \"num_outputs\": \"1\","
    "  \"flatten_data\": \"0\"}}],"
    " \"arg_nodes\": [0, 1], \"heads\": [[2, 0, 0]], \"node_row_ptr\": [0, 1, 2, 3],"
    " \"attrs\": {\"dltype\": [\"list_str\", [\"float32\", \"float32\", \"float32\"]],"
    "  \"storage_id\": [\"list_int\", [0, 1, 2]],"
    "  \"shape\": [\"list_shape\", [[1, 4], [2, 4], [1, 2]]]}}";

static void make_params(ferry_buf *out, const char *name, int64_t rows, uint8_t bits) {
  static uint8_t data[64];
  int64_t shape[2] = {rows, 4};
  DLTensor t = {data, {kDLCPU, 0}, 2, {kDLFloat, bits, 1}, shape, NULL, 0};
  const char *names[] = {name};
  const DLTensor *ts[] = {&t};
  ferry_buf_init(out, 1 << 16);
  assert_int_equal(ferry_params_encode(out, 1, names, ts), 0);
}

static int check(const char *g, const ferry_buf *p, ferry_rpc_why *why) {
  size_t n = 99;
  ferry_rpc_why_clear(why);
  int rc = ferry_pack_check(g, strlen(g), p ? p->data : NULL, p ? p->len : 0, &n, why);
  if (rc)
    assert_true(why->msg[0] != 0);
  else
    assert_int_equal(n, p ? 1 : 0);
  return rc;
}

static void test_consistent(void **state) {
  (void)state;
  ferry_buf p;
  ferry_rpc_why why;
  make_params(&p, "w", 2, 32);
  assert_int_equal(check(graph, &p, &why), 0);
  assert_int_equal(check(graph, NULL, &why), 0);
  ferry_buf_close(&p);
}

static void test_every_prefix(void **state) {
  (void)state;
  ferry_buf p;
  ferry_rpc_why why;
  size_t n;
  make_params(&p, "w", 2, 32);
  for (size_t k = 1; k < p.len; k++) {
    ferry_rpc_why_clear(&why);
    assert_int_not_equal(ferry_pack_check(graph, strlen(graph), p.data, k, &n, &why), 0);
    assert_true(why.msg[0] != 0);
  }
  for (size_t k = 0; k < strlen(graph); k++) {
    ferry_rpc_why_clear(&why);
    assert_int_not_equal(ferry_pack_check(graph, k, p.data, p.len, &n, &why), 0);
  }
  /* One byte more than the dict: trailing bytes. */
  uint8_t *more = test_malloc(p.len + 1);
  memcpy(more, p.data, p.len);
  more[p.len] = 0;
  assert_int_equal(ferry_pack_check(graph, strlen(graph), more, p.len + 1, &n, &why),
                   FERRY_EPROTO);
  test_free(more);
  /* Over the JSON ceiling: refused before anything is read. */
  assert_int_equal(ferry_pack_check(graph, (size_t)FERRY_PACK_MAX_JSON + 1, NULL, 0, &n, &why),
                   FERRY_ETOOBIG);
  ferry_buf_close(&p);
}

static void test_mismatches(void **state) {
  (void)state;
  ferry_buf p;
  ferry_rpc_why why;
  make_params(&p, "nope", 2, 32);
  assert_int_equal(check(graph, &p, &why), FERRY_EPROTO);
  assert_non_null(strstr(why.msg, "'nope' is not an input"));
  ferry_buf_close(&p);
  make_params(&p, "w", 3, 32);
  assert_int_equal(check(graph, &p, &why), FERRY_EPROTO);
  assert_non_null(strstr(why.msg, "shape of 'w'"));
  ferry_buf_close(&p);
  make_params(&p, "w", 2, 64);
  assert_int_equal(check(graph, &p, &why), FERRY_EPROTO);
  assert_non_null(strstr(why.msg, "float64"));
  ferry_buf_close(&p);
  /* The output node is not an input even though it has a name. */
  make_params(&p, "f", 1, 32);
  assert_int_equal(check(graph, &p, &why), FERRY_EPROTO);
  ferry_buf_close(&p);
}

/* Replaces the first occurrence of from with to in graph. */
static void edit(char *out, size_t cap, const char *from, const char *to) {
  const char *at = strstr(graph, from);
  assert_non_null(at);
  snprintf(out, cap, "%.*s%s%s", (int)(at - graph), graph, to, at + strlen(from));
}

static void test_malformed_graph(void **state) {
  (void)state;
  static const char *const edits[][2] = {
      {"\"node_row_ptr\": [0, 1, 2, 3]", "\"node_row_ptr\": [0, 1, 2]"},
      {"\"node_row_ptr\": [0, 1, 2, 3]", "\"node_row_ptr\": [1, 1, 2, 3]"},
      {"\"node_row_ptr\": [0, 1, 2, 3]", "\"node_row_ptr\": [0, 2, 1, 3]"},
      {"\"node_row_ptr\": [0, 1, 2, 3]", "\"node_row_ptr\": [0, 1, 2, \"3\"]"},
      {"\"arg_nodes\": [0, 1]", "\"arg_nodes\": [0, 3]"},
      {"\"arg_nodes\": [0, 1]", "\"arg_nodes\": [0, -1]"},
      {"\"arg_nodes\": [0, 1]", "\"arg_nodez\": [0, 1]"},
      {"[\"list_int\", [0, 1, 2]]", "[\"list_int\", [0, 1]]"},
      {"[\"list_str\", [\"float32\", \"float32\", \"float32\"]]", "[\"list_str\"]"},
      {"\"shape\": [\"list_shape\", [[1, 4], [2, 4], [1, 2]]]", "\"shape\": 3"},
      {"{\"nodes\"", "[{\"nodes\""},
      {"\"x\", \"inputs\"", "\"x\", \"x\": 1, \"x\": 2, \"inputs\""},
  };
  ferry_buf p;
  ferry_rpc_why why;
  make_params(&p, "w", 2, 32);
  char g[sizeof graph + 64];
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    edit(g, sizeof g, edits[i][0], edits[i][1]);
    if (i == sizeof edits / sizeof edits[0] - 2)
      strcat(g, "]");
    assert_int_not_equal(check(g, &p, &why), 0);
  }
  assert_int_equal(check("[]", NULL, &why), FERRY_EPROTO);
  assert_int_equal(check("not json", NULL, &why), FERRY_EPROTO);
  ferry_buf_close(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_consistent),
      cmocka_unit_test(test_every_prefix),
      cmocka_unit_test(test_mismatches),
      cmocka_unit_test(test_malformed_graph),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
