/* The subcommands of the multi-call binary.  One line per command: its
 * name, the busybox-style program name that selects it (NULL if none), and
 * a one-line summary for `ferry --help`.  Each is implemented in
 * cmd_<name>.c as `int ferry_cmd_<name>(int argc, char **argv)` where
 * argv[0] is the command name; it returns the process exit status. */
#ifndef FERRY_CLI_COMMANDS_H
#define FERRY_CLI_COMMANDS_H

#define FERRY_COMMAND_MAP(XX)                                                 \
  XX(tracker, "rpc_tracker", "run an RPC tracker (device queues by key)")     \
  XX(query, "query_rpc_tracker", "show a tracker's servers and queues")       \
  XX(drain, NULL, "stop a ferry tracker from handing out a device")           \
  XX(proxy, "rpc_proxy", "run an RPC proxy for devices the host cannot reach") \
  XX(server, "rpc_server", "run a device RPC server")                         \
  XX(run, NULL, "upload a library, call a function on .npy tensors")          \
  XX(time, NULL, "time a function of a library on a remote server")           \
  XX(upload, NULL, "upload files to a remote session folder")                 \
  XX(download, NULL, "download a file from a remote session folder")          \
  XX(ls, NULL, "list a remote session folder")                                \
  XX(rm, NULL, "remove files from a remote session folder")                 \
  XX(pack, NULL, "package graph JSON, params and kernels as one model library") \
  XX(dump, NULL, "relay RPC traffic and print every message decoded")

#define FERRY_COMMAND_DECL_(name, alias, summary)                             \
  int ferry_cmd_##name(int argc, char **argv);
FERRY_COMMAND_MAP(FERRY_COMMAND_DECL_)
#undef FERRY_COMMAND_DECL_

#endif
