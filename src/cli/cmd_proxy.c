/* Placeholder until the proxy is built; replaced by the real command. */
#include <stdio.h>

#include "cli/commands.h"

int ferry_cmd_proxy(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "ferry: 'proxy' is not built yet\n");
  return 2;
}
