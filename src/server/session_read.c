/* Reading requests: framing through the packet reader, and the streamed
 * path of large kCopyToRemote packets (payload read straight into tensor
 * memory).  See session_internal.h for the contracts. */
#include <string.h>

#include "base/bytes.h"
#include "server/session_internal.h"

/* Bytes asked from io->read at once while a packet body is incomplete. */
#define READ_CHUNK (1u << 20)
/* Bytes asked for at least, so that small packets take one read. */
#define READ_AHEAD (16u << 10)

/* One read into the reader, at most want bytes.  SESSION_CLEAN_EOF when the peer
 * closed on a packet boundary. */
static int read_some(ferry_session *s, size_t want, ferry_err *err) {
  if (want > READ_CHUNK)
    want = READ_CHUNK;
  /* Small requests are read with room to spare: the next packets, if they
   * are already there, come in the same system call.  The reader keeps
   * them; near its ceiling only what is needed is asked for. */
  size_t ask = want < READ_AHEAD ? READ_AHEAD : want;
  uint8_t *space = ferry_rpc_reader_space(&s->reader, ask);
  if (!space) {
    ask = want;
    space = ferry_rpc_reader_space(&s->reader, ask);
  }
  if (!space)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory reading a packet");
  want = ask;
  long got = s->io->read(s->io->ctx, space, want);
  if (got < 0)
    return ferry_err_set(err, (int)got, "reading the session: %s", ferry_strerror((int)got));
  if (got == 0) {
    if (ferry_rpc_reader_at_boundary(&s->reader))
      return SESSION_CLEAN_EOF;
    return ferry_err_set(err, FERRY_ECLOSED, "connection closed in the middle of a packet");
  }
  ferry_rpc_reader_commit(&s->reader, (size_t)got);
  return FERRY_OK;
}

/* Reads until at least k bytes are buffered (perhaps more). */
int session_fill_to(ferry_session *s, size_t k, ferry_err *err) {
  for (;;) {
    size_t have = 0;
    (void)ferry_rpc_reader_buffered(&s->reader, &have);
    if (have >= k)
      return FERRY_OK;
    int rc = read_some(s, k - have, err);
    if (rc)
      return rc;
  }
}

int session_read_packet(ferry_session *s, ferry_rpc_packet *pkt, ferry_err *err) {
  for (;;) {
    size_t want = ferry_rpc_reader_want(&s->reader);
    if (want == 0) {
      int rc = ferry_rpc_reader_next(&s->reader, pkt);
      if (rc == FERRY_ETOOBIG)
        return ferry_err_set(err, rc, "packet of %llu bytes is over the limit of %llu",
                             (unsigned long long)s->reader.bad_length,
                             (unsigned long long)s->max_packet);
      if (rc == FERRY_EPROTO)
        return ferry_err_set(err, rc, "packet length %llu cannot hold an RPC code",
                             (unsigned long long)s->reader.bad_length);
      if (rc != FERRY_EAGAIN)
        return rc;
      want = ferry_rpc_reader_want(&s->reader);
      if (want == 0)
        want = 1;
    }
    int rc = read_some(s, want, err);
    if (rc)
      return rc;
  }
}

/* Reads and drops n bytes of the current packet. */
static int skip_bytes(ferry_session *s, uint64_t n, ferry_err *err) {
  uint8_t scratch[64 << 10];
  while (n > 0) {
    size_t k = n < sizeof scratch ? (size_t)n : sizeof scratch;
    long got = s->io->read(s->io->ctx, scratch, k);
    if (got <= 0)
      return ferry_err_set(err, got < 0 ? (int)got : FERRY_ECLOSED,
                           "connection lost in the middle of a packet");
    n -= (uint64_t)got;
  }
  return FERRY_OK;
}

/* A large kCopyToRemote: its header is checked as soon as it has arrived
 * and the payload is read from the socket straight into the (checked)
 * tensor memory, so an upload costs no staging buffer and no copy.  The
 * reply (or exception) is left in s->out like any request's.  Errors of
 * the request go to req_err; errors of the stream to err (fatal). */
int session_copy_to_streamed(ferry_session *s, uint64_t len, ferry_err *req_err,
                            ferry_err *err) {
  const size_t fixed = FERRY_RPC_HEADER_SIZE + 4 + 24; /* up to the shape */
  int rc = session_fill_to(s, fixed, err);
  if (rc)
    return rc < 0 ? rc : ferry_err_set(err, FERRY_ECLOSED, "connection closed in a packet");
  size_t have = 0;
  const uint8_t *p = ferry_rpc_reader_buffered(&s->reader, &have);
  int32_t unvalidated_ndim = (int32_t)get_le32(p + FERRY_RPC_HEADER_SIZE + 4 + 16);
  uint64_t head = 0;
  void *dst = NULL;
  if (unvalidated_ndim < 0 || unvalidated_ndim > FERRY_RPC_MAX_NDIM) {
    rc = ferry_err_set(req_err, FERRY_EPROTO,
                       "ValueError: malformed kCopyToRemote: DLTensor ndim %d is outside "
                       "0..%d",
                       (int)unvalidated_ndim, FERRY_RPC_MAX_NDIM);
  } else {
    head = 4 + ferry_rpc_tensor_wire_size(unvalidated_ndim) + 8; /* code, tensor, nbytes */
    if (head > len)
      rc = ferry_err_set(req_err, FERRY_EPROTO, "ValueError: malformed kCopyToRemote");
  }
  if (!rc) {
    int frc = session_fill_to(s, FERRY_RPC_HEADER_SIZE + (size_t)head, err);
    if (frc)
      return frc < 0 ? frc : ferry_err_set(err, FERRY_ECLOSED, "connection closed in a packet");
    p = ferry_rpc_reader_buffered(&s->reader, &have);
    rc = session_copy_to_target(s, p + FERRY_RPC_HEADER_SIZE + 4, (size_t)head - 4,
                                len - head, &dst, req_err);
  }
  /* Whatever part of the packet is buffered is consumed here; the rest is
   * read below (into the tensor, or dropped after a refusal). */
  p = ferry_rpc_reader_buffered(&s->reader, &have);
  size_t in_packet =
      have < FERRY_RPC_HEADER_SIZE + len ? have : (size_t)(FERRY_RPC_HEADER_SIZE + len);
  uint64_t rest = FERRY_RPC_HEADER_SIZE + len - in_packet;
  if (rc) {
    s->stream_tensor = NULL;
    ferry_rpc_reader_discard(&s->reader, in_packet);
    return skip_bytes(s, rest, err);
  }
  size_t early = in_packet - FERRY_RPC_HEADER_SIZE - (size_t)head; /* payload already here */
  if (early)
    memcpy(dst, p + FERRY_RPC_HEADER_SIZE + head, early);
  ferry_rpc_reader_discard(&s->reader, in_packet);
  uint8_t *to = (uint8_t *)dst + early;
  while (rest > 0) {
    size_t k = rest < READ_CHUNK * 16 ? (size_t)rest : READ_CHUNK * 16;
    long got = s->io->read(s->io->ctx, to, k);
    if (got <= 0)
      return ferry_err_set(err, got < 0 ? (int)got : FERRY_ECLOSED,
                           "connection lost in the middle of kCopyToRemote");
    to += got;
    rest -= (uint64_t)got;
  }
  if (session_copy_to_finish(s, len - head, req_err) != FERRY_OK)
    return FERRY_OK; /* the request failed; the stream is intact */
  return session_reply_void(s);
}
