/* RPC session packets (rpc-session.md §1.4, §3): framing and the bodies
 * that are the same in both dialects.
 *
 *   u64 packet_nbytes   (bytes that follow: code + body)
 *   i32 code            RPCCode
 *   ... body
 *
 * Everything here is symmetric: the server decodes requests and encodes
 * replies, the C client encodes requests and decodes replies, with the same
 * functions.  Packed sequences (the part that differs between dialects) are
 * in rpc_dialect.h.  No I/O: the reader takes bytes pushed in. */
#ifndef FERRY_WIRE_RPC_PACKET_H
#define FERRY_WIRE_RPC_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#include "base/buf.h"
#include "wire/rpc_arena.h"
#include "wire/rpc_error.h"

/* RPCCode (src/runtime/minrpc/rpc_reference.h), one table for the enum and
 * the names. */
#define FERRY_RPC_CODE_MAP(XX)                                                \
  XX(NONE, 0, "kNone")                                                        \
  XX(SHUTDOWN, 1, "kShutdown")                                                \
  XX(INIT_SERVER, 2, "kInitServer")                                           \
  XX(CALL_FUNC, 3, "kCallFunc")                                               \
  XX(RETURN, 4, "kReturn")                                                    \
  XX(EXCEPTION, 5, "kException")                                              \
  XX(COPY_FROM_REMOTE, 6, "kCopyFromRemote")                                  \
  XX(COPY_TO_REMOTE, 7, "kCopyToRemote")                                      \
  XX(COPY_ACK, 8, "kCopyAck")                                                 \
  XX(GET_GLOBAL_FUNC, 9, "kGetGlobalFunc")                                    \
  XX(FREE_HANDLE, 10, "kFreeHandle")                                          \
  XX(DEV_SET_DEVICE, 11, "kDevSetDevice")                                     \
  XX(DEV_GET_ATTR, 12, "kDevGetAttr")                                         \
  XX(DEV_ALLOC_DATA, 13, "kDevAllocData")                                     \
  XX(DEV_FREE_DATA, 14, "kDevFreeData")                                       \
  XX(DEV_STREAM_SYNC, 15, "kDevStreamSync")                                   \
  XX(COPY_AMONG_REMOTE, 16, "kCopyAmongRemote")                               \
  XX(DEV_ALLOC_DATA_WITH_SCOPE, 17, "kDevAllocDataWithScope")                 \
  XX(DEV_CREATE_STREAM, 18, "kDevCreateStream")                               \
  XX(DEV_FREE_STREAM, 19, "kDevFreeStream")                                   \
  XX(DEV_SET_STREAM, 20, "kDevSetStream")                                     \
  XX(DEV_GET_CURRENT_STREAM, 21, "kDevGetCurrentStream")

enum ferry_rpc_code {
#define FERRY_RPC_CODE_ENUM_(name, v, str) FERRY_RPC_##name = (v),
  FERRY_RPC_CODE_MAP(FERRY_RPC_CODE_ENUM_)
#undef FERRY_RPC_CODE_ENUM_
};

#define FERRY_RPC_SYSCALL_START FERRY_RPC_GET_GLOBAL_FUNC
#define FERRY_RPC_PROTOCOL_VERSION "0.8.0"
/* Prefix length of a packet: the u64 packet_nbytes. */
#define FERRY_RPC_HEADER_SIZE 8
/* The smallest packet ceiling a reader accepts (must fit every fixed-size
 * request); 64 KiB. */
#define FERRY_RPC_MIN_MAX_PACKET ((uint64_t)1 << 16)

/* "kCallFunc", ...; "unknown" for other values.  Never NULL. */
const char *ferry_rpc_code_name(int code);

/* ---- framing ------------------------------------------------------------ */

/* One framed packet.  body points into the reader (or the caller's bytes)
 * and stays valid until the reader is fed or advanced again. */
typedef struct ferry_rpc_packet {
  int32_t code;
  const uint8_t *body; /* after the code */
  size_t body_len;     /* packet_nbytes - 4 */
} ferry_rpc_packet;

/* Push-style packet reader.  Memory grows only with bytes actually fed,
 * never from a declared length, and never past max_packet + 8. */
typedef struct ferry_rpc_reader {
  ferry_buf in;          /* bytes fed, not yet consumed */
  size_t consumed;       /* bytes of the previous packet to drop */
  uint64_t max_packet;   /* ceiling on packet_nbytes */
  uint64_t bad_length;   /* offending packet_nbytes after FERRY_ETOOBIG/EPROTO */
} ferry_rpc_reader;

void ferry_rpc_reader_init(ferry_rpc_reader *r, uint64_t max_packet);
void ferry_rpc_reader_close(ferry_rpc_reader *r);
/* Copies n bytes in.  FERRY_ETOOBIG if that would buffer more than one
 * maximal packet plus its prefix. */
int ferry_rpc_reader_feed(ferry_rpc_reader *r, const void *p, size_t n) FERRY_MUST_CHECK;
/* Zero-copy alternative to feed for blocking readers: room for n more
 * bytes (NULL when that would pass the ceiling or memory is short); write
 * into it, then ferry_rpc_reader_commit() the bytes actually read. */
uint8_t *ferry_rpc_reader_space(ferry_rpc_reader *r, size_t n);
void ferry_rpc_reader_commit(ferry_rpc_reader *r, size_t n);
/* How many more bytes the reader needs before ferry_rpc_reader_next can
 * return a packet (>= 1), or 0 if a packet (or an error) is ready.  Lets a
 * blocking caller read exactly what is needed and never over-read into the
 * next packet. */
size_t ferry_rpc_reader_want(const ferry_rpc_reader *r);
/* The bytes fed and not yet returned as a packet (*len of them), for a
 * caller that handles the start of a large packet itself (the session
 * streams kCopyToRemote payloads straight into tensor memory); then
 * ferry_rpc_reader_discard() drops the first n of them (n <= *len). */
const uint8_t *ferry_rpc_reader_buffered(ferry_rpc_reader *r, size_t *len);
void ferry_rpc_reader_discard(ferry_rpc_reader *r, size_t n);
/* Frees the buffer if nothing is buffered and it is larger than keep
 * bytes, so one huge packet does not pin its memory for the session. */
void ferry_rpc_reader_shrink(ferry_rpc_reader *r, size_t keep);
/* Next packet.  FERRY_OK with *pkt; FERRY_EAGAIN: need more bytes;
 * FERRY_ETOOBIG: packet_nbytes > max_packet; FERRY_EPROTO:
 * 0 < packet_nbytes < 4 (no room for the code).  Empty packets
 * (packet_nbytes == 0) are skipped silently, as TVM does.  After an error
 * the reader is spent. */
int ferry_rpc_reader_next(ferry_rpc_reader *r, ferry_rpc_packet *pkt) FERRY_MUST_CHECK;
/* 1 when no byte of a next packet is buffered (an EOF now is clean). */
int ferry_rpc_reader_at_boundary(const ferry_rpc_reader *r);

/* Frames one packet from p[0..n) without copying: FERRY_OK with *pkt and
 * *used (8 + packet_nbytes), or the reader's error codes.  A zero-length
 * packet is returned with code FERRY_RPC_NONE and body_len 0. */
int ferry_rpc_packet_parse(const uint8_t *p, size_t n, uint64_t max_packet,
                           ferry_rpc_packet *pkt, size_t *used) FERRY_MUST_CHECK;

/* Starts a packet in out: appends a placeholder length and the code, and
 * stores in *mark where the packet begins.  Append the body with any
 * encoder, then call ferry_rpc_packet_end(out, mark) to patch the length. */
int ferry_rpc_packet_begin(ferry_buf *out, int32_t code, size_t *mark) FERRY_MUST_CHECK;
void ferry_rpc_packet_end(ferry_buf *out, size_t mark);

/* ---- fixed bodies (dialect-free) ---------------------------------------- */

/* kInitServer body: u64 len + version string, then a packed sequence.
 * Decoding: *version and *version_len point into body; *seq_off is where the
 * packed sequence starts.  FERRY_EPROTO if the string runs past the body. */
int ferry_rpc_init_server_decode(const uint8_t *body, size_t n, const char **version,
                                 size_t *version_len, size_t *seq_off) FERRY_MUST_CHECK;
/* Appends the kInitServer body prefix (version string); the caller appends
 * the packed sequence with its dialect. */
int ferry_rpc_init_server_encode(ferry_buf *out, const char *version) FERRY_MUST_CHECK;

/* kCallFunc body: u64 function handle, then a packed sequence at offset 8. */
int ferry_rpc_call_func_decode(const uint8_t *body, size_t n, uint64_t *handle,
                               size_t *seq_off) FERRY_MUST_CHECK;
int ferry_rpc_call_func_encode(ferry_buf *out, uint64_t handle) FERRY_MUST_CHECK;

/* kCopyFromRemote body: DLTensor, u64 nbytes (nothing may follow).
 * kCopyToRemote body: DLTensor, u64 nbytes, nbytes raw bytes (exactly).
 * On decode *tensor is in the arena, *data points into body (to-remote
 * only).  FERRY_EPROTO when the declared and actual lengths disagree. */
int ferry_rpc_copy_from_decode(const uint8_t *body, size_t n, ferry_rpc_arena *a,
                               DLTensor **tensor, uint64_t *nbytes,
                               ferry_rpc_why *why) FERRY_MUST_CHECK;
int ferry_rpc_copy_from_encode(ferry_buf *out, const DLTensor *t,
                               uint64_t nbytes) FERRY_MUST_CHECK;
int ferry_rpc_copy_to_decode(const uint8_t *body, size_t n, ferry_rpc_arena *a,
                             DLTensor **tensor, uint64_t *nbytes,
                             const uint8_t **data, ferry_rpc_why *why) FERRY_MUST_CHECK;
/* Appends the kCopyToRemote body: tensor, nbytes and the data. */
int ferry_rpc_copy_to_encode(ferry_buf *out, const DLTensor *t, const void *data,
                             uint64_t nbytes) FERRY_MUST_CHECK;

#endif
