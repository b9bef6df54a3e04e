/* Graph executor benchmark: what run() adds around the kernels, against a
 * baseline measured in the same run.
 *
 *   baseline: a chain of K calls of testlib's addone through ferry_func_call
 *             on two prepared tensors (what a hand-written loop pays);
 *   ferry:    run() of a graph x -> addone -> ... (K nodes, storage ids
 *             alternating between two buffers, as a compiler plans it).
 *
 *   bench_graph [--models DIR] [--n RUNS] [--k NODES] [--elems N]
 *
 * --models defaults to <this program's folder>/../tests/models. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "common/bench_procs.h"
#include "common/bench_rt.h"
#include "runtime/graph/graph_executor.h"

/* x -> addone -> addone ... (k nodes); entries alternate storage 1 and 2. */
static int chain_json(ferry_buf *b, int k, long elems) {
  int rc = ferry_buf_printf(b, "{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}");
  for (int i = 1; rc == 0 && i <= k; i++)
    rc = ferry_buf_printf(b,
                          ", {\"op\": \"tvm_op\", \"name\": \"n%d\", \"attrs\": {\"func_name\": "
                          "\"addone\", \"num_inputs\": \"1\", \"num_outputs\": \"1\", "
                          "\"flatten_data\": \"0\"}, \"inputs\": [[%d, 0, 0]]}",
                          i, i - 1);
  rc = rc ? rc : ferry_buf_printf(b, "], \"arg_nodes\": [0], \"heads\": [[%d, 0, 0]], "
                                     "\"node_row_ptr\": [0", k);
  for (int i = 1; rc == 0 && i <= k + 1; i++)
    rc = ferry_buf_printf(b, ", %d", i);
  rc = rc ? rc : ferry_buf_printf(b, "], \"attrs\": {\"dltype\": [\"list_str\", [");
  for (int i = 0; rc == 0 && i <= k; i++)
    rc = ferry_buf_printf(b, "%s\"float32\"", i ? ", " : "");
  rc = rc ? rc : ferry_buf_printf(b, "]], \"storage_id\": [\"list_int\", [0");
  for (int i = 1; rc == 0 && i <= k; i++)
    rc = ferry_buf_printf(b, ", %d", 1 + (i % 2));
  rc = rc ? rc : ferry_buf_printf(b, "]], \"shape\": [\"list_shape\", [");
  for (int i = 0; rc == 0 && i <= k; i++)
    rc = ferry_buf_printf(b, "%s[%ld]", i ? ", " : "", elems);
  return rc ? rc : ferry_buf_printf(b, "]]}}");
}

int main(int argc, char **argv) {
  bench_set_name("bench_graph");
  char models[PATH_MAX];
  long n = 200000, elems = 16;
  int k = 8;
  bench_self_path(models, sizeof models, "../tests/models");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--models") == 0)
      snprintf(models, sizeof models, "%s", argv[i + 1]);
    else if (strcmp(argv[i], "--n") == 0)
      n = strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--k") == 0)
      k = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--elems") == 0)
      elems = strtol(argv[i + 1], NULL, 10);
  }
  if (n < 1 || k < 1 || k > 10000 || elems < 1 || elems > (1L << 24)) {
    fprintf(stderr, "bench_graph: bad --n/--k/--elems\n");
    return 2;
  }
  ferry_rt *rt = bench_rt_open("graph", 1);
  ferry_err err;
  ferry_err_clear(&err);
  char lib[PATH_MAX + 32];
  snprintf(lib, sizeof lib, "%s/testlib.so", models);
  ferry_module *m;
  ferry_func *f;
  if (ferry_library_load(rt, lib, &m, &err) ||
      ferry_module_get_function(m, "addone", 0, &f, &err)) {
    fprintf(stderr, "bench_graph: %s\n", err.msg);
    return 1;
  }
  ferry_buf json;
  ferry_buf_init(&json, 1 << 24);
  ferry_graph_exec *ge;
  DLDevice cpu = {kDLCPU, 0};
  if (chain_json(&json, k, elems) ||
      ferry_graph_exec_create(rt, (const char *)json.data, json.len, m, &cpu, 1, &ge, &err)) {
    fprintf(stderr, "bench_graph: %s\n", err.msg[0] ? err.msg : "graph too large");
    return 1;
  }
  ferry_ndarray *a, *b;
  int64_t shape[1] = {elems};
  DLDataType f32 = {kDLFloat, 32, 1};
  if (ferry_ndarray_new(rt, 1, shape, f32, cpu, &a, &err) ||
      ferry_ndarray_new(rt, 1, shape, f32, cpu, &b, &err))
    return 1;
  /* Defined inputs: uninitialised floats may be denormals, which would make
   * the kernels' cost depend on leftover memory. */
  memset(a->tensor.data, 0, (size_t)elems * 4);
  memset(b->tensor.data, 0, (size_t)elems * 4);
  if (ferry_graph_set_input(ge, 0, &a->tensor, &err))
    return 1;
  ferry_value args[2] = {{.kind = FERRY_KIND_TENSOR, .v.tensor = &a->tensor},
                         {.kind = FERRY_KIND_TENSOR, .v.tensor = &b->tensor}};
  double best_base = 1e30, best_ours = 1e30;
  for (int round = 0; round < 3; round++) {
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++)
      for (int j = 0; j < k; j++) {
        ferry_call c;
        ferry_call_init(&c, rt, args, 2, &err, 1 << 16);
        if (ferry_func_call(f, &c))
          return 1;
        ferry_call_close(&c);
      }
    double t1 = bench_now_s();
    for (long i = 0; i < n; i++)
      if (ferry_graph_exec_run(ge, &err)) {
        fprintf(stderr, "bench_graph: %s\n", err.msg);
        return 1;
      }
    double t2 = bench_now_s();
    if (t1 - t0 < best_base)
      best_base = t1 - t0;
    if (t2 - t1 < best_ours)
      best_ours = t2 - t1;
  }
  double base_ns = best_base / (double)n * 1e9, ours_ns = best_ours / (double)n * 1e9;
  printf("graph run, %d addone nodes of %ld floats     baseline %9.1f ns  ferry %9.1f ns  "
         "ratio %6.2f\n",
         k, elems, base_ns, ours_ns, ours_ns / (base_ns > 0 ? base_ns : 1e-9));
  ferry_obj_release(&a->base);
  ferry_obj_release(&b->base);
  ferry_obj_release(&ge->mod.base);
  ferry_obj_release(&f->base);
  ferry_obj_release(&m->base);
  ferry_buf_close(&json);
  bench_rt_close(rt);
  return 0;
}
