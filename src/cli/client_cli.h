/* What the client subcommands (run, time, upload, download, ls, rm) share:
 * the connection options, connecting, and .npy files on disk. */
#ifndef FERRY_CLI_CLIENT_CLI_H
#define FERRY_CLI_CLIENT_CLI_H

#include <stdint.h>

#include "cli/opts.h"
#include "ferry/client.h"
#include "wire/npy.h"

/* Where to find the server: --host/--port (direct), --proxy HOST:PORT with
 * --key (a proxy pairs us with the server registered under key), or
 * --tracker HOST:PORT with --key [--priority] (the tracker's queue). */
typedef struct cli_conn {
  const char *host;
  long port;
  const char *tracker;
  const char *proxy;
  const char *key;
  long priority;
  double timeout;         /* seconds: connect/queue wait and each reply */
  double session_timeout; /* seconds: asks the server to end the session */
  const char *dialect;    /* "classic" (default) or "ffi" */
  int verbose;
  double tracker_retry;     /* seconds: keep trying to reach the tracker */
  double handshake_timeout; /* seconds: a granted server's handshake */
  const char *user;         /* tracker REQUEST's user; NULL: the default */
} cli_conn;

#define CLI_CONN_DEFAULTS {"127.0.0.1", 9090, NULL, NULL, "", 1, 60, 0, "classic", 0, 60, 5, NULL}

/* The option rows for a cli_conn named `conn`, to put at the head of each
 * command's option table. */
#define CLI_CONN_OPTS(conn)                                                   \
  {"host", FERRY_OPT_STRING, &(conn).host, "HOST",                            \
   "server (or proxy) address (default 127.0.0.1)"},                          \
      {"port", FERRY_OPT_INT, &(conn).port, "PORT", "server port (default 9090)"}, \
      {"tracker", FERRY_OPT_STRING, &(conn).tracker, "HOST:PORT",             \
       "get a server of --key from this tracker's queue"},                    \
      {"proxy", FERRY_OPT_STRING, &(conn).proxy, "HOST:PORT",                 \
       "reach the server registered as --key at this proxy"},                 \
      {"key", FERRY_OPT_STRING, &(conn).key, "KEY",                           \
       "device key (default: empty, as a server without --key)"},             \
      {"priority", FERRY_OPT_INT, &(conn).priority, "N",                      \
       "tracker queue priority, larger is served first (default 1)"},         \
      {"timeout", FERRY_OPT_DOUBLE, &(conn).timeout, "SECONDS",               \
       "give up connecting, queueing or waiting for a reply after this (default 60; 0 = never)"}, \
      {"session-timeout", FERRY_OPT_DOUBLE, &(conn).session_timeout, "SECONDS", \
       "ask the server to end the session after this long (default: none)"},  \
      {"dialect", FERRY_OPT_STRING, &(conn).dialect, "classic|ffi",           \
       "session dialect: classic (TVM <= 0.20, default) or ffi (TVM >= 0.21)"}, \
      {"verbose", FERRY_OPT_FLAG, &(conn).verbose, NULL,                      \
       "say which server and dialect the session uses"},                      \
      {"tracker-retry", FERRY_OPT_DOUBLE, &(conn).tracker_retry, "SECONDS",   \
       "keep trying to reach the tracker this long, with back-off (default 60; 0 = once)"}, \
      {"handshake-timeout", FERRY_OPT_DOUBLE, &(conn).handshake_timeout, "SECONDS", \
       "ask the tracker again when a granted server does not answer the handshake within this (default 5; 0 = only --timeout)"}, \
      {"user", FERRY_OPT_STRING, &(conn).user, "NAME",                        \
       "who asks, shown as the device's holder by a ferry tracker (default $FERRY_USER or login@hostname)"}

/* Connects as the options say.  On failure prints "ferry <cmd>: ..." and
 * returns the exit status (1, or 2 for bad option values); 0 on success. */
int cli_connect(const char *cmd, const cli_conn *conn, ferry_client **out);

/* Prints "ferry <cmd>: <what>: <client's message>" and returns 1. */
int cli_fail(const char *cmd, ferry_client *c, const char *what);

/* Reads a whole .npy file (at most max_bytes of data).  On success *data
 * is malloc'ed (caller frees) and already in little-endian order.  On
 * failure prints the reason and returns 1. */
int cli_npy_load(const char *cmd, const char *path, uint64_t max_bytes,
                 ferry_npy_info *info, void **data);
/* Writes a .npy file; prints the reason and returns 1 on failure. */
int cli_npy_save(const char *cmd, const char *path, DLDataType dtype, int ndim,
                 const int64_t *shape, const void *data, uint64_t nbytes);

/* `ferry run` (timing 0) and `ferry time` (timing 1); cmd_run.c. */
int cli_run_or_time(int argc, char **argv, int timing);

/* Writes n bytes to path ("-" = stdout). */
int cli_write_file(const char *cmd, const char *path, const void *data, size_t n);

#endif
