/* The graph JSON parser: the recorded graph.json, every truncation of it,
 * and graphs that break each rule graph_json.h lists (cycles, indices and
 * storage ids out of range, wrong types, huge counts and shapes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/graph_json.h"

static char *read_golden(size_t *len) {
  FILE *f = fopen(FERRY_GOLDEN_DIR "/graph.json", "rb");
  assert_non_null(f);
  static char buf[1 << 16];
  *len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(*len > 0 && *len < sizeof buf);
  return buf;
}

static void test_golden(void **state) {
  (void)state;
  size_t len;
  const char *json = read_golden(&len);
  ferry_graph *g;
  char msg[256];
  assert_int_equal(ferry_graph_parse(json, len, &g, msg, sizeof msg), FERRY_OK);
  assert_int_equal(g->nnodes, 3);
  assert_int_equal(g->nentries, 3);
  assert_int_equal(g->nstorage, 3);
  assert_int_equal(g->narg_nodes, 1);
  assert_int_equal(g->arg_nodes[0], 0);
  assert_int_equal(g->nheads, 1);
  assert_int_equal(g->heads[0].node, 2);
  assert_string_equal(g->nodes[0].name, "x");
  assert_int_equal(g->nodes[0].op, FERRY_GRAPH_NULL);
  assert_int_equal(g->nodes[1].op, FERRY_GRAPH_CALL);
  assert_string_equal(g->nodes[1].func_name, "addone");
  assert_string_equal(g->nodes[2].func_name, "scale");
  assert_int_equal(g->nodes[2].ninputs, 1);
  assert_int_equal(g->nodes[2].inputs[0].node, 1);
  for (int e = 0; e < 3; e++) {
    assert_int_equal(g->entries[e].dtype.code, kDLFloat);
    assert_int_equal(g->entries[e].dtype.bits, 32);
    assert_int_equal(g->entries[e].ndim, 2);
    assert_int_equal(g->entries[e].shape[0], 3);
    assert_int_equal(g->entries[e].shape[1], 4);
    assert_int_equal(g->entries[e].nbytes, 48);
    assert_int_equal(g->entries[e].storage_id, (uint32_t)e);
  }
  assert_false(g->has_device_index);
  ferry_graph_free(g);
}

/* Every proper prefix is an error with a message, never a crash. */
static void test_truncated(void **state) {
  (void)state;
  size_t len;
  const char *json = read_golden(&len);
  size_t end = len;
  while (end > 0 && (json[end - 1] == '\n' || json[end - 1] == ' '))
    end--;
  for (size_t n = 0; n < end; n++) {
    char *copy = malloc(n ? n : 1); /* exact size so ASan sees an over-read */
    memcpy(copy, json, n);
    ferry_graph *g = (ferry_graph *)1;
    char msg[256];
    int rc = ferry_graph_parse(copy, n, &g, msg, sizeof msg);
    assert_int_not_equal(rc, FERRY_OK);
    assert_null(g);
    assert_true(strncmp(msg, "graph JSON: ", 12) == 0);
    free(copy);
  }
}

/* A valid two-op graph with placeholders substituted by each case. */
static const char *base_graph =
    "{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []},"
    " {\"op\": \"tvm_op\", \"name\": \"a\", \"attrs\": {\"func_name\": \"f\","
    " \"num_inputs\": \"1\", \"num_outputs\": \"1\", \"flatten_data\": \"0\"},"
    " \"inputs\": [[%s]]},"
    " {\"op\": \"tvm_op\", \"name\": \"b\", \"attrs\": {\"func_name\": \"g\","
    " \"num_inputs\": \"1\", \"num_outputs\": \"1\", \"flatten_data\": \"0\"},"
    " \"inputs\": [[1, 0, 0]]}],"
    " \"arg_nodes\": [%s], \"heads\": [[%s]], \"node_row_ptr\": [%s],"
    " \"attrs\": {\"dltype\": [\"list_str\", [%s]],"
    " \"storage_id\": [\"list_int\", [%s]],"
    " \"shape\": [\"list_shape\", [%s]]}}";

struct variant {
  const char *a_input, *args, *heads, *rows, *dltype, *sids, *shapes;
};

static const struct variant good = {"0, 0, 0",      "0",
                                    "2, 0, 0",      "0, 1, 2, 3",
                                    "\"float32\", \"float32\", \"int8x4\"",
                                    "0, 1, 0",      "[2, 3], [6], [2, 3]"};

static int parse_variant(const struct variant *v, ferry_graph **g, char *msg, size_t cap) {
  char json[2048];
  snprintf(json, sizeof json, base_graph, v->a_input, v->args, v->heads, v->rows, v->dltype,
           v->sids, v->shapes);
  return ferry_graph_parse(json, strlen(json), g, msg, cap);
}

static void expect_error(const struct variant *v, const char *want) {
  ferry_graph *g;
  char msg[256];
  int rc = parse_variant(v, &g, msg, sizeof msg);
  if (rc == FERRY_OK || strstr(msg, want) == NULL)
    fail_msg("expected an error containing '%s', got rc %d '%s'", want, rc, msg);
  assert_null(g);
}

static void test_variant_ok(void **state) {
  (void)state;
  ferry_graph *g;
  char msg[256];
  assert_int_equal(parse_variant(&good, &g, msg, sizeof msg), FERRY_OK);
  assert_int_equal(g->nstorage, 2);
  assert_int_equal(g->entries[2].dtype.lanes, 4);
  assert_int_equal(g->entries[2].nbytes, 6 * 4);
  assert_int_equal(g->entries[1].nbytes, 6 * 4);
  ferry_graph_free(g);
}

static void test_cycles_and_refs(void **state) {
  (void)state;
  struct variant v = good;
  v.a_input = "1, 0, 0"; /* a reads its own output */
  expect_error(&v, "earlier node");
  v.a_input = "2, 0"; /* a reads a later node */
  expect_error(&v, "earlier node");
  v.a_input = "0, 1"; /* x has one output */
  expect_error(&v, "has no output 1");
  v.a_input = "-1, 0";
  expect_error(&v, "earlier node");
  v.a_input = "0";
  expect_error(&v, "earlier node");
  v = good;
  v.heads = "3, 0, 0";
  expect_error(&v, "heads[0]");
  v.args = "1"; /* not a null node */
  expect_error(&v, "not a null node");
  v.args = "5";
  expect_error(&v, "arg_nodes[0]");
}

static void test_rows_and_attrs(void **state) {
  (void)state;
  struct variant v = good;
  v.rows = "0, 1, 2";
  expect_error(&v, "node_row_ptr");
  v.rows = "1, 1, 2, 3";
  expect_error(&v, "node_row_ptr");
  v.rows = "0, 1, 3, 4"; /* gives a two outputs */
  expect_error(&v, "node_row_ptr gives it 2");
  v.rows = "0, 1, 2, 99999999999";
  expect_error(&v, "node_row_ptr");
  v = good;
  v.sids = "0, 1, 3"; /* only 3 entries */
  expect_error(&v, "storage id out of range");
  v.sids = "0, 1, -1";
  expect_error(&v, "storage id");
  v.sids = "0, 1";
  expect_error(&v, "attrs.storage_id");
  v.sids = "0, 1, \"2\"";
  expect_error(&v, "storage id");
  v = good;
  v.dltype = "\"float32\", \"float32\", \"float\"";
  expect_error(&v, "dltype");
  v.dltype = "\"float32\", \"float32\", \"int3\"";
  expect_error(&v, "not byte-sized");
  v.dltype = "\"float32\", \"float32\", 7";
  expect_error(&v, "dltype");
  v = good;
  v.shapes = "[2, 3], [6], [2, -3]";
  expect_error(&v, "shape extent");
  v.shapes = "[2, 3], [6], [4294967296, 4294967296]";
  expect_error(&v, "shape extent");
  v.shapes = "[2, 3], [6], [4611686018427387904]";
  expect_error(&v, "overflows");
  v.shapes = "[2, 3], [6], [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]";
  expect_error(&v, "at most 32");
  v.shapes = "[2, 3], [6], 5";
  expect_error(&v, "shape");
  /* Exactly 32 extents is accepted. */
  v.shapes = "[2, 3], [6], [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2,3]";
  ferry_graph *g;
  char msg[256];
  assert_int_equal(parse_variant(&v, &g, msg, sizeof msg), FERRY_OK);
  assert_int_equal(g->entries[2].ndim, 32);
  ferry_graph_free(g);
}

static void parse_text(const char *json, int want_ok, const char *want) {
  ferry_graph *g;
  char msg[256];
  int rc = ferry_graph_parse(json, strlen(json), &g, msg, sizeof msg);
  if (want_ok) {
    if (rc != FERRY_OK)
      fail_msg("unexpected error: %s", msg);
    ferry_graph_free(g);
    return;
  }
  if (rc == FERRY_OK || strstr(msg, want) == NULL)
    fail_msg("expected an error containing '%s', got rc %d '%s'", want, rc, msg);
}

#define ONE_NODE_ATTRS                                                                  \
  "\"attrs\": {\"dltype\": [\"list_str\", [\"float32\"]], \"storage_id\": [\"list_int\", " \
  "[0]], \"shape\": [\"list_shape\", [[1]]]}"
#define ONE_NODE "{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}"

static void test_document(void **state) {
  (void)state;
  parse_text("{\"nodes\": [" ONE_NODE "], \"arg_nodes\": [0], \"heads\": [[0, 0, 0]], "
             "\"node_row_ptr\": [0, 1], " ONE_NODE_ATTRS "}",
             1, NULL);
  /* Everything after "metadata" is ignored, unknown keys before it are not. */
  parse_text("{\"nodes\": [" ONE_NODE "], \"arg_nodes\": [0], \"heads\": [[0, 0, 0]], "
             "\"node_row_ptr\": [0, 1], " ONE_NODE_ATTRS ", \"metadata\": 1, \"junk\": 2}",
             1, NULL);
  parse_text("{\"junk\": 1, \"nodes\": [" ONE_NODE "], \"arg_nodes\": [0], \"heads\": [], "
             "\"node_row_ptr\": [0, 1], " ONE_NODE_ATTRS "}",
             0, "unknown key 'junk'");
  parse_text("{\"nodes\": [" ONE_NODE "], \"arg_nodes\": [0], \"heads\": [], "
             "\"node_row_ptr\": [0, 1]}",
             0, "attrs");
  parse_text("{\"nodes\": [], \"arg_nodes\": [], \"heads\": [], \"node_row_ptr\": [0], "
             "\"attrs\": {}}",
             0, "nodes");
  parse_text("[1, 2]", 0, "not an object");
  parse_text("{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": [], \"x\": 1}], "
             "\"arg_nodes\": [0], \"heads\": [], \"node_row_ptr\": [0, 1], " ONE_NODE_ATTRS "}",
             0, "unknown key 'x'");
  parse_text("{\"nodes\": [{\"op\": \"conv\", \"name\": \"x\", \"inputs\": []}], "
             "\"arg_nodes\": [], \"heads\": [], \"node_row_ptr\": [0, 1], " ONE_NODE_ATTRS "}",
             0, "unknown op");
  parse_text("{\"nodes\": [{\"op\": \"tvm_op\", \"name\": \"x\", \"inputs\": [], \"attrs\": "
             "{\"func_name\": \"f\", \"num_inputs\": 0, \"num_outputs\": \"1\", "
             "\"flatten_data\": \"0\"}}], \"arg_nodes\": [], \"heads\": [], "
             "\"node_row_ptr\": [0, 1], " ONE_NODE_ATTRS "}",
             0, "num_inputs");
  parse_text("{\"nodes\": [{\"op\": \"tvm_op\", \"name\": \"x\", \"inputs\": [], \"attrs\": "
             "{\"func_name\": \"f\", \"num_inputs\": \"1\", \"num_outputs\": \"1\", "
             "\"flatten_data\": \"0\"}}], \"arg_nodes\": [], \"heads\": [], "
             "\"node_row_ptr\": [0, 1], " ONE_NODE_ATTRS "}",
             0, "lists 0 inputs");
  parse_text("{\"nodes\": [{\"op\": \"tvm_op\", \"name\": \"x\", \"inputs\": [], \"attrs\": "
             "{\"func_name\": \"f\", \"num_inputs\": \"0\", \"num_outputs\": \"99999999999\", "
             "\"flatten_data\": \"0\"}}], \"arg_nodes\": [], \"heads\": [], "
             "\"node_row_ptr\": [0, 1], " ONE_NODE_ATTRS "}",
             0, "num_outputs");
  parse_text("{\"nodes\": [" ONE_NODE "], \"arg_nodes\": [0], \"heads\": [], "
             "\"node_row_ptr\": [0, 1], \"attrs\": {\"dltype\": [\"list_str\", [\"float32\"]], "
             "\"storage_id\": [\"list_int\", [0]], \"shape\": [\"list_shape\", [[1]]], "
             "\"other\": [\"list_str\", []]}}",
             0, "unknown type tag");
  parse_text("{\"nodes\": [" ONE_NODE "], \"arg_nodes\": [0], \"heads\": [], "
             "\"node_row_ptr\": [0, 1], \"attrs\": {\"dltype\": [\"list_str\", [\"float32\"]], "
             "\"storage_id\": [\"list_int\", [0]], \"shape\": [\"list_shape\", [[1]]], "
             "\"device_index\": [\"list_int\", [1]], \"extra\": [\"size_t\", 3]}}",
             1, NULL);
}

/* A huge declared count costs nothing before it is checked. */
static void test_huge(void **state) {
  (void)state;
  ferry_graph *g;
  char msg[128];
  assert_int_equal(ferry_graph_parse("{}", (size_t)FERRY_GRAPH_MAX_JSON + 1, &g, msg, sizeof msg),
                   FERRY_ETOOBIG);
  /* A document of exactly the size limit is read (and refused as JSON
   * without a graph, not for its size). */
  char *big = malloc(FERRY_GRAPH_MAX_JSON);
  memset(big, ' ', FERRY_GRAPH_MAX_JSON);
  big[0] = '{';
  big[FERRY_GRAPH_MAX_JSON - 1] = '}';
  assert_int_equal(ferry_graph_parse(big, FERRY_GRAPH_MAX_JSON, &g, msg, sizeof msg),
                   FERRY_EPROTO);
  assert_non_null(strstr(msg, "nodes"));
  free(big);
  /* 5000 inputs on one node: over the per-node limit. */
  size_t cap = 200000;
  char *json = malloc(cap);
  size_t n = (size_t)snprintf(json, cap,
                              "{\"nodes\": [" ONE_NODE ", {\"op\": \"tvm_op\", \"name\": \"y\", "
                              "\"attrs\": {\"func_name\": \"f\", \"num_inputs\": \"5000\", "
                              "\"num_outputs\": \"1\", \"flatten_data\": \"0\"}, \"inputs\": [");
  for (int i = 0; i < 5000; i++)
    n += (size_t)snprintf(json + n, cap - n, "%s[0, 0]", i ? "," : "");
  n += (size_t)snprintf(json + n, cap - n,
                        "]}], \"arg_nodes\": [0], \"heads\": [], \"node_row_ptr\": [0, 1, 2], "
                        "\"attrs\": {}}");
  assert_int_not_equal(ferry_graph_parse(json, n, &g, msg, sizeof msg), FERRY_OK);
  assert_non_null(strstr(msg, "inputs"));
  free(json);
}

static void test_dtype(void **state) {
  (void)state;
  DLDataType t;
  assert_int_equal(ferry_graph_dtype_parse("float16", &t), 0);
  assert_int_equal(t.bits, 16);
  assert_int_equal(ferry_graph_dtype_parse("uint8", &t), 0);
  assert_int_equal(t.code, kDLUInt);
  assert_int_equal(ferry_graph_dtype_parse("bool", &t), 0);
  assert_int_equal(t.bits, 1);
  assert_int_equal(ferry_graph_dtype_parse("bfloat16", &t), 0);
  assert_int_equal(t.code, kDLBfloat);
  assert_int_equal(ferry_graph_dtype_parse("int32x8", &t), 0);
  assert_int_equal(t.lanes, 8);
  const char *bad[] = {"", "int", "int0", "int256", "float32x0", "float32x", "float32x70000",
                       "int8y", "handle", "float-32", "int08"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (ferry_graph_dtype_parse(bad[i], &t) == 0)
      fail_msg("'%s' parsed", bad[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden),         cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_variant_ok),     cmocka_unit_test(test_cycles_and_refs),
      cmocka_unit_test(test_rows_and_attrs), cmocka_unit_test(test_document),
      cmocka_unit_test(test_huge),           cmocka_unit_test(test_dtype),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
