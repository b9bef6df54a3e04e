/* Internals shared by the client's files (not installed).
 *
 *   client_session.c   object lifetime, connect/handshake/kInitServer, close
 *   client_io.c        one request -> one reply over the blocking socket
 *   client_calls.c     global lookups, kCallFunc, remote objects, modules,
 *                      files, time evaluator
 *   client_tensor.c    allocation and (chunked) copies
 *   client_tracker.c   REQUEST through a tracker, then connect
 *
 * Nothing here knows a type code: values are ferry_value and the dialect
 * table (src/wire/rpc_dialect.h) turns them into bytes. */
#ifndef FERRY_CLIENT_INTERNAL_H
#define FERRY_CLIENT_INTERNAL_H

#include <stdint.h>

#include "base/buf.h"
#include "ferry/client.h"
#include "wire/rpc_arena.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"
#include "wire/rpc_tensor.h"

#define CLIENT_ERR_MAX 2048

struct ferry_remote {
  struct ferry_remote *prev, *next; /* the client's list of live remotes */
  enum ferry_kind kind;             /* FUNC, MODULE, NDARRAY, OBJECT */
  uint64_t handle;   /* kFreeHandle handle; for allocated tensors the data */
  int allocated;     /* tensor from kDevAllocDataWithScope: kDevFreeData */
  DLTensor tensor;   /* NDARRAY: data = server handle, shape -> shape[] */
  int64_t shape[FERRY_RPC_MAX_NDIM];
};

/* Global functions looked up once per session and released at close. */
enum client_global {
  CG_UPLOAD,
  CG_DOWNLOAD,
  CG_REMOVE,
  CG_LISTDIR,
  CG_LOAD_MODULE,
  CG_MODULE_GET_FUNCTION,
  CG_TIME_EVALUATOR,
  CG_SYSTEM_LIB,
  CG_MAX_PACKET,
  CG_COUNT
};

struct ferry_client {
  int fd;
  ferry_client_opts opts;
  const ferry_dialect *d;
  int broken;                   /* transport failed: refuse further requests */
  ferry_buf out;                /* the request being built */
  ferry_buf in;                 /* the last reply packet (prefix included) */
  ferry_rpc_packet reply;       /* framed view of `in` */
  ferry_rpc_arena arena;        /* decoded reply values; reset per request */
  uint64_t global[CG_COUNT];    /* cached handles, 0 = not looked up */
  int global_absent[CG_COUNT];  /* looked up and not registered */
  int64_t max_packet;           /* 0 unknown, -1 unlimited, else bytes */
  ferry_remote live;            /* sentinel of the remote list */
  char server_key[256];
  char peer[160];
  char err[CLIENT_ERR_MAX];
  /* Read-ahead (client_net.c): bytes received but not consumed yet. */
  size_t rpos, rlen;
  uint8_t rbuf[16384];
};

/* Records a message (printf-style) in c->err and returns code.  Unlike the
 * wire layer's "first message wins", each public call starts with a clear
 * buffer, so the message is the first failure of that call. */
int client_fail(ferry_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clears the message at the start of a public call; FERRY_ESTATE when the
 * session is already broken. */
int client_begin(ferry_client *c) FERRY_MUST_CHECK;

/* ---- client_io.c ---------------------------------------------------------- */

/* Starts a request packet of this code in c->out (which is emptied). */
int client_packet_begin(ferry_client *c, int code, size_t *mark) FERRY_MUST_CHECK;
/* Patches the length, sends c->out and reads one reply into c->reply.
 * A kException reply becomes FERRY_EREMOTE with the server's text in
 * c->err; any reply code other than `expect` is FERRY_EPROTO.  Transport
 * and framing failures mark the session broken. */
int client_exchange(ferry_client *c, size_t mark, int expect) FERRY_MUST_CHECK;
/* Sends a packet without waiting for a reply (kShutdown). */
int client_send_only(ferry_client *c, size_t mark) FERRY_MUST_CHECK;
/* Sends c->out (its length field already covering `extra` more bytes) and
 * then extra bytes from data, then reads the reply like client_exchange. */
int client_exchange_with_data(ferry_client *c, size_t mark, const void *data,
                              uint64_t extra, int expect) FERRY_MUST_CHECK;
/* Sends c->out and reads a reply whose body, for code `expect`, is copied
 * straight into dst (exactly n bytes) instead of c->in. */
int client_exchange_into(ferry_client *c, size_t mark, int expect, void *dst,
                         uint64_t n) FERRY_MUST_CHECK;

/* A syscall (code >= 9) with a packed sequence; *result is its one value
 * (arena memory, valid until the next request). */
int client_syscall(ferry_client *c, int code, const ferry_value *args, int nargs,
                   ferry_value *result) FERRY_MUST_CHECK;
/* kCallFunc of a raw handle; *ret in arena memory. */
int client_callfunc(ferry_client *c, uint64_t handle, const ferry_value *args,
                    int nargs, ferry_rpc_return *ret) FERRY_MUST_CHECK;
/* kFreeHandle(handle, kind). */
int client_free_handle(ferry_client *c, uint64_t handle,
                       enum ferry_kind kind) FERRY_MUST_CHECK;

/* ---- client_net.c -------------------------------------------------------- */

/* Applies opts.timeout_ms to the socket's blocking calls. */
void client_net_setup(ferry_client *c);
/* Sends a then b (bn may be 0) in as few system calls as possible. */
int client_net_send(ferry_client *c, const void *a, size_t an, const void *b, size_t bn,
                    int64_t deadline_ms) FERRY_MUST_CHECK;
/* Reads exactly n bytes (FERRY_ECLOSED, FERRY_ETIMEDOUT, FERRY_EIO). */
int client_net_read(ferry_client *c, void *dst, size_t n, int64_t deadline_ms) FERRY_MUST_CHECK;

/* ---- client_calls.c ------------------------------------------------------- */

/* The handle of a cached global function; FERRY_ENOTFOUND with a message
 * when the server has none. */
int client_global(ferry_client *c, enum client_global g, uint64_t *h) FERRY_MUST_CHECK;
/* A new remote of this kind linked into c's list; NULL when out of memory
 * (message set). */
ferry_remote *client_remote_new(ferry_client *c, enum ferry_kind kind,
                                uint64_t handle);
void client_remote_unlink(ferry_remote *r);

/* ---- client_session.c ------------------------------------------------- */

/* Opens a session: connects to host:port (or uses fd when >= 0, which it
 * then owns in every case), handshake with "client:<key>", kInitServer.
 * The connect and the handshake end by hs_deadline_ms, kInitServer by
 * deadline_ms (< 0: none; hs_deadline_ms is never later than deadline_ms
 * when both are set). */
int client_open(const char *host, int port, int fd, const char *key,
                const ferry_client_opts *o, int64_t deadline_ms, int64_t hs_deadline_ms,
                ferry_client **out, char *err, size_t errcap) FERRY_MUST_CHECK;

#endif
