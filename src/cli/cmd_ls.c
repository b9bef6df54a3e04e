/* `ferry ls`: list a folder of the server's session (tvm.rpc.server.listdir),
 * one entry per line. */
#include <stdio.h>

#include "cli/client_cli.h"
#include "cli/commands.h"

int ferry_cmd_ls(int argc, char **argv) {
  cli_conn conn = CLI_CONN_DEFAULTS;
  const ferry_opt table[] = {CLI_CONN_OPTS(conn)};
  const ferry_cmd_spec spec = {"ls", "[connection options] [DIR]",
                               "List the files of a remote server's session folder.", table,
                               (int)(sizeof table / sizeof table[0])};
  int npos = 0, rc = ferry_opts_parse(&spec, argc, argv, &npos);
  if (rc)
    return rc == 1 ? 0 : 2;
  if (npos > 1) {
    fprintf(stderr, "ferry ls: expected at most one DIR\n");
    return 2;
  }
  ferry_client *c = NULL;
  int status = cli_connect("ls", &conn, &c);
  char **names = NULL;
  size_t n = 0;
  if (!status && ferry_client_listdir(c, npos ? argv[1] : "", &names, &n) != 0)
    status = cli_fail("ls", c, "listdir failed");
  for (size_t i = 0; i < n; i++)
    printf("%s\n", names[i]);
  ferry_client_free_names(names, n);
  ferry_client_close(c);
  return status;
}
