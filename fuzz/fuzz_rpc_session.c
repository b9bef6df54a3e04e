/* libFuzzer target: a whole session against the real runtime in a scratch
 * work folder, fed through memory I/O.  The session must end without a
 * crash, a leak or undefined behaviour whatever the bytes.
 *
 * Two modes, chosen by bit 7 of the first byte:
 *
 * - raw (bit 7 clear): the rest of the input is the client's byte stream,
 *   read in short pieces (the recorded sessions of tests/golden are seeds
 *   of this mode).  Replies are parsed only to be checked for framing.
 *
 * - stateful (bit 7 set): the rest is a list of operations, each turned
 *   into one request packet *when the session asks for it*, that is after
 *   the reply to the previous one was written.  Every reply is parsed with
 *   the session's dialect and the handles it carries (functions, modules,
 *   NDArrays, data pointers) are remembered in order; operations name
 *   "remembered handle #k" and the harness splices the real value in.  So
 *   the fuzzer reaches what needs a handle the server issued: a graph
 *   executor created from a SystemLib module, set_output_zero_copy with a
 *   tensor allocated by kDevAllocDataWithScope, kDevFreeData of it, then
 *   get_output; random_fill of a tensor whose dtype the input chooses...
 *   Operations (one byte, low 3 bits; then operands):
 *     0 RAW       u16 len, len stream bytes, u8 n (<= 4) x (u16 off, u8 slot):
 *                 raw bytes with handles spliced at offsets
 *     1 GETGLOBAL u8 name                  kGetGlobalFunc(names[name])
 *     2 CALL      u8 fslot, u8 nargs, args kCallFunc(handle[fslot], args)
 *     3 ALLOC     tensor                   kDevAllocDataWithScope(tensor, None)
 *     4 FREEDATA  u8 slot                  kDevFreeData(cpu, handle[slot])
 *     5 FREEOBJ   u8 slot, u8 kind         kFreeHandle(handle[slot])
 *     6 COPYTO    tensor, u8 n             kCopyToRemote(tensor, n bytes)
 *     7 COPYFROM  tensor, u8 n             kCopyFromRemote(tensor, n)
 *   An argument is u8 type then: INT i8 | STR u8 name | BYTES u8 len + bytes
 *   | MODULE/FUNC/NDARRAY/OPAQUE u8 slot | TENSOR tensor | NONE | FLOAT i8.
 *   A tensor is u8 slot (its data = handle[slot]), u8 dtype (code in bits
 *   0-1, bits from {8,16,32,64,128,1,4,96} in bits 2-4, lanes 1/2/4/8 in
 *   bits 5-6), u8 ndim (0..3), ndim x u8 extent.
 * Bounded and deterministic: at most MAX_PACKETS requests per input and
 * MAX_HANDLES remembered handles (the oldest are kept); slot k is handle
 * k mod count, or the small number k itself while none is known (a forged
 * handle).  A custom mutator moves, copies and deletes whole operations
 * (see below).  fuzz/gen_session_seeds.py writes the stateful seeds; run an
 * input with FERRY_FUZZ_TRACE=1 in the environment to see each request
 * and the handles learned from each reply. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "server/session.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PACKETS 128
#define MAX_HANDLES 64
#define MAX_REPLY (1u << 30) /* a time evaluator answers up to 8 MiB */

/* A graph with no kernel (an input copied to the output with __copy), so
 * that an executor can be made from any module, SystemLib's included. */
#define GRAPH_COPY                                                                          \
  "{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}, {\"op\": \"tvm_op\", " \
  "\"name\": \"c\", \"attrs\": {\"func_name\": \"__copy\", \"num_inputs\": \"1\", "        \
  "\"num_outputs\": \"1\", \"flatten_data\": \"0\"}, \"inputs\": [[0, 0, 0]]}], "          \
  "\"arg_nodes\": [0], \"heads\": [[1, 0, 0]], \"node_row_ptr\": [0, 1, 2], \"attrs\": "   \
  "{\"dltype\": [\"list_str\", [\"float32\", \"float32\"]], \"shape\": [\"list_shape\", "  \
  "[[4], [4]]], \"storage_id\": [\"list_int\", [0, 1]]}}"

/* Names for GETGLOBAL and STR arguments (the order is part of the seed
 * format: append only). */
static const char *const names[] = {
    "runtime.SystemLib",                         /* 0 */
    "tvm.graph_executor.create",                 /* 1 */
    "tvm.rpc.server.ModuleGetFunction",          /* 2 */
    "tvm.contrib.random.random_fill",            /* 3 */
    "set_input_zero_copy",                       /* 4 */
    "set_output_zero_copy",                      /* 5 */
    "get_output",                                /* 6 */
    "run",                                       /* 7 */
    "set_input",                                 /* 8 */
    "get_input",                                 /* 9 */
    GRAPH_COPY,                                  /* 10 */
    "x",                                         /* 11 */
    "c:0",                                       /* 12 */
    "",                                          /* 13 */
    "tvm.rpc.server.upload",                     /* 14 */
    "tvm.rpc.server.load_module",                /* 15 */
    "tvm.rpc.server.download",                   /* 16 */
    "tvm.rpc.server.remove",                     /* 17 */
    "tvm.rpc.server.listdir",                    /* 18 */
    "f.so",                                      /* 19 */
    "runtime.SaveParams",                        /* 20 */
    "runtime.LoadParams",                        /* 21 */
    "runtime.RPCTimeEvaluator",                  /* 22 */
    "cache_flush_cpu_non_first_arg",             /* 23 */
    "tvm.contrib.random.random_fill_for_measure", /* 24 */
    "runtime.ModuleGetFunction",                 /* 25 */
    "tvm.rpc.server.ImportModule",               /* 26 */
    "load_params",                               /* 27 */
    "share_params",                              /* 28 */
    "get_num_outputs",                           /* 29 */
    "get_input_info",                            /* 30 */
    "ffi.SystemLib",                             /* 31 */
    "tvm.rpc.server.workpath",                   /* 32 */
    "tvm.rpc.server.download_linked_module",     /* 33 */
};
#define NNAMES (sizeof names / sizeof names[0])

typedef struct harness {
  const uint8_t *in;
  size_t n, off; /* the operations (stateful) or the stream (raw) */
  int stateful;
  size_t step;   /* largest piece one read returns */
  ferry_buf out; /* the request being delivered */
  size_t out_off;
  int packets;
  enum ferry_dialect_id dialect;
  ferry_buf replies; /* reply bytes not yet framed */
  uint64_t handles[MAX_HANDLES];
  size_t nhandles;
  ferry_rpc_arena arena;
  int trace; /* FERRY_FUZZ_TRACE set: each request and reply on stderr */
} harness;

/* ---- reading operands (past the end: zeros) ------------------------------ */

static uint8_t u8(harness *h) { return h->off < h->n ? h->in[h->off++] : 0; }
static uint16_t u16(harness *h) {
  uint16_t lo = u8(h);
  return (uint16_t)(lo | (uint16_t)u8(h) << 8);
}

static uint64_t slot(harness *h) {
  uint8_t k = u8(h);
  return h->nhandles ? h->handles[k % h->nhandles] : k;
}

static const ferry_dialect *dialect(harness *h) {
  return ferry_dialect_get(h->dialect == FERRY_DIALECT_FFI ? FERRY_DIALECT_FFI
                                                           : FERRY_DIALECT_CLASSIC);
}

/* A tensor operand into *t (shape in the caller's storage). */
static void tensor(harness *h, DLTensor *t, int64_t shape[3]) {
  static const uint8_t bits[] = {8, 16, 32, 64, 128, 1, 4, 96};
  static const uint8_t codes[] = {kDLInt, kDLUInt, kDLFloat, kDLBfloat};
  memset(t, 0, sizeof *t);
  t->data = (void *)(uintptr_t)slot(h);
  uint8_t d = u8(h);
  t->dtype.code = codes[d & 3];
  t->dtype.bits = bits[(d >> 2) & 7];
  t->dtype.lanes = (uint16_t)(1u << ((d >> 5) & 3));
  t->device.device_type = kDLCPU;
  t->ndim = u8(h) % 4;
  for (int i = 0; i < t->ndim; i++)
    shape[i] = u8(h);
  t->shape = shape;
}

/* ---- building requests ---------------------------------------------------- */

/* Appends the packed sequence of a CALL's arguments. */
static int call_args(harness *h, ferry_buf *b) {
  ferry_value vals[6];
  DLTensor ts[6];
  int64_t shapes[6][3];
  uint8_t bytes[6][255];
  int nargs = u8(h) % 7;
  for (int i = 0; i < nargs; i++) {
    ferry_value *v = &vals[i];
    memset(v, 0, sizeof *v);
    uint8_t t = u8(h);
    switch (t % 10) {
    case 0:
      v->kind = FERRY_KIND_INT;
      v->v.i = (int8_t)u8(h);
      break;
    case 1: {
      const char *s = names[u8(h) % NNAMES];
      v->kind = FERRY_KIND_STR;
      v->v.str.data = s;
      v->v.str.len = strlen(s);
      break;
    }
    case 2: {
      size_t len = u8(h);
      for (size_t k = 0; k < len; k++)
        bytes[i][k] = u8(h);
      v->kind = FERRY_KIND_BYTES;
      v->v.str.data = (const char *)bytes[i];
      v->v.str.len = len;
      break;
    }
    case 3:
    case 4:
    case 5:
    case 6: {
      static const enum ferry_kind kinds[] = {FERRY_KIND_MODULE, FERRY_KIND_FUNC,
                                              FERRY_KIND_NDARRAY, FERRY_KIND_OPAQUE};
      v->kind = kinds[t % 10 - 3];
      v->v.handle = slot(h);
      break;
    }
    case 7:
      tensor(h, &ts[i], shapes[i]);
      v->kind = FERRY_KIND_TENSOR;
      v->v.tensor = &ts[i];
      break;
    case 8:
      v->kind = FERRY_KIND_NONE;
      break;
    default:
      v->kind = FERRY_KIND_FLOAT;
      v->v.f = (int8_t)u8(h);
      break;
    }
  }
  return dialect(h)->encode_seq(b, vals, nargs);
}

/* Builds the operation at h->off into h->out (empty when the dialect
 * cannot carry one of its values) and moves h->off past it.  How many
 * bytes an operation takes depends on its bytes only, not on the handles
 * known, which the custom mutator below relies on. */
static void build_op(harness *h) {
  h->out.len = 0;
  h->out_off = 0;
  {
    ferry_buf *b = &h->out;
    const ferry_dialect *d = dialect(h);
    size_t mark;
    int rc = FERRY_OK;
    uint8_t op = u8(h);
    DLTensor t;
    int64_t shape[3];
    switch (op & 7) {
    case 0: { /* RAW */
      size_t len = u16(h) % 4097;
      if (len > h->n - h->off)
        len = h->n - h->off;
      rc = ferry_buf_append(b, h->in + h->off, len);
      h->off += len;
      int ns = u8(h) % 5;
      for (int k = 0; k < ns && rc == FERRY_OK; k++) {
        size_t at = u16(h);
        uint64_t v = slot(h);
        if (at + 8 <= b->len)
          put_le64(b->data + at, v);
      }
      break;
    }
    case 1: { /* GETGLOBAL */
      const char *s = names[u8(h) % NNAMES];
      ferry_value v = {.kind = FERRY_KIND_STR};
      v.v.str.data = s;
      v.v.str.len = strlen(s);
      rc = ferry_rpc_packet_begin(b, FERRY_RPC_GET_GLOBAL_FUNC, &mark);
      rc = rc ? rc : d->encode_seq(b, &v, 1);
      break;
    }
    case 2: /* CALL */
      rc = ferry_rpc_packet_begin(b, FERRY_RPC_CALL_FUNC, &mark);
      rc = rc ? rc : ferry_rpc_call_func_encode(b, slot(h));
      rc = rc ? rc : call_args(h, b);
      break;
    case 3: { /* ALLOC */
      tensor(h, &t, shape);
      t.data = NULL;
      ferry_value v[2] = {{.kind = FERRY_KIND_TENSOR}, {.kind = FERRY_KIND_NONE}};
      v[0].v.tensor = &t;
      rc = ferry_rpc_packet_begin(b, FERRY_RPC_DEV_ALLOC_DATA_WITH_SCOPE, &mark);
      rc = rc ? rc : d->encode_seq(b, v, 2);
      break;
    }
    case 4: { /* FREEDATA */
      ferry_value v[2] = {{.kind = FERRY_KIND_DEVICE}, {.kind = FERRY_KIND_OPAQUE}};
      v[0].v.device.device_type = kDLCPU;
      v[1].v.handle = slot(h);
      rc = ferry_rpc_packet_begin(b, FERRY_RPC_DEV_FREE_DATA, &mark);
      rc = rc ? rc : d->encode_seq(b, v, 2);
      break;
    }
    case 5: { /* FREEOBJ */
      static const enum ferry_kind kinds[] = {FERRY_KIND_FUNC, FERRY_KIND_MODULE,
                                              FERRY_KIND_NDARRAY, FERRY_KIND_OBJECT};
      uint64_t handle = slot(h);
      rc = ferry_rpc_packet_begin(b, FERRY_RPC_FREE_HANDLE, &mark);
      rc = rc ? rc : d->encode_free_handle(b, handle, kinds[u8(h) & 3]);
      break;
    }
    case 6: { /* COPYTO */
      uint8_t payload[255];
      tensor(h, &t, shape);
      size_t len = u8(h);
      for (size_t k = 0; k < len; k++)
        payload[k] = u8(h);
      rc = ferry_rpc_packet_begin(b, FERRY_RPC_COPY_TO_REMOTE, &mark);
      rc = rc ? rc : ferry_rpc_copy_to_encode(b, &t, payload, len);
      break;
    }
    default: /* COPYFROM */
      tensor(h, &t, shape);
      rc = ferry_rpc_packet_begin(b, FERRY_RPC_COPY_FROM_REMOTE, &mark);
      rc = rc ? rc : ferry_rpc_copy_from_encode(b, &t, u8(h));
      break;
    }
    if ((op & 7) != 0 && rc == FERRY_OK)
      ferry_rpc_packet_end(b, mark);
    if (rc != FERRY_OK)
      b->len = 0; /* a value the dialect cannot carry: skip the operation */
    if (h->trace)
      fprintf(stderr, "request %d: op %d, %zu bytes%s\n", h->packets, op & 7, b->len,
              rc ? " (skipped)" : "");
  }
}

/* Builds the next request into h->out; 0 when the operations are done. */
static int next_request(harness *h) {
  while (h->off < h->n && h->packets < MAX_PACKETS) {
    h->packets++;
    build_op(h);
    if (h->out.len > 0)
      return 1;
  }
  h->out.len = 0;
  h->out_off = 0;
  return 0;
}

/* ---- I/O ------------------------------------------------------------------ */

static long mem_read(void *ctx, void *buf, size_t want) {
  harness *h = ctx;
  if (!h->stateful) {
    size_t left = h->n - h->off;
    size_t k = want < left ? want : left;
    if (k > h->step)
      k = h->step; /* short reads, as sockets give */
    memcpy(buf, h->in + h->off, k);
    h->off += k;
    return (long)k;
  }
  /* The session reads past a packet only after answering it (its reader
   * frames what it has first), so the replies to everything delivered so
   * far are parsed by now. */
  if (h->out_off == h->out.len && !next_request(h))
    return 0;
  size_t k = h->out.len - h->out_off;
  if (k > want)
    k = want;
  if (k > h->step)
    k = h->step;
  memcpy(buf, h->out.data + h->out_off, k);
  h->out_off += k;
  return (long)k;
}

static void remember(harness *h, uint64_t v) {
  if (v == 0 || h->nhandles == MAX_HANDLES)
    return;
  if (h->trace)
    fprintf(stderr, "  handle #%zu = 0x%llx\n", h->nhandles, (unsigned long long)v);
  h->handles[h->nhandles++] = v;
}

/* One whole reply: remember every handle in a kReturn's packed sequence
 * (a data pointer of kDevAllocData, a function, a module, an NDArray). */
static void parse_reply(harness *h, const ferry_rpc_packet *pkt) {
  if (h->trace)
    fprintf(stderr, "  reply code %d, %zu bytes, %zu handles known\n", (int)pkt->code,
            pkt->body_len, h->nhandles);
  if (pkt->code != FERRY_RPC_RETURN || pkt->body_len == 0)
    return;
  ferry_rpc_arena_reset(&h->arena);
  ferry_value *vals;
  int nvals;
  size_t used;
  ferry_rpc_why why;
  if (dialect(h)->decode_seq(pkt->body, pkt->body_len, &h->arena, &vals, &nvals, &used, &why))
    return;
  for (int i = 0; i < nvals; i++) {
    switch (vals[i].kind) {
    case FERRY_KIND_OPAQUE:
    case FERRY_KIND_FUNC:
    case FERRY_KIND_MODULE:
    case FERRY_KIND_NDARRAY:
    case FERRY_KIND_OBJECT:
      remember(h, vals[i].v.handle);
      break;
    case FERRY_KIND_TENSOR:
      remember(h, (uint64_t)(uintptr_t)vals[i].v.tensor->data);
      break;
    default:
      break;
    }
  }
}

static int mem_write(void *ctx, const void *buf, size_t n) {
  harness *h = ctx;
  if (!h->stateful)
    return 0;
  if (ferry_buf_append(&h->replies, buf, n) != FERRY_OK)
    return FERRY_ENOMEM; /* ends the session, as a dead socket would */
  for (;;) {
    ferry_rpc_packet pkt;
    size_t used;
    int rc = ferry_rpc_packet_parse(h->replies.data, h->replies.len, MAX_REPLY, &pkt, &used);
    if (rc == FERRY_EAGAIN)
      return 0;
    if (rc != FERRY_OK)
      abort(); /* the server framed a reply wrongly */
    parse_reply(h, &pkt);
    ferry_buf_consume(&h->replies, used);
  }
}

static void on_dialect(void *ctx, enum ferry_dialect_id d) { ((harness *)ctx)->dialect = d; }

/* ---- operation-level mutations ---------------------------------------------
 * Byte-level mutations rarely move a whole operation, yet the bugs this
 * target is for are orderings: a tensor freed before a later call reads
 * it.  Half of the mutations of a stateful input therefore swap two
 * operations, duplicate one elsewhere or delete one (boundaries found by
 * building each operation, as the session would); the rest are
 * libFuzzer's own. */

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

/* Offsets where operations start (and the end), at most MAX_PACKETS + 1. */
static size_t op_bounds(const uint8_t *data, size_t size, size_t *at) {
  harness h;
  memset(&h, 0, sizeof h);
  h.in = data + 1;
  h.n = size - 1;
  ferry_buf_init(&h.out, 1 << 16);
  size_t k = 0;
  while (h.off < h.n && k < MAX_PACKETS) {
    at[k++] = h.off + 1;
    build_op(&h);
  }
  at[k] = (h.off < h.n ? h.off : h.n) + 1;
  ferry_buf_close(&h.out);
  return k;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
  uint32_t r = seed * 2654435761u + 1;
  if (size < 2 || !(data[0] & 0x80) || (r >> 31))
    return LLVMFuzzerMutate(data, size, max_size);
  static size_t at[MAX_PACKETS + 1];
  size_t k = op_bounds(data, size, at);
  if (k < 2)
    return LLVMFuzzerMutate(data, size, max_size);
  static uint8_t tmp[1 << 16];
  if (size > sizeof tmp)
    return LLVMFuzzerMutate(data, size, max_size);
  size_t i = (r >> 8) % k, j = (r >> 16) % k;
  size_t ilen = at[i + 1] - at[i];
  switch ((r >> 4) & 3) {
  case 0: /* swap operation i with the next one */
    if (i + 1 < k) {
      size_t nlen = at[i + 2] - at[i + 1];
      memcpy(tmp, data + at[i + 1], nlen);
      memcpy(tmp + nlen, data + at[i], ilen);
      memcpy(data + at[i], tmp, nlen + ilen);
      return size;
    }
    break;
  case 1: /* delete operation i */
    memmove(data + at[i], data + at[i + 1], size - at[i + 1]);
    return size - ilen;
  default: /* insert a copy of operation i before operation j */
    if (size + ilen <= max_size) {
      memcpy(tmp, data + at[i], ilen);
      memmove(data + at[j] + ilen, data + at[j], size - at[j]);
      memcpy(data + at[j], tmp, ilen);
      return size + ilen;
    }
    break;
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

static char work_dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!work_dir[0]) {
    snprintf(work_dir, sizeof work_dir, "/tmp/ferry-fuzz-session-XXXXXX");
    if (!mkdtemp(work_dir))
      abort();
  }
  if (size < 1)
    return 0;
  harness h;
  memset(&h, 0, sizeof h);
  h.trace = getenv("FERRY_FUZZ_TRACE") != NULL;
  h.in = data + 1;
  h.n = size - 1;
  h.stateful = data[0] >> 7;
  h.step = h.stateful ? (((data[0] >> 1) & 7) ? ((data[0] >> 1) & 7) * 8u : SIZE_MAX)
                      : (size_t)data[0] * 64 + 1;
  ferry_buf_init(&h.out, 1 << 16);
  ferry_buf_init(&h.replies, MAX_REPLY + 16);
  ferry_rpc_arena_init(&h.arena, 1 << 22);
  if (h.stateful && !(data[0] & 0x10)) {
    /* kInitServer first, as every client sends it. */
    size_t mark;
    if (ferry_rpc_packet_begin(&h.out, FERRY_RPC_INIT_SERVER, &mark) ||
        ferry_rpc_init_server_encode(&h.out, "0.8.0") ||
        ferry_dialect_classic.encode_seq(&h.out, NULL, 0))
      abort();
    ferry_rpc_packet_end(&h.out, mark);
  }
  ferry_session_io io = {&h, mem_read, mem_write, NULL, NULL};
  ferry_session_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.work_dir = work_dir;
  cfg.num_threads = 1;
  cfg.max_packet = 1 << 20;
  cfg.max_alloc = 1 << 24;
  cfg.copy_packet_size = data[0] & 1 ? 4096 : 0;
  cfg.on_dialect = on_dialect;
  cfg.hook_ctx = &h;
  ferry_err err;
  ferry_err_clear(&err);
  (void)ferry_session_run(&io, &cfg, &err);
  ferry_rpc_arena_close(&h.arena);
  ferry_buf_close(&h.replies);
  ferry_buf_close(&h.out);
  return 0;
}
