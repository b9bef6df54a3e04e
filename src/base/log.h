/* Logging for the daemons (tracker, proxy, server).
 *
 * Lines go to stderr as "YYYY-mm-dd HH:MM:SS.mmm LEVEL component: text".
 * The level threshold is process-wide because it is set once from the
 * command line before any thread starts; it is not changed afterwards.
 * Library layers (wire, logic, runtime) never log: they return errors. */
#ifndef FERRY_BASE_LOG_H
#define FERRY_BASE_LOG_H

enum ferry_log_level {
  FERRY_LOG_DEBUG = 0,
  FERRY_LOG_INFO = 1,
  FERRY_LOG_WARN = 2,
  /* Facts a user needs even with --silent, such as the port a daemon bound
   * (which --port 0 makes unpredictable): above WARN so that --silent
   * (threshold WARN or ERROR) still prints them. */
  FERRY_LOG_NOTICE = 3,
  FERRY_LOG_ERROR = 4,
  FERRY_LOG_OFF = 5,
};

/* Sets the threshold; messages below it are dropped.  Call before threads. */
void ferry_log_set_level(enum ferry_log_level level);
enum ferry_log_level ferry_log_get_level(void);
/* Names the component printed on each line ("tracker", "server", ...). */
void ferry_log_set_component(const char *name);

void ferry_log(enum ferry_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ferry_debug(...) ferry_log(FERRY_LOG_DEBUG, __VA_ARGS__)
#define ferry_info(...) ferry_log(FERRY_LOG_INFO, __VA_ARGS__)
#define ferry_warn(...) ferry_log(FERRY_LOG_WARN, __VA_ARGS__)
#define ferry_notice(...) ferry_log(FERRY_LOG_NOTICE, __VA_ARGS__)
#define ferry_error(...) ferry_log(FERRY_LOG_ERROR, __VA_ARGS__)

#endif
