/* Tensors on the server: allocation (kDevAllocDataWithScope), copies in
 * and out (kCopyToRemote / kCopyFromRemote, chunked as rpc-session.md
 * §3.11 when the server announces a maximum packet size), and the device
 * synchronisation TVM's client does after each copy (§5.5, §5.7). */
#include <inttypes.h>
#include <string.h>

#include "base/bytes.h"
#include "client/client_internal.h"

/* Copies below this size go through the request buffer; larger ones are
 * written straight from the caller's memory after a header, so uploading a
 * big tensor costs no extra memcpy. */
#define DIRECT_COPY_MIN ((uint64_t)64 << 10)

int ferry_client_tensor_empty(ferry_client *c, DLDevice dev, int ndim, const int64_t *shape,
                              DLDataType dtype, ferry_remote **out) {
  int rc = client_begin(c);
  if (rc)
    return rc;
  if (ndim < 0 || ndim > FERRY_RPC_MAX_NDIM)
    return client_fail(c, FERRY_EINVAL, "ndim %d is outside 0..%d", ndim, FERRY_RPC_MAX_NDIM);
  DLTensor tmpl;
  memset(&tmpl, 0, sizeof tmpl);
  tmpl.device = dev;
  tmpl.ndim = ndim;
  tmpl.dtype = dtype;
  tmpl.shape = (int64_t *)shape;
  uint64_t nbytes;
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      return client_fail(c, FERRY_EINVAL, "negative extent %" PRId64, shape[i]);
  if (ferry_rpc_tensor_nbytes(&tmpl, &nbytes) != 0)
    return client_fail(c, FERRY_ERANGE, "tensor size overflows");
  /* Template with data 0 and no memory scope (null), as tvm.nd.empty. */
  ferry_value args[2], res;
  args[0].kind = FERRY_KIND_TENSOR;
  args[0].v.tensor = &tmpl;
  args[1].kind = FERRY_KIND_NONE;
  rc = client_syscall(c, FERRY_RPC_DEV_ALLOC_DATA_WITH_SCOPE, args, 2, &res);
  if (rc)
    return rc;
  if (res.kind != FERRY_KIND_OPAQUE || res.v.handle == 0) {
    c->broken = 1;
    return client_fail(c, FERRY_EPROTO, "allocation answered a %s",
                       res.kind == FERRY_KIND_OPAQUE ? "null pointer" : ferry_kind_name(res.kind));
  }
  ferry_remote *r = client_remote_new(c, FERRY_KIND_NDARRAY, res.v.handle);
  if (!r)
    return FERRY_ENOMEM; /* the buffer stays with the session; freed at its end */
  r->allocated = 1;
  r->tensor = tmpl;
  r->tensor.shape = r->shape;
  r->tensor.data = (void *)(uintptr_t)res.v.handle;
  if (ndim)
    memcpy(r->shape, shape, sizeof(int64_t) * (size_t)ndim);
  *out = r;
  return 0;
}

/* The chunk size for copies of tensor t: 0 = unlimited.  The server's
 * limit is looked up once per session (TVM repeats the lookup before every
 * copy; the answer cannot change within a session). */
static int chunk_size(ferry_client *c, const DLTensor *t, uint64_t *block) {
  if (c->max_packet == 0) {
    uint64_t h = 0;
    int rc = client_global(c, CG_MAX_PACKET, &h);
    if (rc == FERRY_ENOTFOUND) {
      c->err[0] = 0;
      c->max_packet = -1;
    } else if (rc) {
      return rc;
    } else {
      ferry_rpc_return rr;
      rc = client_callfunc(c, h, NULL, 0, &rr);
      if (rc)
        return rc;
      if (rr.value.kind != FERRY_KIND_INT || rr.value.v.i <= 0)
        return client_fail(c, FERRY_EPROTO, "GetCRTMaxPacketSize returned a %s",
                           ferry_kind_name(rr.value.kind));
      c->max_packet = rr.value.v.i;
    }
  }
  *block = 0;
  if (c->max_packet > 0) {
    /* The copy packet's own overhead (§3.11): code, tensor, nbytes. */
    uint64_t overhead = 4 + ferry_rpc_tensor_wire_size(t->ndim) + 8;
    if ((uint64_t)c->max_packet <= overhead)
      return client_fail(c, FERRY_EPROTO, "server's maximum packet size %" PRId64
                         " leaves no room for data", c->max_packet);
    *block = (uint64_t)c->max_packet - overhead;
  }
  return 0;
}

static int stream_sync(ferry_client *c, DLDevice dev) {
  ferry_value args[2], res;
  args[0].kind = FERRY_KIND_DEVICE;
  args[0].v.device = dev;
  args[1].kind = FERRY_KIND_OPAQUE; /* the default stream, sent as a null pointer */
  args[1].v.handle = 0;
  return client_syscall(c, FERRY_RPC_DEV_STREAM_SYNC, args, 2, &res);
}

int ferry_client_sync(ferry_client *c, DLDevice dev) {
  int rc = client_begin(c);
  return rc ? rc : stream_sync(c, dev);
}

static int check_copy(ferry_client *c, ferry_remote *t, uint64_t nbytes) {
  if (!t || t->kind != FERRY_KIND_NDARRAY)
    return client_fail(c, FERRY_EINVAL, "copy of something that is not a tensor");
  uint64_t size = ferry_remote_nbytes(t);
  if (nbytes > SIZE_MAX)
    return client_fail(c, FERRY_ETOOBIG, "a copy of %" PRIu64 " bytes does not fit in memory",
                       nbytes);
  if (nbytes != size)
    return client_fail(c, FERRY_EINVAL,
                       "copy of %" PRIu64 " bytes to or from a tensor of %" PRIu64 " bytes",
                       nbytes, size);
  return 0;
}

static int copy_in_chunk(ferry_client *c, DLTensor *view, const uint8_t *data, uint64_t n) {
  size_t mark;
  int rc = client_packet_begin(c, FERRY_RPC_COPY_TO_REMOTE, &mark);
  if (rc)
    return rc;
  if (n < DIRECT_COPY_MIN) {
    rc = ferry_rpc_copy_to_encode(&c->out, view, data, n);
    if (rc)
      return client_fail(c, rc, "cannot encode kCopyToRemote");
    return client_exchange(c, mark, FERRY_RPC_RETURN);
  }
  /* The kCopyToRemote body is the kCopyFromRemote body (tensor, nbytes)
   * followed by the data (§3.5, §3.6): encode that prefix and send the
   * data from the caller's memory. */
  rc = ferry_rpc_copy_from_encode(&c->out, view, n);
  if (rc)
    return client_fail(c, rc, "cannot encode kCopyToRemote");
  return client_exchange_with_data(c, mark, data, n, FERRY_RPC_RETURN);
}

int ferry_client_tensor_copy_in(ferry_client *c, ferry_remote *t, const void *data,
                                uint64_t nbytes) {
  int rc = client_begin(c);
  uint64_t block = 0;
  if (!rc)
    rc = check_copy(c, t, nbytes);
  if (!rc)
    rc = chunk_size(c, &t->tensor, &block);
  if (rc)
    return rc;
  /* Chunk k carries byte_offset = k * block (§3.11); unlimited: one packet. */
  DLTensor view = t->tensor;
  uint64_t off = 0;
  do {
    uint64_t n = block && nbytes - off > block ? block : nbytes - off;
    view.byte_offset = off;
    rc = copy_in_chunk(c, &view, (const uint8_t *)data + off, n);
    off += n;
  } while (!rc && off < nbytes);
  return rc ? rc : stream_sync(c, t->tensor.device);
}

int ferry_client_tensor_copy_out(ferry_client *c, ferry_remote *t, void *data,
                                 uint64_t nbytes) {
  int rc = client_begin(c);
  uint64_t block = 0;
  if (!rc)
    rc = check_copy(c, t, nbytes);
  if (!rc)
    rc = chunk_size(c, &t->tensor, &block);
  if (rc)
    return rc;
  /* A kCopyAck must fit under our own reply ceiling: past it, read in
   * chunks even if the server set no limit (servers honour byte_offset,
   * §3.5), so that a big tensor does not end the session. */
  uint64_t own = c->opts.max_reply_bytes - 4;
  if (block == 0 || block > own)
    block = nbytes > own ? own : block;
  DLTensor view = t->tensor;
  uint64_t off = 0;
  do {
    uint64_t n = block && nbytes - off > block ? block : nbytes - off;
    view.byte_offset = off;
    size_t mark;
    rc = client_packet_begin(c, FERRY_RPC_COPY_FROM_REMOTE, &mark);
    if (!rc && (rc = ferry_rpc_copy_from_encode(&c->out, &view, n)) != 0)
      rc = client_fail(c, rc, "cannot encode kCopyFromRemote");
    if (!rc)
      rc = client_exchange_into(c, mark, FERRY_RPC_COPY_ACK, (uint8_t *)data + off, n);
    off += n;
  } while (!rc && off < nbytes);
  return rc ? rc : stream_sync(c, t->tensor.device);
}
