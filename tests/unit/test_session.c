/* Whole sessions over socketpair() against the real runtime: the flows of
 * rpc-session.md §5 and the hostile packets of the server issue (wrong
 * codes, lengths past the frame, unknown type codes, handles never issued
 * or already freed, ndim 1000, foreign data pointers, 2^62 lengths,
 * negative ndim).  Each test checks the reply and that the session is
 * still alive afterwards (or ended, where the stream itself is broken). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/bytes.h"
#include "server/session.h"
#include "wire/rpc_dialect.h"
#include "wire/rpc_packet.h"
#include "wire/rpc_tensor.h"

static const ferry_dialect *D = &ferry_dialect_classic;

typedef struct peer {
  int fd; /* the test's end */
  pthread_t thread;
  ferry_session_fd io_ctx;
  ferry_session_io io;
  ferry_session_config cfg;
  ferry_err err;
  int rc;
  char dir[64];
  int dialect_seen;
  ferry_rpc_arena arena;
} peer;

static void on_dialect(void *ctx, enum ferry_dialect_id d) {
  ((peer *)ctx)->dialect_seen = (int)d;
}

static void *session_thread(void *arg) {
  peer *p = arg;
  p->rc = ferry_session_run(&p->io, &p->cfg, &p->err);
  return NULL;
}

static peer *start(uint64_t copy_packet_size, uint64_t max_packet, uint64_t max_alloc) {
  peer *p = calloc(1, sizeof *p);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  p->fd = sv[0];
  snprintf(p->dir, sizeof p->dir, "/tmp/ferry-test-session-XXXXXX");
  assert_non_null(mkdtemp(p->dir));
  ferry_session_io_fd(&p->io, &p->io_ctx, sv[1]);
  p->cfg.work_dir = p->dir;
  p->cfg.num_threads = 1;
  p->cfg.copy_packet_size = copy_packet_size;
  p->cfg.max_packet = max_packet;
  p->cfg.max_alloc = max_alloc;
  p->cfg.on_dialect = on_dialect;
  p->cfg.hook_ctx = p;
  ferry_err_clear(&p->err);
  ferry_rpc_arena_init(&p->arena, 1 << 26);
  assert_int_equal(pthread_create(&p->thread, NULL, session_thread, p), 0);
  return p;
}

/* Ends the session (EOF) and returns its result. */
static int finish(peer *p) {
  close(p->fd);
  pthread_join(p->thread, NULL);
  int rc = p->rc;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", p->dir);
  if (system(cmd) != 0)
    fail_msg("cannot remove %s", p->dir);
  ferry_rpc_arena_close(&p->arena);
  free(p);
  return rc;
}

static void send_all(peer *p, const void *b, size_t n) {
  assert_int_equal(write(p->fd, b, n), (ssize_t)n);
}

/* Reads one reply packet: code, and body into *body (malloc'd). */
static int32_t recv_packet(peer *p, uint8_t **body, size_t *len) {
  uint8_t hdr[8];
  size_t got = 0;
  while (got < 8) {
    ssize_t r = read(p->fd, hdr + got, 8 - got);
    if (r <= 0)
      return -1; /* closed */
    got += (size_t)r;
  }
  uint64_t n = get_le64(hdr);
  assert_true(n >= 4 && n < (1u << 28));
  uint8_t *b = malloc(n);
  got = 0;
  while (got < n) {
    ssize_t r = read(p->fd, b + got, n - got);
    assert_true(r > 0);
    got += (size_t)r;
  }
  *len = n - 4;
  *body = malloc(n - 4 + 1);
  memcpy(*body, b + 4, n - 4);
  int32_t code = (int32_t)get_le32(b);
  free(b);
  return code;
}

/* Sends a whole packet of code with body. */
static void send_packet(peer *p, int32_t code, const void *body, size_t n) {
  ferry_buf out;
  ferry_buf_init(&out, (size_t)1 << 30);
  size_t mark;
  assert_int_equal(ferry_rpc_packet_begin(&out, code, &mark), 0);
  assert_int_equal(ferry_buf_append(&out, body, n), 0);
  ferry_rpc_packet_end(&out, mark);
  send_all(p, out.data, out.len);
  ferry_buf_close(&out);
}

/* Sends a syscall (or kCallFunc when code 3, with handle) with values. */
static void send_values(peer *p, int32_t code, uint64_t handle, const ferry_value *v, int n) {
  ferry_buf body;
  ferry_buf_init(&body, (size_t)1 << 30);
  if (code == FERRY_RPC_CALL_FUNC)
    assert_int_equal(ferry_rpc_call_func_encode(&body, handle), 0);
  assert_int_equal(D->encode_seq(&body, v, n), 0);
  send_packet(p, code, body.data, body.len);
  ferry_buf_close(&body);
}

/* Expects a kReturn with one value (syscall answer) and returns it. */
static ferry_value reply_value(peer *p) {
  uint8_t *body;
  size_t len;
  int32_t code = recv_packet(p, &body, &len);
  if (code == FERRY_RPC_EXCEPTION)
    fail_msg("exception: %.*s", (int)(len > 20 ? len - 20 : 0), body + 20);
  assert_int_equal(code, FERRY_RPC_RETURN);
  ferry_value *v;
  int n;
  size_t used;
  assert_int_equal(D->decode_seq(body, len, &p->arena, &v, &n, &used, NULL), 0);
  assert_int_equal(used, len);
  assert_int_equal(n, 1);
  free(body);
  return v[0];
}

/* Expects a kException whose message contains want; returns nothing. */
static void expect_exception(peer *p, const char *want) {
  uint8_t *body;
  size_t len;
  int32_t code = recv_packet(p, &body, &len);
  assert_int_equal(code, FERRY_RPC_EXCEPTION);
  ferry_value *v;
  int n;
  size_t used;
  assert_int_equal(D->decode_seq(body, len, &p->arena, &v, &n, &used, NULL), 0);
  assert_int_equal(n, 1);
  assert_int_equal(v[0].kind, FERRY_KIND_STR);
  if (!strstr(v[0].v.str.data, want))
    fail_msg("exception '%s' lacks '%s'", v[0].v.str.data, want);
  free(body);
}

static ferry_rpc_return call(peer *p, uint64_t h, const ferry_value *v, int n) {
  send_values(p, FERRY_RPC_CALL_FUNC, h, v, n);
  uint8_t *body;
  size_t len;
  int32_t code = recv_packet(p, &body, &len);
  if (code == FERRY_RPC_EXCEPTION)
    fail_msg("exception: %.*s", (int)(len > 20 ? len - 20 : 0), body + 20);
  assert_int_equal(code, FERRY_RPC_RETURN);
  ferry_rpc_return r;
  /* body must outlive r (strings are arena copies, so it need not). */
  assert_int_equal(D->decode_call_return(body, len, &p->arena, &r, NULL), 0);
  free(body);
  return r;
}

static void init_server(peer *p) {
  ferry_buf body;
  ferry_buf_init(&body, 64);
  assert_int_equal(ferry_rpc_init_server_encode(&body, "0.8.0"), 0);
  uint8_t zero[4] = {0};
  assert_int_equal(ferry_buf_append(&body, zero, 4), 0);
  send_packet(p, FERRY_RPC_INIT_SERVER, body.data, body.len);
  ferry_buf_close(&body);
  uint8_t reply[16];
  size_t got = 0;
  while (got < 16) {
    ssize_t r = read(p->fd, reply + got, 16 - got);
    assert_true(r > 0);
    got += (size_t)r;
  }
  /* §7.4: the empty packed sequence both dialects accept. */
  const uint8_t want[16] = {8, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0};
  assert_memory_equal(reply, want, 16);
}

static ferry_value str_value(const char *s) {
  ferry_value v;
  v.kind = FERRY_KIND_STR;
  v.v.str.data = s;
  v.v.str.len = strlen(s);
  return v;
}

static uint64_t get_global(peer *p, const char *name) {
  ferry_value v = str_value(name);
  send_values(p, FERRY_RPC_GET_GLOBAL_FUNC, 0, &v, 1);
  ferry_value r = reply_value(p);
  assert_int_equal(r.kind, FERRY_KIND_OPAQUE);
  return r.v.handle;
}

static void free_handle(peer *p, uint64_t h, enum ferry_kind kind) {
  ferry_buf body;
  ferry_buf_init(&body, 256);
  assert_int_equal(D->encode_free_handle(&body, h, kind), 0);
  send_packet(p, FERRY_RPC_FREE_HANDLE, body.data, body.len);
  ferry_buf_close(&body);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
}

static void shutdown_ok(peer *p) {
  send_packet(p, FERRY_RPC_SHUTDOWN, NULL, 0);
  assert_int_equal(finish(p), 0);
}

/* ---- flows ---------------------------------------------------------------- */

static void connect_and_lookup(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  init_server(p);
  assert_int_equal(p->dialect_seen, 0); /* no arguments yet: undecided */
  assert_int_equal(get_global(p, "no.such.global"), 0);
  assert_int_equal(p->dialect_seen, FERRY_DIALECT_CLASSIC);
  /* Not registered unless configured: handle 0, as TVM's servers. */
  assert_int_equal(get_global(p, "tvm.rpc.server.GetCRTMaxPacketSize"), 0);
  /* A second kInitServer is refused; the session goes on. */
  ferry_buf body;
  ferry_buf_init(&body, 64);
  assert_int_equal(ferry_rpc_init_server_encode(&body, "0.8.0"), 0);
  uint8_t zero[4] = {0};
  assert_int_equal(ferry_buf_append(&body, zero, 4), 0);
  send_packet(p, FERRY_RPC_INIT_SERVER, body.data, body.len);
  ferry_buf_close(&body);
  expect_exception(p, "already been initialized");
  assert_int_equal(get_global(p, "no.such.global"), 0);
  shutdown_ok(p);
}

static void version_mismatch(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  ferry_buf body;
  ferry_buf_init(&body, 64);
  assert_int_equal(ferry_rpc_init_server_encode(&body, "0.7.0"), 0);
  uint8_t zero[4] = {0};
  assert_int_equal(ferry_buf_append(&body, zero, 4), 0);
  send_packet(p, FERRY_RPC_INIT_SERVER, body.data, body.len);
  ferry_buf_close(&body);
  expect_exception(p, "0.7.0");
  init_server(p); /* the right version still works */
  assert_int_equal(finish(p), 0); /* EOF at a boundary: clean */
}

static void init_server_variants(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  /* Session constructors (["rpc.Connect", ...]) are refused; this also
   * decides the dialect. */
  ferry_buf body;
  ferry_buf_init(&body, 256);
  assert_int_equal(ferry_rpc_init_server_encode(&body, "0.8.0"), 0);
  ferry_value ctor[2] = {str_value("rpc.Connect"), {.kind = FERRY_KIND_INT}};
  ctor[1].v.i = 9090;
  assert_int_equal(D->encode_seq(&body, ctor, 2), 0);
  send_packet(p, FERRY_RPC_INIT_SERVER, body.data, body.len);
  expect_exception(p, "rpc.Connect");
  assert_int_equal(p->dialect_seen, FERRY_DIALECT_CLASSIC);
  /* A version string running past the packet, and trailing bytes. */
  body.len = 0;
  uint8_t bad[12] = {0xff, 0, 0, 0, 0, 0, 0, 0, '0', '.', '8', '.'};
  send_packet(p, FERRY_RPC_INIT_SERVER, bad, sizeof bad);
  expect_exception(p, "malformed kInitServer");
  assert_int_equal(ferry_rpc_init_server_encode(&body, "0.8.0"), 0);
  uint8_t tail[5] = {0, 0, 0, 0, 9};
  assert_int_equal(ferry_buf_append(&body, tail, 5), 0);
  send_packet(p, FERRY_RPC_INIT_SERVER, body.data, body.len);
  expect_exception(p, "");
  ferry_buf_close(&body);
  init_server(p);
  shutdown_ok(p);
}

static void alloc_ceiling(void **state) {
  (void)state;
  peer *p = start(0, 0, 1 << 20);
  init_server(p);
  int64_t shape[2] = {1024, 1024};
  DLTensor t = {.device = {kDLCPU, 0}, .ndim = 2, .dtype = {kDLFloat, 32, 1}, .shape = shape};
  ferry_value v[4] = {{.kind = FERRY_KIND_TENSOR}, {.kind = FERRY_KIND_NONE}};
  v[0].v.tensor = &t;
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA_WITH_SCOPE, 0, v, 2);
  expect_exception(p, "over this server's limit");
  shape[0] = 256; /* exactly 1 MiB */
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA_WITH_SCOPE, 0, v, 2);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_OPAQUE);
  /* A shape whose size overflows. */
  shape[0] = INT64_MAX / 2;
  shape[1] = INT64_MAX / 2;
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA_WITH_SCOPE, 0, v, 2);
  expect_exception(p, "overflows");
  memset(v, 0, sizeof v);
  v[0].kind = FERRY_KIND_DEVICE;
  v[0].v.device = (DLDevice){kDLCPU, 0};
  v[1].kind = FERRY_KIND_INT;
  v[1].v.i = (1 << 20) + 1;
  v[2].kind = FERRY_KIND_INT;
  v[2].v.i = 64;
  v[3].kind = FERRY_KIND_DTYPE;
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA, 0, v, 4);
  expect_exception(p, "over this server's limit");
  shutdown_ok(p);
}

static void files_flow(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  init_server(p);
  uint64_t up = get_global(p, "tvm.rpc.server.upload");
  assert_int_not_equal(up, 0);
  ferry_value args[2] = {str_value("hello.txt"), str_value("hello ferry\n")};
  args[1].kind = FERRY_KIND_BYTES;
  ferry_rpc_return r = call(p, up, args, 2);
  assert_int_equal(r.value.kind, FERRY_KIND_NONE);
  uint64_t down = get_global(p, "tvm.rpc.server.download");
  r = call(p, down, args, 1);
  assert_int_equal(r.value.kind, FERRY_KIND_BYTES);
  assert_int_equal(r.value.v.str.len, 12);
  assert_memory_equal(r.value.v.str.data, "hello ferry\n", 12);
  /* A path outside the work folder is an exception, not a crash. */
  ferry_value bad = str_value("../escape.txt");
  send_values(p, FERRY_RPC_CALL_FUNC, down, &bad, 1);
  expect_exception(p, "");
  free_handle(p, up, FERRY_KIND_FUNC);
  free_handle(p, down, FERRY_KIND_FUNC);
  /* The freed handle is refused, the session continues. */
  send_values(p, FERRY_RPC_CALL_FUNC, up, args, 2);
  expect_exception(p, "unknown or released");
  shutdown_ok(p);
}

static uint64_t alloc_tensor(peer *p, DLTensor *t) {
  ferry_value v[2];
  v[0].kind = FERRY_KIND_TENSOR;
  v[0].v.tensor = t;
  v[1].kind = FERRY_KIND_NONE;
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA_WITH_SCOPE, 0, v, 2);
  ferry_value r = reply_value(p);
  assert_int_equal(r.kind, FERRY_KIND_OPAQUE);
  assert_int_not_equal(r.v.handle, 0);
  return r.v.handle;
}

static void tensor_flow(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  init_server(p);
  int64_t shape[2] = {3, 4};
  DLTensor t = {.device = {kDLCPU, 0}, .ndim = 2, .dtype = {kDLFloat, 32, 1}, .shape = shape};
  uint64_t data = alloc_tensor(p, &t);
  t.data = (void *)(uintptr_t)data;
  float in[12], out[12];
  for (int i = 0; i < 12; i++)
    in[i] = (float)i * 1.5f;
  ferry_buf body;
  ferry_buf_init(&body, 1 << 20);
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &t, in, sizeof in), 0);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
  /* Stream sync on the default stream. */
  ferry_value sync[2] = {{.kind = FERRY_KIND_DEVICE}, {.kind = FERRY_KIND_OPAQUE}};
  sync[0].v.device = (DLDevice){kDLCPU, 0};
  sync[1].v.handle = 0;
  send_values(p, FERRY_RPC_DEV_STREAM_SYNC, 0, sync, 2);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
  /* Read back the second half (chunk-style byte_offset). */
  body.len = 0;
  t.byte_offset = 24;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &t, 24), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  uint8_t *reply;
  size_t len;
  assert_int_equal(recv_packet(p, &reply, &len), FERRY_RPC_COPY_ACK);
  assert_int_equal(len, 24);
  memcpy(out, reply, 24);
  assert_memory_equal(out, in + 6, 24);
  free(reply);
  /* Past the end of the allocation by one byte. */
  body.len = 0;
  t.byte_offset = 24;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &t, 25), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  expect_exception(p, "");
  /* kCopyAmongRemote into a second tensor. */
  t.byte_offset = 0;
  DLTensor t2 = t;
  t2.data = NULL;
  uint64_t data2 = alloc_tensor(p, &t2);
  t2.data = (void *)(uintptr_t)data2;
  ferry_value among[3] = {{.kind = FERRY_KIND_TENSOR}, {.kind = FERRY_KIND_TENSOR},
                          {.kind = FERRY_KIND_OPAQUE}};
  among[0].v.tensor = &t;
  among[1].v.tensor = &t2;
  among[2].v.handle = 0;
  send_values(p, FERRY_RPC_COPY_AMONG_REMOTE, 0, among, 3);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &t2, 48), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  assert_int_equal(recv_packet(p, &reply, &len), FERRY_RPC_COPY_ACK);
  assert_memory_equal(reply, in, 48);
  free(reply);
  /* Free both; a second free of the same pointer is refused. */
  ferry_value fr[2] = {{.kind = FERRY_KIND_DEVICE}, {.kind = FERRY_KIND_OPAQUE}};
  fr[0].v.device = (DLDevice){kDLCPU, 0};
  fr[1].v.handle = data;
  send_values(p, FERRY_RPC_DEV_FREE_DATA, 0, fr, 2);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
  send_values(p, FERRY_RPC_DEV_FREE_DATA, 0, fr, 2);
  expect_exception(p, "");
  /* ... and the freed memory can no longer be read. */
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &t, 4), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  expect_exception(p, "");
  ferry_buf_close(&body);
  shutdown_ok(p); /* data2 is released by the session's end */
}

static void device_syscalls(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  init_server(p);
  ferry_value v[4];
  memset(v, 0, sizeof v);
  v[0].kind = FERRY_KIND_DEVICE;
  v[0].v.device = (DLDevice){kDLCPU, 0};
  v[1].kind = FERRY_KIND_INT;
  v[1].v.i = 0; /* kExist */
  send_values(p, FERRY_RPC_DEV_GET_ATTR, 0, v, 2);
  ferry_value r = reply_value(p);
  assert_int_equal(r.kind, FERRY_KIND_INT);
  assert_int_equal(r.v.i, 1);
  v[0].v.device = (DLDevice){kDLCUDA, 0};
  send_values(p, FERRY_RPC_DEV_GET_ATTR, 0, v, 2);
  r = reply_value(p);
  assert_int_equal(r.kind, FERRY_KIND_INT);
  assert_int_equal(r.v.i, 0); /* no CUDA here: int 0, not an error */
  v[0].v.device = (DLDevice){kDLCPU, 0};
  send_values(p, FERRY_RPC_DEV_SET_DEVICE, 0, v, 1);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
  send_values(p, FERRY_RPC_DEV_CREATE_STREAM, 0, v, 1);
  r = reply_value(p);
  assert_int_equal(r.kind, FERRY_KIND_OPAQUE);
  assert_int_equal(r.v.handle, 0);
  send_values(p, FERRY_RPC_DEV_GET_CURRENT_STREAM, 0, v, 1);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_OPAQUE);
  v[1].kind = FERRY_KIND_OPAQUE;
  v[1].v.handle = 0;
  send_values(p, FERRY_RPC_DEV_SET_STREAM, 0, v, 2);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
  send_values(p, FERRY_RPC_DEV_FREE_STREAM, 0, v, 2);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
  v[1].v.handle = 0x1234;
  send_values(p, FERRY_RPC_DEV_STREAM_SYNC, 0, v, 2);
  expect_exception(p, "stream");
  /* kDevAllocData then free. */
  v[1].kind = FERRY_KIND_INT;
  v[1].v.i = 100;
  v[2].kind = FERRY_KIND_INT;
  v[2].v.i = 64;
  v[3].kind = FERRY_KIND_DTYPE;
  v[3].v.dtype = (DLDataType){kDLFloat, 32, 1};
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA, 0, v, 4);
  r = reply_value(p);
  assert_int_equal(r.kind, FERRY_KIND_OPAQUE);
  assert_int_equal(r.v.handle % 64, 0);
  v[1].v.i = -5;
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA, 0, v, 4);
  expect_exception(p, "negative");
  v[1].v.i = INT64_MAX;
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA, 0, v, 4);
  expect_exception(p, "");
  /* Wrong argument kinds and counts. */
  send_values(p, FERRY_RPC_DEV_ALLOC_DATA, 0, v, 3);
  expect_exception(p, "expects 4 arguments");
  ferry_value s = str_value("x");
  send_values(p, FERRY_RPC_DEV_SET_DEVICE, 0, &s, 1);
  expect_exception(p, "must be");
  shutdown_ok(p);
}

static void max_packet_function(void **state) {
  (void)state;
  peer *p = start(4096, 0, 0);
  init_server(p);
  uint64_t h = get_global(p, "tvm.rpc.server.GetCRTMaxPacketSize");
  assert_int_not_equal(h, 0);
  ferry_rpc_return r = call(p, h, NULL, 0);
  assert_int_equal(r.value.kind, FERRY_KIND_INT);
  assert_int_equal(r.value.v.i, 4096);
  free_handle(p, h, FERRY_KIND_FUNC);
  shutdown_ok(p);
}

/* ---- hostile packets ------------------------------------------------------- */

static void wrong_codes(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  init_server(p);
  const int32_t codes[] = {0, 4, 5, 8, 22, 99, -1, INT32_MIN};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    uint8_t junk[4] = {1, 2, 3, 4};
    send_packet(p, codes[i], junk, sizeof junk);
    expect_exception(p, "unknown RPC code");
  }
  /* An empty packet (length 0) is skipped silently. */
  uint8_t empty[8] = {0};
  send_all(p, empty, 8);
  assert_int_equal(get_global(p, "no.such"), 0);
  shutdown_ok(p);
}

static void bad_sequences(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  init_server(p);
  assert_int_equal(get_global(p, "no.such"), 0); /* classic from now on */
  /* Unknown type code. */
  uint8_t b[64] = {0};
  put_le32(b, 1);
  put_le32(b + 4, 77);
  send_packet(p, FERRY_RPC_GET_GLOBAL_FUNC, b, 16);
  expect_exception(p, "unknown type code 77");
  /* A string running past the frame. */
  put_le32(b + 4, 11);
  put_le64(b + 8, 100);
  send_packet(p, FERRY_RPC_GET_GLOBAL_FUNC, b, 20);
  expect_exception(p, "past the packet");
  /* 2^62 string length. */
  put_le64(b + 8, 1ull << 62);
  send_packet(p, FERRY_RPC_GET_GLOBAL_FUNC, b, 20);
  expect_exception(p, "");
  /* Negative and huge counts. */
  put_le32(b, (uint32_t)-3);
  send_packet(p, FERRY_RPC_DEV_SET_DEVICE, b, 4);
  expect_exception(p, "argument count");
  put_le32(b, 0x7fffffff);
  send_packet(p, FERRY_RPC_DEV_SET_DEVICE, b, 8);
  expect_exception(p, "argument count");
  /* Trailing bytes after a valid sequence. */
  put_le32(b, 0);
  send_packet(p, FERRY_RPC_DEV_SET_DEVICE, b, 9);
  expect_exception(p, "after its arguments");
  /* kCallFunc shorter than its handle, and with handles never issued. */
  send_packet(p, FERRY_RPC_CALL_FUNC, b, 5);
  expect_exception(p, "");
  ferry_value none = {.kind = FERRY_KIND_NONE};
  send_values(p, FERRY_RPC_CALL_FUNC, 0, &none, 1);
  expect_exception(p, "unknown or released");
  send_values(p, FERRY_RPC_CALL_FUNC, 0xdeadbeefcafe, &none, 1);
  expect_exception(p, "unknown or released");
  /* A module argument that was never issued. */
  uint64_t up = get_global(p, "tvm.rpc.server.upload");
  ferry_value mod = {.kind = FERRY_KIND_MODULE};
  mod.v.handle = 0x4141414141414141ull;
  send_values(p, FERRY_RPC_CALL_FUNC, up, &mod, 1);
  expect_exception(p, "unknown or released");
  /* Releases of handles never issued or already freed are answered. */
  free_handle(p, 0x4141414141414141ull, FERRY_KIND_MODULE);
  free_handle(p, up, FERRY_KIND_FUNC);
  free_handle(p, up, FERRY_KIND_FUNC);
  /* A release with a type code that cannot be released. */
  ferry_value fh[2] = {{.kind = FERRY_KIND_OPAQUE}, {.kind = FERRY_KIND_INT}};
  fh[1].v.i = 3;
  send_values(p, FERRY_RPC_FREE_HANDLE, 0, fh, 2);
  expect_exception(p, "kFreeHandle");
  shutdown_ok(p);
}

static void bad_tensors(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  init_server(p);
  int64_t shape[2] = {2, 3};
  DLTensor t = {.device = {kDLCPU, 0}, .ndim = 2, .dtype = {kDLFloat, 32, 1}, .shape = shape};
  uint64_t data = alloc_tensor(p, &t);
  t.data = (void *)(uintptr_t)data;
  ferry_buf body;
  ferry_buf_init(&body, 1 << 20);
  uint8_t bytes[24] = {0};
  /* ndim 1000 and negative ndim in a copy. */
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &t, bytes, 24), 0);
  put_le32(body.data + 16, 1000);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "ndim 1000");
  put_le32(body.data + 16, (uint32_t)-1);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "ndim -1");
  /* A data pointer that is not ours: the test's own stack. */
  body.len = 0;
  DLTensor foreign = t;
  foreign.data = bytes;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &foreign, 24), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  expect_exception(p, "of this session");
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &foreign, bytes, 24), 0);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "");
  /* 2^62 bytes asked for, and a byte_offset that wraps around. */
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &t, 1ull << 62), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  expect_exception(p, "");
  body.len = 0;
  t.byte_offset = UINT64_MAX - 3;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &t, 8), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  expect_exception(p, "");
  t.byte_offset = 0;
  /* A declared nbytes that disagrees with the data carried. */
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &t, bytes, 24), 0);
  put_le64(body.data + 48, 1ull << 62);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "declares");
  /* A foreign tensor as a function argument never reaches the function. */
  uint64_t up = get_global(p, "tvm.rpc.server.upload");
  ferry_value arg = {.kind = FERRY_KIND_TENSOR};
  arg.v.tensor = &foreign;
  send_values(p, FERRY_RPC_CALL_FUNC, up, &arg, 1);
  expect_exception(p, "of this session");
  /* A non-CPU device. */
  DLTensor gpu = t;
  gpu.device.device_type = kDLCUDA;
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &gpu, 4), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  expect_exception(p, "not supported");
  /* Still alive and the real tensor still works. */
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &t, 24), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  uint8_t *reply;
  size_t len;
  assert_int_equal(recv_packet(p, &reply, &len), FERRY_RPC_COPY_ACK);
  free(reply);
  ferry_buf_close(&body);
  shutdown_ok(p);
}

/* kCopyToRemote of >= 64 KiB is streamed into tensor memory: the same
 * checks, the same replies, and a refused packet is skipped whole. */
static void large_copies(void **state) {
  (void)state;
  peer *p = start(0, 0, 0);
  init_server(p);
  int64_t shape[1] = {1 << 20};
  DLTensor t = {.device = {kDLCPU, 0}, .ndim = 1, .dtype = {kDLFloat, 32, 1}, .shape = shape};
  uint64_t data = alloc_tensor(p, &t);
  t.data = (void *)(uintptr_t)data;
  size_t n = (size_t)4 << 20;
  uint8_t *in = malloc(n);
  for (size_t i = 0; i < n; i++)
    in[i] = (uint8_t)(i * 7 + (i >> 13));
  ferry_buf body;
  ferry_buf_init(&body, (size_t)64 << 20);
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &t, in, n), 0);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  assert_int_equal(reply_value(p).kind, FERRY_KIND_NONE);
  /* Read back in two halves. */
  for (int half = 0; half < 2; half++) {
    body.len = 0;
    t.byte_offset = half * (n / 2);
    assert_int_equal(ferry_rpc_copy_from_encode(&body, &t, n / 2), 0);
    send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
    uint8_t *reply;
    size_t len;
    assert_int_equal(recv_packet(p, &reply, &len), FERRY_RPC_COPY_ACK);
    assert_int_equal(len, n / 2);
    assert_memory_equal(reply, in + half * (n / 2), n / 2);
    free(reply);
  }
  t.byte_offset = 0;
  /* A second chunk at an offset (chunked upload), one byte past the end. */
  body.len = 0;
  t.byte_offset = n / 2;
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &t, in, n / 2 + 1), 0);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "");
  t.byte_offset = 0;
  /* A foreign destination: refused, the payload skipped, session alive. */
  DLTensor foreign = t;
  foreign.data = in;
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &foreign, in, n), 0);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "of this session");
  /* ndim 1000, negative ndim and a lying nbytes in large packets. */
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &t, in, 1 << 17), 0);
  put_le32(body.data + 16, 1000);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "ndim 1000");
  put_le32(body.data + 16, (uint32_t)-7);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "ndim -7");
  put_le32(body.data + 16, 1);
  put_le64(body.data + 40, 1ull << 62);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, body.len);
  expect_exception(p, "declares");
  /* A header that claims more shape than the packet holds. */
  put_le32(body.data + 16, 32);
  send_packet(p, FERRY_RPC_COPY_TO_REMOTE, body.data, 40);
  expect_exception(p, "");
  /* Still alive: the data written first is intact. */
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_from_encode(&body, &t, 64), 0);
  send_packet(p, FERRY_RPC_COPY_FROM_REMOTE, body.data, body.len);
  uint8_t *reply;
  size_t len;
  assert_int_equal(recv_packet(p, &reply, &len), FERRY_RPC_COPY_ACK);
  assert_memory_equal(reply, in, 64);
  free(reply);
  /* EOF in the middle of a streamed payload ends the session. */
  body.len = 0;
  assert_int_equal(ferry_rpc_copy_to_encode(&body, &t, in, n), 0);
  ferry_buf framed;
  ferry_buf_init(&framed, (size_t)64 << 20);
  size_t mark;
  assert_int_equal(ferry_rpc_packet_begin(&framed, FERRY_RPC_COPY_TO_REMOTE, &mark), 0);
  assert_int_equal(ferry_buf_append(&framed, body.data, body.len), 0);
  ferry_rpc_packet_end(&framed, mark);
  send_all(p, framed.data, framed.len / 2);
  ferry_buf_close(&framed);
  ferry_buf_close(&body);
  free(in);
  assert_int_equal(finish(p), FERRY_ECLOSED);
}

static void broken_streams(void **state) {
  (void)state;
  /* A 2^62 packet length ends the session before anything is allocated. */
  peer *p = start(0, 0, 0);
  init_server(p);
  uint8_t hdr[12];
  put_le64(hdr, 1ull << 62);
  put_le32(hdr + 8, 3);
  send_all(p, hdr, 12);
  uint8_t *body;
  size_t len;
  assert_int_equal(recv_packet(p, &body, &len), -1); /* closed, no reply */
  assert_int_equal(finish(p), FERRY_ETOOBIG);
  /* A packet just over a configured ceiling. */
  p = start(0, 1 << 16, 0);
  put_le64(hdr, (1 << 16) + 1);
  send_all(p, hdr, 12);
  assert_int_equal(recv_packet(p, &body, &len), -1);
  assert_int_equal(finish(p), FERRY_ETOOBIG);
  /* Lengths 1..3 cannot hold a code. */
  p = start(0, 0, 0);
  put_le64(hdr, 2);
  send_all(p, hdr, 10);
  assert_int_equal(finish(p), FERRY_EPROTO);
  /* EOF in the middle of a packet. */
  p = start(0, 0, 0);
  put_le64(hdr, 100);
  send_all(p, hdr, 12);
  assert_int_equal(finish(p), FERRY_ECLOSED);
}

static void timeout_packet(void **state) {
  (void)state;
  ferry_buf out;
  ferry_buf_init(&out, 1024);
  const struct {
    double t;
    const char *text;
  } cases[] = {{60, "60.0"}, {1, "1.0"}, {0.01, "0.01"}, {10.5, "10.5"}, {1e16, "1e+16"},
               {1e-5, "1e-05"}, {123456.789, "123456.789"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    out.len = 0;
    assert_int_equal(ferry_session_timeout_packet(&out, cases[i].t, FERRY_DIALECT_CLASSIC), 0);
    char want[256];
    int n = snprintf(want, sizeof want,
                     "RPCSessionTimeoutError: Your %ss session has expired, try to increase "
                     "the \"session_timeout\" value.",
                     cases[i].text);
    assert_int_equal(get_le64(out.data), 20 + (uint64_t)n);
    assert_int_equal(get_le32(out.data + 8), 5);
    assert_int_equal(get_le32(out.data + 12), 1);
    assert_int_equal(get_le32(out.data + 16), 11);
    assert_int_equal(get_le64(out.data + 20), (uint64_t)n);
    if (memcmp(out.data + 28, want, (size_t)n) != 0)
      fail_msg("%s: got %.*s", cases[i].text, n, (const char *)out.data + 28);
  }
  /* The recorded 60-second packet, byte for byte (session-files). */
  out.len = 0;
  assert_int_equal(ferry_session_timeout_packet(&out, 60.0, FERRY_DIALECT_UNKNOWN), 0);
  assert_int_equal(out.len, 128);
  assert_int_equal(get_le64(out.data), 120);
  ferry_buf_close(&out);
}

static void module_flow(void **state) {
  (void)state;
  char lib[512];
  snprintf(lib, sizeof lib, "%s/testlib.so", FERRY_MODELS_DIR);
  FILE *f = fopen(lib, "rb");
  if (!f) {
    /* The models folder is not built yet: compile the recorded module. */
    snprintf(lib, sizeof lib, "/tmp/ferry-test-session-testlib-%d.so", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cc -O1 -shared -fPIC -o %s %s/testlib.c 2>/dev/null", lib,
             FERRY_GOLDEN_DIR);
    if (system(cmd) != 0)
      skip();
    f = fopen(lib, "rb");
    unlink(lib);
    if (!f)
      skip();
  }
  static uint8_t so[1 << 22];
  size_t n = fread(so, 1, sizeof so, f);
  fclose(f);
  peer *p = start(0, 0, 0);
  init_server(p);
  uint64_t up = get_global(p, "tvm.rpc.server.upload");
  ferry_value args[3] = {str_value("testlib.so"), {.kind = FERRY_KIND_BYTES}};
  args[1].v.str.data = (const char *)so;
  args[1].v.str.len = n;
  assert_int_equal(call(p, up, args, 2).value.kind, FERRY_KIND_NONE);
  uint64_t load = get_global(p, "tvm.rpc.server.load_module");
  ferry_rpc_return r = call(p, load, args, 1);
  assert_int_equal(r.value.kind, FERRY_KIND_MODULE);
  uint64_t hm = r.value.v.handle;
  uint64_t mgf = get_global(p, "tvm.rpc.server.ModuleGetFunction");
  ferry_value q[3] = {{.kind = FERRY_KIND_MODULE}, str_value("add_i64"), {.kind = FERRY_KIND_BOOL}};
  q[0].v.handle = hm;
  q[2].v.i = 1;
  r = call(p, mgf, q, 3);
  assert_int_equal(r.value.kind, FERRY_KIND_FUNC);
  uint64_t add = r.value.v.handle;
  ferry_value ints[2] = {{.kind = FERRY_KIND_INT}, {.kind = FERRY_KIND_INT}};
  ints[0].v.i = 2;
  ints[1].v.i = 40;
  r = call(p, add, ints, 2);
  assert_int_equal(r.value.kind, FERRY_KIND_INT);
  assert_int_equal(r.value.v.i, 42);
  q[1] = str_value("fail");
  r = call(p, mgf, q, 3);
  assert_int_equal(r.value.kind, FERRY_KIND_FUNC);
  send_values(p, FERRY_RPC_CALL_FUNC, r.value.v.handle, NULL, 0);
  expect_exception(p, "deliberate error");
  q[1] = str_value("no_such_function");
  r = call(p, mgf, q, 3);
  assert_int_equal(r.value.kind, FERRY_KIND_NONE);
  free_handle(p, add, FERRY_KIND_FUNC);
  free_handle(p, hm, FERRY_KIND_MODULE);
  shutdown_ok(p);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(connect_and_lookup), cmocka_unit_test(version_mismatch),
      cmocka_unit_test(init_server_variants), cmocka_unit_test(alloc_ceiling),
      cmocka_unit_test(files_flow),         cmocka_unit_test(tensor_flow),
      cmocka_unit_test(device_syscalls),    cmocka_unit_test(max_packet_function),
      cmocka_unit_test(wrong_codes),        cmocka_unit_test(bad_sequences),
      cmocka_unit_test(bad_tensors),        cmocka_unit_test(large_copies),
      cmocka_unit_test(broken_streams),
      cmocka_unit_test(timeout_packet),     cmocka_unit_test(module_flow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
