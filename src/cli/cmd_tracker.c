/* Placeholder until the tracker is built; replaced by the real command. */
#include <stdio.h>

#include "cli/commands.h"

int ferry_cmd_tracker(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "ferry: 'tracker' is not built yet\n");
  return 2;
}
