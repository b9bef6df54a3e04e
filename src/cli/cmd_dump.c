/* `ferry dump`: show what passes between two parts of a TVM RPC setup.
 *
 *   ferry dump --listen PORT --to HOST:PORT [--json] [--raw FILE]
 *   ferry dump --read FILE            (a --raw recording, or a pcap capture)
 *
 * The decoding is the wire layer's (src/wire/dump*.c); the relay is
 * dump_relay.c; this file parses options and reads files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/dump_relay.h"
#include "cli/opts.h"
#include "cli/dump_pcap_file.h"
#include "wire/dump_record.h"

static int flush_out(ferry_buf *out) {
  if (out->len && fwrite(out->data, 1, out->len, stdout) != out->len)
    return -1;
  out->len = 0;
  return 0;
}

/* A --raw recording: one record per line. */
static int read_jsonl(FILE *f, const char *path, const ferry_dump_opts *o) {
  ferry_dump_set set;
  ferry_dump_set_init(&set, o);
  ferry_dump_record rec;
  ferry_dump_record_init(&rec);
  ferry_buf out, line;
  ferry_buf_init(&out, (size_t)64 << 20);
  ferry_buf_init(&line, FERRY_DUMP_MAX_RECORD + 1);
  int status = 0;
  long lineno = 0;
  double last_t = 0;
  for (;;) {
    int ch = 0;
    line.len = 0;
    while ((ch = getc(f)) != EOF && ch != '\n') {
      uint8_t b = (uint8_t)ch;
      if (ferry_buf_append(&line, &b, 1))
        break;
    }
    if (ch == EOF && !line.len)
      break;
    lineno++;
    if (ch != EOF && ch != '\n') {
      fprintf(stderr, "ferry dump: %s:%ld: record over the %u-byte ceiling\n", path, lineno,
              FERRY_DUMP_MAX_RECORD);
      status = 1;
      break;
    }
    if (!line.len)
      continue;
    char err[128];
    if (ferry_dump_record_parse((const char *)line.data, line.len, &rec, err, sizeof err)) {
      fprintf(stderr, "ferry dump: %s:%ld: %s\n", path, lineno, err);
      status = 1;
      continue;
    }
    last_t = rec.t;
    int rc = ferry_dump_set_feed(&set, rec.conn, rec.kind, rec.dir, rec.t, rec.bytes.data,
                                 rec.bytes.len, &out);
    if (rc) {
      fprintf(stderr, "ferry dump: %s:%ld: %s\n", path, lineno, ferry_strerror(rc));
      status = 1;
    }
    if (flush_out(&out))
      break;
  }
  if (ferry_dump_set_finish(&set, last_t, &out))
    status = 1;
  (void)flush_out(&out);
  ferry_dump_set_close(&set);
  ferry_dump_record_close(&rec);
  ferry_buf_close(&out);
  ferry_buf_close(&line);
  return status;
}

static int read_file(const char *path, const ferry_dump_opts *o, long port) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "ferry dump: cannot open %s: %s\n", path, strerror(errno));
    return 1;
  }
  uint8_t magic[4] = {0};
  size_t got = fread(magic, 1, 4, f);
  int status;
  if (got == 4 && ferry_dump_pcap_is_capture(magic)) {
    rewind(f);
    char err[160];
    status = ferry_dump_pcap_read_file(f, o, (int)port, stdout, err, sizeof err);
    if (status)
      fprintf(stderr, "ferry dump: %s: %s\n", path, err);
    status = status ? 1 : 0;
  } else {
    rewind(f);
    status = read_jsonl(f, path, o);
  }
  fclose(f);
  return status;
}

int ferry_cmd_dump(int argc, char **argv) {
  long listen_port = -1, max_str = FERRY_DUMP_DEFAULT_MAX_STR,
       max_decode = FERRY_DUMP_DEFAULT_MAX_DECODE, max_conns = FERRY_DUMP_RELAY_MAX_CONNS,
       port = 0;
  const char *to = NULL, *raw = NULL, *read = NULL, *host = "127.0.0.1", *allow = NULL;
  int json = 0;
  const ferry_opt opts[] = {
      {"listen", FERRY_OPT_INT, &listen_port, "PORT", "relay: port to listen on"},
      {"host", FERRY_OPT_STRING, &host, "ADDR",
       "relay: address to listen on (default 127.0.0.1)"},
      {"to", FERRY_OPT_STRING, &to, "HOST:PORT", "relay: where to forward connections"},
      {"allow", FERRY_OPT_STRING, &allow, "CIDR[,CIDR...]",
       "relay: peers that may connect (default: all)"},
      {"max-conns", FERRY_OPT_INT, &max_conns, "N",
       "relay: connections relayed at once (default 64)"},
      {"raw", FERRY_OPT_STRING, &raw, "FILE", "relay: also record the bytes in FILE"},
      {"read", FERRY_OPT_STRING, &read, "FILE",
       "decode a --raw recording or a pcap/pcapng capture instead of relaying"},
      {"port", FERRY_OPT_INT, &port, "PORT",
       "read: in a capture, only TCP streams with this port (default: all)"},
      {"json", FERRY_OPT_FLAG, &json, NULL, "one JSON object per message"},
      {"max-str", FERRY_OPT_INT, &max_str, "N", "bytes of a string shown (default 80)"},
      {"max-decode", FERRY_OPT_INT, &max_decode, "BYTES",
       "larger packets are summarised, not decoded (default 4194304)"},
  };
  const ferry_cmd_spec spec = {
      "dump", "--listen PORT --to HOST:PORT | --read FILE",
      "relay TVM RPC traffic and print every message decoded", opts,
      (int)(sizeof opts / sizeof opts[0])};
  int rc = ferry_opts_parse_no_args(&spec, argc, argv);
  if (rc)
    return rc == 1 ? 0 : 2;
  if (max_str < 1 || max_str > 65536 || max_decode < 65536 || max_decode > (1L << 30) ||
      max_conns < 1 || max_conns > 4096 || port < 0 || port > 65535) {
    fprintf(stderr, "ferry dump: --max-str, --max-decode, --max-conns or --port out of "
                    "range\n");
    return 2;
  }
  ferry_dump_opts o;
  ferry_dump_opts_default(&o);
  o.json = json;
  o.max_str = (size_t)max_str;
  o.max_decode = (size_t)max_decode;
  if (read) {
    if (to || listen_port >= 0 || raw) {
      fprintf(stderr, "ferry dump: --read takes no --listen, --to or --raw\n");
      return 2;
    }
    return read_file(read, &o, port);
  }
  if (!to || listen_port < 0) {
    fprintf(stderr, "ferry dump: give --listen PORT and --to HOST:PORT, or --read FILE\n");
    return 2;
  }
  if (ferry_opts_check_ports("dump", listen_port, 0))
    return 2;
  ferry_dump_relay_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.host = host;
  cfg.port = (int)listen_port;
  if (ferry_opts_host_port(to, cfg.to_host, sizeof cfg.to_host, &cfg.to_port)) {
    fprintf(stderr, "ferry dump: --to %s is not HOST:PORT\n", to);
    return 2;
  }
  ferry_allow_init(&cfg.allow);
  if (allow) {
    char err[128];
    if (ferry_allow_parse(&cfg.allow, allow, err, sizeof err)) {
      fprintf(stderr, "ferry dump: --allow: %s\n", err);
      return 2;
    }
  }
  cfg.raw_path = raw;
  cfg.max_conns = (int)max_conns;
  cfg.opts = o;
  return ferry_dump_relay_run(&cfg);
}
