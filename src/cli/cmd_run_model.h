/* `ferry run MODEL.so` without FUNC (or with --model): run a whole network
 * packaged with a GraphExecutorFactory (cmd_run_model.c). */
#ifndef FERRY_CLI_CMD_RUN_MODEL_H
#define FERRY_CLI_CMD_RUN_MODEL_H

#include "cli/client_cli.h"

typedef struct run_model_opts {
  const struct ferry_opt_list *inputs;  /* "x.npy" (by index) or "name=x.npy" */
  const struct ferry_opt_list *outputs; /* "y.npy": output 0, 1, ... in order */
  long repeat;                          /* timed runs */
} run_model_opts;

/* Everything after connecting; prints per-stage times; returns the exit
 * status. */
int cli_run_model(ferry_client *c, const char *lib, const run_model_opts *o);

#endif
