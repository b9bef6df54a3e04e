/* `ferry drain KEY|ADDR`: an operator stops a ferry tracker from handing
 * out a device (docs/internals/farm.md).  The running session finishes;
 * the device's offers are held (still pending for its server, still
 * counted as free in TVM's SUMMARY) until `ferry drain --undo`.  The
 * request carries the tracker's --stop-key, the operator's secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "client/tracker_link.h"
#include "wire/constants.h"
#include "wire/tracker_msg.h"

int ferry_cmd_drain(int argc, char **argv) {
  const char *host = NULL, *key = NULL;
  long port = 0;
  int undo = 0;
  const ferry_opt opts[] = {
      {"host", FERRY_OPT_STRING, &host, "HOST",
       "tracker address ($TVM_TRACKER_HOST or 127.0.0.1)"},
      {"port", FERRY_OPT_INT, &port, "PORT", "tracker port ($TVM_TRACKER_PORT or 9190)"},
      {"stop-key", FERRY_OPT_STRING, &key, "KEY",
       "the tracker's --stop-key (required: draining is the operator's)"},
      {"undo", FERRY_OPT_FLAG, &undo, NULL, "offer the device again"},
  };
  const ferry_cmd_spec spec = {
      "drain", "[options] KEY|HOST:PORT",
      "Stop a ferry tracker from handing out a device (by key, by its address, or by its "
      "server's tracker connection); the running session finishes.",
      opts, (int)(sizeof opts / sizeof opts[0])};
  int npos = 0, rc = ferry_opts_parse(&spec, argc, argv, &npos);
  if (rc)
    return rc == 1 ? 0 : 2;
  if (npos != 1) {
    fprintf(stderr, "ferry drain: expected one KEY or HOST:PORT\n");
    return 2;
  }
  if (!key || !*key) {
    fprintf(stderr, "ferry drain: --stop-key is required (the tracker's --stop-key)\n");
    return 2;
  }
  if (ferry_opts_tracker_addr("drain", &host, &port))
    return 2;
  ferry_tracker_link l;
  ferry_tracker_link_init(&l);
  char err[512] = "";
  rc = ferry_tracker_link_connect(&l, host, (int)port, 10000, err, sizeof err);
  ferry_buf b;
  ferry_buf_init(&b, FERRY_TRACKER_MAX_FRAME);
  if (rc == 0)
    rc = ferry_tracker_encode_drain(&b, argv[1], key, undo);
  if (rc == 0)
    rc = ferry_tracker_link_call(&l, b.data, b.len, 10000, err, sizeof err);
  ferry_buf_close(&b);
  int n = 0;
  if (rc == 0)
    rc = ferry_tracker_decode_status(l.reply.data, l.reply.len, &n, err, sizeof err);
  ferry_tracker_link_close(&l);
  if (rc) {
    fprintf(stderr, "ferry drain: %s:%ld: %s\n", host, port,
            err[0] ? err : ferry_strerror(rc));
    return 1;
  }
  if (n < 0) {
    fprintf(stderr, "ferry drain: the tracker refused: wrong --stop-key, or no device "
                    "matches '%s'\n", argv[1]);
    return 1;
  }
  printf("%s %d device%s\n", undo ? "undrained" : "drained", n, n == 1 ? "" : "s");
  return 0;
}
