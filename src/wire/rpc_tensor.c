/* DLTensor on the wire (rpc-session.md §2.4); see rpc_tensor.h. */
#include "wire/rpc_tensor.h"

#include "base/bytes.h"

int ferry_rpc_tensor_decode(const uint8_t *p, size_t n, ferry_rpc_arena *a, DLTensor **out,
                            size_t *used, ferry_rpc_why *why) {
  if (n < 24)
    return ferry_rpc_why_set(why, FERRY_EAGAIN, "DLTensor runs past the end of the packet");
  int32_t unvalidated_ndim = (int32_t)get_le32(p + 16);
  if (unvalidated_ndim < 0 || unvalidated_ndim > FERRY_RPC_MAX_NDIM)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "DLTensor ndim %d is outside 0..%d",
                             (int)unvalidated_ndim, FERRY_RPC_MAX_NDIM);
  int ndim = unvalidated_ndim;
  size_t size = ferry_rpc_tensor_wire_size(ndim);
  if (n < size)
    return ferry_rpc_why_set(why, FERRY_EAGAIN, "DLTensor runs past the end of the packet");
  int32_t device_type = (int32_t)get_le32(p + 8);
  if (device_type < 0 || device_type >= 128)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "DLTensor device type %d is invalid",
                             (int)device_type);
  for (int i = 0; i < ndim; i++) {
    int64_t extent = (int64_t)get_le64(p + 24 + 8 * (size_t)i);
    if (extent < 0)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "DLTensor shape[%d] = %lld is negative", i,
                               (long long)extent);
  }
  DLTensor *t = ferry_rpc_arena_alloc(a, sizeof *t);
  int64_t *shape = ndim ? ferry_rpc_arena_alloc(a, sizeof(int64_t) * (size_t)ndim) : NULL;
  if (!t || (ndim && !shape))
    return ferry_rpc_why_set(why, FERRY_ENOMEM, "packet decoding memory exhausted");
  t->data = (void *)(uintptr_t)get_le64(p);
  t->device.device_type = (DLDeviceType)device_type;
  t->device.device_id = (int32_t)get_le32(p + 12);
  t->ndim = ndim;
  t->dtype.code = p[20];
  t->dtype.bits = p[21];
  t->dtype.lanes = get_le16(p + 22);
  for (int i = 0; i < ndim; i++)
    shape[i] = (int64_t)get_le64(p + 24 + 8 * (size_t)i);
  t->shape = shape;
  t->strides = NULL;
  t->byte_offset = get_le64(p + 24 + 8 * (size_t)ndim);
  *out = t;
  *used = size;
  return FERRY_OK;
}

int ferry_rpc_tensor_encode(ferry_buf *out, const DLTensor *t) {
  if (t->ndim < 0 || t->ndim > FERRY_RPC_MAX_NDIM)
    return FERRY_EINVAL;
  size_t size = ferry_rpc_tensor_wire_size(t->ndim);
  uint8_t *p = ferry_buf_reserve(out, size);
  if (!p)
    return out->len + size > out->max ? FERRY_ETOOBIG : FERRY_ENOMEM;
  put_le64(p, (uint64_t)(uintptr_t)t->data);
  put_le32(p + 8, (uint32_t)t->device.device_type);
  put_le32(p + 12, (uint32_t)t->device.device_id);
  put_le32(p + 16, (uint32_t)t->ndim);
  p[20] = t->dtype.code;
  p[21] = t->dtype.bits;
  put_le16(p + 22, t->dtype.lanes);
  for (int i = 0; i < t->ndim; i++)
    put_le64(p + 24 + 8 * (size_t)i, (uint64_t)t->shape[i]);
  put_le64(p + 24 + 8 * (size_t)t->ndim, t->byte_offset);
  ferry_buf_commit(out, size);
  return FERRY_OK;
}

int ferry_rpc_tensor_nbytes(const DLTensor *t, uint64_t *out) {
  if (t->ndim < 0 || t->ndim > FERRY_RPC_MAX_NDIM)
    return FERRY_ERANGE;
  uint64_t elem = ((uint64_t)t->dtype.bits * t->dtype.lanes + 7) / 8;
  uint64_t total = elem;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0)
      return FERRY_ERANGE;
    uint64_t extent = (uint64_t)t->shape[i];
    if (extent != 0 && total > UINT64_MAX / extent)
      return FERRY_ERANGE;
    total *= extent;
  }
  *out = total;
  return FERRY_OK;
}
