/* The client against TVM's own server, replayed: a peer thread answers
 * with the server bytes recorded in golden/classic/session-* (TVM v0.20),
 * and every request the client sends must equal, byte for byte, the
 * request TVM's Python client sent at that point of the recording.  The
 * server handles in the replies are the recorded ones, so the client's
 * echoes of them are comparable too.
 *
 * One documented difference is tolerated: TVM's client repeats the lookup
 * of tvm.rpc.server.GetCRTMaxPacketSize before every copy when the server
 * lacks it; ferry's client asks once per session.  Such repeated recorded
 * lookups are skipped with their replies.  After the recording ends, the
 * client may still release what it holds and shut down. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "base/net.h"
#include "ferry/client.h"

#include "golden_recording.h"

/* ---- the replaying peer -------------------------------------------------- */

typedef struct replay {
  recording rec;
  int lfd, port;
  pthread_t thread;
  char mismatch[600];
  int matched, skipped, extra;
} replay;

static void note(replay *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(replay *p, const char *fmt, ...) {
  if (p->mismatch[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->mismatch, sizeof p->mismatch, fmt, ap);
  va_end(ap);
  /* Also now: a test assertion may fail before the thread is joined. */
  fprintf(stderr, "replay: %s\n", p->mismatch);
}

static int is_max_packet_lookup(const uint8_t *pkt, size_t n) {
  static const char name[] = "tvm.rpc.server.GetCRTMaxPacketSize";
  return n == 12 + 16 + sizeof name - 1 && get_le32(pkt + 8) == 9 &&
         memcmp(pkt + 28, name, sizeof name - 1) == 0;
}

static void describe(char *out, size_t cap, const uint8_t *p, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n && i < 48 && k + 4 < cap; i++)
    k += (size_t)snprintf(out + k, cap - k, "%02x", p[i]);
}

static const uint8_t void_ret[] = {12, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0};

static void *replay_main(void *arg) {
  replay *p = arg;
  recording *r = &p->rec;
  int fd = accept(p->lfd, NULL, NULL);
  if (fd < 0)
    return NULL;
  int64_t dl = ferry_now_ms() + 20000;
  static uint8_t buf[4 << 20];
  if (ferry_read_full(fd, buf, r->c_hello, dl, NULL) != 0 ||
      memcmp(buf, r->c2s, r->c_hello) != 0) {
    note(p, "handshake differs");
    goto out;
  }
  if (ferry_write_full(fd, r->s2c, r->s_hello, dl) != 0)
    goto out;
  int i = 0, seen_max_lookup = 0;
  for (;;) {
    if (ferry_read_full(fd, buf, 8, dl, NULL) != 0)
      break; /* the client closed */
    uint64_t len = get_le64(buf);
    if (len < 4 || len > sizeof buf - 8 || ferry_read_full(fd, buf + 8, len, dl, NULL) != 0) {
      note(p, "request %d: bad length", i);
      break;
    }
    size_t n = (size_t)(8 + len);
    int code = (int)get_le32(buf + 8);
    /* Skip recorded repeats of the max-packet lookup ferry does not make. */
    while (i < r->n && seen_max_lookup && is_max_packet_lookup(r->req[i], r->req_len[i]) &&
           !is_max_packet_lookup(buf, n)) {
      i++;
      p->skipped++;
    }
    if (i >= r->n) {
      /* Past the recording: only releases and the shutdown may follow. */
      if (code == 1)
        break;
      if (code != 10 && code != 14) {
        note(p, "request past the recording with code %d", code);
        break;
      }
      p->extra++;
      if (ferry_write_full(fd, void_ret, sizeof void_ret, dl) != 0)
        break;
      continue;
    }
    if (n != r->req_len[i] || memcmp(buf, r->req[i], n) != 0) {
      char got[128], want[128];
      describe(got, sizeof got, buf, n);
      describe(want, sizeof want, r->req[i], r->req_len[i]);
      note(p, "request %d differs:\n  got  %s (%zu bytes)\n  want %s (%zu bytes)", i, got, n,
           want, r->req_len[i]);
      break;
    }
    seen_max_lookup |= is_max_packet_lookup(buf, n);
    p->matched++;
    if (code == 1)
      break;
    /* A release whose answer was not recorded gets TVM's void answer. */
    const uint8_t *rep = r->rep[i] ? r->rep[i] : void_ret;
    size_t rep_len = r->rep[i] ? r->rep_len[i] : sizeof void_ret;
    if (ferry_write_full(fd, rep, rep_len, dl) != 0)
      break;
    i++;
  }
out:
  close(fd);
  return NULL;
}

static ferry_client *replay_start(replay *p, const char *name) {
  memset(p, 0, sizeof *p);
  load(&p->rec, "classic", name);
  char err[256];
  assert_int_equal(ferry_tcp_listen("127.0.0.1", 0, 0, 1, &p->lfd, &p->port, err, sizeof err),
                   0);
  assert_int_equal(pthread_create(&p->thread, NULL, replay_main, p), 0);
  /* TVM's Python client sent "client: -timeout=60" (session_timeout=60). */
  ferry_client_opts o;
  ferry_client_opts_init(&o);
  o.session_timeout_s = 60;
  o.timeout_ms = 10000;
  ferry_client *c = NULL;
  if (ferry_client_connect("127.0.0.1", p->port, "", &o, &c, err, sizeof err) != 0)
    fail_msg("connect: %s", err);
  return c;
}

/* missing: recorded requests at the end that ferry's client rightly does
 * not send (see test_session_files). */
static void replay_finish(replay *p, ferry_client *c, int missing) {
  ferry_client_close(c);
  pthread_join(p->thread, NULL);
  close(p->lfd);
  int n = p->rec.n;
  unload(&p->rec);
  if (p->mismatch[0])
    fail_msg("%s", p->mismatch);
  /* Every recorded request was made (or skipped as documented). */
  assert_int_equal(p->matched + p->skipped, n - missing);
}

/* ---- scenarios -------------------------------------------------------------- */

static void test_session_files(void **state) {
  (void)state;
  replay p;
  ferry_client *c = replay_start(&p, "session-files");
  assert_int_equal(ferry_client_upload(c, "hello.txt", "hello ferry\n", 12), 0);
  void *data = NULL;
  size_t len = 0;
  assert_int_equal(ferry_client_download(c, "hello.txt", &data, &len), 0);
  assert_int_equal(len, 12);
  assert_memory_equal(data, "hello ferry\n", 12);
  free(data);
  ferry_remote *wp = NULL;
  assert_int_equal(ferry_client_get_function(c, "tvm.rpc.server.workpath", &wp), 0);
  ferry_value arg = ferry_arg_str("hello.txt", 9);
  ferry_result r;
  assert_int_equal(ferry_client_call(c, wp, &arg, 1, &r), 0);
  assert_int_equal(r.value.kind, FERRY_KIND_STR);
  assert_string_equal(r.value.v.str.data, "/tmp/tmpk6uijsur/hello.txt");
  assert_int_equal(ferry_client_release(c, wp), 0);
  assert_int_equal(ferry_client_remove(c, "hello.txt"), 0);
  assert_int_equal(ferry_client_download(c, "hello.txt", &data, &len), FERRY_EREMOTE);
  assert_non_null(strstr(ferry_client_errmsg(c), "Cannot open /tmp/tmpk6uijsur/hello.txt"));
  /* The recording ends with the releases of the three cached functions
   * (in the order ferry's close sends them) and kShutdown, but the reply
   * to the first release is the Python server's RPCSessionTimeoutError
   * notice (the session had outlived its 60 s): ferry's client takes the
   * session as over and sends nothing more, where TVM's went on. */
  replay_finish(&p, c, 3);
  assert_int_equal(p.extra, 0);
}

static void test_session_errors(void **state) {
  (void)state;
  replay p;
  ferry_client *c = replay_start(&p, "session-errors");
  ferry_remote *f = NULL;
  assert_int_equal(ferry_client_get_function(c, "no.such.global", &f), FERRY_ENOTFOUND);
  assert_string_equal(ferry_client_errmsg(c), "Module has no function 'no.such.global'");
  ferry_remote *m = NULL;
  assert_int_equal(ferry_client_load_module(c, "missing.so", &m), FERRY_EREMOTE);
  assert_null(m);
  replay_finish(&p, c, 0);
}

static void test_session_tensor(void **state) {
  (void)state;
  replay p;
  ferry_client *c = replay_start(&p, "session-tensor");
  DLDevice cpu = {kDLCPU, 0};
  DLDataType f32 = {kDLFloat, 32, 1};
  /* 3x4 round trip with the recorded values. */
  size_t len;
  const uint8_t *copy = find_request(&p.rec, 7, 0, &len);
  int64_t s34[2] = {3, 4};
  ferry_remote *a = NULL, *big = NULL;
  assert_int_equal(ferry_client_tensor_empty(c, cpu, 2, s34, f32, &a), 0);
  assert_int_equal(ferry_client_tensor_copy_in(c, a, copy + len - 48, 48), 0);
  float back[12];
  assert_int_equal(ferry_client_tensor_copy_out(c, a, back, 48), 0);
  assert_memory_equal(back, copy + len - 48, 48);
  /* 1 MiB: empty, copyfrom, numpy(). */
  const uint8_t *copy2 = find_request(&p.rec, 7, 1, &len);
  int64_t s1m[1] = {262144};
  assert_int_equal(ferry_client_tensor_empty(c, cpu, 1, s1m, f32, &big), 0);
  assert_int_equal(ferry_client_tensor_copy_in(c, big, copy2 + len - (1 << 20), 1 << 20), 0);
  float *out = malloc(1 << 20);
  assert_int_equal(ferry_client_tensor_copy_out(c, big, out, 1 << 20), 0);
  double sum = 0;
  for (int i = 0; i < 262144; i++)
    sum += out[i];
  assert_true(sum == 262144.0); /* results.json: big_sum */
  free(out);
  /* dev.sync(), then the arrays die in the order they were made. */
  assert_int_equal(ferry_client_sync(c, cpu), 0);
  assert_int_equal(ferry_client_release(c, a), 0);
  assert_int_equal(ferry_client_release(c, big), 0);
  replay_finish(&p, c, 0);
  assert_int_equal(p.skipped, 3); /* TVM's repeated max-packet lookups */
}

static void test_session_module(void **state) {
  (void)state;
  replay p;
  ferry_client *c = replay_start(&p, "session-module");
  /* The library bytes TVM uploaded, from the recorded upload call:
   * handle, num_args, two type codes, the name, then the bytes. */
  size_t len;
  const uint8_t *up = find_request(&p.rec, 3, 0, &len);
  const uint8_t *q = up + 8 + 4 + 8;
  q += 8 + get_le64(q);
  uint64_t lib_len = get_le64(q);
  q += 8;
  assert_true(q + lib_len == up + len);
  assert_int_equal(ferry_client_upload(c, "testlib.so", q, (size_t)lib_len), 0);
  ferry_remote *mod = NULL, *a = NULL, *b = NULL, *f = NULL, *ev = NULL;
  assert_int_equal(ferry_client_load_module(c, "testlib.so", &mod), 0);
  DLDevice cpu = {kDLCPU, 0};
  DLDataType f32 = {kDLFloat, 32, 1};
  int64_t s34[2] = {3, 4};
  float in[12], out[12];
  for (int i = 0; i < 12; i++)
    in[i] = (float)i;
  assert_int_equal(ferry_client_tensor_empty(c, cpu, 2, s34, f32, &a), 0);
  assert_int_equal(ferry_client_tensor_copy_in(c, a, in, sizeof in), 0);
  assert_int_equal(ferry_client_tensor_empty(c, cpu, 2, s34, f32, &b), 0);
  assert_int_equal(ferry_client_module_function(c, mod, "addone", &f), 0);
  ferry_value ab[2] = {ferry_remote_value(a), ferry_remote_value(b)};
  ferry_result r;
  assert_int_equal(ferry_client_call(c, f, ab, 2, &r), 0);
  assert_int_equal(r.value.kind, FERRY_KIND_NONE);
  assert_int_equal(ferry_client_release(c, f), 0);
  assert_int_equal(ferry_client_tensor_copy_out(c, b, out, sizeof out), 0);
  for (int i = 0; i < 12; i++)
    assert_true(out[i] == in[i] + 1); /* results.json: addone */

  assert_int_equal(ferry_client_module_function(c, mod, "add_i64", &f), 0);
  ferry_value ia[2] = {ferry_arg_int(2), ferry_arg_int(40)};
  assert_int_equal(ferry_client_call(c, f, ia, 2, &r), 0);
  assert_int_equal(r.value.kind, FERRY_KIND_INT);
  assert_int_equal(r.value.v.i, 42);
  assert_int_equal(ferry_client_release(c, f), 0);

  assert_int_equal(ferry_client_module_function(c, mod, "mul_f64", &f), 0);
  ferry_value fa[2] = {ferry_arg_float(1.5), ferry_arg_float(4.0)};
  assert_int_equal(ferry_client_call(c, f, fa, 2, &r), 0);
  assert_true(r.value.kind == FERRY_KIND_FLOAT && r.value.v.f == 6.0);
  assert_int_equal(ferry_client_release(c, f), 0);

  assert_int_equal(ferry_client_module_function(c, mod, "fail", &f), 0);
  assert_int_equal(ferry_client_call(c, f, NULL, 0, &r), FERRY_EREMOTE);
  assert_non_null(strstr(ferry_client_errmsg(c), "fail: deliberate error from testlib"));
  assert_int_equal(ferry_client_release(c, f), 0);

  f = NULL;
  assert_int_equal(ferry_client_module_function(c, mod, "no_such_function", &f),
                   FERRY_ENOTFOUND);
  assert_string_equal(ferry_client_errmsg(c), "Module has no function 'no_such_function'");

  ferry_time_opts to;
  ferry_time_opts_init(&to);
  to.number = 5;
  to.repeat = 2;
  assert_int_equal(ferry_client_time_evaluator(c, mod, "addone", cpu, &to, &ev), 0);
  double secs[4];
  int n = 0;
  assert_int_equal(ferry_client_time(c, ev, ab, 2, secs, 4, &n), 0);
  assert_int_equal(n, 2); /* results.json: time_evaluator_results */
  assert_true(secs[0] > 0 && secs[1] > 0);
  /* TVM's client left this session open; ferry's close releases and shuts
   * down, past the end of the recording. */
  replay_finish(&p, c, 0);
  assert_int_equal(p.skipped, 1);
  assert_true(p.extra >= 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session_files),
      cmocka_unit_test(test_session_errors),
      cmocka_unit_test(test_session_tensor),
      cmocka_unit_test(test_session_module),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
