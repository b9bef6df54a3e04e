/* One RPC session (rpc-session.md): the packets after the data-plane
 * handshake, from kInitServer to kShutdown or EOF.
 *
 * The caller (the server's forked child, or a test over socketpair()) has
 * already done the handshake; ferry_session_run() owns everything after it:
 * it opens the session's runtime (ferry_rt) in cfg->work_dir, reads packets
 * through io, answers each request with exactly one reply, and releases every
 * handle, allocation and module when the session ends.  Malformed input
 * becomes a kException reply when the packet could be framed, or the end of
 * the session (return value < 0) when the stream itself is broken.
 *
 * The session speaks both TVM session dialects (classic <= 0.20, tvm-ffi
 * >= 0.21): it answers kInitServer with an empty packed sequence that both
 * clients accept, and picks the dialect from the first packet that carries
 * arguments (rpc-session.md §7.4).  cfg->on_dialect tells the caller which
 * one, so that a parent process can encode the session-timeout packet in
 * the right dialect. */
#ifndef FERRY_SERVER_SESSION_H
#define FERRY_SERVER_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "runtime/object.h"
#include "wire/rpc_dialect.h"

/* Byte stream of the session.  read() returns the number of bytes read
 * (> 0), 0 at end of file, or a negative FERRY_E* code; it may return fewer
 * bytes than asked.  write() writes all n bytes or returns a negative
 * FERRY_E* code.  close() may be NULL; it is called once when the session
 * ends (ferry_session_run never closes a file descriptor itself). */
typedef struct ferry_session_io {
  void *ctx;
  long (*read)(void *ctx, void *buf, size_t n);
  int (*write)(void *ctx, const void *buf, size_t n);
  void (*close)(void *ctx);
  /* May be NULL: the descriptor read() reads from, so that a multi-hop
   * session can poll it while relaying (without it rpc.Connect is
   * refused). */
  int (*fd)(void *ctx);
} ferry_session_io;

/* Ceiling on one packet (packet_nbytes, without the 8-byte prefix) when
 * cfg->max_packet is 0.  TVM sends a whole kCopyToRemote tensor and a
 * whole uploaded file in one packet, so this bounds the largest tensor
 * copy and upload the server accepts.  Memory is committed only as bytes
 * actually arrive, never from the declared length. */
#define FERRY_SESSION_DEFAULT_MAX_PACKET ((uint64_t)1 << 30)

typedef struct ferry_session_config {
  const char *work_dir;        /* session folder (exists); file functions confined to it */
  const char *const *preload;  /* --load-library paths, NULL-terminated; may be NULL */
  int num_threads;             /* 0: TVM_NUM_THREADS or the core count */
  uint64_t max_packet;         /* 0: FERRY_SESSION_DEFAULT_MAX_PACKET */
  /* > 0: register tvm.rpc.server.GetCRTMaxPacketSize answering this value,
   * so clients chunk tensor copies into packets of at most this size.
   * 0 (the default, like TVM's own servers): the name is not registered and
   * the lookup answers handle 0, as in the recordings. */
  uint64_t copy_packet_size;
  /* > 0: largest single kDevAllocData / kDevAllocDataWithScope the session
   * passes to the runtime (which has its own, larger, ceilings); 0: only
   * the runtime's ceilings apply. */
  uint64_t max_alloc;
  /* > 0: bytes the work folder may hold; uploads past it are refused
   * (an exception naming the quota; the session goes on).  0: none. */
  uint64_t work_quota;
  /* > 0: the runtime's memory cap (ferry_rt_options.max_memory). */
  uint64_t max_memory;
  /* Non-zero: offer the rpc.test.* functions TVM's RPC test suite calls
   * (ferry server --testing; session_testing.c). */
  int testing;
  /* --allow-hop "HOST:PORT[,HOST:*...]": the next hops an rpc.Connect
   * session constructor may dial (session_hop.c); NULL: multi-hop off. */
  const char *allow_hop;
  /* Non-zero (--allow-popen): the rpc.PopenSession session constructor
   * runs the executable the client sends as the session's minrpc server
   * (session_popen.c); 0: refused. */
  int allow_popen;
  /* Called once, when the session's dialect is known (may be NULL). */
  void (*on_dialect)(void *hook_ctx, enum ferry_dialect_id dialect);
  void *hook_ctx;
} ferry_session_config;

/* Runs the session to its end.  Returns FERRY_OK after kShutdown or EOF at
 * a packet boundary; a negative FERRY_E* code with a message in *err when
 * the stream broke (I/O error, EOF inside a packet, oversize or malformed
 * framing) or the runtime could not be opened.  Either way everything the
 * session held is released and io->close (if any) has been called. */
int ferry_session_run(const ferry_session_io *io, const ferry_session_config *cfg,
                      ferry_err *err) FERRY_MUST_CHECK;

/* A ferry_session_io over a connected file descriptor (blocking reads and
 * writes, EINTR retried).  close() closes fd.  *ctx must outlive the
 * session. */
typedef struct ferry_session_fd {
  int fd;
} ferry_session_fd;
void ferry_session_io_fd(ferry_session_io *io, ferry_session_fd *ctx, int fd);

/* Appends TVM's session-timeout exception packet (tracker-proxy-server.md
 * §3.5), whole (u64 length prefix included), to out:
 * "RPCSessionTimeoutError: Your <T>s session has expired, try to increase
 * the \"session_timeout\" value." with <T> printed like a Python float
 * (1.0, 10.0, 0.01).  The message is a classic type-11 string unless
 * dialect is FERRY_DIALECT_FFI (type index 8); FERRY_DIALECT_UNKNOWN
 * (dialect not yet known) uses classic.  On failure out is unchanged. */
int ferry_session_timeout_packet(ferry_buf *out, double timeout_s,
                                 enum ferry_dialect_id dialect) FERRY_MUST_CHECK;

#endif
