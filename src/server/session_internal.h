/* State of one running session, shared by the session_*.c files (not part
 * of the API: see session.h). */
#ifndef FERRY_SERVER_SESSION_INTERNAL_H
#define FERRY_SERVER_SESSION_INTERNAL_H

#include "runtime/runtime.h"
#include "server/handles.h"
#include "server/session.h"
#include "wire/rpc_arena.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"
#include "wire/rpc_tensor.h"

typedef struct ferry_session {
  const ferry_session_io *io;
  const ferry_session_config *cfg;
  ferry_rt *rt;
  const ferry_dialect *dialect; /* NULL until detected (§7.4) */
  int initialized;              /* kInitServer seen */
  uint64_t max_packet;
  ferry_rpc_reader reader;
  ferry_rpc_arena arena; /* decoded values of the current packet */
  ferry_buf out;         /* the reply being built */
  ferry_handles handles;
  ferry_func max_packet_fn; /* tvm.rpc.server.GetCRTMaxPacketSize, if enabled */
  uint64_t unknown_releases; /* kFreeHandle of handles not in the table */
  /* Written after out, for replies that carry tensor bytes (kCopyAck):
   * they go to the socket straight from tensor memory, without a copy.
   * Valid until the reply is written. */
  const void *tail;
  size_t tail_len;
  /* Host staging for copies to and from a device whose memory cannot be
   * addressed (OpenCL): at most one packet, grown on demand. */
  void *stage;
  size_t stage_cap;
  const DLTensor *stream_tensor; /* the device tensor of a streamed upload */
  int hop_fd; /* multi-hop: the next hop's socket once connected; -1: none */
  int popen_pid; /* rpc.PopenSession: the minrpc child relayed to; 0: none */
} ferry_session;

/* The dialect replies are encoded in: the detected one, classic before. */
static inline const ferry_dialect *session_dialect(const ferry_session *s) {
  return s->dialect ? s->dialect : &ferry_dialect_classic;
}

/* Decodes the packed sequence seq[0..n) that ends the current packet,
 * detecting the session's dialect first if needed.  Values live in the
 * packet arena.  On error the message is in err. */
int session_decode_seq(ferry_session *s, int code, const uint8_t *seq, size_t n,
                       ferry_value **vals, int *nvals, ferry_err *err) FERRY_MUST_CHECK;

/* Checks the kinds of syscall arguments against sig, one letter each:
 * D device, I int, T dtype, P opaque (null accepted as 0), X tensor,
 * S string, s string or null.  what names the request in messages. */
int session_expect(const ferry_value *vals, int n, const char *sig, const char *what,
                   ferry_err *err) FERRY_MUST_CHECK;

/* Replies built into s->out (whole packets, prefix included). */
int session_reply_values(ferry_session *s, const ferry_value *vals, int n) FERRY_MUST_CHECK;
int session_reply_void(ferry_session *s) FERRY_MUST_CHECK;
int session_reply_opaque(ferry_session *s, uint64_t v) FERRY_MUST_CHECK;

/* Resolves where a wire tensor's bytes are, after checking that
 * [data + byte_offset, + nbytes) lies in one live allocation of this
 * session.  CPU tensors only: a device tensor is refused (see
 * session_check_tensor and session_stage). */
int session_tensor_bytes(ferry_session *s, const DLTensor *t, uint64_t nbytes, void **out,
                         ferry_err *err) FERRY_MUST_CHECK;
/* Checks a tensor argument of a call or a copy: its whole extent
 * (prod(shape) * elem size from data + byte_offset) must be ours. */
/* s->stage with at least n bytes, or NULL (out of memory). */
void *session_stage(ferry_session *s, size_t n);
int session_check_tensor(ferry_session *s, const DLTensor *t, ferry_err *err) FERRY_MUST_CHECK;

/* ---- reading (session_read.c) -------------------------------------------- */

/* Returned (> 0) when the peer closed the stream on a packet boundary. */
#define SESSION_CLEAN_EOF 1
/* kCopyToRemote packets at least this big are streamed into tensor memory. */
#define SESSION_STREAM_MIN ((uint64_t)64 << 10)

/* Reads until at least k bytes are buffered in s->reader (perhaps more).
 * FERRY_OK, SESSION_CLEAN_EOF, or a fatal error in err. */
int session_fill_to(ferry_session *s, size_t k, ferry_err *err) FERRY_MUST_CHECK;
/* Reads until the reader returns a whole packet (*pkt, valid until the
 * next read).  FERRY_OK, SESSION_CLEAN_EOF, or a fatal error in err. */
int session_read_packet(ferry_session *s, ferry_rpc_packet *pkt, ferry_err *err) FERRY_MUST_CHECK;
/* Handles a kCopyToRemote of len bytes (packet_nbytes) whose first bytes
 * are buffered: checks its header, reads the payload straight into the
 * checked tensor memory, and leaves the reply in s->out, or the refusal in
 * req_err after skipping the payload.  Returns a fatal error (in err) only
 * when the stream broke. */
int session_copy_to_streamed(ferry_session *s, uint64_t len, ferry_err *req_err,
                             ferry_err *err) FERRY_MUST_CHECK;

/* Request handlers: each leaves one reply packet in s->out, or returns an
 * error with a message in err (the caller turns it into kException). */
int session_call_func(ferry_session *s, const ferry_rpc_packet *pkt, ferry_err *err) FERRY_MUST_CHECK;
int session_get_global(ferry_session *s, const ferry_value *v, int n, ferry_err *err) FERRY_MUST_CHECK;
int session_free_handle(ferry_session *s, const ferry_value *v, int n, ferry_err *err) FERRY_MUST_CHECK;
int session_copy_from(ferry_session *s, const ferry_rpc_packet *pkt, ferry_err *err) FERRY_MUST_CHECK;
int session_copy_to(ferry_session *s, const ferry_rpc_packet *pkt, ferry_err *err) FERRY_MUST_CHECK;
/* Checks the head of a kCopyToRemote whose payload the caller streams
 * straight into tensor memory: head = tensor + u64 nbytes (head_len bytes),
 * payload_len = what the packet carries after it.  On success *dst is
 * where the payload goes. */
int session_copy_to_target(ferry_session *s, const uint8_t *head, size_t head_len,
                           uint64_t payload_len, void **dst, ferry_err *err) FERRY_MUST_CHECK;
/* After a streamed kCopyToRemote has read its payload: writes the staged
 * bytes to the device tensor, if the target was one (a no-op otherwise). */
int session_copy_to_finish(ferry_session *s, uint64_t payload_len,
                           ferry_err *err) FERRY_MUST_CHECK;
int session_copy_among(ferry_session *s, const ferry_value *v, int n, ferry_err *err) FERRY_MUST_CHECK;
/* ---- multi-hop (session_hop.c) ------------------------------------------- */

/* kInitServer with ["rpc.Connect", host, port, key, enable_logging, ...]:
 * checks --allow-hop, dials, handshakes and starts the session on the next
 * hop; on success s->hop_fd is its socket.  Errors are request errors. */
int session_hop_connect(ferry_session *s, const ferry_value *v, int n, ferry_err *err) FERRY_MUST_CHECK;
/* kInitServer to the next hop on fd with the constructor's remaining
 * arguments rest[0..nrest), in the client's dialect, and its reply, all
 * before the deadline dl; where names the hop in messages. */
int session_hop_init(ferry_session *s, int fd, const char *where, const ferry_value *rest,
                     int nrest, int64_t dl, ferry_err *err) FERRY_MUST_CHECK;
/* ---- rpc.PopenSession (session_popen.c) ----------------------------------- */

/* kInitServer named "rpc.PopenSession" with (bytes, init args...): checks
 * --allow-popen, writes the executable into the work folder, runs it with
 * a socket pair and starts the session on it; on success s->hop_fd is its
 * end, relayed like a next hop.  Errors are request errors. */
int session_popen_start(ferry_session *s, const ferry_value *v, int n, ferry_err *err) FERRY_MUST_CHECK;
/* Kills and reaps the popen child, if any (at the session's end). */
void session_popen_reap(ferry_session *s);

/* Relays bytes both ways between the client and s->hop_fd until one side
 * closes; closes hop_fd.  FERRY_OK at a clean end. */
int session_hop_relay(ferry_session *s, ferry_err *err) FERRY_MUST_CHECK;
/* 1 when list ("HOST:PORT,HOST:*") names host (compared without case) and
 * port; 0 otherwise, and for a NULL list. */
int session_hop_allowed(const char *list, const char *host, int64_t port);

/* --testing: the rpc.test.* functions of TVM's RPC test suite
 * (session_testing.c).  *out carries one reference; FERRY_ENOTFOUND for
 * any other name. */
int session_testing_lookup(const char *name, ferry_func **out) FERRY_MUST_CHECK;
int session_device_syscall(ferry_session *s, int code, const ferry_value *v, int n,
                           ferry_err *err) FERRY_MUST_CHECK;

#endif
