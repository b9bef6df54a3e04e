/* Daemons started by a benchmark, and the small things every benchmark
 * repeats (see bench_procs.h). */
#include "bench_procs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 8

static const char *bench_name = "bench";
static bench_proc procs[MAX_PROCS];
static int nprocs;
static int atexit_done;

void bench_set_name(const char *name) { bench_name = name; }

double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bench_die(const char *what, const char *detail) {
  fprintf(stderr, "%s: %s%s%s\n", bench_name, what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

void bench_stop_all(void) {
  for (int i = nprocs - 1; i >= 0; i--) {
    if (procs[i].pid > 0) {
      kill(procs[i].pid, SIGTERM);
      int st;
      while (waitpid(procs[i].pid, &st, 0) < 0 && errno == EINTR) {
      }
      procs[i].pid = 0;
    }
    unlink(procs[i].log);
  }
  nprocs = 0;
}

bench_proc *bench_spawn(const char *const *argv, const char *env_kv) {
  if (!atexit_done) {
    atexit(bench_stop_all);
    atexit_done = 1;
  }
  if (nprocs == MAX_PROCS)
    bench_die("too many processes", NULL);
  bench_proc *p = &procs[nprocs++];
  snprintf(p->log, sizeof p->log, "/tmp/ferry-bench-XXXXXX");
  int lfd = mkstemp(p->log);
  if (lfd < 0)
    bench_die("mkstemp", strerror(errno));
  p->pid = fork();
  if (p->pid < 0)
    bench_die("fork", strerror(errno));
  if (p->pid == 0) {
    dup2(lfd, 2);
    dup2(lfd, 1);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    if (env_kv)
      putenv((char *)env_kv);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(lfd);
  return p;
}

int bench_wait_listening(bench_proc *p) {
  for (int i = 0; i < 5000; i++) {
    FILE *f = fopen(p->log, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
      const char *s = strstr(line, "listening on ");
      const char *colon = s ? strrchr(s, ':') : NULL;
      if (colon) {
        fclose(f);
        return atoi(colon + 1);
      }
    }
    if (f)
      fclose(f);
    int st;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
      p->pid = 0;
      bench_die("a daemon exited early (is this a ferry binary?); its log", p->log);
    }
    usleep(2000);
  }
  bench_die("a daemon did not say where it listens; its log", p->log);
}

void bench_find_ferry(const char *argv0, const char *ferry_arg, const char *lib_arg,
                      char *ferry, char *lib) {
  char a0[PATH_MAX / 2], self_dir[PATH_MAX / 2];
  snprintf(a0, sizeof a0, "%s", argv0);
  snprintf(self_dir, sizeof self_dir, "%s", dirname(a0));
  if (ferry_arg) {
    snprintf(ferry, PATH_MAX, "%s", ferry_arg);
  } else {
    snprintf(ferry, PATH_MAX, "%s/ferry", self_dir);
    if (access(ferry, X_OK) != 0)
      snprintf(ferry, PATH_MAX, "%s/../ferry", self_dir);
  }
  if (access(ferry, X_OK) != 0)
    bench_die("no ferry binary (give --ferry PATH)", ferry);
  if (lib_arg) {
    snprintf(lib, PATH_MAX, "%s", lib_arg);
  } else {
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", ferry);
    snprintf(lib, PATH_MAX, "%.2000s/tests/models/testlib.so", dirname(d));
  }
  if (access(lib, R_OK) != 0)
    bench_die("no test library (give --lib testlib.so)", lib);
}
