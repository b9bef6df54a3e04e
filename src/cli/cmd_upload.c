/* `ferry upload`: copy local files into the server's session folder
 * (tvm.rpc.server.upload). */
#include <stdio.h>
#include <string.h>

#include "cli/client_cli.h"
#include "cli/commands.h"

int ferry_cmd_upload(int argc, char **argv) {
  cli_conn conn = CLI_CONN_DEFAULTS;
  const char *name = NULL;
  const ferry_opt table[] = {
      CLI_CONN_OPTS(conn),
      {"name", FERRY_OPT_STRING, &name, "NAME",
       "name on the server (default: the file's basename; one FILE only)"},
  };
  const ferry_cmd_spec spec = {"upload", "[connection options] FILE... [--name NAME]",
                               "Upload files to a remote server's session folder.", table,
                               (int)(sizeof table / sizeof table[0])};
  int npos = 0, rc = ferry_opts_parse(&spec, argc, argv, &npos);
  if (rc)
    return rc == 1 ? 0 : 2;
  if (npos < 1 || (name && npos != 1)) {
    fprintf(stderr, "ferry upload: expected FILE... (--name needs exactly one FILE)\n");
    return 2;
  }
  ferry_client *c = NULL;
  int status = cli_connect("upload", &conn, &c);
  for (int i = 1; i <= npos && !status; i++)
    if (ferry_client_upload_file(c, argv[i], name) != 0)
      status = cli_fail("upload", c, "upload failed"); /* the message names the file */
  ferry_client_close(c);
  return status;
}
