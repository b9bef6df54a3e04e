/* Placeholder until the server is built; replaced by the real command. */
#include <stdio.h>

#include "cli/commands.h"

int ferry_cmd_server(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "ferry: 'server' is not built yet\n");
  return 2;
}
