/* The tvm-ffi session dialect (TVM >= 0.21, rpc-session.md §7): tvm-ffi
 * type indices, each argument's index directly before its payload.  This
 * file is the only place that knows those numbers.
 *
 * Where the spec (written against v0.21.0) and the v0.26.0 recordings in
 * tests/golden/ffi differ, this file follows the recordings: string and
 * bytes *objects* (and RPC object references) carry a second u32 type
 * after their index, and the object reference index is 115. */
#include <string.h>

#include "base/bytes.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_payload.h"
#include "wire/rpc_tensor.h"

/* tvm-ffi TVMFFITypeIndex values that travel in this dialect. */
enum {
  TI_NONE = 0,
  TI_INT = 1,
  TI_BOOL = 2,
  TI_FLOAT = 3,
  TI_OPAQUE = 4,
  TI_DTYPE = 5,
  TI_DEVICE = 6,
  TI_DLTENSOR = 7,
  TI_RAW_STR = 8,
  TI_BYTE_ARRAY = 9,
  TI_SMALL_STR = 11,   /* on-stack string of later tvm-ffi (§7.3) */
  TI_SMALL_BYTES = 12, /* on-stack bytes of later tvm-ffi */
  TI_OBJECT_BEGIN = 64,
  TI_STR = 65,
  TI_BYTES = 66,
  TI_FUNC = 68,
  TI_TENSOR = 70,    /* Tensor (the renamed NDArray) of the recorded tvm-ffi */
  TI_NDARRAY_V021 = 72, /* NDArray at v0.21.0 (§7.2.2) */
  TI_MODULE = 73,
  TI_SHAPE = 69, /* tvm-ffi v0.22+ (TVM v0.26) */
  TI_ARRAY = 71, /* tvm-ffi v0.22+ (TVM v0.26) */
  TI_RPC_OBJECT_REF = 115,
};

/* An object argument: its index, then a second u32 type that must agree
 * (Str/Bytes objects, and the RPC object reference the server handed out). */
static int decode_object(int index, const uint8_t *p, size_t n, ferry_rpc_arena *a,
                         ferry_value *v, size_t *used, ferry_rpc_why *why) {
  if (n < 4)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "object of type index %d runs past the packet",
                             index);
  uint32_t unvalidated_inner = get_le32(p);
  size_t u = 0;
  int rc;
  if ((index == TI_STR || index == TI_SMALL_STR) && unvalidated_inner == TI_STR)
    rc = ferry_rpc_str_decode(p + 4, n - 4, a, FERRY_KIND_STR, v, &u, why);
  else if ((index == TI_BYTES || index == TI_SMALL_BYTES) && unvalidated_inner == TI_BYTES)
    rc = ferry_rpc_str_decode(p + 4, n - 4, a, FERRY_KIND_BYTES, v, &u, why);
  else if (index >= TI_OBJECT_BEGIN && index != TI_STR && index != TI_BYTES &&
           unvalidated_inner == TI_RPC_OBJECT_REF) {
    if (n < 12)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "object reference runs past the packet");
    v->kind = FERRY_KIND_OBJECT;
    v->v.handle = get_le64(p + 4);
    u = 8;
    rc = FERRY_OK;
  } else
    return ferry_rpc_why_set(why, FERRY_EPROTO,
                             "object of type index %d/%u is not a string, bytes or RPC "
                             "object reference",
                             index, (unsigned)unvalidated_inner);
  if (rc == FERRY_OK)
    *used = 4 + u;
  return rc;
}

/* The kind of a type index whose payload is one 8-byte word, or -1. */
static int word_kind_of(int index) {
  switch (index) {
  case TI_INT:
    return FERRY_KIND_INT;
  case TI_BOOL:
    return FERRY_KIND_BOOL;
  case TI_FLOAT:
    return FERRY_KIND_FLOAT;
  case TI_OPAQUE:
    return FERRY_KIND_OPAQUE;
  case TI_DTYPE:
    return FERRY_KIND_DTYPE;
  case TI_DEVICE:
    return FERRY_KIND_DEVICE;
  case TI_FUNC:
    return FERRY_KIND_FUNC;
  case TI_MODULE:
    return FERRY_KIND_MODULE;
  default:
    return -1;
  }
}

static int decode_one(int index, const uint8_t *p, size_t n, ferry_rpc_arena *a,
                      ferry_value *v, size_t *used, ferry_rpc_why *why) {
  int kind = word_kind_of(index);
  if (kind >= 0) {
    if (n < 8)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "value of type index %d runs past the packet",
                               index);
    ferry_rpc_word_decode((enum ferry_kind)kind, p, v);
    *used = 8;
    return FERRY_OK;
  }
  switch (index) {
  case TI_NONE:
    v->kind = FERRY_KIND_NONE;
    *used = 0;
    return FERRY_OK;
  case TI_DLTENSOR: {
    int rc = ferry_rpc_tensor_decode(p, n, a, &v->v.tensor, used, why);
    if (rc == FERRY_EAGAIN)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "DLTensor runs past the packet");
    if (rc == FERRY_OK)
      v->kind = FERRY_KIND_TENSOR;
    return rc;
  }
  case TI_RAW_STR:
    return ferry_rpc_str_decode(p, n, a, FERRY_KIND_STR, v, used, why);
  case TI_BYTE_ARRAY:
    return ferry_rpc_str_decode(p, n, a, FERRY_KIND_BYTES, v, used, why);
  case TI_SMALL_STR:
  case TI_SMALL_BYTES:
    return decode_object(index, p, n, a, v, used, why);
  default:
    if (index >= TI_OBJECT_BEGIN && index != TI_TENSOR && index != TI_NDARRAY_V021)
      return decode_object(index, p, n, a, v, used, why);
    return ferry_rpc_why_set(why, FERRY_EPROTO, "unknown type index %d", index);
  }
}

static int ffi_decode_seq(const uint8_t *p, size_t n, ferry_rpc_arena *a, ferry_value **vals,
                          int *nvals, size_t *used, ferry_rpc_why *why) {
  if (n < 4)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "packed sequence has no argument count");
  int32_t unvalidated_num = (int32_t)get_le32(p);
  if (unvalidated_num < 0 || unvalidated_num > FERRY_RPC_MAX_ARGS)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "argument count %d is outside 0..%d",
                             (int)unvalidated_num, FERRY_RPC_MAX_ARGS);
  int num = unvalidated_num;
  /* Every argument has at least its 4-byte index: bound before allocating. */
  if ((size_t)num > (n - 4) / 4)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "%d arguments run past the packet", num);
  ferry_value *out = NULL;
  if (num) {
    out = ferry_rpc_arena_alloc(a, sizeof *out * (size_t)num);
    if (!out)
      return ferry_rpc_why_set(why, FERRY_ENOMEM, "packet decoding memory exhausted");
  }
  size_t off = 4;
  for (int i = 0; i < num; i++) {
    if (n - off < 4)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "argument %d runs past the packet", i);
    int index = (int32_t)get_le32(p + off);
    off += 4;
    size_t u = 0;
    int rc = decode_one(index, p + off, n - off, a, &out[i], &u, why);
    if (rc)
      return rc;
    off += u;
  }
  *vals = out;
  *nvals = num;
  *used = off;
  return FERRY_OK;
}

static int put_index(ferry_buf *out, uint32_t index) {
  uint8_t b[4];
  put_le32(b, index);
  return ferry_buf_append(out, b, 4);
}

static int put_u64(ferry_buf *out, uint64_t x) {
  uint8_t b[8];
  put_le64(b, x);
  return ferry_buf_append(out, b, 8);
}

/* The type index of a word-kind value, or -1 for the other kinds. */
static int word_index_of(enum ferry_kind kind) {
  switch (kind) {
  case FERRY_KIND_INT:
    return TI_INT;
  case FERRY_KIND_BOOL:
    return TI_BOOL;
  case FERRY_KIND_FLOAT:
    return TI_FLOAT;
  case FERRY_KIND_OPAQUE:
    return TI_OPAQUE;
  case FERRY_KIND_DTYPE:
    return TI_DTYPE;
  case FERRY_KIND_DEVICE:
    return TI_DEVICE;
  case FERRY_KIND_FUNC:
    return TI_FUNC;
  case FERRY_KIND_MODULE:
    return TI_MODULE;
  default:
    return -1;
  }
}

/* One value with its index.  Strings go as RawStr (8) as TVM's clients
 * send them; bytes as a Bytes object (66/66) as the recorded client sends
 * an upload, or as ByteArray (9) inside a kCallFunc return (raw_bytes). */
static int encode_one(ferry_buf *out, const ferry_value *v, int raw_bytes) {
  int rc;
  int index = word_index_of(v->kind);
  if (index >= 0) {
    uint8_t b[8];
    ferry_rpc_word_encode(v, b);
    rc = put_index(out, (uint32_t)index);
    return rc ? rc : ferry_buf_append(out, b, 8);
  }
  switch (v->kind) {
  case FERRY_KIND_NONE:
    return put_index(out, TI_NONE);
  case FERRY_KIND_OBJECT:
    rc = put_index(out, TI_RPC_OBJECT_REF);
    if (!rc)
      rc = put_index(out, TI_RPC_OBJECT_REF);
    return rc ? rc : put_u64(out, v->v.handle);
  case FERRY_KIND_TENSOR:
    if (!v->v.tensor)
      return FERRY_EINVAL;
    rc = put_index(out, TI_DLTENSOR);
    return rc ? rc : ferry_rpc_tensor_encode(out, v->v.tensor);
  case FERRY_KIND_STR:
    rc = put_index(out, TI_RAW_STR);
    return rc ? rc : ferry_rpc_str_encode(out, v);
  case FERRY_KIND_BYTES:
    if (raw_bytes)
      rc = put_index(out, TI_BYTE_ARRAY);
    else if (!(rc = put_index(out, TI_BYTES)))
      rc = put_index(out, TI_BYTES);
    return rc ? rc : ferry_rpc_str_encode(out, v);
  default: /* NDARRAY travels as a DLTensor (senders convert it) */
    return FERRY_EINVAL;
  }
}

static int encode_seq_mode(ferry_buf *out, const ferry_value *vals, int nvals, int raw_bytes) {
  if (nvals < 0 || nvals > FERRY_RPC_MAX_ARGS)
    return FERRY_EINVAL;
  size_t start = out->len;
  int rc = put_index(out, (uint32_t)nvals);
  for (int i = 0; i < nvals && !rc; i++)
    rc = encode_one(out, &vals[i], raw_bytes);
  if (rc)
    out->len = start; /* leave out as it was */
  return rc;
}

static int ffi_encode_seq(ferry_buf *out, const ferry_value *vals, int nvals) {
  return encode_seq_mode(out, vals, nvals, 0);
}

/* The type index TVM v0.26's server names for an object result of this
 * type key (the Relax VM's tuples and shapes; the recorded direct call of
 * a tuple-returning function answers 71, Array); anything else is the
 * generic RPC object reference. */
static int64_t object_index(const char *type_key) {
  if (type_key == NULL)
    return TI_RPC_OBJECT_REF;
  if (strcmp(type_key, "runtime.Array") == 0)
    return TI_ARRAY;
  if (strcmp(type_key, "runtime.ShapeTuple") == 0)
    return TI_SHAPE;
  return TI_RPC_OBJECT_REF;
}

/* kCallFunc replies (§7.2.3): Int(type index of the result), then the
 * result; handles of functions, modules and objects as OpaquePtr. */
static int ffi_encode_call_return(ferry_buf *out, const ferry_rpc_return *ret) {
  const ferry_value *r = &ret->value;
  ferry_value seq[3];
  int n = 2;
  seq[0].kind = FERRY_KIND_INT;
  seq[1] = *r;
  switch (r->kind) {
  case FERRY_KIND_NONE:
    seq[0].v.i = TI_NONE;
    break;
  case FERRY_KIND_INT:
    seq[0].v.i = TI_INT;
    break;
  case FERRY_KIND_BOOL:
    seq[0].v.i = TI_BOOL;
    break;
  case FERRY_KIND_FLOAT:
    seq[0].v.i = TI_FLOAT;
    break;
  case FERRY_KIND_OPAQUE:
    seq[0].v.i = TI_OPAQUE;
    break;
  case FERRY_KIND_DTYPE:
    seq[0].v.i = TI_DTYPE;
    break;
  case FERRY_KIND_DEVICE:
    seq[0].v.i = TI_DEVICE;
    break;
  case FERRY_KIND_STR:
    seq[0].v.i = TI_STR;
    break;
  case FERRY_KIND_BYTES:
    seq[0].v.i = TI_BYTES;
    break;
  case FERRY_KIND_FUNC:
  case FERRY_KIND_MODULE:
  case FERRY_KIND_OBJECT:
    seq[0].v.i = r->kind == FERRY_KIND_FUNC     ? TI_FUNC
                 : r->kind == FERRY_KIND_MODULE ? TI_MODULE
                                                : object_index(ret->object_type_key);
    seq[1].kind = FERRY_KIND_OPAQUE;
    break;
  case FERRY_KIND_NDARRAY:
    if (!ret->tensor)
      return FERRY_EINVAL;
    seq[0].v.i = TI_TENSOR;
    seq[1].kind = FERRY_KIND_TENSOR;
    seq[1].v.tensor = (DLTensor *)ret->tensor;
    seq[2].kind = FERRY_KIND_OPAQUE;
    seq[2].v.handle = r->v.handle;
    n = 3;
    break;
  case FERRY_KIND_TENSOR:
    return FERRY_EINVAL; /* a borrowed tensor cannot outlive the call */
  }
  return encode_seq_mode(out, seq, n, 1);
}

static int ffi_decode_call_return(const uint8_t *p, size_t n, ferry_rpc_arena *a,
                                  ferry_rpc_return *ret, ferry_rpc_why *why) {
  ferry_value *vals = NULL;
  int nvals = 0;
  size_t used = 0;
  int rc = ffi_decode_seq(p, n, a, &vals, &nvals, &used, why);
  if (rc)
    return rc;
  if (used != n)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "%zu bytes after the return value", n - used);
  if (nvals < 1 || vals[0].kind != FERRY_KIND_INT)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "return value lacks its type index");
  memset(ret, 0, sizeof *ret);
  int64_t index = vals[0].v.i;
  if (index == TI_TENSOR || index == TI_NDARRAY_V021 || index == TI_DLTENSOR) {
    if (nvals != 3 || vals[1].kind != FERRY_KIND_TENSOR || vals[2].kind != FERRY_KIND_OPAQUE)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "Tensor return is not [int, tensor, handle]");
    ret->value.kind = FERRY_KIND_NDARRAY;
    ret->value.v.handle = vals[2].v.handle;
    ret->tensor = vals[1].v.tensor;
    return FERRY_OK;
  }
  if (nvals != 2)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "return value has %d parts instead of 2", nvals);
  ret->value = vals[1];
  enum ferry_kind want;
  switch (index) {
  case TI_NONE:
    want = FERRY_KIND_NONE;
    break;
  case TI_INT:
    want = FERRY_KIND_INT;
    break;
  case TI_BOOL:
    want = FERRY_KIND_BOOL;
    break;
  case TI_FLOAT:
    want = FERRY_KIND_FLOAT;
    break;
  case TI_OPAQUE:
    want = FERRY_KIND_OPAQUE;
    break;
  case TI_DTYPE:
    want = FERRY_KIND_DTYPE;
    break;
  case TI_DEVICE:
    want = FERRY_KIND_DEVICE;
    break;
  case TI_STR:
  case TI_RAW_STR:
    want = FERRY_KIND_STR;
    break;
  case TI_BYTES:
  case TI_BYTE_ARRAY:
    want = FERRY_KIND_BYTES;
    break;
  default:
    if (index < TI_OBJECT_BEGIN || index > INT32_MAX)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "return of unknown type index %lld",
                               (long long)index);
    if (vals[1].kind != FERRY_KIND_OPAQUE)
      return ferry_rpc_why_set(why, FERRY_EPROTO, "object return is not a handle");
    ret->value.kind = index == TI_FUNC     ? FERRY_KIND_FUNC
                      : index == TI_MODULE ? FERRY_KIND_MODULE
                                           : FERRY_KIND_OBJECT;
    return FERRY_OK;
  }
  if (vals[1].kind != want)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "return of type index %lld carries a %s",
                             (long long)index, ferry_kind_name(vals[1].kind));
  return FERRY_OK;
}

/* kFreeHandle carries only the handle (§7.2.4): the server knows its type. */
static int ffi_encode_free_handle(ferry_buf *out, uint64_t handle, enum ferry_kind kind) {
  if (kind != FERRY_KIND_NDARRAY && kind != FERRY_KIND_FUNC && kind != FERRY_KIND_MODULE &&
      kind != FERRY_KIND_OBJECT)
    return FERRY_EINVAL;
  ferry_value v;
  v.kind = FERRY_KIND_OPAQUE;
  v.v.handle = handle;
  return ffi_encode_seq(out, &v, 1);
}

static int ffi_decode_free_handle(const ferry_value *vals, int nvals, uint64_t *handle,
                                  enum ferry_kind *kind, ferry_rpc_why *why) {
  if (nvals != 1 || vals[0].kind != FERRY_KIND_OPAQUE)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "kFreeHandle expects one OpaquePtr handle");
  *handle = vals[0].v.handle;
  *kind = FERRY_KIND_NONE;
  return FERRY_OK;
}

/* Parses the sequence without keeping anything (see classic_probe). */
static int ffi_probe(int code, const uint8_t *p, size_t n) {
  ferry_rpc_arena a;
  ferry_rpc_arena_init(&a, 64 * n + 4096);
  ferry_value *vals = NULL;
  int nvals = 0;
  size_t used = 0;
  int rc = ffi_decode_seq(p, n, &a, &vals, &nvals, &used, NULL);
  int score = 0;
  if (rc == FERRY_OK && used == n) {
    score = 1;
    /* Typical first arguments of the reference client's packets. */
    if (nvals > 0 && ((code == 9 && vals[0].kind == FERRY_KIND_STR) ||
                      (code >= 11 && code != 17 && vals[0].kind == FERRY_KIND_DEVICE) ||
                      (code == 17 && vals[0].kind == FERRY_KIND_TENSOR) ||
                      (code == 10 && nvals == 1) || code == 3))
      score = 2;
  }
  ferry_rpc_arena_close(&a);
  return score;
}

const ferry_dialect ferry_dialect_ffi = {
    .id = FERRY_DIALECT_FFI,
    .name = "ffi",
    .decode_seq = ffi_decode_seq,
    .encode_seq = ffi_encode_seq,
    .encode_call_return = ffi_encode_call_return,
    .decode_call_return = ffi_decode_call_return,
    .encode_free_handle = ffi_encode_free_handle,
    .decode_free_handle = ffi_decode_free_handle,
    .probe = ffi_probe,
};
