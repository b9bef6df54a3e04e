/* The backend API compiled code calls (spec runtime-abi.md section 7), minus
 * the thread pool (thread_pool.c) and TVMFuncCall (abi_classic.c).
 *
 * These are the exported symbols a C-source TVM library resolves from the
 * executable; LLVM-built libraries reach them through the __TVM* context
 * slots the loader fills from ferry_backend_ctx_slots.  The loader's use of
 * that table (and of ferry_backend_set_rt) pulls this object, thread_pool.o
 * and abi_classic.o into the ferry binary, whose ENABLE_EXPORTS then
 * exports every TVM* function defined in them. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device/device.h"

/* ---- the runtime the callbacks run against ------------------------------ */

/* One session per process, so one runtime: compiled code's callbacks
 * (TVMFuncCall, TVMBackendGetFuncFromEnv) carry no context of their own. */
static _Atomic(ferry_rt *) current_rt;

void ferry_backend_set_rt(ferry_rt *rt) { atomic_store(&current_rt, rt); }
ferry_rt *ferry_backend_rt(void) { return atomic_load(&current_rt); }

/* ---- last error (per thread) -------------------------------------------- */

static _Thread_local char last_error[FERRY_ERR_MSG_MAX];

void TVMAPISetLastError(const char *msg) {
  snprintf(last_error, sizeof last_error, "%s", msg ? msg : "");
}

const char *TVMGetLastError(void) { return last_error; }
void ferry_backend_clear_error(void) { last_error[0] = 0; }
const char *ferry_backend_last_error(void) { return last_error; }

/* ---- workspaces ----------------------------------------------------------- */

/* Compiled code allocates a few workspaces per call, frees them in reverse
 * order, and repeats the same sizes on every call (a timed kernel runs
 * thousands of times), so each thread keeps its recently freed blocks. */
#define WS_CACHE 8
struct ws_block {
  void *ptr;
  uint64_t size;
};
static _Thread_local struct ws_block ws_cache[WS_CACHE];
static _Thread_local int ws_ncache;
/* Live workspaces of this thread, so a free of a foreign pointer is refused
 * instead of corrupting the heap. */
#define WS_LIVE_MAX 1024
static _Thread_local struct ws_block ws_live[WS_LIVE_MAX];
static _Thread_local int ws_nlive;

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint) {
  (void)device_id;
  (void)dtype_code_hint;
  (void)dtype_bits_hint;
  if (device_type != kDLCPU) {
    /* A device workspace is an ordinary buffer of that device (TVM's
     * OpenCL workspace pool hands out cl_mem descriptors too). */
    ferry_err err;
    ferry_err_clear(&err);
    void *p = ferry_backend_rt() == NULL
                  ? NULL
                  : ferry_device_workspace_alloc(ferry_backend_rt(), device_type, device_id,
                                                 nbytes, &err);
    if (p == NULL)
      snprintf(last_error, sizeof last_error, "TVMBackendAllocWorkspace(%d, %d, %llu): %.3900s",
               device_type, device_id, (unsigned long long)nbytes,
               err.code ? err.msg : "no runtime");
    return p;
  }
  if (nbytes > FERRY_RT_MAX_WORKSPACE) {
    snprintf(last_error, sizeof last_error,
             "TVMBackendAllocWorkspace: %llu bytes is over the limit of %llu",
             (unsigned long long)nbytes, (unsigned long long)FERRY_RT_MAX_WORKSPACE);
    return NULL;
  }
  if (ws_nlive >= WS_LIVE_MAX) {
    TVMAPISetLastError("TVMBackendAllocWorkspace: too many live workspaces on this thread");
    return NULL;
  }
  uint64_t size = nbytes ? nbytes : 1;
  void *p = NULL;
  int best = -1;
  for (int i = 0; i < ws_ncache; i++)
    if (ws_cache[i].size >= size && ws_cache[i].size / 2 <= size &&
        (best < 0 || ws_cache[i].size < ws_cache[best].size))
      best = i;
  if (best >= 0) {
    p = ws_cache[best].ptr;
    size = ws_cache[best].size;
    ws_cache[best] = ws_cache[--ws_ncache];
  } else if (posix_memalign(&p, FERRY_RT_ALIGN, (size_t)size) != 0) {
    snprintf(last_error, sizeof last_error,
             "TVMBackendAllocWorkspace: out of memory allocating %llu bytes",
             (unsigned long long)nbytes);
    return NULL;
  }
  ws_live[ws_nlive].ptr = p;
  ws_live[ws_nlive].size = size;
  ws_nlive++;
  return p;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
  (void)device_id;
  if (device_type != kDLCPU) {
    ferry_err err;
    ferry_err_clear(&err);
    if (ferry_backend_rt() == NULL ||
        ferry_device_workspace_free(ferry_backend_rt(), device_type, ptr, &err) != FERRY_OK) {
      snprintf(last_error, sizeof last_error, "TVMBackendFreeWorkspace: %.3900s",
               err.code ? err.msg : "no runtime");
      return -1;
    }
    return 0;
  }
  int i = ws_nlive - 1; /* usually the most recent one */
  while (i >= 0 && ws_live[i].ptr != ptr)
    i--;
  if (i < 0) {
    TVMAPISetLastError("TVMBackendFreeWorkspace: pointer was not allocated by this thread");
    return -1;
  }
  struct ws_block b = ws_live[i];
  memmove(&ws_live[i], &ws_live[i + 1], (size_t)(ws_nlive - i - 1) * sizeof ws_live[0]);
  ws_nlive--;
  if (ws_ncache == WS_CACHE) {
    free(ws_cache[0].ptr);
    ws_cache[0] = ws_cache[--ws_ncache];
  }
  ws_cache[ws_ncache++] = b;
  return 0;
}

void ferry_backend_release_thread(void) {
  for (int i = 0; i < ws_ncache; i++)
    free(ws_cache[i].ptr);
  ws_ncache = 0;
  /* Workspaces a kernel never freed: the kernel is gone, so are they. */
  for (int i = 0; i < ws_nlive; i++)
    free(ws_live[i].ptr);
  ws_nlive = 0;
  ferry_classic_release_thread();
}

/* ---- functions from the environment --------------------------------------- */

int TVMBackendGetFuncFromEnv(void *mod_node, const char *func_name, TVMFunctionHandle *out) {
  ferry_err err;
  ferry_err_clear(&err);
  ferry_func *f = NULL;
  if (mod_node == NULL || func_name == NULL || out == NULL) {
    TVMAPISetLastError("TVMBackendGetFuncFromEnv: NULL argument");
    return -1;
  }
  int rc = ferry_library_env_func(mod_node, func_name, &f, &err);
  if (rc) {
    if (rc == FERRY_ENOTFOUND && err.code == 0)
      snprintf(last_error, sizeof last_error,
               "Cannot find function %s in the imported modules or global registry", func_name);
    else
      TVMAPISetLastError(err.msg);
    return -1;
  }
  *out = f;
  return 0;
}

int TVMBackendRunOnce(void **handle, int (*f)(void *), void *cdata, int nbytes) {
  (void)nbytes;
  if (*handle == NULL) {
    *handle = (void *)1;
    return f(cdata);
  }
  return 0;
}

int TVMBackendRegisterEnvCAPI(const char *name, void *ptr) {
  (void)name;
  (void)ptr;
  return 0;
}

/* ---- system-library symbols ----------------------------------------------- */

/* Filled by static constructors of system-lib objects, possibly before
 * main(), so it is a plain process-wide table (read only after start). */
struct syslib_sym {
  char *name;
  void *ptr;
};
static pthread_mutex_t syslib_lock = PTHREAD_MUTEX_INITIALIZER;
static struct syslib_sym *syslib_syms;
static size_t syslib_n, syslib_cap;

int TVMBackendRegisterSystemLibSymbol(const char *name, void *ptr) {
  if (name == NULL)
    return -1;
  pthread_mutex_lock(&syslib_lock);
  for (size_t i = 0; i < syslib_n; i++)
    if (strcmp(syslib_syms[i].name, name) == 0) {
      syslib_syms[i].ptr = ptr;
      pthread_mutex_unlock(&syslib_lock);
      return 0;
    }
  int rc = 0;
  if (syslib_n == syslib_cap) {
    size_t ncap = syslib_cap ? syslib_cap * 2 : 32;
    struct syslib_sym *n = realloc(syslib_syms, ncap * sizeof *n);
    if (n == NULL)
      rc = -1;
    else {
      syslib_syms = n;
      syslib_cap = ncap;
    }
  }
  char *copy = rc == 0 ? strdup(name) : NULL;
  if (copy == NULL)
    rc = -1;
  else
    syslib_syms[syslib_n++] = (struct syslib_sym){copy, ptr};
  pthread_mutex_unlock(&syslib_lock);
  return rc;
}

void *ferry_syslib_symbol(const char *name) {
  void *p = NULL;
  pthread_mutex_lock(&syslib_lock);
  for (size_t i = 0; i < syslib_n; i++)
    if (strcmp(syslib_syms[i].name, name) == 0) {
      p = syslib_syms[i].ptr;
      break;
    }
  pthread_mutex_unlock(&syslib_lock);
  return p;
}

/* ---- context slots ---------------------------------------------------------- */

#define SLOT(fn) {"__" #fn, (void (*)(void))fn}
const struct ferry_ctx_slot ferry_backend_ctx_slots[] = {
    SLOT(TVMFuncCall),
    SLOT(TVMAPISetLastError),
    SLOT(TVMBackendGetFuncFromEnv),
    SLOT(TVMBackendAllocWorkspace),
    SLOT(TVMBackendFreeWorkspace),
    SLOT(TVMBackendParallelLaunch),
    SLOT(TVMBackendParallelBarrier),
};
#undef SLOT
const size_t ferry_backend_nctx_slots =
    sizeof ferry_backend_ctx_slots / sizeof ferry_backend_ctx_slots[0];
