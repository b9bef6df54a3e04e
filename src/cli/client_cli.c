/* Shared parts of the client subcommands; see client_cli.h. */
#include "cli/client_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *cmd, ferry_client *c, const char *what) {
  const char *msg = c ? ferry_client_errmsg(c) : "";
  fprintf(stderr, "ferry %s: %s%s%s\n", cmd, what, msg[0] ? ": " : "", msg);
  return 1;
}

/* What to try after a failed connect, by the address the user gave and
 * the code (ferry_client_connect_tracker keeps the "cannot reach" codes
 * for the tracker itself).  "" when the message says enough. */
static const char *connect_hint(const cli_conn *conn, int rc) {
  int unreachable = rc == FERRY_ECONNREFUSED || rc == FERRY_ESYS;
  if (rc == FERRY_ENOTFOUND)
    return conn->tracker ? " (check --tracker HOST:PORT)"
                         : conn->proxy ? " (check --proxy HOST:PORT)" : " (check --host)";
  if (conn->tracker) {
    if (unreachable)
      return " (is `ferry tracker` running there? check --tracker HOST:PORT)";
    if (rc == FERRY_ETIMEDOUT)
      return " (check --key; `ferry query --host HOST --port PORT` lists the tracker's "
             "servers; --timeout waits longer)";
    return "";
  }
  if (conn->proxy) {
    if (unreachable)
      return " (is `ferry proxy` running there? check --proxy HOST:PORT)";
    if (rc == FERRY_ETIMEDOUT)
      return " (the proxy pairs us once a server registers --key there; check --key, "
             "--timeout waits longer)";
    return "";
  }
  if (unreachable)
    return " (is `ferry server` running there? check --host and --port)";
  if (rc == FERRY_EMISMATCH)
    return " (check --key: it must match the server's --key)";
  if (rc == FERRY_ETIMEDOUT)
    return " (is it a TVM RPC server? --timeout waits longer)";
  return "";
}

static int seconds_ok(double s) { return s >= 0 && s <= 1e6; }

static int to_ms(double s) {
  int ms = (int)(s * 1000);
  return s > 0 && ms == 0 ? 1 : ms;
}

int cli_connect(const char *cmd, const cli_conn *conn, ferry_client **out) {
  ferry_client_opts o;
  ferry_client_opts_init(&o);
  if (!seconds_ok(conn->timeout) || !(conn->session_timeout >= 0) ||
      !seconds_ok(conn->tracker_retry) || !seconds_ok(conn->handshake_timeout)) {
    fprintf(stderr,
            "ferry %s: --timeout, --session-timeout, --tracker-retry and "
            "--handshake-timeout take seconds >= 0\n",
            cmd);
    return 2;
  }
  o.tracker_retry_ms = to_ms(conn->tracker_retry);
  o.handshake_timeout_ms = to_ms(conn->handshake_timeout);
  o.user = conn->user;
  o.timeout_ms = to_ms(conn->timeout);
  o.session_timeout_s = conn->session_timeout;
  if (strcmp(conn->dialect, "classic") == 0) {
    o.dialect = FERRY_CLIENT_CLASSIC;
  } else if (strcmp(conn->dialect, "ffi") == 0) {
    o.dialect = FERRY_CLIENT_FFI;
  } else {
    fprintf(stderr, "ferry %s: --dialect is 'classic' or 'ffi', not '%s'\n", cmd,
            conn->dialect);
    return 2;
  }
  if (conn->tracker && conn->proxy) {
    fprintf(stderr, "ferry %s: give --tracker or --proxy, not both\n", cmd);
    return 2;
  }
  char host[256], err[2048] = "";
  int port, rc;
  const char *hp = conn->tracker ? conn->tracker : conn->proxy;
  if (hp) {
    if (ferry_opts_host_port(hp, host, sizeof host, &port) != 0) {
      fprintf(stderr, "ferry %s: expected HOST:PORT, got '%s'\n", cmd, hp);
      return 2;
    }
  } else {
    if (conn->port < 0 || conn->port > 65535) {
      fprintf(stderr, "ferry %s: --port %ld is out of range\n", cmd, conn->port);
      return 2;
    }
    snprintf(host, sizeof host, "%s", conn->host);
    port = (int)conn->port;
  }
  if (conn->priority < INT32_MIN || conn->priority > INT32_MAX) {
    fprintf(stderr, "ferry %s: --priority is out of range\n", cmd);
    return 2;
  }
  if (conn->tracker)
    rc = ferry_client_connect_tracker(host, port, conn->key, (int)conn->priority, &o, out, err,
                                      sizeof err);
  else /* a proxy answers the same handshake as a server (§3.3) */
    rc = ferry_client_connect(host, port, conn->key, &o, out, err, sizeof err);
  if (rc) {
    fprintf(stderr, "ferry %s: %s%s\n", cmd, err, connect_hint(conn, rc));
    return 1;
  }
  if (conn->verbose)
    fprintf(stderr, "ferry %s: session with %s at %s (%s dialect)\n", cmd,
            ferry_client_server_key(*out), ferry_client_peer(*out),
            ferry_client_dialect_name(ferry_client_dialect(*out)));
  return 0;
}

int cli_npy_load(const char *cmd, const char *path, uint64_t max_bytes, ferry_npy_info *info,
                 void **data) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "ferry %s: cannot open %s: %s\n", cmd, path, strerror(errno));
    return 1;
  }
  /* The header is at most 12 + FERRY_NPY_MAX_HEADER bytes; read that much
   * (or the whole file if it is smaller) and let the codec find its end. */
  size_t cap = FERRY_NPY_PREFIX_V2 + FERRY_NPY_MAX_HEADER;
  uint8_t *head = malloc(cap);
  if (!head) {
    fclose(f);
    fprintf(stderr, "ferry %s: out of memory\n", cmd);
    return 1;
  }
  size_t got = fread(head, 1, cap, f);
  char err[256] = "";
  int rc = ferry_npy_parse_header(head, got, max_bytes, info, err, sizeof err);
  if (rc) {
    if (rc == FERRY_EAGAIN)
      snprintf(err, sizeof err, "truncated .npy header");
    fprintf(stderr, "ferry %s: %s: %s\n", cmd, path, err);
    free(head);
    fclose(f);
    return 1;
  }
  uint8_t *d = malloc(info->nbytes ? (size_t)info->nbytes : 1);
  if (!d) {
    fprintf(stderr, "ferry %s: %s: out of memory for %" PRIu64 " bytes\n", cmd, path,
            info->nbytes);
    free(head);
    fclose(f);
    return 1;
  }
  /* Part of the data may already be in `head`. */
  size_t have = got - info->data_offset;
  if (have > info->nbytes)
    have = (size_t)info->nbytes;
  memcpy(d, head + info->data_offset, have);
  int extra = got > info->data_offset + info->nbytes;
  free(head);
  size_t more = fread(d + have, 1, (size_t)info->nbytes - have, f);
  if (!extra) {
    uint8_t probe;
    extra = fread(&probe, 1, 1, f) == 1;
  }
  fclose(f);
  if (have + more != info->nbytes || extra) {
    fprintf(stderr, "ferry %s: %s: data is %s than its header says (%" PRIu64 " bytes)\n",
            cmd, path, extra ? "longer" : "shorter", info->nbytes);
    free(d);
    return 1;
  }
  if (info->big_endian) {
    ferry_npy_swap(d, info->nbytes, info->dtype);
    info->big_endian = 0;
  }
  *data = d;
  return 0;
}

int cli_write_file(const char *cmd, const char *path, const void *data, size_t n) {
  int to_stdout = strcmp(path, "-") == 0;
  FILE *f = to_stdout ? stdout : fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "ferry %s: cannot create %s: %s\n", cmd, path, strerror(errno));
    return 1;
  }
  int bad = fwrite(data, 1, n, f) != n;
  bad |= to_stdout ? fflush(f) != 0 : fclose(f) != 0;
  if (bad) {
    fprintf(stderr, "ferry %s: cannot write %s: %s\n", cmd, path, strerror(errno));
    return 1;
  }
  return 0;
}

int cli_npy_save(const char *cmd, const char *path, DLDataType dtype, int ndim,
                 const int64_t *shape, const void *data, uint64_t nbytes) {
  ferry_buf b;
  ferry_buf_init(&b, (size_t)nbytes + 4096);
  int rc = ferry_npy_write_header(&b, dtype, ndim, shape);
  if (!rc)
    rc = ferry_buf_append(&b, data, (size_t)nbytes);
  if (rc) {
    fprintf(stderr, "ferry %s: cannot write %s as .npy: %s (dtype %s)\n", cmd, path,
            ferry_strerror(rc), ferry_npy_dtype_name(dtype));
    ferry_buf_close(&b);
    return 1;
  }
  rc = cli_write_file(cmd, path, b.data, b.len);
  ferry_buf_close(&b);
  return rc;
}
