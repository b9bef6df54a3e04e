/* `ferry run` and `ferry time`: upload a library, load it, call (or time)
 * one of its functions with tensors from .npy files and scalar arguments,
 * and write the output tensors back to .npy files.
 *
 * Arguments reach the function in the order they appear on the command
 * line, whatever their kind: `--input a.npy --arg int:3 --output b.npy`
 * calls f(a, 3, b). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client_cli.h"
#include "cli/cmd_run_model.h"
#include "cli/commands.h"

#define MAX_ARGS (3 * FERRY_OPT_LIST_MAX)
/* 16 GiB (half the address space on 32-bit devices): a guard, not a policy. */
#define MAX_TENSOR_BYTES                                                      \
  ((uint64_t)(SIZE_MAX / 2) < ((uint64_t)1 << 34) ? (uint64_t)(SIZE_MAX / 2)    \
                                                  : ((uint64_t)1 << 34))

typedef struct run_opts {
  cli_conn conn;
  struct ferry_opt_list inputs, outputs, args;
  const char *result;
  const char *device; /* --device cpu|opencl[:N] */
  DLDevice dev;
  int system_lib, global, model;
  long number, repeat, min_repeat_ms, cooldown_ms;
} run_opts;

enum arg_kind { ARG_INPUT, ARG_OUTPUT, ARG_SCALAR };

typedef struct run_arg {
  enum arg_kind kind;
  const char *text;
  ferry_value value;
  ferry_remote *tensor;
  char *str; /* owned copy for str:/bytes: values */
} run_arg;

/* Recovers the command-line order of --input/--output/--arg (the option
 * parser keeps one list per option).  Runs before parsing, on the same
 * spellings the parser accepts: --name, --name=value and unambiguous
 * prefixes (at least two letters here, so that they stay unambiguous). */
static int arg_order(int argc, char **argv, enum arg_kind *order, int max) {
  static const struct {
    const char *name;
    enum arg_kind kind;
  } names[] = {{"input", ARG_INPUT}, {"output", ARG_OUTPUT}, {"arg", ARG_SCALAR}};
  int n = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0)
      break;
    if (a[0] != '-' || a[1] != '-')
      continue;
    const char *name = a + 2;
    size_t len = strcspn(name, "=");
    for (size_t k = 0; k < 3; k++) {
      if (len >= 2 && len <= strlen(names[k].name) && strncmp(name, names[k].name, len) == 0 &&
          n < max) {
        order[n++] = names[k].kind;
        if (!name[len])
          i++; /* its value is the next word, whatever it looks like */
      }
    }
  }
  return n;
}

/* "int:2", "float:1.5", "str:hello", "bytes:raw", "bool:true". */
static int parse_scalar(run_arg *a) {
  const char *t = a->text, *colon = strchr(t, ':');
  if (!colon)
    return -1;
  size_t tl = (size_t)(colon - t);
  const char *v = colon + 1;
  char *end = NULL;
  if (tl == 3 && strncmp(t, "int", 3) == 0) {
    long long x = strtoll(v, &end, 0);
    if (!*v || *end)
      return -1;
    a->value = ferry_arg_int(x);
  } else if (tl == 5 && strncmp(t, "float", 5) == 0) {
    double x = strtod(v, &end);
    if (!*v || *end)
      return -1;
    a->value = ferry_arg_float(x);
  } else if (tl == 4 && strncmp(t, "bool", 4) == 0) {
    a->value.kind = FERRY_KIND_BOOL;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
      a->value.v.i = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
      a->value.v.i = 0;
    else
      return -1;
  } else if ((tl == 3 && strncmp(t, "str", 3) == 0) ||
             (tl == 5 && strncmp(t, "bytes", 5) == 0)) {
    a->str = strdup(v);
    if (!a->str)
      return -1;
    a->value = tl == 3 ? ferry_arg_str(a->str, strlen(a->str))
                       : ferry_arg_bytes(a->str, strlen(a->str));
  } else {
    return -1;
  }
  return 0;
}

/* "b.npy" or "b.npy:float32:3x4" (a scalar: "b.npy:float32:"). */
static int parse_output_spec(const char *text, char *path, size_t cap, DLDataType *dtype,
                             int *ndim, int64_t *shape, int *explicit_shape) {
  const char *c1 = strchr(text, ':');
  *explicit_shape = 0;
  if (!c1) {
    snprintf(path, cap, "%s", text);
    return 0;
  }
  const char *c2 = strchr(c1 + 1, ':');
  if (!c2 || (size_t)(c1 - text) >= cap)
    return -1;
  memcpy(path, text, (size_t)(c1 - text));
  path[c1 - text] = 0;
  char dt[32];
  if ((size_t)(c2 - c1 - 1) >= sizeof dt)
    return -1;
  memcpy(dt, c1 + 1, (size_t)(c2 - c1 - 1));
  dt[c2 - c1 - 1] = 0;
  if (ferry_npy_dtype_parse(dt, dtype) != 0)
    return -1;
  *ndim = 0;
  for (const char *p = c2 + 1; *p;) {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 0 || *ndim >= FERRY_NPY_MAX_NDIM)
      return -1;
    shape[(*ndim)++] = v;
    p = end;
    if (*p == 'x' || *p == ',')
      p++;
    else if (*p)
      return -1;
  }
  *explicit_shape = 1;
  return 0;
}

static void print_result(const ferry_result *r) {
  const ferry_value *v = &r->value;
  switch (v->kind) {
  case FERRY_KIND_NONE:
    break;
  case FERRY_KIND_INT:
    printf("%" PRId64 "\n", v->v.i);
    break;
  case FERRY_KIND_BOOL:
    printf("%s\n", v->v.i ? "True" : "False");
    break;
  case FERRY_KIND_FLOAT:
    printf("%.17g\n", v->v.f);
    break;
  case FERRY_KIND_STR:
    printf("%s\n", v->v.str.data);
    break;
  case FERRY_KIND_BYTES:
    printf("<%zu bytes>\n", v->v.str.len);
    break;
  case FERRY_KIND_NDARRAY: {
    const DLTensor *t = ferry_remote_tensor(r->remote);
    printf("<ndarray %s (", ferry_npy_dtype_name(t->dtype));
    for (int i = 0; i < t->ndim; i++)
      printf("%s%" PRId64, i ? ", " : "", t->shape[i]);
    printf(")>\n");
    break;
  }
  default:
    printf("<%s>\n", ferry_kind_name(v->kind));
    break;
  }
}

/* --device: "cpu", "opencl" or "cl", with an optional ":N" (default 0). */
static int parse_device(const char *text, DLDevice *out) {
  const char *colon = strchr(text, ':');
  size_t nlen = colon ? (size_t)(colon - text) : strlen(text);
  if (nlen == 3 && strncmp(text, "cpu", 3) == 0)
    out->device_type = kDLCPU;
  else if ((nlen == 6 && strncmp(text, "opencl", 6) == 0) || (nlen == 2 && strncmp(text, "cl", 2) == 0))
    out->device_type = kDLOpenCL;
  else
    return -1;
  out->device_id = 0;
  if (colon) {
    char *end = NULL;
    long id = strtol(colon + 1, &end, 10);
    if (colon[1] == 0 || *end != 0 || id < 0 || id > 1024)
      return -1;
    out->device_id = (int32_t)id;
  }
  return 0;
}

/* Everything after connecting; returns the exit status. */
static int run_session(const char *cmd, run_opts *o, ferry_client *c, const char *lib,
                       const char *func, run_arg *args, int nargs, int timing) {
  ferry_remote *mod = NULL, *f = NULL;
  int rc = 0;
  if (o->global) {
    rc = ferry_client_get_function(c, func, &f);
  } else {
    if (o->system_lib) {
      rc = ferry_client_system_lib(c, &mod);
    } else {
      const char *base = strrchr(lib, '/');
      base = base ? base + 1 : lib;
      rc = ferry_client_upload_file(c, lib, base);
      if (rc)
        return cli_fail(cmd, c, "upload failed");
      rc = ferry_client_load_module(c, base, &mod);
    }
    if (rc)
      return cli_fail(cmd, c, "cannot load the module");
    rc = ferry_client_module_function(c, mod, func, &f);
  }
  if (rc)
    return cli_fail(cmd, c, "function lookup failed");

  /* Tensors: inputs from .npy files, outputs shaped like the first input
   * unless their spec says otherwise. */
  ferry_npy_info first;
  int have_first = 0;
  DLDevice cpu = o->dev; /* where tensors live and what is timed */
  for (int i = 0; i < nargs; i++) {
    run_arg *a = &args[i];
    if (a->kind == ARG_INPUT) {
      ferry_npy_info info;
      void *data = NULL;
      if (cli_npy_load(cmd, a->text, MAX_TENSOR_BYTES, &info, &data))
        return 1;
      rc = ferry_client_tensor_empty(c, cpu, info.ndim, info.shape, info.dtype, &a->tensor);
      if (!rc)
        rc = ferry_client_tensor_copy_in(c, a->tensor, data, info.nbytes);
      free(data);
      if (rc)
        return cli_fail(cmd, c, "cannot send an input tensor");
      if (!have_first) {
        first = info;
        have_first = 1;
      }
    } else if (a->kind == ARG_OUTPUT) {
      char path[1024];
      DLDataType dt;
      int ndim = 0, explicit_shape;
      int64_t shape[FERRY_NPY_MAX_NDIM];
      if (parse_output_spec(a->text, path, sizeof path, &dt, &ndim, shape, &explicit_shape)) {
        fprintf(stderr, "ferry %s: bad --output '%s' (PATH or PATH:DTYPE:SHAPE, e.g. "
                        "b.npy:float32:3x4)\n", cmd, a->text);
        return 2;
      }
      if (!explicit_shape) {
        if (!have_first) {
          fprintf(stderr, "ferry %s: --output %s needs :DTYPE:SHAPE when no --input comes "
                          "before it\n", cmd, a->text);
          return 2;
        }
        dt = first.dtype;
        ndim = first.ndim;
        memcpy(shape, first.shape, sizeof shape);
      }
      rc = ferry_client_tensor_empty(c, cpu, ndim, shape, dt, &a->tensor);
      if (rc)
        return cli_fail(cmd, c, "cannot allocate an output tensor");
    }
    if (a->tensor)
      a->value = ferry_remote_value(a->tensor);
  }
  ferry_value vals[MAX_ARGS];
  for (int i = 0; i < nargs; i++)
    vals[i] = args[i].value;

  if (timing) {
    ferry_time_opts to;
    ferry_time_opts_init(&to);
    to.number = (int)o->number;
    to.repeat = (int)o->repeat;
    to.min_repeat_ms = (int)o->min_repeat_ms;
    to.cooldown_interval_ms = (int)o->cooldown_ms;
    ferry_remote *ev = NULL;
    rc = ferry_client_time_evaluator(c, o->global ? NULL : mod, func, cpu, &to, &ev);
    if (rc)
      return cli_fail(cmd, c, "cannot create the time evaluator");
    double secs[1024];
    int n = 0;
    rc = ferry_client_time(c, ev, vals, nargs, secs, 1024, &n);
    if (rc)
      return cli_fail(cmd, c, "timing failed");
    if (n <= 0 || n > 1024) {
      fprintf(stderr, "ferry %s: the server returned %d timings\n", cmd, n);
      return 1;
    }
    double mean = 0, var = 0, lo = secs[0], hi = secs[0];
    for (int i = 0; i < n; i++) {
      mean += secs[i] / n;
      lo = secs[i] < lo ? secs[i] : lo;
      hi = secs[i] > hi ? secs[i] : hi;
    }
    for (int i = 0; i < n; i++)
      var += (secs[i] - mean) * (secs[i] - mean) / n;
    printf("%s: mean %.3f us, std %.3f us, min %.3f us, max %.3f us "
           "(%d repeats of %ld runs)\n",
           func, mean * 1e6, sqrt(var) * 1e6, lo * 1e6, hi * 1e6, n, o->number);
    return 0;
  }

  ferry_result res;
  rc = ferry_client_call(c, f, vals, nargs, &res);
  if (rc == FERRY_EREMOTE)
    return cli_fail(cmd, c, "the function raised an error");
  if (rc)
    return cli_fail(cmd, c, "call failed");
  if (o->result && res.value.kind == FERRY_KIND_NDARRAY) {
    const DLTensor *t = ferry_remote_tensor(res.remote);
    uint64_t nb = ferry_remote_nbytes(res.remote);
    void *buf = nb <= MAX_TENSOR_BYTES ? malloc(nb ? (size_t)nb : 1) : NULL;
    if (!buf || ferry_client_tensor_copy_out(c, res.remote, buf, nb) != 0) {
      free(buf);
      return cli_fail(cmd, c, "cannot read the result tensor");
    }
    rc = cli_npy_save(cmd, o->result, t->dtype, t->ndim, t->shape, buf, nb);
    free(buf);
    if (rc)
      return rc;
  } else {
    print_result(&res);
  }
  (void)ferry_client_release(c, res.remote);
  for (int i = 0; i < nargs; i++) {
    if (args[i].kind != ARG_OUTPUT)
      continue;
    const DLTensor *t = ferry_remote_tensor(args[i].tensor);
    uint64_t nb = ferry_remote_nbytes(args[i].tensor);
    void *buf = nb <= MAX_TENSOR_BYTES ? malloc(nb ? (size_t)nb : 1) : NULL;
    if (!buf || ferry_client_tensor_copy_out(c, args[i].tensor, buf, nb) != 0) {
      free(buf);
      return cli_fail(cmd, c, "cannot read an output tensor");
    }
    char path[1024];
    snprintf(path, sizeof path, "%s", args[i].text);
    char *colon = strchr(path, ':');
    if (colon)
      *colon = 0;
    rc = cli_npy_save(cmd, path, t->dtype, t->ndim, t->shape, buf, nb);
    free(buf);
    if (rc)
      return rc;
  }
  return 0;
}

int cli_run_or_time(int argc, char **argv, int timing) {
  const char *cmd = timing ? "time" : "run";
  run_opts o = {.conn = CLI_CONN_DEFAULTS, .number = 10, .repeat = 3};
  const ferry_opt run_table[] = {
      CLI_CONN_OPTS(o.conn),
      {"input", FERRY_OPT_LIST, &o.inputs, "FILE.npy", "a tensor argument read from a .npy file"},
      {"output", FERRY_OPT_LIST, &o.outputs, "FILE.npy[:DTYPE:SHAPE]",
       "a tensor argument written to a .npy file after the call (default: like the first input)"},
      {"arg", FERRY_OPT_LIST, &o.args, "TYPE:VALUE",
       "a scalar argument: int:2, float:1.5, bool:true, str:text, bytes:text"},
      {"device", FERRY_OPT_STRING, &o.device, "cpu|opencl[:N]",
       "the device the tensor arguments live on and the function runs on (default cpu)"},
      {"result", FERRY_OPT_STRING, &o.result, "FILE.npy",
       "write a tensor returned by the function here"},
      {"system-lib", FERRY_OPT_FLAG, &o.system_lib, NULL,
       "take FUNC from the server's system library (no LIB argument)"},
      {"global", FERRY_OPT_FLAG, &o.global, NULL,
       "FUNC is a global function of the server (no LIB argument)"},
      {"model", FERRY_OPT_FLAG, &o.model, NULL,
       "LIB is a whole network (GraphExecutorFactory, as `ferry pack` or TVM <= 0.19's "
       "export_library writes it, or a TVM >= 0.20 Relax VM executable; the default when FUNC "
       "is omitted): --input [NAME=]x.npy sets inputs, "
       "--output y.npy receives outputs 0, 1, ..."},
      {"repeat", FERRY_OPT_INT, &o.repeat, "N",
       "with a model: time this many runs on the device (default 3)"},
  };
  const ferry_opt time_table[] = {
      CLI_CONN_OPTS(o.conn),
      {"input", FERRY_OPT_LIST, &o.inputs, "FILE.npy", "a tensor argument read from a .npy file"},
      {"output", FERRY_OPT_LIST, &o.outputs, "FILE.npy[:DTYPE:SHAPE]",
       "an output tensor argument (allocated, not written back)"},
      {"arg", FERRY_OPT_LIST, &o.args, "TYPE:VALUE",
       "a scalar argument: int:2, float:1.5, bool:true, str:text, bytes:text"},
      {"system-lib", FERRY_OPT_FLAG, &o.system_lib, NULL,
       "take FUNC from the server's system library (no LIB argument)"},
      {"global", FERRY_OPT_FLAG, &o.global, NULL,
       "FUNC is a global function of the server (no LIB argument)"},
      {"device", FERRY_OPT_STRING, &o.device, "cpu|opencl[:N]",
       "the device the tensor arguments live on and the function runs on (default cpu)"},
      {"number", FERRY_OPT_INT, &o.number, "N", "runs per measurement (default 10)"},
      {"repeat", FERRY_OPT_INT, &o.repeat, "N", "measurements (default 3)"},
      {"min-repeat-ms", FERRY_OPT_INT, &o.min_repeat_ms, "MS",
       "raise number until one measurement takes this long (default 0)"},
      {"cooldown-ms", FERRY_OPT_INT, &o.cooldown_ms, "MS",
       "pause between measurements (default 0)"},
  };
  const ferry_cmd_spec spec = {
      cmd, timing ? "[--host H --port P | --tracker HOST:PORT --key K | --proxy HOST:PORT --key K] "
                    "LIB.so FUNC [--input a.npy ...] [--output b.npy ...] [--arg int:2 ...]"
                  : "[--host H --port P | --tracker HOST:PORT --key K | --proxy HOST:PORT --key K] "
                    "LIB.so FUNC [--input a.npy ...] [--output b.npy ...] [--arg int:2 ...]\n"
                    "   or: ferry run [connection] MODEL.so [--input [NAME=]x.npy ...] "
                    "[--output y.npy ...] [--repeat N]",
      timing ? "Time a function of a library on a remote server (TVM's time_evaluator); "
               "prints mean and standard deviation in microseconds."
             : "Upload a library to a remote server, call one of its functions and write "
               "the output tensors to .npy files; or, without FUNC, run a whole network "
               "(graph executor or Relax VM) and print the time of each stage.",
      timing ? time_table : run_table,
      timing ? (int)(sizeof time_table / sizeof time_table[0])
             : (int)(sizeof run_table / sizeof run_table[0])};

  enum arg_kind order[MAX_ARGS];
  int norder = arg_order(argc, argv, order, MAX_ARGS);
  int npos = 0;
  int prc = ferry_opts_parse(&spec, argc, argv, &npos);
  if (prc)
    return prc == 1 ? 0 : 2;
  o.dev.device_type = kDLCPU;
  o.dev.device_id = 0;
  if (o.device && parse_device(o.device, &o.dev) != 0) {
    fprintf(stderr, "ferry %s: bad --device '%s' (cpu, opencl or opencl:N)\n", cmd, o.device);
    return 2;
  }
  if (!timing && !o.system_lib && !o.global && (o.model || npos == 1)) {
    if (npos != 1 || o.args.n || o.result) {
      fprintf(stderr, "ferry run: a model takes MODEL.so, --input and --output only\n");
      return 2;
    }
    if (o.repeat < 1 || o.repeat > 1024) {
      fprintf(stderr, "ferry run: --repeat must be 1..1024\n");
      return 2;
    }
    run_model_opts mo = {&o.inputs, &o.outputs, o.repeat};
    ferry_client *mc = NULL;
    int st = cli_connect(cmd, &o.conn, &mc);
    if (!st)
      st = cli_run_model(mc, argv[1], &mo);
    ferry_client_close(mc);
    return st;
  }
  int want = o.system_lib || o.global ? 1 : 2;
  if (npos != want || (o.system_lib && o.global)) {
    fprintf(stderr, "ferry %s: expected %s (see ferry %s --help)\n", cmd,
            want == 2 ? "LIB.so FUNC" : "FUNC", cmd);
    return 2;
  }
  const char *lib = want == 2 ? argv[1] : NULL, *func = argv[want];
  if (o.number < 1 || o.number > 1000000000 || o.repeat < 1 || o.repeat > 1024 ||
      o.min_repeat_ms < 0 || o.min_repeat_ms > 1000000 || o.cooldown_ms < 0 ||
      o.cooldown_ms > 1000000) {
    fprintf(stderr, "ferry %s: --number, --repeat (<= 1024), --min-repeat-ms or "
                    "--cooldown-ms out of range\n", cmd);
    return 2;
  }
  if (norder != o.inputs.n + o.outputs.n + o.args.n) {
    fprintf(stderr, "ferry %s: spell --input, --output and --arg with at least two letters\n",
            cmd);
    return 2;
  }
  run_arg args[MAX_ARGS];
  memset(args, 0, sizeof args);
  int ni = 0, no = 0, na = 0, status = 0;
  for (int i = 0; i < norder; i++) {
    args[i].kind = order[i];
    args[i].text = order[i] == ARG_INPUT    ? o.inputs.items[ni++]
                   : order[i] == ARG_OUTPUT ? o.outputs.items[no++]
                                            : o.args.items[na++];
    if (order[i] == ARG_SCALAR && parse_scalar(&args[i]) != 0) {
      fprintf(stderr, "ferry %s: bad --arg '%s' (int:N, float:X, bool:true|false, str:S, "
                      "bytes:S)\n", cmd, args[i].text);
      status = 2;
    }
  }
  ferry_client *c = NULL;
  if (!status)
    status = cli_connect(cmd, &o.conn, &c);
  if (!status)
    status = run_session(cmd, &o, c, lib, func, args, norder, timing);
  ferry_client_close(c); /* releases every remote tensor and module */
  for (int i = 0; i < norder; i++)
    free(args[i].str);
  return status;
}

int ferry_cmd_run(int argc, char **argv) { return cli_run_or_time(argc, argv, 0); }
