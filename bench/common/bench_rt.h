/* What the in-process runtime benchmarks (bench_graph, bench_relax_vm,
 * bench_ffi_abi, bench_runtime) share: where their data lies relative to
 * the program, and a runtime over a fresh temporary work folder. */
#ifndef FERRY_BENCH_RT_H
#define FERRY_BENCH_RT_H

#include <stddef.h>

#include "runtime/runtime.h"

/* out = "<folder of this program>/rel" (/proc/self/exe, so it holds
 * whichever folder the benchmark was started from), cut to cap bytes. */
void bench_self_path(char *out, size_t cap, const char *rel);

/* A runtime with num_threads workers (0: the default) whose work folder is
 * a fresh /tmp/ferry_bench_<tag>_XXXXXX.  Dies (bench_die) when either
 * cannot be made.  One at a time: the folder's name lives in this file
 * (the runtime keeps the pointer). */
ferry_rt *bench_rt_open(const char *tag, int num_threads);

/* Closes rt and removes its (by then empty) work folder. */
void bench_rt_close(ferry_rt *rt);

#endif
