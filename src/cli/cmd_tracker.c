/* `ferry tracker` (alias rpc_tracker): the RPC tracker, with the options of
 * TVM's `python -m tvm.exec.rpc_tracker` (spec §9) plus ferry's bounds. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "tracker/tracker.h"

/* --max-session @FILE: one SECONDS or KEY=SECONDS per line ('#' starts
 * a comment), at most 8 KiB, joined into the flag's comma form in out.
 * 0, or 2 after printing why. */
static int read_leases(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "ferry tracker: --max-session @%s: cannot open it\n", path);
    return 2;
  }
  char line[512];
  size_t n = 0;
  int lineno = 0;
  out[0] = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = 0;
    char *p = line, *e = line + strlen(line);
    while (*p == ' ' || *p == '\t')
      p++;
    while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
      *--e = 0;
    if (!*p)
      continue;
    if (strchr(p, ',') || n + strlen(p) + 2 > cap) {
      fprintf(stderr, "ferry tracker: --max-session @%s:%d: %s\n", path, lineno,
              strchr(p, ',') ? "one KEY=SECONDS per line" : "the file is too large (8 KiB)");
      fclose(f);
      return 2;
    }
    n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", p);
  }
  fclose(f);
  if (!n) {
    fprintf(stderr, "ferry tracker: --max-session @%s: no entries\n", path);
    return 2;
  }
  return 0;
}

int ferry_cmd_tracker(int argc, char **argv) {
  const char *host = "127.0.0.1", *stop_key = NULL, *allow_spec = NULL,
             *allow_servers_spec = NULL, *max_session = NULL,
             *state_dir = NULL;
  long port = 9190, port_end = 9199, http_port = -1;
  double frame_timeout = 10;
  int silent = 0;
  const ferry_opt opts[] = {
      {"host", FERRY_OPT_STRING, &host, "HOST",
       "address to listen on (127.0.0.1; TVM's 0.0.0.0 exposes it to the network)"},
      {"port", FERRY_OPT_INT, &port, "PORT", "first port tried; 0 = any free port (9190)"},
      {"port-end", FERRY_OPT_INT, &port_end, "PORT",
       "end of the port search, exclusive (9199)"},
      {"silent", FERRY_OPT_FLAG, &silent, NULL, "log warnings and errors only"},
      {"stop-key", FERRY_OPT_STRING, &stop_key, "KEY",
       "secret that a STOP request must carry (random and never shown)"},
      {"frame-timeout", FERRY_OPT_DOUBLE, &frame_timeout, "SECONDS",
       "drop a peer that starts a message and does not finish it in time (10)"},
      {"allow", FERRY_OPT_STRING, &allow_spec, "CIDR[,CIDR...]",
       "accept connections only from these networks (default: from anywhere)"},
      {"allow-servers", FERRY_OPT_STRING, &allow_servers_spec, "CIDR[,CIDR...]",
       "accept PUT and UPDATE_INFO (server registrations) only from these networks; "
       "others get FAIL (default: from anyone)"},
      {"max-session", FERRY_OPT_STRING, &max_session, "SECONDS|KEY=SECONDS[,...]|@FILE",
       "lease: a ferry server ends a session after this long and offers the device "
       "again; per key, '*=S' for the other keys; @FILE: one entry per line "
       "(default: no lease)"},
      {"http-port", FERRY_OPT_INT, &http_port, "PORT",
       "serve the dashboard, /api/status and /metrics on --host:PORT; 0 = any free port "
       "(default: off)"},
      {"state-dir", FERRY_OPT_STRING, &state_dir, "DIR",
       "keep the session history in DIR/history.jsonl across restarts (default: memory only)"},
  };
  const ferry_cmd_spec spec = {
      "tracker", "[options]",
      "Run an RPC tracker: servers register their devices by key, clients "
      "request one and get its address.",
      opts, (int)(sizeof opts / sizeof opts[0])};
  int rc = ferry_opts_parse_no_args(&spec, argc, argv);
  if (rc)
    return rc == 1 ? 0 : rc;
  if (ferry_opts_check_ports("tracker", port, port_end))
    return 2;
  if (!(frame_timeout > 0) || frame_timeout > 86400) {
    fprintf(stderr, "ferry tracker: --frame-timeout must be in (0, 86400]\n");
    return 2;
  }
  if (stop_key && strlen(stop_key) > 4096) {
    fprintf(stderr, "ferry tracker: --stop-key too long\n");
    return 2;
  }
  ferry_allow allow, allow_servers;
  ferry_allow_init(&allow);
  ferry_allow_init(&allow_servers);
  char err[256] = "";
  if (allow_spec && ferry_allow_parse(&allow, allow_spec, err, sizeof err) != 0) {
    fprintf(stderr, "ferry tracker: --allow: %s\n", err);
    return 2;
  }
  if (allow_servers_spec &&
      ferry_allow_parse(&allow_servers, allow_servers_spec, err, sizeof err) != 0) {
    fprintf(stderr, "ferry tracker: --allow-servers: %s\n", err);
    return 2;
  }
  if (http_port < -1 || http_port > 65535) {
    fprintf(stderr, "ferry tracker: --http-port must be in [0, 65535]\n");
    return 2;
  }
  static char lease_text[8192];
  if (max_session && max_session[0] == '@') {
    if (read_leases(max_session + 1, lease_text, sizeof lease_text))
      return 2;
    max_session = lease_text;
  }
  ferry_log_set_component("tracker");
  ferry_log_set_level(silent ? FERRY_LOG_WARN : FERRY_LOG_INFO);
  ferry_tracker_opts o = {host, (int)port, (int)port_end, stop_key, 1,
                          (int)(frame_timeout * 1000), &allow, &allow_servers,
                          max_session, (int)http_port, state_dir};
  ferry_tracker *t;
  rc = ferry_tracker_new(&t, &o, err, sizeof err);
  if (rc) {
    fprintf(stderr, "ferry tracker: %s\n", err[0] ? err : ferry_strerror(rc));
    return 1;
  }
  ferry_notice("listening on %s:%d", ferry_tracker_host(t), ferry_tracker_port(t));
  if (ferry_tracker_http_port(t) >= 0)
    ferry_notice("http on %s:%d (dashboard /, /api/status, /metrics)", ferry_tracker_host(t),
                 ferry_tracker_http_port(t));
  char text[256];
  if (allow.n) {
    ferry_allow_format(&allow, text, sizeof text);
    ferry_notice("connections accepted only from %s", text);
  }
  if (allow_servers.n) {
    ferry_allow_format(&allow_servers, text, sizeof text);
    ferry_notice("servers (PUT, UPDATE_INFO) accepted only from %s", text);
  }
  rc = ferry_tracker_run(t);
  ferry_tracker_free(t);
  return rc ? 1 : 0;
}
