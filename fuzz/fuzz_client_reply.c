/* libFuzzer target for the client's reply handling: the input is what a
 * server says after the handshake, fed through a socket pair, while the
 * client runs a fixed script of every kind of request (lookups, calls
 * with each result kind, allocation, chunked copies, files, modules, the
 * time evaluator, releases, close).  Whatever the bytes, the client must
 * fail cleanly (no crash, no leak, no allocation the peer dictates) and
 * end when the input does.  Seeds: fuzz/corpus/fuzz_client_reply. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ferry/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Results are irrelevant here: the script goes on whatever happens. */
static void ignore(int rc) { (void)rc; }

static void script(ferry_client *c) {
  ferry_remote *f = NULL, *t = NULL, *mod = NULL, *g = NULL, *ev = NULL;
  ferry_result r;
  if (ferry_client_get_function(c, "f", &f) == 0) {
    ferry_value a[3] = {ferry_arg_int(41), ferry_arg_str("s", 1), ferry_arg_float(1.5)};
    if (ferry_client_call(c, f, a, 1, &r) == 0)
      ignore(ferry_client_release(c, r.remote));
    if (ferry_client_call(c, f, a, 3, &r) == 0 && r.remote) {
      if (ferry_remote_kind(r.remote) == FERRY_KIND_NDARRAY) {
        uint64_t n = ferry_remote_nbytes(r.remote);
        if (n <= 4096) {
          uint8_t buf[4096];
          ignore(ferry_client_tensor_copy_out(c, r.remote, buf, n));
        }
      }
      ignore(ferry_client_release(c, r.remote));
    }
  }
  int64_t shape[2] = {2, 3};
  float in[6] = {1, 2, 3, 4, 5, 6}, out[6];
  if (ferry_client_tensor_empty(c, (DLDevice){kDLCPU, 0}, 2, shape,
                                (DLDataType){kDLFloat, 32, 1}, &t) == 0) {
    ignore(ferry_client_tensor_copy_in(c, t, in, sizeof in));
    ignore(ferry_client_tensor_copy_out(c, t, out, sizeof out));
  }
  void *d = NULL;
  size_t len = 0;
  if (ferry_client_download(c, "x", &d, &len) == 0)
    free(d);
  char **names = NULL;
  size_t count = 0;
  if (ferry_client_listdir(c, "", &names, &count) == 0)
    ferry_client_free_names(names, count);
  ignore(ferry_client_upload(c, "y", "abc", 3));
  ignore(ferry_client_remove(c, "y"));
  if (ferry_client_load_module(c, "m.so", &mod) == 0) {
    ignore(ferry_client_module_function(c, mod, "g", &g));
    if (ferry_client_time_evaluator(c, mod, "g", (DLDevice){kDLCPU, 0}, NULL, &ev) == 0) {
      double secs[4];
      int n = 0;
      ignore(ferry_client_time(c, ev, NULL, 0, secs, 4, &n));
    }
  }
  /* f, t, mod, g, ev are left for close to release. */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 32768)
    return 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return 0;
  int big = 1 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  /* The peer's whole side up front: a successful handshake answer, the
   * fuzz bytes, then EOF.  The client's requests pile up unread in sv[1]. */
  static const uint8_t hello[] = {0x71, 0xf2, 0x0f, 0x00, 0x07, 0, 0, 0,
                                  's',  'e',  'r',  'v',  'e',  'r', ':'};
  if (write(sv[1], hello, sizeof hello) != (ssize_t)sizeof hello ||
      (size && write(sv[1], data, size) != (ssize_t)size)) {
    close(sv[0]);
    close(sv[1]);
    return 0;
  }
  shutdown(sv[1], SHUT_WR);
  ferry_client_opts o;
  ferry_client_opts_init(&o);
  o.timeout_ms = 2000;
  o.max_reply_bytes = 1 << 16;
  ferry_client *c = NULL;
  char err[256];
  if (ferry_client_connect_fd(sv[0], "", &o, &c, err, sizeof err) == 0) {
    script(c);
    ferry_client_close(c);
  }
  close(sv[1]);
  return 0;
}
