/* Placeholder until the query is built; replaced by the real command. */
#include <stdio.h>

#include "cli/commands.h"

int ferry_cmd_query(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "ferry: 'query' is not built yet\n");
  return 2;
}
