/* `ferry run` for whole networks: what TVM's how-to does with a library
 * from relay.build, from the command line.
 *
 *   upload MODEL.so -> load_module -> lib["default"](cpu(0)) -> graph module
 *   -> set_input(name or index, tensor) ... -> run -> get_output(i) ...
 *
 * Each stage is timed on the client's monotonic clock (wall time including
 * the round trips); `run` is also timed on the device with the time
 * evaluator (runtime.RPCTimeEvaluator on the graph module's "run", as
 * TVM's `m.module.time_evaluator("run", dev)`), which leaves the network
 * out of the mean and standard deviation. */
#include "cli/cmd_run_model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TENSOR_BYTES ((uint64_t)(SIZE_MAX / 2) < ((uint64_t)1 << 34) ? \
                          (uint64_t)(SIZE_MAX / 2) : ((uint64_t)1 << 34))
#define CMD "run"

double cli_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_stage(const char *name, double secs) {
  printf("  %-12s %10.3f ms\n", name, secs * 1e3);
}

static ferry_value device_arg(DLDevice d) {
  ferry_value v;
  memset(&v, 0, sizeof v);
  v.kind = FERRY_KIND_DEVICE;
  v.v.device = d;
  return v;
}

/* One function of the graph module; prints why not. */
static int graph_func(ferry_client *c, ferry_remote *gmod, const char *name, ferry_remote **f) {
  if (ferry_client_module_function(c, gmod, name, f) == 0)
    return 0;
  return cli_fail(CMD, c, name);
}

static int set_inputs(ferry_client *c, ferry_remote *gmod, const run_model_opts *o) {
  ferry_remote *set_input = NULL;
  if (o->inputs->n && graph_func(c, gmod, "set_input", &set_input))
    return 1;
  DLDevice cpu = {kDLCPU, 0};
  for (int i = 0; i < o->inputs->n; i++) {
    const char *spec = o->inputs->items[i], *eq = strchr(spec, '=');
    const char *path = eq ? eq + 1 : spec;
    char name[256];
    if (eq && (size_t)(eq - spec) >= sizeof name) {
      fprintf(stderr, "ferry run: input name too long in '%s'\n", spec);
      return 2;
    }
    if (eq) {
      memcpy(name, spec, (size_t)(eq - spec));
      name[eq - spec] = 0;
    }
    ferry_npy_info info;
    void *data = NULL;
    if (cli_npy_load(CMD, path, MAX_TENSOR_BYTES, &info, &data))
      return 1;
    ferry_remote *t = NULL;
    int rc = ferry_client_tensor_empty(c, cpu, info.ndim, info.shape, info.dtype, &t);
    if (!rc)
      rc = ferry_client_tensor_copy_in(c, t, data, info.nbytes);
    free(data);
    if (rc)
      return cli_fail(CMD, c, "cannot send an input tensor");
    /* "3=x.npy" is input index 3; "data=x.npy" the input called data. */
    int by_index = !eq || (eq > spec && strspn(name, "0123456789") == strlen(name));
    ferry_value args[2] = {by_index ? ferry_arg_int(eq ? strtoll(name, NULL, 10) : i)
                                    : ferry_arg_str(name, strlen(name)),
                           ferry_remote_value(t)};
    rc = ferry_client_call(c, set_input, args, 2, NULL);
    if (rc) /* before the release, which would replace the message */
      rc = cli_fail(CMD, c, "set_input failed");
    (void)ferry_client_release(c, t); /* the executor copied it */
    if (rc)
      return rc;
  }
  return 0;
}

/* Prints a tensor's shape and, for a small float32 one, its values and
 * the index of the largest (the class a classifier picked). */
void cli_print_output(int i, const DLTensor *t, const void *data, uint64_t nbytes) {
  printf("output %d: %s (", i, ferry_npy_dtype_name(t->dtype));
  for (int k = 0; k < t->ndim; k++)
    printf("%s%" PRId64, k ? ", " : "", t->shape[k]);
  printf(")");
  if (t->dtype.code == kDLFloat && t->dtype.bits == 32 && t->dtype.lanes == 1 && nbytes) {
    const float *f = data;
    size_t n = (size_t)(nbytes / 4), best = 0;
    for (size_t k = 1; k < n; k++)
      best = f[k] > f[best] ? k : best;
    printf(" argmax %zu =", best);
    for (size_t k = 0; k < n && k < 10; k++)
      printf(" %.6g", f[k]);
    if (n > 10)
      printf(" ...");
  }
  printf("\n");
}

static int get_outputs(ferry_client *c, ferry_remote *gmod, const run_model_opts *o,
                       int64_t nout) {
  ferry_remote *get_output = NULL;
  if (graph_func(c, gmod, "get_output", &get_output))
    return 1;
  int want = o->outputs->n ? o->outputs->n : (int)(nout < 1 ? 1 : nout > 8 ? 8 : nout);
  for (int i = 0; i < want; i++) {
    if (i >= nout) {
      fprintf(stderr, "ferry run: the model has %" PRId64 " outputs, not %d\n", nout, want);
      return 1;
    }
    ferry_value arg = ferry_arg_int(i);
    ferry_result r;
    if (ferry_client_call(c, get_output, &arg, 1, &r) != 0)
      return cli_fail(CMD, c, "get_output failed");
    if (r.value.kind != FERRY_KIND_NDARRAY || !r.remote) {
      (void)ferry_client_release(c, r.remote);
      fprintf(stderr, "ferry run: get_output(%d) did not return a tensor\n", i);
      return 1;
    }
    const DLTensor *t = ferry_remote_tensor(r.remote);
    uint64_t nb = ferry_remote_nbytes(r.remote);
    void *buf = nb <= MAX_TENSOR_BYTES ? malloc(nb ? (size_t)nb : 1) : NULL;
    int rc = !buf || ferry_client_tensor_copy_out(c, r.remote, buf, nb) != 0;
    if (rc)
      rc = cli_fail(CMD, c, "cannot read an output tensor");
    if (!rc)
      cli_print_output(i, t, buf, nb);
    if (!rc && o->outputs->n)
      rc = cli_npy_save(CMD, o->outputs->items[i], t->dtype, t->ndim, t->shape, buf, nb);
    free(buf);
    (void)ferry_client_release(c, r.remote);
    if (rc)
      return rc;
  }
  return 0;
}

/* The device's own mean and deviation of mod[name](args) over repeat runs. */
int cli_time_function(ferry_client *c, ferry_remote *mod, const char *name,
                      const ferry_value *args, int nargs, long repeat) {
  ferry_time_opts to;
  ferry_time_opts_init(&to);
  to.number = 1;
  to.repeat = (int)repeat;
  ferry_remote *ev = NULL;
  DLDevice cpu = {kDLCPU, 0};
  double secs[1024];
  int n = 0;
  if (ferry_client_time_evaluator(c, mod, name, cpu, &to, &ev) != 0)
    return cli_fail(CMD, c, "cannot time run");
  int rc = ferry_client_time(c, ev, args, nargs, secs, 1024, &n);
  if (rc)
    rc = cli_fail(CMD, c, "timing run failed");
  (void)ferry_client_release(c, ev);
  if (rc)
    return rc;
  if (n <= 0 || n > 1024) {
    fprintf(stderr, "ferry run: the server returned %d timings\n", n);
    return 1;
  }
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++)
    mean += secs[i] / n;
  for (int i = 0; i < n; i++)
    var += (secs[i] - mean) * (secs[i] - mean) / n;
  printf("  %-12s %10.3f ms  (on the device: mean of %d runs, std %.3f ms)\n", "run", mean * 1e3,
         n, sqrt(var) * 1e3);
  return 0;
}

int cli_run_model(ferry_client *c, const char *lib, const run_model_opts *o) {
  const char *base = strrchr(lib, '/');
  base = base ? base + 1 : lib;
  ferry_remote *mod = NULL, *factory_default = NULL, *gmod = NULL, *run = NULL, *nout_f = NULL;
  DLDevice cpu = {kDLCPU, 0};
  printf("model %s on %s\n", base, ferry_client_peer(c));
  double t0 = cli_now_s();
  if (ferry_client_upload_file(c, lib, base) != 0)
    return cli_fail(CMD, c, "upload failed");
  double t1 = cli_now_s();
  cli_stage("upload", t1 - t0);
  if (ferry_client_load_module(c, base, &mod) != 0)
    return cli_fail(CMD, c, "cannot load the module");
  double t2 = cli_now_s();
  cli_stage("load", t2 - t1);
  /* TVM >= 0.20: a Relax VM executable at the root (cmd_run_relax.c). */
  ferry_remote *vm_load = NULL;
  if (ferry_client_module_function(c, mod, "vm_load_executable", &vm_load) == 0) {
    (void)ferry_client_release(c, vm_load);
    printf("  (a Relax VM executable)\n");
    return cli_run_relax(c, mod, o, t2);
  }
  if (ferry_client_module_function(c, mod, "default", &factory_default) != 0)
    return cli_fail(CMD, c, "the library has no graph executor factory (\"default\")");
  ferry_value dev = device_arg(cpu);
  ferry_result r;
  if (ferry_client_call(c, factory_default, &dev, 1, &r) != 0)
    return cli_fail(CMD, c, "cannot create the graph executor");
  if (r.value.kind != FERRY_KIND_MODULE) {
    (void)ferry_client_release(c, r.remote);
    fprintf(stderr, "ferry run: default(dev) returned a %s, not a module\n",
            ferry_kind_name(r.value.kind));
    return 1;
  }
  gmod = r.remote;
  double t3 = cli_now_s();
  cli_stage("create", t3 - t2);
  int rc = set_inputs(c, gmod, o);
  if (rc)
    return rc;
  double t4 = cli_now_s();
  cli_stage("set inputs", t4 - t3);
  if (graph_func(c, gmod, "run", &run))
    return 1;
  if (ferry_client_call(c, run, NULL, 0, NULL) != 0)
    return cli_fail(CMD, c, "run failed");
  double t5 = cli_now_s();
  cli_stage("first run", t5 - t4);
  if (cli_time_function(c, gmod, "run", NULL, 0, o->repeat))
    return 1;
  double t6 = cli_now_s();
  ferry_result nr;
  if (graph_func(c, gmod, "get_num_outputs", &nout_f) ||
      ferry_client_call(c, nout_f, NULL, 0, &nr) != 0)
    return cli_fail(CMD, c, "get_num_outputs failed");
  int64_t nout = nr.value.kind == FERRY_KIND_INT ? nr.value.v.i : 0;
  rc = get_outputs(c, gmod, o, nout);
  if (rc)
    return rc;
  /* Stages go to stdout in order; the outputs were printed as read. */
  cli_stage("get outputs", cli_now_s() - t6);
  return 0;
}
