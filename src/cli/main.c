/* ferry: one binary, many tools.  `ferry <command> ...`, or the binary
 * installed under a tool's TVM-style name (rpc_tracker, query_rpc_tracker,
 * rpc_proxy, rpc_server) behaves as that command. */
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/commands.h"

typedef struct command {
  const char *name;
  const char *alias;
  const char *summary;
  int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
#define FERRY_COMMAND_ROW_(name, alias, summary)                              \
  {#name, alias, summary, ferry_cmd_##name},
    FERRY_COMMAND_MAP(FERRY_COMMAND_ROW_)
#undef FERRY_COMMAND_ROW_
};

static void usage(FILE *f) {
  fprintf(f, "usage: ferry <command> [options]\n\n"
             "ferry is the Apache TVM RPC system in C, wire-compatible with "
             "TVM.\n\ncommands:\n");
  for (size_t i = 0; i < FERRY_ARRAY_SIZE(commands); i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n`ferry <command> --help` lists a command's options.\n");
}

static const command *lookup(const char *name) {
  for (size_t i = 0; i < FERRY_ARRAY_SIZE(commands); i++) {
    if (strcmp(commands[i].name, name) == 0 ||
        (commands[i].alias && strcmp(commands[i].alias, name) == 0))
      return &commands[i];
  }
  return NULL;
}

int main(int argc, char **argv) {
  /* A peer that vanishes must surface as EPIPE from write(), not kill us. */
  signal(SIGPIPE, SIG_IGN);
  char self[256];
  snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "ferry");
  const char *prog = basename(self);
  const command *c = NULL;
  if (strcmp(prog, "ferry") != 0)
    c = lookup(prog);
  if (c)
    return c->run(argc, argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    printf("ferry %s\n", FERRY_VERSION);
    return 0;
  }
  c = lookup(argv[1]);
  if (!c) {
    fprintf(stderr, "ferry: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
  }
  return c->run(argc - 1, argv + 1);
}
