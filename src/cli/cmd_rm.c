/* `ferry rm`: remove files from the server's session folder
 * (tvm.rpc.server.remove). */
#include <stdio.h>

#include "cli/client_cli.h"
#include "cli/commands.h"

int ferry_cmd_rm(int argc, char **argv) {
  cli_conn conn = CLI_CONN_DEFAULTS;
  const ferry_opt table[] = {CLI_CONN_OPTS(conn)};
  const ferry_cmd_spec spec = {"rm", "[connection options] NAME...",
                               "Remove files from a remote server's session folder.", table,
                               (int)(sizeof table / sizeof table[0])};
  int npos = 0, rc = ferry_opts_parse(&spec, argc, argv, &npos);
  if (rc)
    return rc == 1 ? 0 : 2;
  if (npos < 1) {
    fprintf(stderr, "ferry rm: expected NAME...\n");
    return 2;
  }
  ferry_client *c = NULL;
  int status = cli_connect("rm", &conn, &c);
  for (int i = 1; i <= npos && !status; i++)
    if (ferry_client_remove(c, argv[i]) != 0)
      status = cli_fail("rm", c, argv[i]);
  ferry_client_close(c);
  return status;
}
