/* TVMBackendParallelLaunch / TVMBackendParallelBarrier on a fixed pool of
 * worker threads (spec runtime-abi.md 7.6, 7.7).
 *
 * The pool has num_threads - 1 workers; the launching thread runs task 0
 * itself, so a launch of N tasks uses N threads at once.  Every task of a
 * launch runs concurrently (the barrier needs that), hence num_task is
 * capped at the thread count and the actual count is written to
 * penv->num_task, which compiled code partitions its loop by.  The pool
 * lives from the first launch until ferry_rt_close (one session per
 * process); launches are serialised and nested launches refused. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

#define POOL_MAX_THREADS 256
#define POOL_ERR_MAX 4096
/* Before a thread sleeps on a condition variable it polls: POOL_SPIN
 * iterations with a pause, then POOL_YIELD with sched_yield.  Kernels
 * launched back to back (a timed loop) then hand over without a futex
 * wake-up each, yet a machine with more runnable threads than cores still
 * runs the others (TVM's pool yields while it spins for the same reason);
 * an idle pool sleeps after well under a millisecond. */
#define POOL_SPIN 256
#define POOL_YIELD 2000

static inline void cpu_relax(int spins) {
  if (spins < POOL_SPIN) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
  } else {
    sched_yield();
  }
}

struct barrier {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int count;
  atomic_int arrived;
  atomic_uint gen;
};

static struct {
  pthread_mutex_t lock;        /* guards the condition variables and errors */
  pthread_cond_t work_cv;      /* workers sleep here for a new generation */
  pthread_cond_t done_cv;      /* the launcher sleeps here for remaining == 0 */
  pthread_mutex_t launch_lock; /* one launch (and start/stop) at a time */
  int configured;              /* requested thread count (0 = default) */
  int nthreads;                /* threads incl. the launcher, once started */
  pthread_t *workers;
  int nworkers;
  atomic_int stop;
  atomic_uint gen;      /* bumped once per launch that needs workers */
  unsigned start_gen;   /* gen when the workers were started */
  /* The current launch: written before gen is bumped (release), read by
   * workers after they see the new gen (acquire). */
  FTVMParallelLambda fn;
  void *cdata;
  int num_task;
  TVMParallelGroupEnv penv;
  struct barrier bar;
  atomic_int remaining; /* workers that have not finished this launch */
  char errors[POOL_ERR_MAX];
  size_t errlen;
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work_cv = PTHREAD_COND_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER,
    .launch_lock = PTHREAD_MUTEX_INITIALIZER,
    .bar = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER},
};

static _Thread_local int in_lambda;

static int default_threads(void) {
  const char *env = getenv("TVM_NUM_THREADS");
  if (env != NULL && *env) {
    long v = strtol(env, NULL, 10);
    if (v >= 1 && v <= POOL_MAX_THREADS)
      return (int)v;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    n = 1;
  return n > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)n;
}

void ferry_thread_pool_configure(int num_threads) {
  pthread_mutex_lock(&pool.launch_lock);
  if (pool.workers == NULL)
    pool.configured = num_threads > POOL_MAX_THREADS ? POOL_MAX_THREADS : num_threads;
  pthread_mutex_unlock(&pool.launch_lock);
}

/* Runs one task, recording its error text. */
static void run_task(int task_id) {
  in_lambda = 1;
  ferry_backend_clear_error();
  int rc = pool.fn(task_id, &pool.penv, pool.cdata);
  in_lambda = 0;
  if (rc != 0) {
    pthread_mutex_lock(&pool.lock);
    if (pool.errlen + 1 < POOL_ERR_MAX) {
      int n = snprintf(pool.errors + pool.errlen, POOL_ERR_MAX - pool.errlen,
                       "Task %d error: %s\n", task_id, ferry_backend_last_error());
      if (n > 0)
        pool.errlen += (size_t)n < POOL_ERR_MAX - pool.errlen ? (size_t)n
                                                              : POOL_ERR_MAX - pool.errlen - 1;
    }
    pthread_mutex_unlock(&pool.lock);
  }
}

/* Waits until pool.gen differs from seen (or stop); returns the new gen. */
static unsigned wait_for_work(unsigned seen) {
  unsigned g;
  for (int spins = 0; spins < POOL_SPIN + POOL_YIELD; spins++) {
    g = atomic_load_explicit(&pool.gen, memory_order_acquire);
    if (g != seen || atomic_load_explicit(&pool.stop, memory_order_relaxed))
      return g;
    cpu_relax(spins);
  }
  pthread_mutex_lock(&pool.lock);
  while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen &&
         !atomic_load(&pool.stop))
    pthread_cond_wait(&pool.work_cv, &pool.lock);
  pthread_mutex_unlock(&pool.lock);
  return g;
}

static void *worker_main(void *arg) {
  int id = (int)(intptr_t)arg; /* task id this worker runs: 1..nworkers */
  unsigned seen = pool.start_gen;
  for (;;) {
    seen = wait_for_work(seen);
    if (atomic_load(&pool.stop))
      break;
    /* Every worker acknowledges every launch, taking part or not, so the
     * launcher never rewrites the job while a worker still reads it. */
    if (id < pool.num_task)
      run_task(id);
    if (atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&pool.lock);
      pthread_cond_signal(&pool.done_cv);
      pthread_mutex_unlock(&pool.lock);
    }
  }
  ferry_backend_release_thread();
  return NULL;
}

/* Starts the workers on first use; called with launch_lock held. */
static int pool_start(void) {
  if (pool.nthreads)
    return 0;
  int n = pool.configured > 0 ? pool.configured : default_threads();
  pool.workers = calloc((size_t)n, sizeof *pool.workers);
  if (pool.workers == NULL)
    return -1;
  atomic_store(&pool.stop, 0);
  pool.nworkers = 0;
  pool.start_gen = atomic_load(&pool.gen);
  for (int i = 1; i < n; i++) {
    if (pthread_create(&pool.workers[pool.nworkers], NULL, worker_main, (void *)(intptr_t)i))
      break; /* fewer threads still work: tasks are capped to what exists */
    pool.nworkers++;
  }
  pool.nthreads = pool.nworkers + 1;
  return 0;
}

void ferry_thread_pool_shutdown(void) {
  pthread_mutex_lock(&pool.launch_lock);
  pthread_mutex_lock(&pool.lock);
  atomic_store(&pool.stop, 1);
  pthread_cond_broadcast(&pool.work_cv);
  pthread_mutex_unlock(&pool.lock);
  for (int i = 0; i < pool.nworkers; i++)
    pthread_join(pool.workers[i], NULL);
  free(pool.workers);
  pool.workers = NULL;
  pool.nworkers = 0;
  pool.nthreads = 0;
  atomic_store(&pool.stop, 0);
  pthread_mutex_unlock(&pool.launch_lock);
}

int TVMBackendParallelLaunch(FTVMParallelLambda flambda, void *cdata, int num_task) {
  if (in_lambda) {
    TVMAPISetLastError("TVMBackendParallelLaunch: nested parallel launch is not supported");
    return -1;
  }
  if (flambda == NULL) {
    TVMAPISetLastError("TVMBackendParallelLaunch: NULL lambda");
    return -1;
  }
  pthread_mutex_lock(&pool.launch_lock);
  if (pool_start() != 0) {
    pthread_mutex_unlock(&pool.launch_lock);
    TVMAPISetLastError("TVMBackendParallelLaunch: out of memory");
    return -1;
  }
  if (num_task <= 0 || num_task > pool.nthreads)
    num_task = pool.nthreads;
  pool.fn = flambda;
  pool.cdata = cdata;
  pool.num_task = num_task;
  pool.penv.sync_handle = &pool.bar;
  pool.penv.num_task = num_task;
  pool.bar.count = num_task;
  atomic_store(&pool.bar.arrived, 0);
  pool.errlen = 0;
  pool.errors[0] = 0;
  atomic_store(&pool.remaining, num_task > 1 ? pool.nworkers : 0);
  if (num_task > 1) {
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
    pthread_cond_broadcast(&pool.work_cv);
    pthread_mutex_unlock(&pool.lock);
  }

  run_task(0);

  for (int spins = 0; spins < POOL_SPIN + POOL_YIELD &&
                     atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0;
       spins++)
    cpu_relax(spins);
  pthread_mutex_lock(&pool.lock);
  while (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0)
    pthread_cond_wait(&pool.done_cv, &pool.lock);
  int rc = 0;
  if (pool.errlen) {
    TVMAPISetLastError(pool.errors);
    rc = -1;
  }
  pthread_mutex_unlock(&pool.lock);
  pthread_mutex_unlock(&pool.launch_lock);
  return rc;
}

int TVMBackendParallelBarrier(int task_id, TVMParallelGroupEnv *penv) {
  (void)task_id;
  if (penv == NULL || penv->num_task <= 1)
    return 0;
  struct barrier *b = penv->sync_handle;
  unsigned gen = atomic_load_explicit(&b->gen, memory_order_acquire);
  if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) + 1 == b->count) {
    atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
    pthread_mutex_lock(&b->lock);
    atomic_fetch_add_explicit(&b->gen, 1, memory_order_release);
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return 0;
  }
  for (int spins = 0; spins < POOL_SPIN + POOL_YIELD; spins++) {
    if (atomic_load_explicit(&b->gen, memory_order_acquire) != gen)
      return 0;
    cpu_relax(spins);
  }
  pthread_mutex_lock(&b->lock);
  while (atomic_load_explicit(&b->gen, memory_order_acquire) == gen)
    pthread_cond_wait(&b->cond, &b->lock);
  pthread_mutex_unlock(&b->lock);
  return 0;
}
