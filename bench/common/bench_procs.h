/* What the benchmarks that start daemons share: a monotonic clock, dying
 * with the program's name, and child processes whose stderr goes to a
 * temporary log that the benchmark reads for "listening on HOST:PORT". */
#ifndef FERRY_BENCH_PROCS_H
#define FERRY_BENCH_PROCS_H

#include <sys/types.h>

/* Name used in messages ("bench_trial: ..."); set first thing in main. */
void bench_set_name(const char *name);

double bench_now_s(void);

/* Prints "NAME: what: detail" (detail may be NULL) and exits 1; the
 * atexit handler of bench_spawn stops every child first. */
void bench_die(const char *what, const char *detail) __attribute__((noreturn));

typedef struct bench_proc {
  pid_t pid;
  char log[40];
} bench_proc;

/* Runs argv[0] (a path, or a name looked up on PATH) with stdin from
 * /dev/null, stdout and stderr to a fresh temporary log and, when env_kv
 * is "NAME=VALUE", that variable set for the child only.  At most 8 at a
 * time; every one is stopped (SIGTERM, reaped, log removed) by
 * bench_stop_all, which also runs at exit. */
bench_proc *bench_spawn(const char *const *argv, const char *env_kv);

/* The port of p's first "listening on HOST:PORT" line, waited for up to
 * 10 s; dies naming the log when p exits first or never says it. */
int bench_wait_listening(bench_proc *p);

void bench_stop_all(void);

/* The ferry binary and the test kernel library a benchmark runs with:
 * ferry_arg (--ferry) when given, else the `ferry` next to argv0 or one
 * folder up (build/bench/bench_x -> build/ferry); lib_arg (--lib) when
 * given, else <ferry's folder>/tests/models/testlib.so.  Writes both
 * paths (each buffer at least PATH_MAX bytes); dies when either is
 * missing. */
void bench_find_ferry(const char *argv0, const char *ferry_arg, const char *lib_arg,
                      char *ferry, char *lib);

#endif
