/* runtime.RPCTimeEvaluator (spec runtime-abi.md 9, rpc-session.md 4.4):
 * returns a function that times another one and answers `repeat` f64
 * values (seconds per call) as bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/bytes.h"
#include "runtime/device/device.h"

#define TE_MAX_REPEAT (1 << 20)
#define TE_MAX_NUMBER (1 << 30)
#define TE_MAX_COOLDOWN_MS (3600 * 1000)
#define TE_MAX_FLUSH_BYTES (1ull << 30)

struct timer_ctx {
  ferry_func *pf;
  ferry_func *preproc; /* NULL: none */
  DLDevice dev;
  int64_t number; /* grows across repeats and calls, as TVM's does */
  int64_t repeat, min_repeat_ms, limit_zero_time_iterations;
  int64_t cooldown_interval_ms, repeats_to_cooldown, cache_flush_bytes;
};

static void timer_free(void *p) {
  struct timer_ctx *t = p;
  ferry_obj_release(&t->pf->base);
  if (t->preproc)
    ferry_obj_release(&t->preproc->base);
  free(t);
}

static int call_once(ferry_func *f, ferry_call *outer) {
  ferry_call c;
  ferry_call_init(&c, outer->rt, outer->args, outer->nargs, outer->err, FERRY_RT_MAX_RET_BYTES);
  int rc = ferry_func_call(f, &c);
  ferry_call_close(&c);
  return rc;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

static int timer_call(void *ctx, ferry_call *c) {
  struct timer_ctx *t = ctx;
  int rc = call_once(t->pf, c); /* warm-up, not timed */
  if (rc)
    return rc;
  char *flush_a = NULL, *flush_b = NULL;
  if (t->cache_flush_bytes > 0) {
    size_t n = (size_t)t->cache_flush_bytes / 4 * 4;
    flush_a = calloc(1, n ? n : 4);
    flush_b = calloc(1, n ? n : 4);
    if (flush_a == NULL || flush_b == NULL) {
      free(flush_a);
      free(flush_b);
      return ferry_err_set(c->err, FERRY_ENOMEM, "time evaluator: out of memory for the cache "
                                                 "flush buffers");
    }
  }
  size_t out_len = (size_t)t->repeat * 8;
  c->ret_storage.len = 0;
  uint8_t *out = ferry_buf_reserve(&c->ret_storage, out_len + 1);
  if (out == NULL)
    rc = ferry_err_set(c->err, FERRY_ENOMEM, "time evaluator: out of memory");
  for (int64_t i = 0; rc == FERRY_OK && i < t->repeat; i++) {
    if (t->preproc && (rc = call_once(t->preproc, c)))
      break;
    double duration_ms = 0;
    int64_t zero_times = 0;
    do {
      if (duration_ms > 0) {
        double grown = fmax(t->min_repeat_ms / (duration_ms / (double)t->number) + 1,
                            (double)t->number * 1.618);
        t->number = grown > TE_MAX_NUMBER ? TE_MAX_NUMBER : (int64_t)grown;
      }
      if (flush_a)
        memcpy(flush_a, flush_b, (size_t)t->cache_flush_bytes / 4 * 4);
      /* A device queues its kernels: the time is taken after a sync, and
       * where the device times kernels itself (OpenCL profiling events)
       * that time is reported, as TVM's device timers do. */
      ferry_device_timer_start(c->rt, t->dev);
      int64_t start = now_ns();
      for (int64_t k = 0; k < t->number && rc == FERRY_OK; k++)
        rc = call_once(t->pf, c);
      if (rc == FERRY_OK)
        rc = ferry_rt_sync(c->rt, t->dev, c->err);
      int64_t elapsed = now_ns() - start;
      int64_t dev_ns = ferry_device_timer_stop(c->rt, t->dev);
      if (dev_ns >= 0)
        elapsed = dev_ns;
      if (rc)
        break;
      if (elapsed == 0)
        zero_times++;
      duration_ms = (double)elapsed / 1e6;
    } while (duration_ms < (double)t->min_repeat_ms &&
             zero_times < t->limit_zero_time_iterations && t->number < TE_MAX_NUMBER);
    if (rc)
      break;
    put_f64(out + 8 * i, duration_ms / 1e3 / (double)t->number);
    if (t->cooldown_interval_ms > 0 && i % t->repeats_to_cooldown == 0)
      sleep_ms(t->cooldown_interval_ms);
  }
  free(flush_a);
  free(flush_b);
  if (rc)
    return rc;
  ferry_buf_commit(&c->ret_storage, out_len);
  c->ret.kind = FERRY_KIND_BYTES;
  c->ret.v.str.data = (const char *)c->ret_storage.data;
  c->ret.v.str.len = out_len;
  return FERRY_OK;
}

static int check_range_arg(ferry_call *c, int i, int64_t lo, int64_t hi, const char *what,
                           int64_t *out) {
  int rc = ferry_arg_int(c, "runtime.RPCTimeEvaluator", i, out);
  if (rc)
    return rc;
  if (*out < lo || *out > hi)
    return ferry_err_set(c->err, FERRY_ERANGE,
                         "runtime.RPCTimeEvaluator: %s = %lld is out of range %lld..%lld", what,
                         (long long)*out, (long long)lo, (long long)hi);
  return FERRY_OK;
}

static int time_evaluator_fn(ferry_call *c) {
  const char *fname = "runtime.RPCTimeEvaluator";
  int rc = ferry_arg_count(c, fname, 12, 12);
  if (rc)
    return rc;
  ferry_module *m = NULL;
  if (c->args[0].kind != FERRY_KIND_NONE && (rc = ferry_arg_module(c, fname, 0, &m)))
    return rc;
  const char *name, *preproc_name;
  int64_t dev_type, dev_id;
  struct timer_ctx *t = calloc(1, sizeof *t);
  if (t == NULL)
    return ferry_err_set(c->err, FERRY_ENOMEM, "out of memory");
  if ((rc = ferry_arg_str(c, fname, 1, &name)) || (rc = ferry_arg_int(c, fname, 2, &dev_type)) ||
      (rc = ferry_arg_int(c, fname, 3, &dev_id)) ||
      (rc = check_range_arg(c, 4, 1, TE_MAX_NUMBER, "number", &t->number)) ||
      (rc = check_range_arg(c, 5, 1, TE_MAX_REPEAT, "repeat", &t->repeat)) ||
      (rc = check_range_arg(c, 6, 0, TE_MAX_COOLDOWN_MS, "min_repeat_ms", &t->min_repeat_ms)) ||
      (rc = check_range_arg(c, 7, 0, INT32_MAX, "limit_zero_time_iterations",
                            &t->limit_zero_time_iterations)) ||
      (rc = check_range_arg(c, 8, 0, TE_MAX_COOLDOWN_MS, "cooldown_interval_ms",
                            &t->cooldown_interval_ms)) ||
      (rc = check_range_arg(c, 9, t->cooldown_interval_ms > 0 ? 1 : INT32_MIN, INT32_MAX,
                            "repeats_to_cooldown", &t->repeats_to_cooldown)) ||
      (rc = check_range_arg(c, 10, 0, (int64_t)TE_MAX_FLUSH_BYTES, "cache_flush_bytes",
                            &t->cache_flush_bytes)) ||
      (rc = ferry_arg_str(c, fname, 11, &preproc_name))) {
    free(t);
    return rc;
  }
  t->dev.device_type = (DLDeviceType)dev_type;
  t->dev.device_id = (int32_t)dev_id;
  if ((rc = ferry_rt_device_check(c->rt, t->dev, c->err))) {
    free(t);
    return rc;
  }
  if (m != NULL) {
    rc = ferry_module_get_function(m, name, 1, &t->pf, c->err);
    if (rc == FERRY_ENOTFOUND)
      ferry_err_set(c->err, rc, "Cannot find %s in the module", name);
  } else {
    rc = ferry_rt_get_global(c->rt, name, &t->pf);
    if (rc == FERRY_ENOTFOUND)
      ferry_err_set(c->err, rc, "Cannot find %s in the global function registry", name);
  }
  if (rc == FERRY_OK && preproc_name[0]) {
    rc = ferry_rt_get_global(c->rt, preproc_name, &t->preproc);
    if (rc == FERRY_ENOTFOUND)
      ferry_err_set(c->err, rc, "Cannot find %s in the global function registry (f_preproc)",
                    preproc_name);
  }
  if (rc) {
    if (t->pf)
      ferry_obj_release(&t->pf->base);
    free(t);
    return rc == FERRY_ENOMEM ? ferry_err_set(c->err, rc, "out of memory") : rc;
  }
  ferry_func *f;
  if ((rc = ferry_closure_new(timer_call, t, timer_free, &f))) {
    timer_free(t);
    return ferry_err_set(c->err, rc, "out of memory");
  }
  ferry_call_return_obj(c, FERRY_KIND_FUNC, &f->base);
  return FERRY_OK;
}

const struct ferry_builtin ferry_time_builtins[] = {
    {"runtime.RPCTimeEvaluator", time_evaluator_fn},
    {NULL, NULL},
};
