#include "wire/params.h"

#include <string.h>

/* Bytes of data the format stores: ((bits + 7) / 8) x prod(shape). */
static int data_size(const DLDataType dtype, int ndim, const int64_t *shape, uint64_t *out) {
  uint64_t n = ((uint64_t)dtype.bits + 7) / 8;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return FERRY_EPROTO;
    if (__builtin_mul_overflow(n, (uint64_t)shape[i], &n))
      return FERRY_ETOOBIG;
  }
  *out = n;
  return FERRY_OK;
}

static int decode(ferry_stream *s, ferry_params_tensor *t) {
  uint64_t magic, reserved, v64;
  uint32_t dev_type, dev_id, ndim, dt;
  int rc;
  if ((rc = ferry_stream_u64(s, &magic)))
    return rc;
  if (magic != FERRY_NDARRAY_MAGIC)
    return FERRY_EMAGIC;
  if ((rc = ferry_stream_u64(s, &reserved)) || (rc = ferry_stream_u32(s, &dev_type)) ||
      (rc = ferry_stream_u32(s, &dev_id)) || (rc = ferry_stream_u32(s, &ndim)) ||
      (rc = ferry_stream_u32(s, &dt)))
    return rc;
  int32_t unvalidated_ndim = (int32_t)ndim;
  if ((int32_t)dev_type != kDLCPU || unvalidated_ndim < 0 ||
      unvalidated_ndim > FERRY_PARAMS_MAX_NDIM)
    return FERRY_EPROTO;
  t->device.device_type = kDLCPU;
  t->device.device_id = (int32_t)dev_id;
  t->ndim = unvalidated_ndim;
  t->dtype.code = (uint8_t)dt;
  t->dtype.bits = (uint8_t)(dt >> 8);
  t->dtype.lanes = (uint16_t)(dt >> 16);
  if (t->dtype.lanes != 1)
    return FERRY_EPROTO;
  for (int i = 0; i < t->ndim; i++) {
    if ((rc = ferry_stream_u64(s, &v64)))
      return rc;
    t->shape[i] = (int64_t)v64;
  }
  uint64_t expect;
  if ((rc = data_size(t->dtype, t->ndim, t->shape, &expect)))
    return rc;
  uint64_t unvalidated_size;
  if ((rc = ferry_stream_u64(s, &unvalidated_size)))
    return rc;
  if (unvalidated_size != expect)
    return FERRY_EPROTO;
  if (unvalidated_size > ferry_stream_left(s))
    return FERRY_EAGAIN;
  t->nbytes = unvalidated_size;
  return ferry_stream_bytes(s, (size_t)unvalidated_size, &t->data);
}

int ferry_ndarray_decode(ferry_stream *s, ferry_params_tensor *out) {
  ferry_stream save = *s;
  int rc = decode(s, out);
  if (rc)
    *s = save;
  return rc;
}

int ferry_ndarray_encode(ferry_buf *out, const DLTensor *t) {
  if (t->ndim < 0 || t->ndim > FERRY_PARAMS_MAX_NDIM || t->dtype.lanes != 1)
    return FERRY_EINVAL;
  uint64_t nbytes;
  int rc = data_size(t->dtype, t->ndim, t->shape, &nbytes);
  if (rc)
    return rc == FERRY_EPROTO ? FERRY_EINVAL : rc;
  if (t->strides != NULL) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
      if (t->shape[i] != 1 && t->strides[i] != expect)
        return FERRY_EINVAL;
      expect *= t->shape[i];
    }
  }
  size_t hdr = 8 + 8 + 4 + 4 + 4 + 4 + 8 * (size_t)t->ndim + 8;
  size_t before = out->len;
  uint8_t *p = ferry_buf_reserve(out, hdr);
  if (p == NULL)
    return FERRY_ETOOBIG;
  put_le64(p, FERRY_NDARRAY_MAGIC);
  put_le64(p + 8, 0);
  put_le32(p + 16, kDLCPU);
  put_le32(p + 20, 0);
  put_le32(p + 24, (uint32_t)t->ndim);
  p[28] = t->dtype.code;
  p[29] = t->dtype.bits;
  put_le16(p + 30, t->dtype.lanes);
  for (int i = 0; i < t->ndim; i++)
    put_le64(p + 32 + 8 * i, (uint64_t)t->shape[i]);
  put_le64(p + 32 + 8 * t->ndim, nbytes);
  ferry_buf_commit(out, hdr);
  if (nbytes > SIZE_MAX ||
      ferry_buf_append(out, (const char *)t->data + t->byte_offset, (size_t)nbytes) != FERRY_OK) {
    out->len = before;
    return FERRY_ETOOBIG;
  }
  return FERRY_OK;
}

int ferry_params_open(ferry_params_reader *r, const uint8_t *p, size_t len) {
  memset(r, 0, sizeof *r);
  ferry_stream s;
  ferry_stream_init(&s, p, len);
  uint64_t magic, reserved, unvalidated_nnames, unvalidated_count;
  int rc;
  if ((rc = ferry_stream_u64(&s, &magic)))
    return rc;
  if (magic != FERRY_PARAMS_MAGIC)
    return FERRY_EMAGIC;
  if ((rc = ferry_stream_u64(&s, &reserved)) || (rc = ferry_stream_u64(&s, &unvalidated_nnames)))
    return rc;
  if (unvalidated_nnames > FERRY_PARAMS_MAX_ENTRIES)
    return FERRY_ETOOBIG;
  size_t names_start = s.pos;
  for (uint64_t i = 0; i < unvalidated_nnames; i++) {
    const char *name;
    size_t nlen;
    if ((rc = ferry_stream_str(&s, FERRY_PARAMS_MAX_NAME, &name, &nlen)))
      return rc;
  }
  ferry_stream_init(&r->names, p + names_start, s.pos - names_start);
  if ((rc = ferry_stream_u64(&s, &unvalidated_count)))
    return rc;
  if (unvalidated_count != unvalidated_nnames)
    return FERRY_EPROTO;
  r->count = unvalidated_count;
  ferry_stream_init(&r->arrays, p + s.pos, len - s.pos);
  return FERRY_OK;
}

int ferry_params_next(ferry_params_reader *r, const char **name, size_t *name_len,
                      ferry_params_tensor *t) {
  if (r->index >= r->count)
    return FERRY_EINVAL;
  int rc = ferry_ndarray_decode(&r->arrays, t);
  if (rc)
    return rc;
  /* Names were validated by ferry_params_open. */
  rc = ferry_stream_str(&r->names, FERRY_PARAMS_MAX_NAME, name, name_len);
  if (rc)
    return rc;
  r->index++;
  return FERRY_OK;
}

int ferry_params_encode(ferry_buf *out, size_t n, const char *const *names,
                        const DLTensor *const *tensors) {
  if (n > FERRY_PARAMS_MAX_ENTRIES)
    return FERRY_ETOOBIG;
  size_t before = out->len;
  uint8_t hdr[24];
  put_le64(hdr, FERRY_PARAMS_MAGIC);
  put_le64(hdr + 8, 0);
  put_le64(hdr + 16, n);
  int rc = ferry_buf_append(out, hdr, sizeof hdr);
  for (size_t i = 0; rc == FERRY_OK && i < n; i++) {
    size_t nlen = strlen(names[i]);
    if (nlen > FERRY_PARAMS_MAX_NAME) {
      rc = FERRY_ETOOBIG;
      break;
    }
    uint8_t l[8];
    put_le64(l, nlen);
    rc = ferry_buf_append(out, l, 8);
    if (rc == FERRY_OK)
      rc = ferry_buf_append(out, names[i], nlen);
  }
  if (rc == FERRY_OK) {
    uint8_t l[8];
    put_le64(l, n);
    rc = ferry_buf_append(out, l, 8);
  }
  for (size_t i = 0; rc == FERRY_OK && i < n; i++)
    rc = ferry_ndarray_encode(out, tensors[i]);
  if (rc)
    out->len = before;
  return rc;
}
