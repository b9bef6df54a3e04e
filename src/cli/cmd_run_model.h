/* `ferry run MODEL.so` without FUNC (or with --model): run a whole network
 * packaged with a GraphExecutorFactory (cmd_run_model.c) or, from TVM >=
 * 0.20, a Relax VM executable (cmd_run_relax.c). */
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
/* The rest of the run for a Relax VM executable (cmd_run_relax.c): rexec
 * is the loaded root module; t_start the clock when the load ended. */
int cli_run_relax(ferry_client *c, ferry_remote *rexec, const run_model_opts *o, double t_start);

/* Shared by both: the client's monotonic clock, one stage line, one
 * output's summary line, and the device's timing of mod[name](args). */
double cli_now_s(void);
void cli_stage(const char *name, double secs);
void cli_print_output(int i, const DLTensor *t, const void *data, uint64_t nbytes);
int cli_time_function(ferry_client *c, ferry_remote *mod, const char *name,
                      const ferry_value *args, int nargs, long repeat);

#endif
