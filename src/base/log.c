#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static enum ferry_log_level threshold = FERRY_LOG_INFO;
static const char *component = "ferry";

void ferry_log_set_level(enum ferry_log_level level) { threshold = level; }
enum ferry_log_level ferry_log_get_level(void) { return threshold; }
void ferry_log_set_component(const char *name) { component = name; }

void ferry_log(enum ferry_log_level level, const char *fmt, ...) {
  static const char *const names[] = {"DEBUG", "INFO", "WARN", "NOTICE",
                                      "ERROR"};
  if ((level < threshold && level != FERRY_LOG_NOTICE) ||
      level >= FERRY_LOG_OFF)
    return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  /* Build the whole line first so that concurrent writers (forked session
   * children share stderr) do not interleave inside a line. */
  char line[2048];
  int n = snprintf(line, sizeof line, "%s.%03ld %s %s: ", stamp,
                   (long)(tv.tv_usec / 1000), names[level], component);
  va_list ap;
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < sizeof line)
    n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof line - 1)
    n = (int)sizeof line - 2;
  line[n++] = '\n';
  fwrite(line, 1, (size_t)n, stderr);
  fflush(stderr);
}
