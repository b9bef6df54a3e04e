/* `ferry download`: copy a file of the server's session folder here
 * (tvm.rpc.server.download). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client_cli.h"
#include "cli/commands.h"

int ferry_cmd_download(int argc, char **argv) {
  cli_conn conn = CLI_CONN_DEFAULTS;
  const char *out = NULL;
  const ferry_opt table[] = {
      CLI_CONN_OPTS(conn),
      {"output", FERRY_OPT_STRING, &out, "PATH",
       "where to write it ('-' for stdout; default: its basename here)"},
  };
  const ferry_cmd_spec spec = {"download", "[connection options] NAME [--output PATH]",
                               "Download a file from a remote server's session folder.",
                               table, (int)(sizeof table / sizeof table[0])};
  int npos = 0, rc = ferry_opts_parse(&spec, argc, argv, &npos);
  if (rc)
    return rc == 1 ? 0 : 2;
  if (npos != 1) {
    fprintf(stderr, "ferry download: expected one NAME\n");
    return 2;
  }
  const char *name = argv[1];
  if (!out) {
    out = strrchr(name, '/');
    out = out ? out + 1 : name;
    if (!*out || strcmp(out, "..") == 0 || strcmp(out, ".") == 0) {
      fprintf(stderr, "ferry download: give --output for '%s'\n", name);
      return 2;
    }
  }
  ferry_client *c = NULL;
  int status = cli_connect("download", &conn, &c);
  void *data = NULL;
  size_t len = 0;
  if (!status && ferry_client_download(c, name, &data, &len) != 0)
    status = cli_fail("download", c, "download failed"); /* the message names the file */
  if (!status)
    status = cli_write_file("download", out, data, len);
  free(data);
  ferry_client_close(c);
  return status;
}
