/* ferry client: run and time code on a remote TVM RPC server from C.
 *
 * Speaks TVM's session protocol (classic dialect of TVM <= 0.20 by default,
 * or the tvm-ffi dialect of TVM >= 0.21) to a `ferry server` or to TVM's
 * own servers, directly, through a proxy, or through a tracker's queue.
 *
 *   ferry_client_opts o;  ferry_client_opts_init(&o);
 *   ferry_client *c;  char err[256];
 *   if (ferry_client_connect("127.0.0.1", 9090, "cpu", &o, &c, err, sizeof err))
 *     fail(err);
 *   ferry_client_upload_file(c, "lib.so", NULL);
 *   ferry_remote *lib, *f, *a;
 *   ferry_client_load_module(c, "lib.so", &lib);
 *   ferry_client_module_function(c, lib, "addone", &f);
 *   ...
 *   ferry_client_close(c);    // releases every remote object, ends the session
 *
 * Threading: a ferry_client is used by one thread at a time (the protocol
 * is strictly request/response on one socket).
 *
 * Errors: every fallible call returns 0 or a negative FERRY_E* code
 * (ferry/error.h).  The message of the last failure is in a buffer owned by
 * the client object (ferry_client_errmsg); connect functions, which have no
 * object yet, write it to the caller's buffer.  An exception raised by the
 * server is FERRY_EREMOTE and the message is the server's text.  After an
 * I/O or protocol failure (FERRY_EIO, FERRY_ECLOSED, FERRY_ETIMEDOUT,
 * FERRY_EPROTO) the session is unusable: every later request fails with
 * FERRY_ESTATE, and only ferry_client_close remains to be called. */
#ifndef FERRY_CLIENT_H
#define FERRY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#include "ferry/error.h"
#include "ferry/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_client ferry_client;
/* A reference to something that lives on the server: a function, a module,
 * a tensor (allocated by this client or returned by a function) or another
 * object.  Owned by the caller until given to ferry_client_release or until
 * ferry_client_close (which releases whatever is left). */
typedef struct ferry_remote ferry_remote;

enum ferry_client_dialect {
  FERRY_CLIENT_CLASSIC = 0, /* TVM <= 0.20 type codes */
  FERRY_CLIENT_FFI = 1,     /* TVM >= 0.21 tvm-ffi type indices */
};

typedef struct ferry_client_opts {
  /* Deadline in ms for connecting (including the wait in a tracker queue
   * and the handshake) and, separately, for each request's reply; <= 0
   * waits forever.  Default 60000. */
  int timeout_ms;
  /* > 0: asks the server to end the session after this many seconds
   * (" -timeout=<s>" in the handshake key, as TVM's session_timeout).
   * Default 0 (none). */
  double session_timeout_s;
  enum ferry_client_dialect dialect; /* default FERRY_CLIENT_CLASSIC */
  /* Ceiling on one reply packet from the server (a downloaded file or a
   * tensor chunk).  Default 1 GiB. */
  uint64_t max_reply_bytes;
  /* Tracker only: grants to try when a granted server gives no session
   * (it rotated its match key meanwhile, is gone, or hangs in the
   * handshake).  Default 5, as TVM. */
  int max_retry;
  /* Tracker only: how long to keep trying to reach the tracker itself
   * (refused, unreachable, hung up), with back-off from 100 ms to 5 s;
   * also bounded by timeout_ms.  <= 0: one try.  Default 60000, as TVM's
   * connect_with_retry. */
  int tracker_retry_ms;
  /* Tracker only: deadline for the connect and handshake with a granted
   * server, after which the tracker is asked again (within timeout_ms).
   * <= 0: only timeout_ms.  Default 5000.  Direct and proxy connections
   * use timeout_ms alone (a proxy holds the handshake until its server
   * comes). */
  int handshake_timeout_ms;
  /* Tracker only: the REQUEST's user, which a ferry tracker shows as the
   * device's holder (TVM's ignores it).  NULL: $FERRY_USER, else
   * login@hostname.  Default NULL. */
  const char *user;
} ferry_client_opts;

void ferry_client_opts_init(ferry_client_opts *o);

/* ---- sessions ------------------------------------------------------------ */

/* Connects to a server, or to a proxy (which pairs "client:<key>" with the
 * server that registered <key> there), performs the handshake and
 * kInitServer.  key is the server's --key ("" when it has none).
 * On success *out is a new client the caller closes with
 * ferry_client_close.  On failure *out is unchanged, nothing needs
 * freeing, and err (capacity errcap) holds the reason; a refused key is
 * FERRY_EMISMATCH. */
int ferry_client_connect(const char *host, int port, const char *key,
                         const ferry_client_opts *opts, ferry_client **out,
                         char *err, size_t errcap) FERRY_MUST_CHECK;

/* The same on a socket the caller connected itself (a tunnel, a socket
 * pair to a server in the same program).  c takes ownership of fd: it is
 * closed by ferry_client_close, or before returning on failure. */
int ferry_client_connect_fd(int fd, const char *key, const ferry_client_opts *opts,
                            ferry_client **out, char *err, size_t errcap) FERRY_MUST_CHECK;

/* Asks a tracker for a server of this key (REQUEST with the given
 * priority: larger is served first; TVM's default is 1), waits in the
 * queue until one is granted or opts->timeout_ms passes (FERRY_ETIMEDOUT:
 * unlike TVM's request, which waits forever), then connects to the granted
 * address with the match key.  A server behind a proxy is reached through
 * the proxy transparently.  Ownership as ferry_client_connect.
 * Reaching the tracker is retried for opts->tracker_retry_ms; when it
 * cannot be reached the code is FERRY_ECONNREFUSED, FERRY_ESYS (e.g. no
 * route), FERRY_ETIMEDOUT or FERRY_ENOTFOUND (the name does not resolve),
 * and a granted server that cannot be reached is never reported with the
 * first three of these (FERRY_EIO instead), so a caller can tell which
 * address to question. */
int ferry_client_connect_tracker(const char *tracker_host, int tracker_port,
                                 const char *key, int priority,
                                 const ferry_client_opts *opts,
                                 ferry_client **out, char *err,
                                 size_t errcap) FERRY_MUST_CHECK;

/* Releases every ferry_remote still owned by this client (kFreeHandle /
 * kDevFreeData, errors ignored), sends kShutdown, closes the socket and
 * frees c.  Every ferry_remote of c is invalid afterwards.  NULL is
 * ignored. */
void ferry_client_close(ferry_client *c);

/* Message of the last failure ("" if none).  Owned by c; valid until the
 * next call on c. */
const char *ferry_client_errmsg(const ferry_client *c);
/* The key the server answered the handshake with ("server:cpu"). */
const char *ferry_client_server_key(const ferry_client *c);
/* "host:port" of the session peer (the server, or the proxy). */
const char *ferry_client_peer(const ferry_client *c);
enum ferry_client_dialect ferry_client_dialect(const ferry_client *c);
const char *ferry_client_dialect_name(enum ferry_client_dialect d);

/* ---- files in the server's session folder -------------------------------- */

/* Creates or replaces file `name` with len bytes of data (borrowed for the
 * call).  Names are relative to the session folder. */
int ferry_client_upload(ferry_client *c, const char *name, const void *data,
                        size_t len) FERRY_MUST_CHECK;
/* Uploads a local file; name NULL means the basename of local_path.
 * FERRY_ENOTFOUND when the local file cannot be opened. */
int ferry_client_upload_file(ferry_client *c, const char *local_path,
                             const char *name) FERRY_MUST_CHECK;
/* On success *data is a malloc'ed copy of the file (with one extra NUL
 * byte after *len bytes, not counted) that the caller frees with free().
 * On failure *data and *len are unchanged. */
int ferry_client_download(ferry_client *c, const char *name, void **data,
                          size_t *len) FERRY_MUST_CHECK;
/* The entries of a folder of the session ("" or "." for its root).  On
 * success *names is a malloc'ed array of *count malloc'ed strings (the
 * server's full paths, as TVM's listdir gives them), freed with
 * ferry_client_free_names.  On failure nothing is allocated. */
int ferry_client_listdir(ferry_client *c, const char *dir, char ***names,
                         size_t *count) FERRY_MUST_CHECK;
void ferry_client_free_names(char **names, size_t count);
int ferry_client_remove(ferry_client *c, const char *name) FERRY_MUST_CHECK;

/* ---- modules and functions ----------------------------------------------- */

/* Loads an uploaded library (tvm.rpc.server.load_module); *mod is a new
 * remote module.  On failure *mod is unchanged. */
int ferry_client_load_module(ferry_client *c, const char *name,
                             ferry_remote **mod) FERRY_MUST_CHECK;
/* runtime.SystemLib() (ffi.SystemLib() on TVM >= 0.21 servers): the module
 * of functions linked into the server.  On failure *mod is unchanged. */
int ferry_client_system_lib(ferry_client *c, ferry_remote **mod) FERRY_MUST_CHECK;
/* Function `name` of a module (imports searched too); FERRY_ENOTFOUND
 * when the module has none.  On failure *f is unchanged. */
int ferry_client_module_function(ferry_client *c, ferry_remote *mod,
                                 const char *name, ferry_remote **f) FERRY_MUST_CHECK;
/* A global function of the server by name; FERRY_ENOTFOUND if absent.
 * On failure *f is unchanged. */
int ferry_client_get_function(ferry_client *c, const char *name,
                              ferry_remote **f) FERRY_MUST_CHECK;

/* What a call returned.  value.kind says what it is.  Scalars are in
 * value; STR and BYTES point into memory owned by the client, valid until
 * its next request (copy them to keep them).  FUNC, MODULE, NDARRAY and
 * OBJECT results come as `remote`: a new reference owned by the caller
 * (value.v.handle is its wire handle, for logging only). */
typedef struct ferry_result {
  ferry_value value;
  ferry_remote *remote;
} ferry_result;

/* Calls f with nargs arguments: INT, BOOL, FLOAT, STR, BYTES, NONE,
 * DTYPE, DEVICE, OPAQUE values, and remote objects of this client as
 * given by ferry_remote_value (tensors, modules, objects).  On success
 * *ret (may be NULL to drop it; a remote result is then released) holds
 * the result; on failure ret->value.kind is NONE and ret->remote NULL. */
int ferry_client_call(ferry_client *c, ferry_remote *f, const ferry_value *args,
                      int nargs, ferry_result *ret) FERRY_MUST_CHECK;

/* Releases r on the server (kFreeHandle, or kDevFreeData for a tensor this
 * client allocated) and frees it locally, also when the server reports an
 * error (returned, with the message in c).  NULL is ignored. */
int ferry_client_release(ferry_client *c, ferry_remote *r);

/* FERRY_KIND_FUNC, _MODULE, _NDARRAY or _OBJECT. */
enum ferry_kind ferry_remote_kind(const ferry_remote *r);
/* The value that passes r as an argument (NDARRAY as a DLTensor). */
ferry_value ferry_remote_value(const ferry_remote *r);
/* NDARRAY only (else NULL): shape, dtype and device of the tensor; data is
 * the server's handle, not a local pointer. */
const DLTensor *ferry_remote_tensor(const ferry_remote *r);
/* NDARRAY only: its size in bytes (0 otherwise). */
uint64_t ferry_remote_nbytes(const ferry_remote *r);

/* ---- tensors ------------------------------------------------------------- */

/* Allocates an uninitialised compact tensor on the server
 * (kDevAllocDataWithScope).  FERRY_EINVAL for ndim outside 0..32 or a
 * negative extent.  On failure *out is unchanged. */
int ferry_client_tensor_empty(ferry_client *c, DLDevice dev, int ndim,
                              const int64_t *shape, DLDataType dtype,
                              ferry_remote **out) FERRY_MUST_CHECK;
/* Copies nbytes (== ferry_remote_nbytes(t)) into / out of a remote
 * tensor, in chunks when the server announces a maximum packet size
 * (tvm.rpc.server.GetCRTMaxPacketSize), then synchronises the device, as
 * TVM's client does.  data is borrowed for the call; on failure the
 * remote (or, for copy_out, the local) bytes may be partly written. */
int ferry_client_tensor_copy_in(ferry_client *c, ferry_remote *t,
                                const void *data, uint64_t nbytes) FERRY_MUST_CHECK;
int ferry_client_tensor_copy_out(ferry_client *c, ferry_remote *t, void *data,
                                 uint64_t nbytes) FERRY_MUST_CHECK;

/* Waits until all work queued on dev is done (kDevStreamSync on the default
 * stream, TVM's dev.sync()).  Copies already synchronise. */
int ferry_client_sync(ferry_client *c, DLDevice dev) FERRY_MUST_CHECK;

/* ---- timing ---------------------------------------------------------------- */

/* runtime.RPCTimeEvaluator parameters; ferry_time_opts_init sets TVM's
 * defaults (number 10, repeat 1, min_repeat_ms 0,
 * limit_zero_time_iterations 100, cooldown 0, repeats_to_cooldown 1,
 * cache_flush_bytes 0, no f_preproc). */
typedef struct ferry_time_opts {
  int number, repeat, min_repeat_ms, limit_zero_time_iterations;
  int cooldown_interval_ms, repeats_to_cooldown;
  int64_t cache_flush_bytes;
  const char *f_preproc; /* NULL or "" for none */
} ferry_time_opts;

void ferry_time_opts_init(ferry_time_opts *o);

/* A timing function for `name` of mod (mod NULL: a global function) on
 * dev; o NULL means the defaults.  On success *out is a new remote
 * function (call it with ferry_client_time, release it when done); on
 * failure *out is unchanged. */
int ferry_client_time_evaluator(ferry_client *c, ferry_remote *mod,
                                const char *name, DLDevice dev,
                                const ferry_time_opts *o,
                                ferry_remote **out) FERRY_MUST_CHECK;
/* Runs a timing function with the target's arguments; stores the mean
 * seconds per call of each repeat in secs[0..*nrepeat) (at most max
 * values are stored; *nrepeat is how many the server sent).  On failure
 * secs and *nrepeat are unchanged. */
int ferry_client_time(ferry_client *c, ferry_remote *evaluator,
                      const ferry_value *args, int nargs, double *secs,
                      int max, int *nrepeat) FERRY_MUST_CHECK;

/* ---- argument helpers ------------------------------------------------------ */

static inline ferry_value ferry_arg_int(int64_t i) {
  ferry_value v;
  v.kind = FERRY_KIND_INT;
  v.v.i = i;
  return v;
}
static inline ferry_value ferry_arg_float(double f) {
  ferry_value v;
  v.kind = FERRY_KIND_FLOAT;
  v.v.f = f;
  return v;
}
/* s must stay valid until the call returns. */
static inline ferry_value ferry_arg_str(const char *s, size_t len) {
  ferry_value v;
  v.kind = FERRY_KIND_STR;
  v.v.str.data = s;
  v.v.str.len = len;
  return v;
}
static inline ferry_value ferry_arg_bytes(const void *p, size_t len) {
  ferry_value v;
  v.kind = FERRY_KIND_BYTES;
  v.v.str.data = (const char *)p;
  v.v.str.len = len;
  return v;
}

#ifdef __cplusplus
}
#endif

#endif
