/* Global functions about modules and tensors (spec rpc-session.md 4.1,
 * 4.3): module function lookup, imports, the system library, the cache
 * flush used as a time-evaluator preprocessor, and random_fill. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/rt_internal.h"

static int module_get_function_fn(ferry_call *c) {
  ferry_module *m;
  const char *name;
  int64_t query_imports = 1;
  int rc = ferry_arg_count(c, "ModuleGetFunction", 2, 3);
  if (rc == FERRY_OK)
    rc = ferry_arg_module(c, "ModuleGetFunction", 0, &m);
  if (rc == FERRY_OK)
    rc = ferry_arg_str(c, "ModuleGetFunction", 1, &name);
  if (rc == FERRY_OK && c->nargs == 3)
    rc = ferry_arg_int(c, "ModuleGetFunction", 2, &query_imports);
  if (rc)
    return rc;
  ferry_func *f = NULL;
  rc = ferry_module_get_function(m, name, query_imports != 0, &f, c->err);
  if (rc == FERRY_ENOTFOUND && c->err->code == 0)
    return FERRY_OK; /* absent: a None result, which the client turns into AttributeError */
  if (rc)
    return rc;
  ferry_call_return_obj(c, FERRY_KIND_FUNC, &f->base);
  return FERRY_OK;
}

static int import_module_fn(ferry_call *c) {
  ferry_module *parent, *child;
  int rc = ferry_arg_count(c, "ImportModule", 2, 2);
  if (rc == FERRY_OK)
    rc = ferry_arg_module(c, "ImportModule", 0, &parent);
  if (rc == FERRY_OK)
    rc = ferry_arg_module(c, "ImportModule", 1, &child);
  return rc ? rc : ferry_module_import(parent, child, c->err);
}

static int system_lib_fn(ferry_call *c) {
  const char *prefix = "";
  int rc = ferry_arg_count(c, "runtime.SystemLib", 0, 1);
  if (rc == FERRY_OK && c->nargs == 1)
    rc = ferry_arg_str(c, "runtime.SystemLib", 0, &prefix);
  if (rc)
    return rc;
  ferry_module *m;
  rc = ferry_syslib_get(c->rt, prefix, &m, c->err);
  if (rc)
    return rc;
  ferry_call_return_obj(c, FERRY_KIND_MODULE, &m->base);
  return FERRY_OK;
}

/* A tensor argument whose data lies inside one of this session's buffers. */
static int checked_tensor(ferry_call *c, const char *fname, int i, DLTensor **out,
                          uint64_t *nbytes) {
  int rc = ferry_arg_tensor(c, fname, i, out);
  if (rc)
    return rc;
  if (ferry_tensor_nbytes(*out, nbytes) != FERRY_OK)
    return ferry_err_set(c->err, FERRY_ERANGE, "%s: tensor shape out of range", fname);
  if ((*out)->device.device_type != kDLCPU)
    return ferry_rt_check_tensor(c->rt, *out, *nbytes, c->err);
  return ferry_rt_check_range(c->rt, (char *)(*out)->data + (*out)->byte_offset, *nbytes, c->err);
}

static void flush_range(const char *p, uint64_t n) {
#if defined(__x86_64__) || defined(__i386__)
  for (uint64_t off = 0; off < n; off += 64)
    __builtin_ia32_clflush(p + off);
  __builtin_ia32_mfence();
#elif defined(__aarch64__)
  for (uint64_t off = 0; off < n; off += 64)
    __asm__ volatile("dc civac, %0" ::"r"(p + off) : "memory");
  __asm__ volatile("dsb ish" ::: "memory");
#else
  (void)p;
  (void)n;
#endif
}

static int cache_flush_fn(ferry_call *c) {
  for (int i = 1; i < c->nargs; i++) {
    if (c->args[i].kind != FERRY_KIND_TENSOR && c->args[i].kind != FERRY_KIND_NDARRAY)
      continue;
    DLTensor *t;
    uint64_t n;
    int rc = checked_tensor(c, "cache_flush_cpu_non_first_arg", i, &t, &n);
    if (rc)
      return rc;
    if (t->device.device_type != kDLCPU)
      continue; /* device memory is not in the CPU's caches */
    flush_range((const char *)t->data + t->byte_offset, n);
  }
  return FERRY_OK;
}

static uint64_t next_random(uint64_t *s) {
  uint64_t x = *s; /* xorshift64*: fast, and good enough for test inputs */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Fills the tensor like TVM: floats uniform in [1, 10), integers in
 * [1, 10].  The element width comes from the client (any bits, any lanes),
 * so every write is sized by the element, never by the 8-byte random
 * value: an integer wider than 64 bits gets its value in the low 8 bytes
 * (little-endian host) and zeros above; float16, bfloat16, float128,
 * sub-byte and odd widths get random bytes over the whole tensor. */
static void fill(const DLTensor *t, char *p, uint64_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t s = ((uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull + (uint64_t)(uintptr_t)t) | 1;
  unsigned bits = t->dtype.bits;
  int is_int = t->dtype.code == kDLInt || t->dtype.code == kDLUInt;
  int is_float = t->dtype.code == kDLFloat && (bits == 32 || bits == 64);
  if (bits == 0 || bits % 8 != 0 || !(is_int || is_float)) {
    for (uint64_t k = 0; k < n; k++)
      p[k] = (char)next_random(&s);
    return;
  }
  /* One lane is w bytes and n is a whole number of lanes here, since
   * ferry_tensor_nbytes rounds bits * lanes up to bytes and bits is a
   * multiple of 8. */
  uint64_t w = bits / 8;
  for (uint64_t off = 0; off + w <= n; off += w) {
    uint64_t r = next_random(&s);
    double u = (double)(r >> 11) / 9007199254740992.0;
    if (is_float && bits == 32) {
      float v = (float)(1.0 + 9.0 * u);
      memcpy(p + off, &v, 4);
    } else if (is_float) {
      double v = 1.0 + 9.0 * u;
      memcpy(p + off, &v, 8);
    } else {
      uint64_t v = 1 + r % 10;
      memcpy(p + off, &v, w < 8 ? w : 8);
      if (w > 8)
        memset(p + off + 8, 0, w - 8);
    }
  }
}

/* random_fill(_for_measure), what MetaSchedule's runner calls on every
 * input: a CPU tensor is filled in place; a device tensor (OpenCL) is
 * filled on the host and copied in. */
static int random_fill_fn(ferry_call *c) {
  DLTensor *t;
  uint64_t n;
  int rc = ferry_arg_count(c, "random_fill", 1, 1);
  if (rc == FERRY_OK)
    rc = checked_tensor(c, "random_fill", 0, &t, &n);
  if (rc)
    return rc;
  if (t->device.device_type == kDLCPU) {
    fill(t, (char *)t->data + t->byte_offset, n);
    return FERRY_OK;
  }
  char *host = malloc(n ? (size_t)n : 1);
  if (host == NULL)
    return ferry_err_set(c->err, FERRY_ENOMEM, "random_fill: out of memory for %llu bytes",
                         (unsigned long long)n);
  fill(t, host, n);
  rc = ferry_rt_copy_from_host(c->rt, t, host, n, c->err);
  free(host);
  return rc;
}

const struct ferry_builtin ferry_modfuncs_builtins[] = {
    {"tvm.rpc.server.ModuleGetFunction", module_get_function_fn},
    {"runtime.ModuleGetFunction", module_get_function_fn},
    {"tvm.rpc.server.ImportModule", import_module_fn},
    {"runtime.SystemLib", system_lib_fn},
    {"cache_flush_cpu_non_first_arg", cache_flush_fn},
    {"tvm.contrib.random.random_fill", random_fill_fn},
    {"tvm.contrib.random.random_fill_for_measure", random_fill_fn},
    {NULL, NULL},
};
