/* `ferry time`: `ferry run`'s arguments, but the function is measured with
 * the server's runtime.RPCTimeEvaluator (TVM's time_evaluator) and the
 * mean and standard deviation per call are printed in microseconds. */
#include "cli/client_cli.h"
#include "cli/commands.h"

int ferry_cmd_time(int argc, char **argv) { return cli_run_or_time(argc, argv, 1); }
