#include "cli/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int name_eq(const char *opt, const char *arg, size_t n, int exact) {
  /* Underscores and dashes are interchangeable: TVM's scripts and how-to
   * use both spellings (--port-end, --port_end). */
  size_t i = 0;
  for (; i < n; i++) {
    if (!opt[i])
      return 0;
    char a = arg[i] == '_' ? '-' : arg[i];
    if (a != opt[i])
      return 0;
  }
  return exact ? opt[i] == 0 : 1;
}

static const ferry_opt *find_opt(const ferry_cmd_spec *spec, const char *arg,
                                 size_t n, int *ambiguous) {
  *ambiguous = 0;
  for (int i = 0; i < spec->nopts; i++)
    if (name_eq(spec->opts[i].name, arg, n, 1))
      return &spec->opts[i];
  const ferry_opt *found = NULL;
  for (int i = 0; i < spec->nopts; i++) {
    if (name_eq(spec->opts[i].name, arg, n, 0)) {
      if (found) {
        *ambiguous = 1;
        return NULL;
      }
      found = &spec->opts[i];
    }
  }
  return found;
}

static int fail(const ferry_cmd_spec *spec, const char *fmt, const char *a) {
  fprintf(stderr, "ferry %s: ", spec->name);
  fprintf(stderr, fmt, a);
  fprintf(stderr, "\nusage: ferry %s %s (see ferry %s --help)\n", spec->name,
          spec->usage, spec->name);
  return 2;
}

static int store(const ferry_cmd_spec *spec, const ferry_opt *o,
                 const char *val) {
  char *end = NULL;
  switch (o->kind) {
  case FERRY_OPT_FLAG:
    *(int *)o->dest = 1;
    return 0;
  case FERRY_OPT_STRING:
    *(const char **)o->dest = val;
    return 0;
  case FERRY_OPT_INT: {
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end)
      return fail(spec, "not a whole number: '%s'", val);
    *(long *)o->dest = v;
    return 0;
  }
  case FERRY_OPT_DOUBLE: {
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end)
      return fail(spec, "not a number: '%s'", val);
    *(double *)o->dest = v;
    return 0;
  }
  case FERRY_OPT_LIST: {
    struct ferry_opt_list *l = o->dest;
    if (l->n >= FERRY_OPT_LIST_MAX)
      return fail(spec, "too many values for --%s", o->name);
    l->items[l->n++] = val;
    return 0;
  }
  }
  return 2;
}

int ferry_opts_parse(const ferry_cmd_spec *spec, int argc, char **argv,
                     int *npos) {
  int pos = 1;
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      while (++i < argc)
        argv[pos++] = argv[i];
      break;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      ferry_opts_help(stdout, spec);
      return 1;
    }
    if (a[0] != '-' || a[1] != '-' || a[2] == 0) {
      argv[pos++] = a;
      continue;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    int ambiguous;
    const ferry_opt *o = find_opt(spec, name, n, &ambiguous);
    if (!o)
      return fail(spec, ambiguous ? "ambiguous option: %s"
                                  : "unrecognized option: %s",
                  a);
    const char *val = NULL;
    if (o->kind == FERRY_OPT_FLAG) {
      if (eq)
        return fail(spec, "option takes no value: %s", a);
    } else if (eq) {
      val = eq + 1;
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      return fail(spec, "option needs a value: %s", a);
    }
    int rc = store(spec, o, val);
    if (rc)
      return rc;
  }
  *npos = pos - 1;
  return 0;
}

int ferry_opts_parse_no_args(const ferry_cmd_spec *spec, int argc,
                             char **argv) {
  int npos = 0;
  int rc = ferry_opts_parse(spec, argc, argv, &npos);
  if (rc)
    return rc;
  if (npos > 0) {
    fprintf(stderr, "ferry %s: unexpected argument '%s'\n", spec->name, argv[1]);
    return 2;
  }
  return 0;
}

int ferry_opts_check_ports(const char *cmd, long port, long port_end) {
  if (port < 0 || port > 65535 || port_end < 0 || port_end > 65536) {
    fprintf(stderr, "ferry %s: port out of range\n", cmd);
    return 2;
  }
  return 0;
}

int ferry_opts_tracker_addr(const char *cmd, const char **host, long *port) {
  if (!*host || !**host)
    *host = getenv("TVM_TRACKER_HOST");
  if (!*host || !**host)
    *host = "127.0.0.1";
  if (*port == 0 && getenv("TVM_TRACKER_PORT"))
    *port = strtol(getenv("TVM_TRACKER_PORT"), NULL, 10);
  if (*port == 0)
    *port = 9190;
  if (*port < 1 || *port > 65535) {
    fprintf(stderr, "ferry %s: port out of range\n", cmd);
    return 2;
  }
  return 0;
}

void ferry_opts_help(FILE *f, const ferry_cmd_spec *spec) {
  fprintf(f, "usage: ferry %s %s\n\n%s\n\noptions:\n", spec->name, spec->usage,
          spec->summary);
  for (int i = 0; i < spec->nopts; i++) {
    const ferry_opt *o = &spec->opts[i];
    char left[64];
    if (o->kind == FERRY_OPT_FLAG)
      snprintf(left, sizeof left, "--%s", o->name);
    else
      snprintf(left, sizeof left, "--%s %s", o->name,
               o->metavar ? o->metavar : "VALUE");
    fprintf(f, "  %-26s %s\n", left, o->help);
  }
  fprintf(f, "  %-26s %s\n", "-h, --help", "show this help and exit");
}

int ferry_opts_host_port(const char *s, char *host_out, size_t host_cap,
                         int *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s)
    return -1;
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (hl == 0 || hl >= host_cap)
    return -1;
  char *end = NULL;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
    return -1;
  memcpy(host_out, h, hl);
  host_out[hl] = 0;
  *port = (int)p;
  return 0;
}
