/* See bench_rt.h. */
#include "bench_rt.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_procs.h"

void bench_self_path(char *out, size_t cap, const char *rel) {
  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  self[sl > 0 ? sl : 0] = 0;
  snprintf(out, cap, "%s/%s", dirname(self), rel);
}

/* The runtime keeps the pointer to its work folder's name. */
static char work[64];

ferry_rt *bench_rt_open(const char *tag, int num_threads) {
  snprintf(work, sizeof work, "/tmp/ferry_bench_%s_XXXXXX", tag);
  if (mkdtemp(work) == NULL)
    bench_die("cannot make a work folder", work);
  ferry_rt_options opt = {.work_dir = work, .num_threads = num_threads};
  ferry_err err;
  ferry_err_clear(&err);
  ferry_rt *rt;
  if (ferry_rt_open(&rt, &opt, &err) != 0)
    bench_die("cannot open a runtime", err.msg);
  return rt;
}

void bench_rt_close(ferry_rt *rt) {
  ferry_rt_close(rt);
  rmdir(work);
}
