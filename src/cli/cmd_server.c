/* `ferry server` (alias rpc_server): the device RPC server, with the
 * options of TVM's `python -m tvm.exec.rpc_server` (spec §9.3). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "server/server_main.h"

/* "123", "64K", "512M", "2G" (powers of 1024) -> bytes; -1 if malformed
 * or past 2^62. */
static int parse_bytes(const char *text, int64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || end == text || *text == '-' || *text == '+')
    return -1;
  unsigned shift = 0;
  switch (*end) {
  case 0:
    break;
  case 'k': case 'K':
    shift = 10;
    break;
  case 'm': case 'M':
    shift = 20;
    break;
  case 'g': case 'G':
    shift = 30;
    break;
  default:
    return -1;
  }
  /* After the letter: nothing, "B" or "iB" (512M, 512MB, 512MiB). */
  if (*end && strcmp(end + 1, "") != 0 && strcmp(end + 1, "B") != 0 &&
      strcmp(end + 1, "iB") != 0)
    return -1;
  if (v > ((unsigned long long)1 << 62) >> shift)
    return -1;
  *out = (int64_t)(v << shift);
  return 0;
}

int ferry_cmd_server(int argc, char **argv) {
  const char *host = "127.0.0.1";
  long port = 9090, port_end = 9199;
  const char *tracker = NULL, *key = "", *custom_addr = NULL;
  const char *load_library = NULL, *work_dir = NULL, *allow = NULL;
  const char *work_quota = NULL, *allow_hop = NULL, *max_memory = NULL, *health_check = NULL;
  long health_failures = 3;
  int through_proxy = 0, silent = 0, no_fork = 0, testing = 0, allow_popen = 0;
  double handshake_timeout = 10.0, session_timeout = 0.0;
  const ferry_opt opts[] = {
      {"host", FERRY_OPT_STRING, &host, "HOST",
       "address to bind, or the proxy's with --through-proxy (127.0.0.1)"},
      {"port", FERRY_OPT_INT, &port, "PORT",
       "first port tried, or the proxy's port; 0 = any free port (9090)"},
      {"port-end", FERRY_OPT_INT, &port_end, "PORT",
       "end of the port search, exclusive (9199)"},
      {"tracker", FERRY_OPT_STRING, &tracker, "HOST:PORT",
       "register at this tracker (needs --key)"},
      {"key", FERRY_OPT_STRING, &key, "KEY", "device key (\"\")"},
      {"custom-addr", FERRY_OPT_STRING, &custom_addr, "ADDR",
       "address the tracker gives clients (default: what it sees)"},
      {"through-proxy", FERRY_OPT_FLAG, &through_proxy, NULL,
       "dial a proxy at --host:--port instead of listening"},
      {"load-library", FERRY_OPT_STRING, &load_library, "LIBS",
       "':'-separated libraries loaded (RTLD_GLOBAL) in every session"},
      {"work-dir", FERRY_OPT_STRING, &work_dir, "DIR",
       "parent of the per-session folders (a fresh folder under $TMPDIR)"},
      {"silent", FERRY_OPT_FLAG, &silent, NULL, "log errors only"},
      {"no-fork", FERRY_OPT_FLAG, &no_fork, NULL,
       "run sessions in-process (debugging: no timeout, no isolation)"},
      {"handshake-timeout", FERRY_OPT_DOUBLE, &handshake_timeout, "SECONDS",
       "drop clients that do not finish the handshake in time (10)"},
      {"session-timeout", FERRY_OPT_DOUBLE, &session_timeout, "SECONDS",
       "upper limit on every session, also without -timeout= (0 = none)"},
      {"work-quota", FERRY_OPT_STRING, &work_quota, "BYTES",
       "most a session's folder may hold, K/M/G suffixes, 0 = no limit "
       "(1G or half the free space, whichever is less)"},
      {"max-memory", FERRY_OPT_STRING, &max_memory, "BYTES",
       "most device memory one session may hold (buffers, a model's "
       "tensors), K/M/G suffixes (half the RAM)"},
      {"testing", FERRY_OPT_FLAG, &testing, NULL,
       "offer the rpc.test.* functions of TVM's RPC test suite (off)"},
      {"allow-hop", FERRY_OPT_STRING, &allow_hop, "HOST:PORT[,...]",
       "servers a multi-hop session (rpc.Connect) may dial; PORT may be * "
       "(none: refused)"},
      {"allow-popen", FERRY_OPT_FLAG, &allow_popen, NULL,
       "let a session run the executable its client sends as a minrpc "
       "server (rpc.PopenSession) (off)"},
      {"allow", FERRY_OPT_STRING, &allow, "CIDR[,CIDR...]",
       "accept clients from these networks only (everybody)"},
      {"health-check", FERRY_OPT_STRING, &health_check, "CMD",
       "self-test run (sh -c) before the first offer and after a crashed or timed-out "
       "session; exit 0 passes (default: fork and write in the work folder)"},
      {"health-failures", FERRY_OPT_INT, &health_failures, "N",
       "failed self-tests in a row before the server reports itself offline (3)"},
  };
  const ferry_cmd_spec spec = {
      "server", "[options]",
      "Run a device RPC server: sessions of TVM's RPC protocol, each in a "
      "forked process with its own work folder.",
      opts, (int)(sizeof opts / sizeof opts[0])};
  int rc = ferry_opts_parse_no_args(&spec, argc, argv);
  if (rc)
    return rc == 1 ? 0 : rc;
  if (ferry_opts_check_ports("server", port, port_end))
    return 2;
  if (handshake_timeout <= 0 || handshake_timeout > 3600 ||
      session_timeout < 0) {
    fprintf(stderr, "ferry server: timeout out of range\n");
    return 2;
  }
  if (strlen(key) > FERRY_SERVER_MAX_DEVICE_KEY || strpbrk(key, " \t\r\n\v\f")) {
    fprintf(stderr, "ferry server: --key must be at most %d bytes without "
                    "whitespace\n", FERRY_SERVER_MAX_DEVICE_KEY);
    return 2;
  }
  ferry_server_config cfg;
  memset(&cfg, 0, sizeof cfg);
  static ferry_allow acl; /* large (64 entries): not on the stack */
  ferry_allow_init(&acl);
  if (allow) {
    char why[256];
    if (ferry_allow_parse(&acl, allow, why, sizeof why) != 0) {
      fprintf(stderr, "ferry server: %s\n", why);
      return 2;
    }
    if (through_proxy) {
      fprintf(stderr, "ferry server: --allow is for listening servers; with "
                      "--through-proxy the server dials out (use the proxy's "
                      "--allow)\n");
      return 2;
    }
  }
  cfg.allow = &acl;
  cfg.work_quota = -1;
  cfg.testing = testing;
  cfg.allow_popen = allow_popen;
  if (allow_hop) {
    char why[256];
    if (ferry_server_allow_hop_check(allow_hop, why, sizeof why) != 0) {
      fprintf(stderr, "ferry server: %s\n", why);
      return 2;
    }
    cfg.allow_hop = allow_hop;
  }
  if (work_quota && parse_bytes(work_quota, &cfg.work_quota) != 0) {
    fprintf(stderr, "ferry server: --work-quota wants a byte count such as "
                    "1073741824, 512M or 2G, not '%s'\n", work_quota);
    return 2;
  }
  int64_t max_mem = 0;
  if (max_memory && (parse_bytes(max_memory, &max_mem) != 0 || max_mem <= 0)) {
    fprintf(stderr, "ferry server: --max-memory wants a byte count above 0 such as "
                    "1073741824, 512M or 2G, not '%s'\n", max_memory);
    return 2;
  }
  cfg.max_memory = (uint64_t)max_mem;
  char thost[256];
  if (tracker && *tracker) {
    if (!*key) {
      fprintf(stderr, "ferry server: --tracker needs --key to name the kind "
                      "of device\n");
      return 2;
    }
    if (ferry_opts_host_port(tracker, thost, sizeof thost,
                             &cfg.tracker_port) != 0) {
      fprintf(stderr, "ferry server: --tracker wants HOST:PORT, not '%s'\n",
              tracker);
      return 2;
    }
    if (!through_proxy)
      cfg.tracker_host = thost;
  }
  ferry_log_set_component("server");
  if (silent)
    ferry_log_set_level(FERRY_LOG_ERROR);
  if (through_proxy && tracker)
    ferry_info("--tracker is not used with --through-proxy: the proxy "
               "registers its servers");
  cfg.host = host;
  cfg.port = (int)port;
  cfg.port_end = (int)port_end;
  cfg.key = key;
  cfg.custom_addr = custom_addr;
  cfg.through_proxy = through_proxy;
  cfg.load_library = load_library;
  cfg.work_dir = work_dir;
  cfg.no_fork = no_fork;
  cfg.health_check = health_check;
  cfg.health_failures = (int)health_failures;
  if (health_failures < 1 || health_failures > 1000) {
    fprintf(stderr, "ferry server: --health-failures must be in [1, 1000]\n");
    return 2;
  }
  cfg.handshake_ms = (int)(handshake_timeout * 1000.0);
  cfg.max_session_s = session_timeout;
  char err[512] = "";
  rc = ferry_server_run(&cfg, err, sizeof err);
  if (rc) {
    fprintf(stderr, "ferry server: %s\n", err[0] ? err : ferry_strerror(rc));
    return 1;
  }
  return 0;
}
