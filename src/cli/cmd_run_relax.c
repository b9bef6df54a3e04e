/* `ferry run MODEL.so` for the models TVM >= 0.20 compiles (a Relax VM
 * executable at the library's root), the way TVM's Python
 * relax.VirtualMachine drives one over RPC:
 *
 *   rexec["vm_load_executable"]() -> vm; vm_initialization(1, 0, 2)
 *   set_input("main", inputs in parameter order) -> invoke_stateful("main")
 *   -> get_output_arity / get_output (tuples flattened, in order)
 *
 * Inputs are given in order or by parameter name (get_function_param_name);
 * `run` is timed on the device with the time evaluator on
 * invoke_stateful("main"), as vm.time_evaluator("invoke_stateful", dev)
 * does. */
#include "cli/cmd_run_model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "run"
#define ENTRY "main"
#define MAX_INPUTS 256
#define MAX_OUTPUTS 256
#define MAX_DEPTH 8

static ferry_remote *func(ferry_client *c, ferry_remote *vm, const char *name) {
  ferry_remote *f = NULL;
  if (ferry_client_module_function(c, vm, name, &f) != 0) {
    cli_fail(CMD, c, name);
    return NULL;
  }
  return f;
}

static int call_int(ferry_client *c, ferry_remote *f, const ferry_value *args, int n,
                    int64_t *out) {
  ferry_result r;
  if (ferry_client_call(c, f, args, n, &r) != 0)
    return -1;
  if (r.value.kind != FERRY_KIND_INT) {
    (void)ferry_client_release(c, r.remote);
    return -1;
  }
  *out = r.value.v.i;
  return 0;
}

/* The input index of "name=..." among main's parameters, or -1. */
static int param_index(ferry_client *c, ferry_remote *vm, const char *name, int64_t nparams) {
  ferry_remote *pn = func(c, vm, "get_function_param_name");
  if (pn == NULL)
    return -1;
  for (int64_t i = 0; i < nparams; i++) {
    ferry_value args[2] = {ferry_arg_str(ENTRY, strlen(ENTRY)), ferry_arg_int(i)};
    ferry_result r;
    if (ferry_client_call(c, pn, args, 2, &r) != 0)
      return -1;
    if (r.value.kind == FERRY_KIND_STR && strcmp(r.value.v.str.data, name) == 0)
      return (int)i;
  }
  return -1;
}

static int set_inputs(ferry_client *c, ferry_remote *vm, const run_model_opts *o) {
  ferry_remote *arity = func(c, vm, "get_function_arity");
  int64_t n = 0;
  ferry_value fname = ferry_arg_str(ENTRY, strlen(ENTRY));
  if (arity == NULL || call_int(c, arity, &fname, 1, &n) != 0)
    return cli_fail(CMD, c, "get_function_arity(\"main\") failed");
  if (n < 0 || n > MAX_INPUTS) {
    fprintf(stderr, "ferry run: main takes %" PRId64 " inputs (at most %d here)\n", n,
            MAX_INPUTS);
    return 1;
  }
  if (o->inputs->n != n) {
    fprintf(stderr, "ferry run: main takes %" PRId64 " inputs, %d given (--input)\n", n,
            o->inputs->n);
    return 2;
  }
  ferry_value args[MAX_INPUTS + 1];
  ferry_remote *tensors[MAX_INPUTS] = {0};
  args[0] = fname;
  int rc = 0;
  DLDevice cpu = {kDLCPU, 0};
  for (int i = 0; i < o->inputs->n && !rc; i++) {
    const char *spec = o->inputs->items[i], *eq = strchr(spec, '=');
    int at = i;
    if (eq) {
      char name[256];
      if ((size_t)(eq - spec) >= sizeof name) {
        fprintf(stderr, "ferry run: input name too long in '%s'\n", spec);
        rc = 2;
        break;
      }
      memcpy(name, spec, (size_t)(eq - spec));
      name[eq - spec] = 0;
      at = strspn(name, "0123456789") == strlen(name) && name[0] ? atoi(name)
                                                                 : param_index(c, vm, name, n);
      if (at < 0 || at >= n || tensors[at]) {
        fprintf(stderr, "ferry run: '%s' names no input of main, or one given twice\n", name);
        rc = 2;
        break;
      }
    } else if (tensors[at]) {
      fprintf(stderr, "ferry run: input %d given twice\n", at);
      rc = 2;
      break;
    }
    ferry_npy_info info;
    void *data = NULL;
    if (cli_npy_load(CMD, eq ? eq + 1 : spec, (uint64_t)1 << 34, &info, &data)) {
      rc = 1;
      break;
    }
    rc = ferry_client_tensor_empty(c, cpu, info.ndim, info.shape, info.dtype, &tensors[at]);
    if (!rc)
      rc = ferry_client_tensor_copy_in(c, tensors[at], data, info.nbytes);
    free(data);
    if (rc)
      rc = cli_fail(CMD, c, "cannot send an input tensor");
  }
  ferry_remote *set_input = rc ? NULL : func(c, vm, "set_input");
  if (!rc && set_input == NULL)
    rc = 1;
  for (int i = 0; !rc && i < n; i++)
    args[1 + i] = ferry_remote_value(tensors[i]);
  if (!rc && ferry_client_call(c, set_input, args, (int)n + 1, NULL) != 0)
    rc = cli_fail(CMD, c, "set_input failed");
  for (int i = 0; i < n; i++)
    if (tensors[i])
      (void)ferry_client_release(c, tensors[i]); /* the VM copied them */
  return rc;
}

struct outs {
  ferry_remote *arity, *get;
  const run_model_opts *o;
  int count;
};

/* Output `path` (an index per tuple level): a tensor is read and saved, a
 * tuple is walked in order. */
static int walk(ferry_client *c, struct outs *w, int64_t *path, int depth) {
  ferry_value args[1 + MAX_DEPTH];
  args[0] = ferry_arg_str(ENTRY, strlen(ENTRY));
  for (int k = 0; k < depth; k++)
    args[1 + k] = ferry_arg_int(path[k]);
  int64_t n = 0;
  if (call_int(c, w->arity, args, 1 + depth, &n) != 0)
    return cli_fail(CMD, c, "get_output_arity failed");
  if (n >= 0) {
    if (depth == MAX_DEPTH || n > MAX_OUTPUTS) {
      fprintf(stderr, "ferry run: the output nests deeper than %d or is too wide\n", MAX_DEPTH);
      return 1;
    }
    for (int64_t i = 0; i < n; i++) {
      path[depth] = i;
      int rc = walk(c, w, path, depth + 1);
      if (rc)
        return rc;
    }
    return 0;
  }
  ferry_result r;
  if (ferry_client_call(c, w->get, args, 1 + depth, &r) != 0)
    return cli_fail(CMD, c, "get_output failed");
  int i = w->count++;
  if (r.value.kind != FERRY_KIND_NDARRAY || !r.remote) {
    printf("output %d: a %s\n", i, ferry_kind_name(r.value.kind));
    (void)ferry_client_release(c, r.remote);
    return 0;
  }
  const DLTensor *t = ferry_remote_tensor(r.remote);
  uint64_t nb = ferry_remote_nbytes(r.remote);
  void *buf = nb <= ((uint64_t)1 << 34) ? malloc(nb ? (size_t)nb : 1) : NULL;
  int rc = !buf || ferry_client_tensor_copy_out(c, r.remote, buf, nb) != 0;
  if (rc)
    rc = cli_fail(CMD, c, "cannot read an output tensor");
  if (!rc)
    cli_print_output(i, t, buf, nb);
  if (!rc && i < w->o->outputs->n)
    rc = cli_npy_save(CMD, w->o->outputs->items[i], t->dtype, t->ndim, t->shape, buf, nb);
  free(buf);
  (void)ferry_client_release(c, r.remote);
  return rc;
}

int cli_run_relax(ferry_client *c, ferry_remote *rexec, const run_model_opts *o, double t_start) {
  ferry_remote *load = func(c, rexec, "vm_load_executable");
  ferry_result r;
  if (load == NULL || ferry_client_call(c, load, NULL, 0, &r) != 0 ||
      r.value.kind != FERRY_KIND_MODULE)
    return cli_fail(CMD, c, "vm_load_executable failed");
  ferry_remote *vm = r.remote;
  ferry_remote *init = func(c, vm, "vm_initialization");
  ferry_value dev[3] = {ferry_arg_int(kDLCPU), ferry_arg_int(0), ferry_arg_int(2)};
  if (init == NULL || ferry_client_call(c, init, dev, 3, NULL) != 0)
    return cli_fail(CMD, c, "vm_initialization failed");
  double t3 = cli_now_s();
  cli_stage("create", t3 - t_start);
  int rc = set_inputs(c, vm, o);
  if (rc)
    return rc;
  double t4 = cli_now_s();
  cli_stage("set inputs", t4 - t3);
  ferry_remote *invoke = func(c, vm, "invoke_stateful");
  ferry_value fname = ferry_arg_str(ENTRY, strlen(ENTRY));
  if (invoke == NULL || ferry_client_call(c, invoke, &fname, 1, NULL) != 0)
    return cli_fail(CMD, c, "invoke_stateful(\"main\") failed");
  double t5 = cli_now_s();
  cli_stage("first run", t5 - t4);
  if (cli_time_function(c, vm, "invoke_stateful", &fname, 1, o->repeat))
    return 1;
  double t6 = cli_now_s();
  struct outs w = {func(c, vm, "get_output_arity"), func(c, vm, "get_output"), o, 0};
  int64_t path[MAX_DEPTH];
  if (w.arity == NULL || w.get == NULL)
    return 1;
  if ((rc = walk(c, &w, path, 0)))
    return rc;
  if (o->outputs->n > w.count) {
    fprintf(stderr, "ferry run: the model has %d outputs, not %d\n", w.count, o->outputs->n);
    return 1;
  }
  cli_stage("get outputs", cli_now_s() - t6);
  return 0;
}
