/* kCallFunc, kGetGlobalFunc and kFreeHandle: where wire handles become
 * runtime objects and back (rpc-session.md §2.6, §2.7, §3.3, §3.7, §3.8). */
#include <stdlib.h>
#include <string.h>

#include "server/session_internal.h"

#define MAX_PACKET_FN_NAME "tvm.rpc.server.GetCRTMaxPacketSize"

static enum ferry_obj_type obj_type_of(enum ferry_kind kind) {
  switch (kind) {
  case FERRY_KIND_FUNC:
    return FERRY_OBJ_FUNC;
  case FERRY_KIND_MODULE:
    return FERRY_OBJ_MODULE;
  case FERRY_KIND_NDARRAY:
    return FERRY_OBJ_NDARRAY;
  case FERRY_KIND_OBJECT:
    return FERRY_OBJ_OTHER;
  default:
    return 0;
  }
}

int session_check_tensor(ferry_session *s, const DLTensor *t, ferry_err *err) {
  uint64_t nbytes = 0;
  if (ferry_rpc_tensor_nbytes(t, &nbytes))
    return ferry_err_set(err, FERRY_ERANGE, "ValueError: DLTensor size overflows");
  if (t->device.device_type != kDLCPU) {
    /* A device buffer: its descriptor and the range are checked by the
     * device that made it. */
    return ferry_rt_check_tensor(s->rt, t, nbytes, err);
  }
  void *p = NULL;
  return session_tensor_bytes(s, t, nbytes, &p, err);
}

void *session_stage(ferry_session *s, size_t n) {
  if (n > s->stage_cap) {
    void *p = realloc(s->stage, n);
    if (p == NULL)
      return NULL;
    s->stage = p;
    s->stage_cap = n;
  }
  return s->stage ? s->stage : (s->stage = malloc(1));
}

int session_tensor_bytes(ferry_session *s, const DLTensor *t, uint64_t nbytes, void **out,
                         ferry_err *err) {
  if (t->device.device_type != kDLCPU)
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "RuntimeError: device type %d memory is not addressable here",
                         (int)t->device.device_type);
  uintptr_t unvalidated_base = (uintptr_t)t->data;
  if (t->byte_offset > UINTPTR_MAX - unvalidated_base)
    return ferry_err_set(err, FERRY_ERANGE, "ValueError: DLTensor byte_offset overflows");
  uintptr_t unvalidated_addr = unvalidated_base + (uintptr_t)t->byte_offset;
  /* An empty tensor touches no memory; its pointer is still checked unless
   * it is NULL, so that no foreign pointer reaches a kernel. */
  if (nbytes == 0 && unvalidated_base == 0) {
    *out = NULL;
    return FERRY_OK;
  }
  int rc = ferry_rt_check_range(s->rt, (const void *)unvalidated_addr, nbytes, err);
  if (rc)
    return ferry_err_set(err, rc,
                         "ValueError: DLTensor data 0x%llx+%llu (%llu bytes) is not memory "
                         "of this session",
                         (unsigned long long)unvalidated_base,
                         (unsigned long long)t->byte_offset, (unsigned long long)nbytes);
  *out = (void *)unvalidated_addr;
  return FERRY_OK;
}

/* Wire values -> runtime values, in place: handles become borrowed objects,
 * tensors are checked against the session's allocations. */
static int args_from_wire(ferry_session *s, ferry_value *vals, int n, ferry_err *err) {
  for (int i = 0; i < n; i++) {
    ferry_value *v = &vals[i];
    enum ferry_obj_type type = obj_type_of(v->kind);
    if (type) {
      ferry_obj *obj = NULL;
      if (ferry_handles_get(&s->handles, v->v.handle, type, &obj))
        return ferry_err_set(err, FERRY_EBADHANDLE,
                             "ValueError: argument %d: %s handle 0x%llx is unknown or "
                             "released",
                             i, ferry_kind_name(v->kind), (unsigned long long)v->v.handle);
      v->v.obj = obj;
    } else if (v->kind == FERRY_KIND_TENSOR) {
      int rc = session_check_tensor(s, v->v.tensor, err);
      if (rc)
        return rc;
    }
  }
  return FERRY_OK;
}

/* Encodes a call's result as the kReturn reply; object results move into
 * the handle table (c->ret no longer owns them afterwards). */
static int reply_call_result(ferry_session *s, ferry_call *c, ferry_err *err) {
  ferry_rpc_return ret;
  memset(&ret, 0, sizeof ret);
  ret.value = c->ret;
  DLTensor view;
  enum ferry_obj_type type = obj_type_of(c->ret.kind);
  if (c->ret.kind == FERRY_KIND_TENSOR)
    return ferry_err_set(err, FERRY_ETYPE,
                         "RuntimeError: function returned a borrowed DLTensor, which cannot "
                         "cross RPC");
  if (type) {
    ferry_obj *obj = c->ret.v.obj;
    if (!obj) {
      ret.value.kind = FERRY_KIND_NONE;
    } else {
      if (obj->type != type)
        return ferry_err_set(err, FERRY_ETYPE, "RuntimeError: result object has the wrong type");
      if (type == FERRY_OBJ_NDARRAY) {
        /* The client ignores byte_offset (§2.7): send the first element. */
        view = ((ferry_ndarray *)obj)->tensor;
        view.data = (char *)view.data + view.byte_offset;
        view.byte_offset = 0;
        ret.tensor = &view;
      }
      if (type == FERRY_OBJ_OTHER)
        ret.object_type_key = ((ferry_other *)obj)->type_key;
      c->ret.kind = FERRY_KIND_NONE; /* the table takes the reference */
      c->ret.v.obj = NULL;
      uint64_t h = 0;
      int rc = ferry_handles_put(&s->handles, obj, &h);
      if (rc)
        return ferry_err_set(err, rc, "RuntimeError: too many live remote objects");
      ret.value.v.handle = h;
    }
  }
  size_t mark = 0;
  s->out.len = 0;
  int rc = ferry_rpc_packet_begin(&s->out, FERRY_RPC_RETURN, &mark);
  if (!rc)
    rc = session_dialect(s)->encode_call_return(&s->out, &ret);
  if (rc)
    return ferry_err_set(err, rc, "RuntimeError: cannot encode the %s result: %s",
                         ferry_kind_name(ret.value.kind), ferry_strerror(rc));
  ferry_rpc_packet_end(&s->out, mark);
  return FERRY_OK;
}

int session_call_func(ferry_session *s, const ferry_rpc_packet *pkt, ferry_err *err) {
  uint64_t handle = 0;
  size_t seq_off = 0;
  if (ferry_rpc_call_func_decode(pkt->body, pkt->body_len, &handle, &seq_off))
    return ferry_err_set(err, FERRY_EPROTO, "ValueError: kCallFunc without a function handle");
  ferry_value *vals = NULL;
  int n = 0;
  int rc = session_decode_seq(s, pkt->code, pkt->body + seq_off, pkt->body_len - seq_off,
                              &vals, &n, err);
  if (rc)
    return rc;
  ferry_obj *fobj = NULL;
  if (ferry_handles_get(&s->handles, handle, FERRY_OBJ_FUNC, &fobj))
    return ferry_err_set(err, FERRY_EBADHANDLE,
                         "ValueError: function handle 0x%llx is unknown or released",
                         (unsigned long long)handle);
  rc = args_from_wire(s, vals, n, err);
  if (rc)
    return rc;
  /* The result must fit in one reply packet with its framing. */
  size_t max_ret = (size_t)s->max_packet > 1024 ? (size_t)s->max_packet - 1024 : 0;
  ferry_call c;
  ferry_call_init(&c, s->rt, vals, n, err, max_ret);
  ferry_func *f = (ferry_func *)fobj;
  /* Keep the function alive even if the call releases its own handle. */
  ferry_obj_retain(&f->base);
  rc = ferry_func_call(f, &c);
  if (rc == FERRY_OK)
    rc = reply_call_result(s, &c, err);
  else if (!err->code)
    ferry_err_set(err, rc, "RuntimeError: function call failed: %s", ferry_strerror(rc));
  ferry_call_close(&c);
  ferry_obj_release(&f->base);
  return rc;
}

int session_get_global(ferry_session *s, const ferry_value *v, int n, ferry_err *err) {
  int rc = session_expect(v, n, "S", "kGetGlobalFunc", err);
  if (rc)
    return rc;
  const char *name = v[0].v.str.data;
  ferry_func *f = NULL;
  if (s->cfg->copy_packet_size > 0 && strcmp(name, MAX_PACKET_FN_NAME) == 0) {
    f = &s->max_packet_fn;
    ferry_obj_retain(&f->base);
  } else {
    /* Only with --testing; otherwise these names are unknown, as on a
     * TVM server started without its testing module. */
    rc = FERRY_ENOTFOUND;
    if (s->cfg->testing)
      rc = session_testing_lookup(name, &f);
    if (rc == FERRY_ENOTFOUND)
      rc = ferry_rt_get_global(s->rt, name, &f);
    if (rc == FERRY_ENOTFOUND)
      return session_reply_opaque(s, 0); /* not found is handle 0, not an error */
    if (rc)
      return ferry_err_set(err, rc, "RuntimeError: looking up %s failed: %s", name,
                           ferry_strerror(rc));
  }
  uint64_t h = 0;
  rc = ferry_handles_put(&s->handles, &f->base, &h);
  if (rc)
    return ferry_err_set(err, rc, "RuntimeError: too many live remote objects");
  return session_reply_opaque(s, h);
}

int session_free_handle(ferry_session *s, const ferry_value *v, int n, ferry_err *err) {
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  uint64_t handle = 0;
  enum ferry_kind kind = FERRY_KIND_NONE;
  int rc = session_dialect(s)->decode_free_handle(v, n, &handle, &kind, &why);
  if (rc)
    return ferry_err_set(err, rc, "ValueError: %s", why.msg);
  /* A handle that was never issued or is already released is ignored, as
   * the client ignores errors of releases (§2.6) and the v0.21 client
   * releases values that were never handles (§7.2.8); nothing is
   * dereferenced either way. */
  if (ferry_handles_release(&s->handles, handle, obj_type_of(kind))) {
    /* The ffi dialect does not say what it releases (kind NONE); v0.21
     * clients may name a returned NDArray by its data pointer. */
    uint64_t nd = 0;
    if (kind != FERRY_KIND_NONE ||
        ferry_handles_find_ndarray_data(&s->handles, handle, &nd) ||
        ferry_handles_release(&s->handles, nd, FERRY_OBJ_NDARRAY))
      s->unknown_releases++;
  }
  return session_reply_void(s);
}
