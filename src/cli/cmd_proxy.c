/* `ferry proxy` (alias rpc_proxy): the RPC proxy, with the options of TVM's
 * `python -m tvm.exec.rpc_proxy` (spec §9.2) plus ferry's bounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "proxy/proxy.h"

int ferry_cmd_proxy(int argc, char **argv) {
  ferry_proxy_config cfg;
  ferry_proxy_config_init(&cfg);
  long port = cfg.port, port_end = cfg.port_end, web_port = -1;
  const char *tracker = NULL, *web_root = NULL;
  int example_rpc = 0, silent = 0, use_splice = 0;
  double timeout = cfg.wait_s, handshake_timeout = cfg.handshake_ms / 1000.0;
  double high_water_kib = (double)(cfg.high_water >> 10);
  double max_buffer_mib = (double)(cfg.max_buffered >> 20);
  long max_per_addr = (long)cfg.max_per_addr;
  const char *allow_spec = NULL;
  const ferry_opt opts[] = {
      {"host", FERRY_OPT_STRING, &cfg.host, "HOST",
       "address of the TCP port and of the web port (127.0.0.1)"},
      {"port", FERRY_OPT_INT, &port, "PORT",
       "first TCP port tried; 0 = any free port (9090)"},
      {"port-end", FERRY_OPT_INT, &port_end, "PORT",
       "end of the port search, exclusive (9199)"},
      {"tracker", FERRY_OPT_STRING, &tracker, "HOST:PORT",
       "offer the servers that dial in at this tracker"},
      {"timeout", FERRY_OPT_DOUBLE, &timeout, "SECONDS",
       "without a tracker: how long a server or client waits for its "
       "partner before MISMATCH (600)"},
      {"handshake-timeout", FERRY_OPT_DOUBLE, &handshake_timeout, "SECONDS",
       "drop connections that do not finish the handshake in time (10)"},
      {"web-port", FERRY_OPT_INT, &web_port, "PORT",
       "HTTP/WebSocket port on --host (/ws); off unless given; 0 = any"},
      {"example-rpc", FERRY_OPT_FLAG, &example_rpc, NULL,
       "serve TVM's browser RPC example pages on the web port"},
      {"web-root", FERRY_OPT_STRING, &web_root, "DIR",
       "TVM source tree with the example's web build ($TVM_HOME or .)"},
      {"high-water", FERRY_OPT_DOUBLE, &high_water_kib, "KIB",
       "relay: stop reading a side while its partner has more queued (1024)"},
      {"max-buffer", FERRY_OPT_DOUBLE, &max_buffer_mib, "MIB",
       "relay memory of all pairs together: each direction may queue its "
       "share, at most --high-water (64)"},
      {"max-per-address", FERRY_OPT_INT, &max_per_addr, "N",
       "connections one address may have waiting or in the handshake (256)"},
      {"allow", FERRY_OPT_STRING, &allow_spec, "CIDR[,CIDR...]",
       "accept connections (TCP and web port) only from these networks"},
      {"splice", FERRY_OPT_FLAG, &use_splice, NULL,
       "Linux: relay plain TCP pairs inside the kernel with splice(2) "
       "instead of through the proxy's buffers (off)"},
      {"silent", FERRY_OPT_FLAG, &silent, NULL, "log warnings and errors only"},
  };
  const ferry_cmd_spec spec = {
      "proxy", "[options]",
      "Run an RPC proxy: devices dial in, clients connect, the proxy pairs "
      "them by key and relays their bytes.",
      opts, (int)(sizeof opts / sizeof opts[0])};
  int rc = ferry_opts_parse_no_args(&spec, argc, argv);
  if (rc)
    return rc == 1 ? 0 : rc;
  if (ferry_opts_check_ports("proxy", port, port_end))
    return 2;
  if (web_port < -1 || web_port > 65535) {
    fprintf(stderr, "ferry proxy: --web-port out of range\n");
    return 2;
  }
  if (!(timeout > 0) || timeout > 1e9 || !(handshake_timeout > 0) ||
      handshake_timeout > 3600) {
    fprintf(stderr, "ferry proxy: timeout out of range\n");
    return 2;
  }
  if (!(high_water_kib >= 64) || high_water_kib > 1024 * 1024) {
    fprintf(stderr, "ferry proxy: --high-water must be 64..1048576 KiB\n");
    return 2;
  }
  if (!(max_buffer_mib >= 1) || max_buffer_mib > 1024 * 1024) {
    fprintf(stderr, "ferry proxy: --max-buffer must be 1..1048576 MiB\n");
    return 2;
  }
  if (max_per_addr < 1 || max_per_addr > (long)cfg.max_conns) {
    fprintf(stderr, "ferry proxy: --max-per-address must be 1..%zu\n", cfg.max_conns);
    return 2;
  }
  ferry_allow allow;
  ferry_allow_init(&allow);
  if (allow_spec) {
    char aerr[256] = "";
    if (ferry_allow_parse(&allow, allow_spec, aerr, sizeof aerr) != 0) {
      fprintf(stderr, "ferry proxy: --allow: %s\n", aerr);
      return 2;
    }
    cfg.allow = &allow;
  }
  char thost[256];
  if (tracker && *tracker) {
    if (ferry_opts_host_port(tracker, thost, sizeof thost, &cfg.tracker_port) != 0 ||
        cfg.tracker_port <= 0 || cfg.tracker_port > 65535) {
      fprintf(stderr, "ferry proxy: --tracker wants HOST:PORT, not '%s'\n", tracker);
      return 2;
    }
    cfg.tracker_host = thost;
  }
  if (example_rpc && web_port < 0) {
    fprintf(stderr, "ferry proxy: --example-rpc needs --web-port\n");
    return 2;
  }
  if (!web_root)
    web_root = getenv("TVM_HOME") ? getenv("TVM_HOME") : ".";
  ferry_log_set_component("proxy");
  if (silent)
    ferry_log_set_level(FERRY_LOG_WARN);
  cfg.port = (int)port;
  cfg.port_end = (int)port_end;
  cfg.web_port = (int)web_port;
  cfg.wait_s = timeout;
  cfg.handshake_ms = (int)(handshake_timeout * 1000.0);
  cfg.example_rpc = example_rpc;
  cfg.web_root = web_root;
  cfg.high_water = (size_t)(high_water_kib * 1024);
  cfg.max_buffered = (size_t)(max_buffer_mib * 1024 * 1024);
  cfg.max_per_addr = (size_t)max_per_addr;
  cfg.splice = use_splice;
  char err[512] = "";
  rc = ferry_proxy_run(&cfg, err, sizeof err);
  if (rc) {
    fprintf(stderr, "ferry proxy: %s\n", err[0] ? err : ferry_strerror(rc));
    return 1;
  }
  return 0;
}
