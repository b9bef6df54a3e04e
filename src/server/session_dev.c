/* Device syscalls: kDevSetDevice .. kDevGetCurrentStream except
 * kCopyAmongRemote (rpc-session.md §3.9, §4.6), routed to the runtime's
 * device layer (CPU and OpenCL).  Every device has only its default
 * stream 0. */
#include <string.h>

#include "server/session_internal.h"

static int check_dev(ferry_session *s, DLDevice dev, const char *what, ferry_err *err) {
  ferry_err why;
  ferry_err_clear(&why);
  if (ferry_rt_device_check(s->rt, dev, &why) != FERRY_OK)
    return ferry_err_set(err, why.code, "RuntimeError: %s: %s", what, why.msg);
  return FERRY_OK;
}

static int check_stream(const ferry_value *v, const char *what, ferry_err *err) {
  if (v->kind == FERRY_KIND_OPAQUE && v->v.handle != 0)
    return ferry_err_set(err, FERRY_EINVAL,
                         "ValueError: %s: unknown stream 0x%llx (devices here have only stream 0)",
                         what, (unsigned long long)v->v.handle);
  return FERRY_OK;
}

static int check_alloc_size(const ferry_session *s, uint64_t nbytes, const char *what,
                            ferry_err *err) {
  if (s->cfg->max_alloc && nbytes > s->cfg->max_alloc)
    return ferry_err_set(err, FERRY_ETOOBIG,
                         "RuntimeError: %s of %llu bytes is over this server's limit of %llu",
                         what, (unsigned long long)nbytes,
                         (unsigned long long)s->cfg->max_alloc);
  return FERRY_OK;
}

static int dev_get_attr(ferry_session *s, const ferry_value *v, int n, ferry_err *err) {
  int rc = session_expect(v, n, "DI", "kDevGetAttr", err);
  if (rc)
    return rc;
  if (v[1].v.i < 0 || v[1].v.i > 1000)
    return ferry_err_set(err, FERRY_EINVAL, "ValueError: unknown device attribute %lld",
                         (long long)v[1].v.i);
  ferry_call frame;
  ferry_call_init(&frame, s->rt, NULL, 0, err, 1u << 16);
  ferry_value out;
  memset(&out, 0, sizeof out);
  rc = ferry_rt_dev_attr(s->rt, v[0].v.device, (int)v[1].v.i, &out, &frame, err);
  if (!rc)
    rc = session_reply_values(s, &out, 1);
  ferry_call_close(&frame);
  return rc;
}

int session_device_syscall(ferry_session *s, int code, const ferry_value *v, int n,
                           ferry_err *err) {
  const char *what = ferry_rpc_code_name(code);
  void *ptr = NULL;
  int rc;
  switch (code) {
  case FERRY_RPC_DEV_SET_DEVICE:
    if ((rc = session_expect(v, n, "D", what, err)) || (rc = check_dev(s, v[0].v.device, what, err)))
      return rc;
    if ((rc = ferry_rt_set_device(s->rt, v[0].v.device, err)))
      return rc;
    return session_reply_void(s);
  case FERRY_RPC_DEV_GET_ATTR:
    return dev_get_attr(s, v, n, err);
  case FERRY_RPC_DEV_ALLOC_DATA:
    if ((rc = session_expect(v, n, "DIIT", what, err)))
      return rc;
    if (v[1].v.i < 0 || v[2].v.i < 0)
      return ferry_err_set(err, FERRY_EINVAL, "ValueError: %s: negative size or alignment",
                           what);
    if ((rc = check_alloc_size(s, (uint64_t)v[1].v.i, what, err)))
      return rc;
    rc = ferry_rt_alloc(s->rt, v[0].v.device, (uint64_t)v[1].v.i, (uint64_t)v[2].v.i,
                        v[3].v.dtype, &ptr, err);
    return rc ? rc : session_reply_opaque(s, (uint64_t)(uintptr_t)ptr);
  case FERRY_RPC_DEV_FREE_DATA:
    if ((rc = session_expect(v, n, "DP", what, err)))
      return rc;
    /* The runtime checks the pointer against its allocation table. */
    rc = ferry_rt_free(s->rt, v[0].v.device,
                       (void *)(uintptr_t)(v[1].kind == FERRY_KIND_OPAQUE ? v[1].v.handle : 0),
                       err);
    return rc ? rc : session_reply_void(s);
  case FERRY_RPC_DEV_ALLOC_DATA_WITH_SCOPE: {
    if ((rc = session_expect(v, n, "Xs", what, err)))
      return rc;
    const char *scope = v[1].kind == FERRY_KIND_STR ? v[1].v.str.data : NULL;
    uint64_t nbytes = 0;
    if (ferry_rpc_tensor_nbytes(v[0].v.tensor, &nbytes))
      return ferry_err_set(err, FERRY_ERANGE, "ValueError: %s: tensor size overflows", what);
    if ((rc = check_alloc_size(s, nbytes, what, err)))
      return rc;
    rc = ferry_rt_alloc_tensor(s->rt, v[0].v.tensor, scope, &ptr, err);
    return rc ? rc : session_reply_opaque(s, (uint64_t)(uintptr_t)ptr);
  }
  case FERRY_RPC_DEV_STREAM_SYNC:
  case FERRY_RPC_DEV_FREE_STREAM:
  case FERRY_RPC_DEV_SET_STREAM:
    if ((rc = session_expect(v, n, "DP", what, err)) ||
        (rc = check_dev(s, v[0].v.device, what, err)) || (rc = check_stream(&v[1], what, err)))
      return rc;
    if (code == FERRY_RPC_DEV_STREAM_SYNC && (rc = ferry_rt_sync(s->rt, v[0].v.device, err)))
      return rc;
    return session_reply_void(s);
  case FERRY_RPC_DEV_CREATE_STREAM:
  case FERRY_RPC_DEV_GET_CURRENT_STREAM:
    if ((rc = session_expect(v, n, "D", what, err)) || (rc = check_dev(s, v[0].v.device, what, err)))
      return rc;
    return session_reply_opaque(s, 0);
  default:
    return ferry_err_set(err, FERRY_EUNSUPPORTED, "RPCError: Syscall %d not recognized", code);
  }
}
