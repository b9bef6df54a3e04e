/* The classic session dialect (TVM <= 0.20, rpc-session.md §2): type codes
 * of c_runtime_api.h, all N type codes before all N payloads.  This file is
 * the only place that knows those numbers. */
#include "base/bytes.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_payload.h"
#include "wire/rpc_tensor.h"

/* TVMArgTypeCode values that travel in this dialect (§2.2). */
enum {
  TC_INT = 0,
  TC_UINT = 1,
  TC_FLOAT = 2,
  TC_HANDLE = 3,
  TC_NULL = 4,
  TC_DTYPE = 5,
  TC_DEVICE = 6,
  TC_DLTENSOR = 7,
  TC_OBJECT = 8,
  TC_MODULE = 9,
  TC_FUNC = 10,
  TC_STR = 11,
  TC_BYTES = 12,
  TC_NDARRAY = 13,
  TC_BOOL = 15,
};
/* kRuntimeRPCObjectRefTypeIndex: the only object type index accepted (§2.5). */
#define RPC_OBJECT_REF_INDEX 9

/* The kind of a type code whose payload is one 8-byte word, or -1. */
static int word_kind_of(int code) {
  switch (code) {
  case TC_INT:
  case TC_UINT: /* same payload as int */
    return FERRY_KIND_INT;
  case TC_BOOL:
    return FERRY_KIND_BOOL;
  case TC_FLOAT:
    return FERRY_KIND_FLOAT;
  case TC_HANDLE:
    return FERRY_KIND_OPAQUE;
  case TC_MODULE:
    return FERRY_KIND_MODULE;
  case TC_FUNC:
    return FERRY_KIND_FUNC;
  case TC_DTYPE:
    return FERRY_KIND_DTYPE;
  case TC_DEVICE:
    return FERRY_KIND_DEVICE;
  default:
    return -1;
  }
}

static int decode_one(int code, const uint8_t *p, size_t n, ferry_rpc_arena *a,
                      ferry_value *v, size_t *used, ferry_rpc_why *why) {
  int kind = word_kind_of(code);
  if (kind >= 0) {
    if (n < 8)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "value of type code %d runs past the packet",
                               code);
    ferry_rpc_word_decode((enum ferry_kind)kind, p, v);
    *used = 8;
    return FERRY_OK;
  }
  switch (code) {
  case TC_NULL:
    v->kind = FERRY_KIND_NONE;
    *used = 0;
    return FERRY_OK;
  case TC_OBJECT: {
    if (n < 12)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "value of type code %d runs past the packet",
                               code);
    uint32_t unvalidated_index = get_le32(p);
    if (unvalidated_index != RPC_OBJECT_REF_INDEX)
      return ferry_rpc_why_set(why, FERRY_EPROTO,
                               "object argument of type index %u is not an RPC object "
                               "reference",
                               (unsigned)unvalidated_index);
    v->kind = FERRY_KIND_OBJECT;
    v->v.handle = get_le64(p + 4);
    *used = 12;
    return FERRY_OK;
  }
  case TC_DLTENSOR: {
    int rc = ferry_rpc_tensor_decode(p, n, a, &v->v.tensor, used, why);
    if (rc == FERRY_EAGAIN)
      return FERRY_EPROTO;
    if (rc == FERRY_OK)
      v->kind = FERRY_KIND_TENSOR;
    return rc;
  }
  case TC_STR:
  case TC_BYTES:
    return ferry_rpc_str_decode(p, n, a, code == TC_STR ? FERRY_KIND_STR : FERRY_KIND_BYTES,
                                v, used, why);
  default:
    return ferry_rpc_why_set(why, FERRY_EPROTO, "unknown type code %d", code);
  }
}

static int classic_decode_seq(const uint8_t *p, size_t n, ferry_rpc_arena *a,
                              ferry_value **vals, int *nvals, size_t *used,
                              ferry_rpc_why *why) {
  if (n < 4)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "packed sequence has no argument count");
  int32_t unvalidated_num = (int32_t)get_le32(p);
  if (unvalidated_num < 0 || unvalidated_num > FERRY_RPC_MAX_ARGS)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "argument count %d is outside 0..%d",
                             (int)unvalidated_num, FERRY_RPC_MAX_ARGS);
  int num = unvalidated_num;
  /* The type codes alone must fit before anything is allocated. */
  if ((size_t)num > (n - 4) / 4)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "%d type codes run past the packet", num);
  ferry_value *out = NULL;
  if (num) {
    out = ferry_rpc_arena_alloc(a, sizeof *out * (size_t)num);
    if (!out)
      return ferry_rpc_why_set(why, FERRY_ENOMEM, "packet decoding memory exhausted");
  }
  size_t off = 4 + 4 * (size_t)num;
  for (int i = 0; i < num; i++) {
    int code = (int32_t)get_le32(p + 4 + 4 * (size_t)i);
    size_t u = 0;
    int rc = decode_one(code, p + off, n - off, a, &out[i], &u, why);
    if (rc)
      return rc;
    off += u;
  }
  *vals = out;
  *nvals = num;
  *used = off;
  return FERRY_OK;
}

static int type_code_of(enum ferry_kind kind) {
  switch (kind) {
  case FERRY_KIND_NONE:
    return TC_NULL;
  case FERRY_KIND_INT:
    return TC_INT;
  case FERRY_KIND_BOOL:
    return TC_BOOL;
  case FERRY_KIND_FLOAT:
    return TC_FLOAT;
  case FERRY_KIND_OPAQUE:
    return TC_HANDLE;
  case FERRY_KIND_DTYPE:
    return TC_DTYPE;
  case FERRY_KIND_DEVICE:
    return TC_DEVICE;
  case FERRY_KIND_TENSOR:
    return TC_DLTENSOR;
  case FERRY_KIND_STR:
    return TC_STR;
  case FERRY_KIND_BYTES:
    return TC_BYTES;
  case FERRY_KIND_FUNC:
    return TC_FUNC;
  case FERRY_KIND_MODULE:
    return TC_MODULE;
  case FERRY_KIND_OBJECT:
    return TC_OBJECT;
  case FERRY_KIND_NDARRAY:
    break; /* travels as a DLTensor (senders convert it) */
  }
  return -1;
}

static int encode_payload(ferry_buf *out, const ferry_value *v) {
  uint8_t b[12];
  if (ferry_rpc_is_word_kind(v->kind)) {
    ferry_rpc_word_encode(v, b);
    return ferry_buf_append(out, b, 8);
  }
  switch (v->kind) {
  case FERRY_KIND_NONE:
    return FERRY_OK;
  case FERRY_KIND_OBJECT:
    put_le32(b, RPC_OBJECT_REF_INDEX);
    put_le64(b + 4, v->v.handle);
    return ferry_buf_append(out, b, 12);
  case FERRY_KIND_TENSOR:
    if (!v->v.tensor)
      return FERRY_EINVAL;
    return ferry_rpc_tensor_encode(out, v->v.tensor);
  case FERRY_KIND_STR:
  case FERRY_KIND_BYTES:
    return ferry_rpc_str_encode(out, v);
  default: /* NDARRAY travels as a DLTensor (senders convert it) */
    return FERRY_EINVAL;
  }
}

static int classic_encode_seq(ferry_buf *out, const ferry_value *vals, int nvals) {
  if (nvals < 0 || nvals > FERRY_RPC_MAX_ARGS)
    return FERRY_EINVAL;
  size_t start = out->len;
  uint8_t b[4];
  put_le32(b, (uint32_t)nvals);
  int rc = ferry_buf_append(out, b, 4);
  for (int i = 0; i < nvals && !rc; i++) {
    int code = type_code_of(vals[i].kind);
    if (code < 0)
      rc = FERRY_EINVAL;
    else {
      put_le32(b, (uint32_t)code);
      rc = ferry_buf_append(out, b, 4);
    }
  }
  for (int i = 0; i < nvals && !rc; i++)
    rc = encode_payload(out, &vals[i]);
  if (rc)
    out->len = start; /* leave out as it was */
  return rc;
}

/* kCallFunc replies (§2.7): int type code of the result, then the result;
 * handles of functions, modules and objects travel as type 3. */
static int classic_encode_call_return(ferry_buf *out, const ferry_rpc_return *ret) {
  const ferry_value *r = &ret->value;
  ferry_value seq[3];
  int n = 2;
  seq[0].kind = FERRY_KIND_INT;
  seq[1] = *r;
  switch (r->kind) {
  case FERRY_KIND_FUNC:
  case FERRY_KIND_MODULE:
  case FERRY_KIND_OBJECT:
    seq[0].v.i = type_code_of(r->kind);
    seq[1].kind = FERRY_KIND_OPAQUE;
    break;
  case FERRY_KIND_NDARRAY:
    if (!ret->tensor)
      return FERRY_EINVAL;
    seq[0].v.i = TC_NDARRAY;
    seq[1].kind = FERRY_KIND_TENSOR;
    seq[1].v.tensor = (DLTensor *)ret->tensor;
    seq[2].kind = FERRY_KIND_OPAQUE;
    seq[2].v.handle = r->v.handle;
    n = 3;
    break;
  case FERRY_KIND_TENSOR:
    return FERRY_EINVAL; /* a borrowed tensor cannot outlive the call */
  default:
    seq[0].v.i = type_code_of(r->kind);
    break;
  }
  return classic_encode_seq(out, seq, n);
}

static int classic_decode_call_return(const uint8_t *p, size_t n, ferry_rpc_arena *a,
                                      ferry_rpc_return *ret, ferry_rpc_why *why) {
  ferry_value *vals = NULL;
  int nvals = 0;
  size_t used = 0;
  int rc = classic_decode_seq(p, n, a, &vals, &nvals, &used, why);
  if (rc)
    return rc;
  if (used != n)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "%zu bytes after the return value", n - used);
  if (nvals < 1 || vals[0].kind != FERRY_KIND_INT)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "return value lacks its type code");
  memset(ret, 0, sizeof *ret);
  int64_t code = vals[0].v.i;
  if (code == TC_NULL) {
    ret->value.kind = FERRY_KIND_NONE;
    return FERRY_OK;
  }
  if (code == TC_NDARRAY || code == TC_DLTENSOR) {
    if (nvals != 3 || vals[1].kind != FERRY_KIND_TENSOR || vals[2].kind != FERRY_KIND_OPAQUE)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "NDArray return is not [int, tensor, handle]");
    ret->value.kind = FERRY_KIND_NDARRAY;
    ret->value.v.handle = vals[2].v.handle;
    ret->tensor = vals[1].v.tensor;
    return FERRY_OK;
  }
  if (nvals != 2)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "return value has %d parts instead of 2", nvals);
  ret->value = vals[1];
  if (code == TC_FUNC || code == TC_MODULE || code == TC_OBJECT) {
    if (vals[1].kind != FERRY_KIND_OPAQUE)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "object return is not a handle");
    ret->value.kind = code == TC_FUNC     ? FERRY_KIND_FUNC
                      : code == TC_MODULE ? FERRY_KIND_MODULE
                                          : FERRY_KIND_OBJECT;
  }
  return FERRY_OK;
}

static int classic_encode_free_handle(ferry_buf *out, uint64_t handle, enum ferry_kind kind) {
  ferry_value seq[2];
  seq[0].kind = FERRY_KIND_OPAQUE;
  seq[0].v.handle = handle;
  seq[1].kind = FERRY_KIND_INT;
  seq[1].v.i = kind == FERRY_KIND_NDARRAY ? TC_NDARRAY : type_code_of(kind);
  if (kind != FERRY_KIND_NDARRAY && kind != FERRY_KIND_FUNC && kind != FERRY_KIND_MODULE &&
      kind != FERRY_KIND_OBJECT)
    return FERRY_EINVAL;
  return classic_encode_seq(out, seq, 2);
}

static int classic_decode_free_handle(const ferry_value *vals, int nvals, uint64_t *handle,
                                      enum ferry_kind *kind, ferry_rpc_why *why) {
  if (nvals != 2 || vals[0].kind != FERRY_KIND_OPAQUE || vals[1].kind != FERRY_KIND_INT)
    return ferry_rpc_why_set(why, FERRY_EPROTO,
                             "kFreeHandle expects (handle, int type code)");
  switch (vals[1].v.i) {
  case TC_OBJECT:
    *kind = FERRY_KIND_OBJECT;
    break;
  case TC_MODULE:
    *kind = FERRY_KIND_MODULE;
    break;
  case TC_FUNC:
    *kind = FERRY_KIND_FUNC;
    break;
  case TC_NDARRAY:
    *kind = FERRY_KIND_NDARRAY;
    break;
  default:
    return ferry_rpc_why_set(why, FERRY_EPROTO, "kFreeHandle of type code %lld",
                             (long long)vals[1].v.i);
  }
  *handle = vals[0].v.handle;
  return FERRY_OK;
}

/* Parses the sequence without keeping anything: scratch decoding into a
 * small private arena bounded by the packet itself. */
static int classic_probe(int code, const uint8_t *p, size_t n) {
  ferry_rpc_arena a;
  /* Decoded values never take more than a few times the wire bytes. */
  ferry_rpc_arena_init(&a, 64 * n + 4096);
  ferry_value *vals = NULL;
  int nvals = 0;
  size_t used = 0;
  int rc = classic_decode_seq(p, n, &a, &vals, &nvals, &used, NULL);
  int score = 0;
  if (rc == FERRY_OK && used == n) {
    score = 1;
    /* Typical first arguments of the reference client's packets. */
    if (nvals > 0 && ((code == 9 && vals[0].kind == FERRY_KIND_STR) ||
                      (code >= 11 && code != 17 && vals[0].kind == FERRY_KIND_DEVICE) ||
                      (code == 17 && vals[0].kind == FERRY_KIND_TENSOR) || code == 3))
      score = 2;
  }
  ferry_rpc_arena_close(&a);
  return score;
}

const ferry_dialect ferry_dialect_classic = {
    .id = FERRY_DIALECT_CLASSIC,
    .name = "classic",
    .decode_seq = classic_decode_seq,
    .encode_seq = classic_encode_seq,
    .encode_call_return = classic_encode_call_return,
    .decode_call_return = classic_decode_call_return,
    .encode_free_handle = classic_encode_free_handle,
    .decode_free_handle = classic_decode_free_handle,
    .probe = classic_probe,
};
