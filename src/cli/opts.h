/* Command-line options, argparse-style as TVM's tools take them:
 * `--opt value`, `--opt=value`, unambiguous prefixes (`--trac`), and
 * `--port_end` spelled with underscores as well.  One table per subcommand
 * drives parsing and --help alike. */
#ifndef FERRY_CLI_OPTS_H
#define FERRY_CLI_OPTS_H

#include <stdio.h>

enum ferry_opt_kind {
  FERRY_OPT_FLAG,   /* int *: set to 1 */
  FERRY_OPT_STRING, /* const char **: points into argv */
  FERRY_OPT_INT,    /* long *: decimal, range-checked by the caller */
  FERRY_OPT_DOUBLE, /* double * */
  FERRY_OPT_LIST,   /* struct ferry_opt_list *: may be given many times */
};

#define FERRY_OPT_LIST_MAX 32
struct ferry_opt_list {
  const char *items[FERRY_OPT_LIST_MAX];
  int n;
};

typedef struct ferry_opt {
  const char *name;    /* without the leading dashes, e.g. "port-end" */
  enum ferry_opt_kind kind;
  void *dest;
  const char *metavar; /* shown in --help, e.g. "PORT" */
  const char *help;    /* one line; include the default */
} ferry_opt;

typedef struct ferry_cmd_spec {
  const char *name;     /* "tracker" */
  const char *usage;    /* "[options]" or "[options] LIB FUNC" */
  const char *summary;  /* one sentence */
  const ferry_opt *opts;
  int nopts;
} ferry_cmd_spec;

/* Parses argv[1..argc) (argv[0] is the command name).  Positional arguments
 * are moved, in order, to the front of argv starting at index 1 and their
 * count is stored in *npos.  Returns 0, 1 when --help was printed (the
 * caller exits 0), or 2 after printing "ferry: ..." and a usage hint to
 * stderr (the caller exits 2, as argparse does). */
int ferry_opts_parse(const ferry_cmd_spec *spec, int argc, char **argv,
                     int *npos);

/* ferry_opts_parse for the commands that take no positional argument (the
 * daemons, query): a positional one is a usage error.  Same returns. */
int ferry_opts_parse_no_args(const ferry_cmd_spec *spec, int argc, char **argv);

/* 0 when 0 <= port <= 65535 and 0 <= port_end <= 65536 (port_end is
 * exclusive); otherwise prints "ferry CMD: port out of range" and returns 2. */
int ferry_opts_check_ports(const char *cmd, long port, long port_end);

/* The tracker a client command talks to: --host, else $TVM_TRACKER_HOST,
 * else 127.0.0.1; --port, else $TVM_TRACKER_PORT, else 9190 (TVM's
 * defaults).  Fills the unset ones of *host and *port and returns 0, or
 * prints "ferry CMD: port out of range" and returns 2. */
int ferry_opts_tracker_addr(const char *cmd, const char **host, long *port);

void ferry_opts_help(FILE *f, const ferry_cmd_spec *spec);

/* Splits "host:port" at the last ':' into host (copied into host_out) and
 * port. Accepts "[v6]:port". Returns 0, or -1 if malformed. */
int ferry_opts_host_port(const char *s, char *host_out, size_t host_cap,
                         int *port);

#endif
