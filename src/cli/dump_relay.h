/* The relay of `ferry dump --listen`: accepts connections, dials the
 * target for each, copies bytes both ways unchanged and prints each
 * message as it passes (docs/internals/dump.md). */
#ifndef FERRY_CLI_DUMP_RELAY_H
#define FERRY_CLI_DUMP_RELAY_H

#include "base/allow.h"
#include "wire/dump.h"

/* Connections relayed at once unless --max-conns says otherwise. */
#define FERRY_DUMP_RELAY_MAX_CONNS 64
/* Bytes one direction holds at a time: what recv() got, sent on before
 * the next recv(), so a slow receiver stops the sender (back-pressure). */
#define FERRY_DUMP_RELAY_CHUNK (64u << 10)

typedef struct ferry_dump_relay_cfg {
  const char *host; /* listen address */
  int port;
  char to_host[256];
  int to_port;
  ferry_allow allow;
  const char *raw_path; /* NULL: no recording */
  int max_conns;
  ferry_dump_opts opts;
} ferry_dump_relay_cfg;

/* Runs until SIGINT/SIGTERM; returns the exit status (1 when it could not
 * listen or open the recording). */
int ferry_dump_relay_run(const ferry_dump_relay_cfg *cfg);

#endif
