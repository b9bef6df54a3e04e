/* One RPC packet described for `ferry dump`: its code, and its body decoded
 * with the wire layer's own decoders (rpc_packet.h fixed bodies, the
 * session's dialect for packed sequences).  A body that does not decode is
 * shown as malformed with the decoder's reason; framing is unaffected, so
 * the next packet is read as usual. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/bytes.h"
#include "wire/dump.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"
#include "wire/rpc_tensor.h"

/* The names `ferry dump` gives DLPack device types and dtype codes, shared
 * by the text (here) and the JSON fields (dump_json.c) so both say the
 * same. */
static const char *dtype_code_name(unsigned code) {
  switch (code) {
  case kDLInt:
    return "int";
  case kDLUInt:
    return "uint";
  case kDLFloat:
    return "float";
  case kDLOpaqueHandle:
    return "handle";
  case kDLBfloat:
    return "bfloat";
  case kDLComplex:
    return "complex";
  default:
    return "dtype";
  }
}

const char *dump_device_name(int type) {
  switch (type) {
  case kDLCPU:
    return "cpu";
  case kDLCUDA:
    return "cuda";
  case kDLCUDAHost:
    return "cuda_host";
  case kDLOpenCL:
    return "opencl";
  case kDLVulkan:
    return "vulkan";
  case kDLMetal:
    return "metal";
  case kDLROCM:
    return "rocm";
  case kDLExtDev:
    return "ext_dev";
  default:
    return "device";
  }
}

void dump_dtype_text(char *s, size_t n, DLDataType t) {
  if (t.lanes == 1)
    snprintf(s, n, "%s%u", dtype_code_name(t.code), t.bits);
  else
    snprintf(s, n, "%s%ux%u", dtype_code_name(t.code), t.bits, t.lanes);
}

static int put_dtype(ferry_buf *b, DLDataType t) {
  char s[DUMP_DTYPE_TEXT_MAX];
  dump_dtype_text(s, sizeof s, t);
  return ferry_buf_printf(b, "%s", s);
}

static int put_device(ferry_buf *b, DLDevice d) {
  return ferry_buf_printf(b, "%s(%d):%d", dump_device_name((int)d.device_type),
                          (int)d.device_type, (int)d.device_id);
}

/* "tensor float32[3,4] cpu(1):0 data=0x... offset=0 (48 bytes)" */
static int put_tensor(ferry_buf *b, const DLTensor *t) {
  int rc = ferry_buf_printf(b, "tensor ");
  if (!rc)
    rc = put_dtype(b, t->dtype);
  if (!rc)
    rc = ferry_buf_printf(b, "[");
  for (int i = 0; !rc && i < t->ndim; i++)
    rc = ferry_buf_printf(b, "%s%lld", i ? "," : "", (long long)t->shape[i]);
  if (!rc)
    rc = ferry_buf_printf(b, "] ");
  if (!rc)
    rc = put_device(b, t->device);
  if (!rc)
    rc = ferry_buf_printf(b, " data=0x%llx offset=%llu",
                          (unsigned long long)(uintptr_t)t->data,
                          (unsigned long long)t->byte_offset);
  uint64_t nb = 0;
  if (!rc && ferry_rpc_tensor_nbytes(t, &nb) == FERRY_OK)
    rc = ferry_buf_printf(b, " (%llu bytes)", (unsigned long long)nb);
  return rc;
}

static const char *func_name(const ferry_dump_conn *c, uint64_t h) {
  for (size_t i = 0; i < c->nfuncs; i++)
    if (c->funcs[i].handle == h)
      return c->funcs[i].name;
  return NULL;
}

static void note_name(ferry_dump_conn *c, const ferry_rpc_packet *pkt);

static int put_value(ferry_dump_conn *c, const ferry_value *v) {
  ferry_buf *b = &c->line;
  switch (v->kind) {
  case FERRY_KIND_NONE:
    return ferry_buf_printf(b, "null");
  case FERRY_KIND_INT:
    return ferry_buf_printf(b, "int %lld", (long long)v->v.i);
  case FERRY_KIND_BOOL:
    return ferry_buf_printf(b, "bool %s", v->v.i ? "true" : "false");
  case FERRY_KIND_FLOAT:
    return ferry_buf_printf(b, "float %.17g", v->v.f);
  case FERRY_KIND_OPAQUE:
    return ferry_buf_printf(b, "handle 0x%llx", (unsigned long long)v->v.handle);
  case FERRY_KIND_DTYPE: {
    int rc = ferry_buf_printf(b, "dtype ");
    return rc ? rc : put_dtype(b, v->v.dtype);
  }
  case FERRY_KIND_DEVICE: {
    int rc = ferry_buf_printf(b, "device ");
    return rc ? rc : put_device(b, v->v.device);
  }
  case FERRY_KIND_TENSOR:
    return put_tensor(b, v->v.tensor);
  case FERRY_KIND_STR: {
    int rc = ferry_buf_printf(b, "str ");
    return rc ? rc : dump_quote(b, v->v.str.data, v->v.str.len, c->str_limit);
  }
  case FERRY_KIND_BYTES:
    return ferry_buf_printf(b, "bytes (%zu)", v->v.str.len);
  case FERRY_KIND_FUNC: {
    const char *name = func_name(c, v->v.handle);
    return name ? ferry_buf_printf(b, "func 0x%llx (%s)", (unsigned long long)v->v.handle,
                                   name)
                : ferry_buf_printf(b, "func 0x%llx", (unsigned long long)v->v.handle);
  }
  case FERRY_KIND_MODULE:
    return ferry_buf_printf(b, "module 0x%llx", (unsigned long long)v->v.handle);
  case FERRY_KIND_NDARRAY:
    return ferry_buf_printf(b, "ndarray 0x%llx", (unsigned long long)v->v.handle);
  case FERRY_KIND_OBJECT:
    return ferry_buf_printf(b, "object 0x%llx", (unsigned long long)v->v.handle);
  }
  return ferry_buf_printf(b, "?");
}

/* At most this many arguments are repeated in "args" (a packet of tiny
 * values could otherwise make a line far longer than its text). */
#define JSON_MAX_ARGS 1024

/* "args": [{"type": ..., "value": ...}, ...]; a kException's message (its
 * first string) also as "error". */
static int json_values(ferry_dump_conn *c, int code, const ferry_value *vals, int n) {
  json_t *a = json_array();
  if (!a)
    return FERRY_ENOMEM;
  for (int i = 0; i < n && i < JSON_MAX_ARGS; i++) {
    const char *fn = vals[i].kind == FERRY_KIND_FUNC ? func_name(c, vals[i].v.handle) : NULL;
    if (json_array_append_new(a, dump_json_value(c, &vals[i], fn))) {
      json_decref(a);
      return FERRY_ENOMEM;
    }
  }
  int rc = dump_jset(c, "args", a);
  if (!rc && n > JSON_MAX_ARGS)
    rc = dump_jint(c, "args_left_off", n - JSON_MAX_ARGS);
  for (int i = 0; !rc && code == FERRY_RPC_EXCEPTION && i < n; i++)
    if (vals[i].kind == FERRY_KIND_STR) {
      rc = dump_jstr(c, "error", vals[i].v.str.data, vals[i].v.str.len, c->str_limit);
      break;
    }
  return rc;
}

static int put_values(ferry_dump_conn *c, const ferry_value *vals, int n) {
  int rc = ferry_buf_printf(&c->line, "(");
  for (int i = 0; !rc && i < n; i++) {
    if (i)
      rc = ferry_buf_printf(&c->line, ", ");
    if (!rc)
      rc = put_value(c, &vals[i]);
  }
  return rc ? rc : ferry_buf_printf(&c->line, ")");
}

/* The dialect to read this packed sequence with: the session's, or one
 * detected from it as the server detects it (kept once it is decided). */
static const ferry_dialect *dialect_for(ferry_dump_conn *c, int code, const uint8_t *seq,
                                        size_t n) {
  if (c->dialect)
    return c->dialect;
  int decided = 0;
  const ferry_dialect *d = ferry_dialect_detect(code, seq, n, &decided);
  if (d && decided) {
    c->dialect = d;
    if (ferry_buf_printf(&c->line, "[dialect %s] ", d->name))
      return NULL;
  }
  return d;
}

/* Decodes and prints a packed sequence that ends the body. */
static int put_seq(ferry_dump_conn *c, int code, const uint8_t *seq, size_t n,
                   ferry_rpc_why *why, int *bad) {
  const ferry_dialect *d = dialect_for(c, code, seq, n);
  if (!d) {
    *bad = 1;
    return ferry_rpc_why_set(why, FERRY_EPROTO, "arguments of no known dialect");
  }
  ferry_value *vals = NULL;
  int nvals = 0;
  size_t used = 0;
  int rc = d->decode_seq(seq, n, &c->arena, &vals, &nvals, &used, why);
  if (!rc && used != n)
    rc = ferry_rpc_why_set(why, FERRY_EPROTO, "%zu bytes after the arguments", n - used);
  if (rc) {
    *bad = 1;
    return rc;
  }
  rc = c->opts.json ? json_values(c, code, vals, nvals) : 0;
  return rc ? rc : put_values(c, vals, nvals);
}

static void remember_func(ferry_dump_conn *c, uint64_t handle) {
  if (!c->pending_name[0])
    return;
  /* A server reuses the address of a freed function for the next one. */
  for (size_t i = 0; i < c->nfuncs; i++)
    if (c->funcs[i].handle == handle) {
      snprintf(c->funcs[i].name, sizeof c->funcs[i].name, "%s", c->pending_name);
      return;
    }
  ferry_dump_func *f = &c->funcs[c->next_func];
  f->handle = handle;
  snprintf(f->name, sizeof f->name, "%s", c->pending_name);
  c->next_func = (c->next_func + 1) % FERRY_DUMP_MAX_FUNCS;
  if (c->nfuncs < FERRY_DUMP_MAX_FUNCS)
    c->nfuncs++;
}

/* kReturn: a call's return value in the dialect's form; a syscall's reply
 * that is not in that form is shown as a plain sequence. */
static int put_return(ferry_dump_conn *c, const uint8_t *p, size_t n, ferry_rpc_why *why,
                      int *bad) {
  const ferry_dialect *d = dialect_for(c, FERRY_RPC_RETURN, p, n);
  ferry_rpc_return ret;
  memset(&ret, 0, sizeof ret);
  if (c->pending_code == FERRY_RPC_CALL_FUNC && d &&
      d->decode_call_return(p, n, &c->arena, &ret, why) == FERRY_OK) {
    ferry_rpc_why_clear(why);
    if (ret.value.kind == FERRY_KIND_FUNC)
      remember_func(c, ret.value.v.handle);
    int rc = 0;
    if (c->opts.json) {
      const char *fn =
          ret.value.kind == FERRY_KIND_FUNC ? func_name(c, ret.value.v.handle) : NULL;
      rc = dump_jset(c, "value", dump_json_value(c, &ret.value, fn));
      if (!rc && ret.tensor)
        rc = dump_jset(c, "tensor", dump_json_tensor(ret.tensor));
    }
    if (!rc)
      rc = put_value(c, &ret.value);
    if (!rc && ret.tensor) {
      rc = ferry_buf_printf(&c->line, " ");
      if (!rc)
        rc = put_tensor(&c->line, ret.tensor);
    }
    return rc;
  }
  /* Syscalls answer with a plain sequence (kGetGlobalFunc: one handle). */
  ferry_rpc_why_clear(why);
  ferry_value *vals = NULL;
  int nvals = 0;
  size_t used = 0;
  if (d && c->pending_code == FERRY_RPC_GET_GLOBAL_FUNC &&
      d->decode_seq(p, n, &c->arena, &vals, &nvals, &used, NULL) == FERRY_OK && used == n &&
      nvals == 1 && (vals[0].kind == FERRY_KIND_OPAQUE || vals[0].kind == FERRY_KIND_FUNC)) {
    remember_func(c, vals[0].v.handle);
    /* Handle 0 answers a name the server does not have. */
    if (c->pending_name[0] && vals[0].v.handle && dump_jtext(c, "func", c->pending_name))
      return FERRY_ENOMEM;
  }
  return put_seq(c, FERRY_RPC_RETURN, p, n, why, bad);
}

static int put_body(ferry_dump_conn *c, const ferry_rpc_packet *pkt, ferry_rpc_why *why,
                    int *bad) {
  ferry_buf *b = &c->line;
  const uint8_t *p = pkt->body;
  size_t n = pkt->body_len;
  int rc = 0;
  switch (pkt->code) {
  case FERRY_RPC_SHUTDOWN:
    return n ? ferry_buf_printf(b, "(%zu unexpected bytes)", n) : 0;
  case FERRY_RPC_INIT_SERVER: {
    const char *ver = NULL;
    size_t vlen = 0, off = 0;
    rc = ferry_rpc_init_server_decode(p, n, &ver, &vlen, &off);
    if (rc) {
      *bad = 1;
      return ferry_rpc_why_set(why, rc, "version string runs past the packet");
    }
    rc = ferry_buf_printf(b, "version ");
    if (!rc)
      rc = dump_quote(b, ver, vlen, c->opts.max_str);
    if (!rc)
      rc = dump_jstr(c, "version", ver, vlen, c->opts.max_str);
    if (!rc)
      rc = ferry_buf_printf(b, " ");
    return rc ? rc : put_seq(c, pkt->code, p + off, n - off, why, bad);
  }
  case FERRY_RPC_CALL_FUNC: {
    uint64_t h = 0;
    size_t off = 0;
    rc = ferry_rpc_call_func_decode(p, n, &h, &off);
    if (rc) {
      *bad = 1;
      return ferry_rpc_why_set(why, rc, "no function handle");
    }
    const char *name = func_name(c, h);
    rc = c->opts.json ? dump_jset(c, "handle", dump_json_u64(h)) : 0;
    if (!rc && name)
      rc = dump_jtext(c, "func", name);
    if (!rc)
      rc = name ? ferry_buf_printf(b, "func 0x%llx %s ", (unsigned long long)h, name)
              : ferry_buf_printf(b, "func 0x%llx ", (unsigned long long)h);
    return rc ? rc : put_seq(c, pkt->code, p + off, n - off, why, bad);
  }
  case FERRY_RPC_RETURN:
    return put_return(c, p, n, why, bad);
  case FERRY_RPC_COPY_FROM_REMOTE:
  case FERRY_RPC_COPY_TO_REMOTE: {
    DLTensor *t = NULL;
    uint64_t nbytes = 0;
    const uint8_t *data = NULL;
    rc = pkt->code == FERRY_RPC_COPY_TO_REMOTE
             ? ferry_rpc_copy_to_decode(p, n, &c->arena, &t, &nbytes, &data, why)
             : ferry_rpc_copy_from_decode(p, n, &c->arena, &t, &nbytes, why);
    if (rc) {
      *bad = 1;
      return rc;
    }
    rc = c->opts.json ? dump_jset(c, "tensor", dump_json_tensor(t)) : 0;
    if (!rc)
      rc = dump_jint(c, "bytes", (long long)nbytes);
    if (!rc)
      rc = put_tensor(b, t);
    return rc ? rc : ferry_buf_printf(b, ", %llu bytes", (unsigned long long)nbytes);
  }
  case FERRY_RPC_COPY_ACK:
    rc = dump_jint(c, "bytes", (long long)n);
    return rc ? rc : ferry_buf_printf(b, "%zu bytes", n);
  case FERRY_RPC_EXCEPTION:
  default:
    if (pkt->code >= FERRY_RPC_SYSCALL_START || pkt->code == FERRY_RPC_EXCEPTION)
      return put_seq(c, pkt->code, p, n, why, bad);
    *bad = 1;
    return ferry_rpc_why_set(why, FERRY_EPROTO, "unknown code %d with %zu bytes",
                             (int)pkt->code, n);
  }
}

/* Queues a request for its reply, with the name of the function whose
 * handle the reply will hold (so that later calls of it are named). */
static void note_request(ferry_dump_conn *c, const ferry_rpc_packet *pkt) {
  if (pkt->code == FERRY_RPC_SHUTDOWN)
    return; /* never answered */
  if (c->pend_n == FERRY_DUMP_MAX_PENDING) {
    /* A peer that never answers: forget the oldest. */
    c->pend_head = (c->pend_head + 1) % FERRY_DUMP_MAX_PENDING;
    c->pend_n--;
  }
  size_t slot = (c->pend_head + c->pend_n++) % FERRY_DUMP_MAX_PENDING;
  c->pend[slot].code = pkt->code;
  c->pend[slot].name[0] = 0;
  c->pending_name[0] = 0;
  note_name(c, pkt);
  snprintf(c->pend[slot].name, sizeof c->pend[slot].name, "%s", c->pending_name);
}

/* The request the reply now read answers (none: code -1). */
static void take_request(ferry_dump_conn *c) {
  c->pending_code = -1;
  c->pending_name[0] = 0;
  if (!c->pend_n)
    return;
  c->pending_code = c->pend[c->pend_head].code;
  snprintf(c->pending_name, sizeof c->pending_name, "%s", c->pend[c->pend_head].name);
  c->pend_head = (c->pend_head + 1) % FERRY_DUMP_MAX_PENDING;
  c->pend_n--;
}

static void note_name(ferry_dump_conn *c, const ferry_rpc_packet *pkt) {
  if (!c->dialect)
    return;
  /* Which argument names the function the reply will hold: kGetGlobalFunc's
   * only one, and ModuleGetFunction's second (module, name, query_imports). */
  const uint8_t *seq = pkt->body;
  size_t n = pkt->body_len;
  int want = 0;
  if (pkt->code == FERRY_RPC_CALL_FUNC) {
    const char *fn = n >= 8 ? func_name(c, get_le64(seq)) : NULL;
    if (!fn || strcmp(fn, "tvm.rpc.server.ModuleGetFunction"))
      return;
    seq += 8;
    n -= 8;
    want = 1;
  } else if (pkt->code != FERRY_RPC_GET_GLOBAL_FUNC) {
    return;
  }
  ferry_value *vals = NULL;
  int nvals = 0;
  size_t used = 0;
  if (c->dialect->decode_seq(seq, n, &c->arena, &vals, &nvals, &used, NULL) == FERRY_OK &&
      nvals > want && vals[want].kind == FERRY_KIND_STR)
    snprintf(c->pending_name, sizeof c->pending_name, "%.*s",
             (int)(vals[want].v.str.len < 63 ? vals[want].v.str.len : 63),
             vals[want].v.str.data);
}

int dump_rpc_packet(ferry_dump_conn *c, int dir, double t, const uint8_t *p, size_t n,
                    ferry_buf *out) {
  ferry_rpc_packet pkt;
  size_t used = 0;
  c->line.len = 0;
  int rc = ferry_rpc_packet_parse(p, n, (uint64_t)c->opts.max_decode, &pkt, &used);
  if (rc)
    return ferry_buf_printf(&c->line, "unframable packet: %s", ferry_strerror(rc)) ||
                   dump_jint(c, "offset", (long long)c->dir[dir].msg_off) ||
                   dump_jtext(c, "reason", ferry_strerror(rc))
               ? FERRY_ENOMEM
               : dump_emit(c, dir, t, "error", out);
  ferry_rpc_arena_reset(&c->arena);
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  int bad = 0;
  int reply = pkt.code == FERRY_RPC_RETURN || pkt.code == FERRY_RPC_EXCEPTION ||
              pkt.code == FERRY_RPC_COPY_ACK;
  if (reply)
    take_request(c);
  /* An error's text is what the user came for: show more of it. */
  c->str_limit = pkt.code == FERRY_RPC_EXCEPTION && c->opts.max_str < FERRY_DUMP_MAX_ERROR_TEXT
                     ? FERRY_DUMP_MAX_ERROR_TEXT
                     : c->opts.max_str;
  rc = ferry_buf_printf(&c->line, "%s", ferry_rpc_code_name(pkt.code));
  if (!rc)
    rc = dump_jint(c, "code", pkt.code);
  if (!rc)
    rc = dump_jtext(c, "code_name", ferry_rpc_code_name(pkt.code));
  if (!rc && pkt.body_len)
    rc = ferry_buf_printf(&c->line, " ");
  if (!rc)
    rc = put_body(c, &pkt, &why, &bad);
  if (bad) {
    /* Keep what was printed, say why the rest is not shown. */
    const char *reason = why.msg[0] ? why.msg : ferry_strerror(rc);
    rc = ferry_buf_printf(&c->line, " MALFORMED at offset %llu (%zu-byte body): %s",
                          (unsigned long long)c->dir[dir].msg_off, pkt.body_len, reason);
    if (!rc)
      rc = dump_jset(c, "malformed", json_true());
    if (!rc)
      rc = dump_jint(c, "offset", (long long)c->dir[dir].msg_off);
    if (!rc)
      rc = dump_jtext(c, "reason", reason);
  }
  if (!reply) {
    ferry_rpc_arena_reset(&c->arena);
    note_request(c, &pkt);
    if (!rc && pkt.code == FERRY_RPC_GET_GLOBAL_FUNC && c->pending_name[0])
      rc = dump_jtext(c, "func", c->pending_name);
  }
  if (rc == FERRY_ETOOBIG || rc == FERRY_ENOMEM) {
    /* The line hit its ceiling: show what fits. */
    rc = 0;
  }
  int erc = dump_emit(c, dir, t, bad ? "error" : "rpc", out);
  return rc ? rc : erc;
}
