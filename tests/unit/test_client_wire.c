/* The client library against a scripted peer on 127.0.0.1: every request
 * it sends is compared byte for byte with the dumps of rpc-session.md §6
 * (recorded from TVM), and hostile replies (oversized lengths, wrong codes,
 * short copies, silence, hang-ups) must fail cleanly without allocating
 * what the peer announces. */
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

/* ---- the scripted peer ----------------------------------------------------- */

#define MAX_STEPS 32

typedef struct step {
  const char *expect; /* hex of the whole request packet; NULL: any packet */
  const char *reply;  /* hex written back; NULL: nothing; "CLOSE": hang up */
} step;

typedef struct peer {
  int lfd, port;
  const char *hello_reply; /* hex answer to the handshake */
  const char *expect_key;  /* key string the client must send */
  const step *steps;
  int nsteps;
  pthread_t thread;
  /* Results, checked by the test thread after join. */
  char mismatch[512];
  int served;
  int saw_shutdown;
} peer;

static size_t unhex(const char *h, uint8_t *out, size_t cap) {
  size_t n = 0;
  for (; h[0] && h[1]; h += 2) {
    while (*h == ' ' || *h == '|')
      h++;
    if (!h[0] || !h[1])
      break;
    unsigned v;
    sscanf(h, "%2x", &v);
    assert_true(n < cap);
    out[n++] = (uint8_t)v;
  }
  return n;
}

static void note(peer *p, const char *fmt, ...) {
  if (p->mismatch[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->mismatch, sizeof p->mismatch, fmt, ap);
  va_end(ap);
}

static void *peer_main(void *arg) {
  peer *p = arg;
  int fd = accept(p->lfd, NULL, NULL);
  if (fd < 0) {
    note(p, "accept failed");
    return NULL;
  }
  int64_t dl = ferry_now_ms() + 10000;
  uint8_t hdr[8];
  static uint8_t buf[1 << 20], want[1 << 20];
  /* Handshake: magic, key length, key. */
  if (ferry_read_full(fd, hdr, 8, dl, NULL) != 0 || get_le32(hdr) != 0xFF271) {
    note(p, "no magic");
    goto out;
  }
  uint32_t klen = get_le32(hdr + 4);
  if (klen >= sizeof buf || ferry_read_full(fd, buf, klen, dl, NULL) != 0) {
    note(p, "no key");
    goto out;
  }
  buf[klen] = 0;
  if (p->expect_key && strcmp((char *)buf, p->expect_key) != 0)
    note(p, "key '%s' != '%s'", (char *)buf, p->expect_key);
  size_t n = unhex(p->hello_reply, want, sizeof want);
  if (ferry_write_full(fd, want, n, dl) != 0)
    goto out;
  for (int i = 0; i < p->nsteps; i++) {
    if (ferry_read_full(fd, buf, 8, dl, NULL) != 0) {
      note(p, "step %d: no request", i);
      goto out;
    }
    uint64_t len = get_le64(buf);
    if (len > sizeof buf - 8 || ferry_read_full(fd, buf + 8, (size_t)len, dl, NULL) != 0) {
      note(p, "step %d: bad request length %llu", i, (unsigned long long)len);
      goto out;
    }
    if (len >= 4 && get_le32(buf + 8) == 1)
      p->saw_shutdown = 1;
    if (p->steps[i].expect) {
      size_t m = unhex(p->steps[i].expect, want, sizeof want);
      if (m != 8 + len || memcmp(want, buf, m) != 0) {
        char got[200] = "";
        for (size_t k = 0; k < 8 + len && k < 60; k++)
          sprintf(got + 3 * k, "%02x ", buf[k]);
        note(p, "step %d: request differs; got %s", i, got);
      }
    }
    p->served = i + 1;
    if (!p->steps[i].reply)
      continue;
    if (strcmp(p->steps[i].reply, "CLOSE") == 0)
      goto out;
    if (strcmp(p->steps[i].reply, "SILENCE") == 0) {
      usleep(600 * 1000);
      goto out;
    }
    size_t m = unhex(p->steps[i].reply, want, sizeof want);
    if (ferry_write_full(fd, want, m, dl) != 0)
      goto out;
  }
  /* Whatever the client sends last (kShutdown, releases) is drained. */
  while (ferry_read_full(fd, buf, 8, ferry_now_ms() + 2000, NULL) == 0) {
    uint64_t len = get_le64(buf);
    if (len > sizeof buf - 8 || ferry_read_full(fd, buf + 8, (size_t)len, dl, NULL) != 0)
      break;
    if (len >= 4 && get_le32(buf + 8) == 1)
      p->saw_shutdown = 1;
    else /* answer releases with void so close() completes */
      if (ferry_write_full(fd, (const uint8_t *)"\x0c\0\0\0\0\0\0\0\x04\0\0\0\x01\0\0\0\x04\0\0\0",
                           20, dl) != 0)
        break;
  }
out:
  close(fd);
  return NULL;
}

#define HELLO_OK "71f20f00 07000000 7365727665723a" /* SUCCESS "server:" */
#define INIT_REQ "1500000000000000 02000000 0500000000000000 302e382e30 00000000"
#define VOID_RET "0c00000000000000 04000000 01000000 04000000"

static void peer_start(peer *p, const step *steps, int n) {
  memset(p, 0, sizeof *p);
  char err[128];
  assert_int_equal(ferry_tcp_listen("127.0.0.1", 0, 0, 1, &p->lfd, &p->port, err, sizeof err),
                   0);
  p->hello_reply = HELLO_OK;
  p->expect_key = "client:";
  p->steps = steps;
  p->nsteps = n;
  assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_join(peer *p) {
  pthread_join(p->thread, NULL);
  close(p->lfd);
  if (p->mismatch[0])
    fail_msg("%s", p->mismatch);
}

static ferry_client *connect_ok(peer *p, int timeout_ms) {
  ferry_client_opts o;
  ferry_client_opts_init(&o);
  o.timeout_ms = timeout_ms;
  ferry_client *c = NULL;
  char err[256] = "";
  int rc = ferry_client_connect("127.0.0.1", p->port, "", &o, &c, err, sizeof err);
  if (rc)
    fail_msg("connect: %s", err);
  return c;
}

/* ---- byte-exact flows ------------------------------------------------------ */

/* §6.3 and §6.5: look up a global, call it with an int and with a float. */
static void test_global_call(void **state) {
  (void)state;
  static const step steps[] = {
      {INIT_REQ, "0c00000000000000 04000000 01000000 04000000"},
      /* kGetGlobalFunc("runtime.SystemLib") -> handle (§6.3) */
      {"2500000000000000 09000000 01000000 0b000000 1100000000000000"
       "72756e74696d652e53797374656d4c6962",
       "1400000000000000 04000000 01000000 03000000 e076dd1e7f550000"},
      /* add1(41) -> 42 (§6.5) */
      {"1c00000000000000 03000000 e076dd1e7f550000 01000000 00000000 2900000000000000",
       "2000000000000000 04000000 02000000 00000000 00000000 0000000000000000 2a00000000000000"},
      /* f(1.25) -> 2.5 */
      {"1c00000000000000 03000000 e076dd1e7f550000 01000000 02000000 000000000000f43f",
       "2000000000000000 04000000 02000000 00000000 02000000 0200000000000000 0000000000000440"},
      /* "abc" result */
      {NULL, "2300000000000000 04000000 02000000 00000000 0b000000 0b00000000000000"
             "0300000000000000 616263"},
      /* kFreeHandle(h, 10) (§6.9) */
      {"2000000000000000 0a000000 02000000 03000000 00000000 e076dd1e7f550000 0a00000000000000",
       VOID_RET},
  };
  peer p;
  peer_start(&p, steps, 6);
  ferry_client *c = connect_ok(&p, 5000);
  assert_string_equal(ferry_client_server_key(c), "server:");
  ferry_remote *f = NULL;
  assert_int_equal(ferry_client_get_function(c, "runtime.SystemLib", &f), 0);
  assert_int_equal(ferry_remote_kind(f), FERRY_KIND_FUNC);
  ferry_result r;
  ferry_value a = ferry_arg_int(41);
  assert_int_equal(ferry_client_call(c, f, &a, 1, &r), 0);
  assert_int_equal(r.value.kind, FERRY_KIND_INT);
  assert_int_equal(r.value.v.i, 42);
  assert_null(r.remote);
  a = ferry_arg_float(1.25);
  assert_int_equal(ferry_client_call(c, f, &a, 1, &r), 0);
  assert_int_equal(r.value.kind, FERRY_KIND_FLOAT);
  assert_true(r.value.v.f == 2.5);
  assert_int_equal(ferry_client_call(c, f, NULL, 0, &r), 0);
  assert_int_equal(r.value.kind, FERRY_KIND_STR);
  assert_string_equal(r.value.v.str.data, "abc");
  assert_int_equal(ferry_client_release(c, f), 0);
  ferry_client_close(c);
  peer_join(&p);
  assert_int_equal(p.served, 6);
  assert_true(p.saw_shutdown);
}

/* §6.6 exception, §6.7 missing module function, and a missing global. */
static void test_errors(void **state) {
  (void)state;
  static const step steps[] = {
      {INIT_REQ, VOID_RET},
      {NULL, "1400000000000000 04000000 01000000 03000000 e076dd1e7f550000"},
      {NULL, "2400000000000000 05000000 01000000 0b000000 1000000000000000"
             "56616c75654572726f723a20626f6f6d"},
      /* a missing global: handle 0 */
      {NULL, "1400000000000000 04000000 01000000 03000000 0000000000000000"},
      {NULL, VOID_RET}, /* release of f */
  };
  peer p;
  peer_start(&p, steps, 5);
  ferry_client *c = connect_ok(&p, 5000);
  ferry_remote *f = NULL, *g = NULL;
  assert_int_equal(ferry_client_get_function(c, "f", &f), 0);
  ferry_result r;
  assert_int_equal(ferry_client_call(c, f, NULL, 0, &r), FERRY_EREMOTE);
  assert_string_equal(ferry_client_errmsg(c), "ValueError: boom");
  assert_int_equal(r.value.kind, FERRY_KIND_NONE);
  /* The session survives a remote exception. */
  assert_int_equal(ferry_client_get_function(c, "no.such", &g), FERRY_ENOTFOUND);
  assert_null(g);
  assert_string_equal(ferry_client_errmsg(c), "Module has no function 'no.such'");
  ferry_client_close(c);
  peer_join(&p);
  assert_int_equal(p.served, 5);
}

/* §6.8: allocation, unchunked copy in, sync, copy out, free. */
static void test_tensor_unchunked(void **state) {
  (void)state;
  static const step steps[] = {
      {INIT_REQ, VOID_RET},
      {"4000000000000000 11000000 02000000 07000000 04000000 0000000000000000 01000000 00000000"
       "02000000 02200100 0200000000000000 0300000000000000 0000000000000000",
       "1400000000000000 04000000 01000000 03000000 40e8dd1e7f550000"},
      /* GetCRTMaxPacketSize: absent */
      {"3600000000000000 09000000 01000000 0b000000 2200000000000000"
       "74766d2e7270632e7365727665722e4765744352544d61785061636b657453697a65",
       "1400000000000000 04000000 01000000 03000000 0000000000000000"},
      {"5400000000000000 07000000 40e8dd1e7f550000 01000000 00000000 02000000 02200100"
       "0200000000000000 0300000000000000 0000000000000000 1800000000000000"
       "0000803f 00000040 00004040 00008040 0000a040 0000c040",
       VOID_RET},
      {"2000000000000000 0f000000 02000000 06000000 03000000 0100000000000000 0000000000000000",
       VOID_RET},
      {"3c00000000000000 06000000 40e8dd1e7f550000 01000000 00000000 02000000 02200100"
       "0200000000000000 0300000000000000 0000000000000000 1800000000000000",
       "1c00000000000000 08000000 0000803f 00000040 00004040 00008040 0000a040 0000c040"},
      {"2000000000000000 0f000000 02000000 06000000 03000000 0100000000000000 0000000000000000",
       VOID_RET},
      /* kDevFreeData(cpu 0, ptr) */
      {"2000000000000000 0e000000 02000000 06000000 03000000 0100000000000000 40e8dd1e7f550000",
       VOID_RET},
  };
  peer p;
  peer_start(&p, steps, 8);
  ferry_client *c = connect_ok(&p, 5000);
  ferry_remote *t = NULL;
  int64_t shape[2] = {2, 3};
  DLDevice cpu = {kDLCPU, 0};
  assert_int_equal(ferry_client_tensor_empty(c, cpu, 2, shape, (DLDataType){kDLFloat, 32, 1}, &t), 0);
  assert_int_equal(ferry_remote_nbytes(t), 24);
  float in[6] = {1, 2, 3, 4, 5, 6}, out[6] = {0};
  assert_int_equal(ferry_client_tensor_copy_in(c, t, in, 24), 0);
  assert_int_equal(ferry_client_tensor_copy_out(c, t, out, 24), 0);
  assert_memory_equal(in, out, 24);
  /* A size that does not match the tensor is refused before any I/O. */
  assert_int_equal(ferry_client_tensor_copy_in(c, t, in, 20), FERRY_EINVAL);
  assert_int_equal(ferry_client_release(c, t), 0);
  ferry_client_close(c);
  peer_join(&p);
  assert_int_equal(p.served, 8);
}

/* §3.11: with a server maximum of 4 + 48 + 8 + 10 bytes (block 10), 24
 * bytes go as 10 + 10 + 4 with byte_offsets 0, 10, 20. */
static void test_tensor_chunked(void **state) {
  (void)state;
  static const step steps[] = {
      {INIT_REQ, VOID_RET},
      {NULL, "1400000000000000 04000000 01000000 03000000 40e8dd1e7f550000"},
      {NULL, "1400000000000000 04000000 01000000 03000000 1111111111111111"},
      /* call of GetCRTMaxPacketSize -> 70 */
      {"1000000000000000 03000000 1111111111111111 00000000",
       "2000000000000000 04000000 02000000 00000000 00000000 0000000000000000 4600000000000000"},
      {"4600000000000000 07000000 40e8dd1e7f550000 01000000 00000000 02000000 02200100"
       "0200000000000000 0300000000000000 0000000000000000 0a00000000000000"
       "0000803f 00000040 0000",
       VOID_RET},
      {"4600000000000000 07000000 40e8dd1e7f550000 01000000 00000000 02000000 02200100"
       "0200000000000000 0300000000000000 0a00000000000000 0a00000000000000"
       "4040 00008040 0000a040",
       VOID_RET},
      {"4000000000000000 07000000 40e8dd1e7f550000 01000000 00000000 02000000 02200100"
       "0200000000000000 0300000000000000 1400000000000000 0400000000000000"
       "0000c040",
       VOID_RET},
      {NULL, VOID_RET}, /* sync */
      {"3c00000000000000 06000000 40e8dd1e7f550000 01000000 00000000 02000000 02200100"
       "0200000000000000 0300000000000000 0000000000000000 0a00000000000000",
       "0e00000000000000 08000000 0000803f 00000040 0000"},
      {"3c00000000000000 06000000 40e8dd1e7f550000 01000000 00000000 02000000 02200100"
       "0200000000000000 0300000000000000 0a00000000000000 0a00000000000000",
       "0e00000000000000 08000000 4040 00008040 0000a040"},
      {"3c00000000000000 06000000 40e8dd1e7f550000 01000000 00000000 02000000 02200100"
       "0200000000000000 0300000000000000 1400000000000000 0400000000000000",
       "0800000000000000 08000000 0000c040"},
      {NULL, VOID_RET}, /* sync */
  };
  peer p;
  peer_start(&p, steps, 12);
  ferry_client *c = connect_ok(&p, 5000);
  ferry_remote *t = NULL;
  int64_t shape[2] = {2, 3};
  assert_int_equal(ferry_client_tensor_empty(c, (DLDevice){kDLCPU, 0}, 2, shape,
                                             (DLDataType){kDLFloat, 32, 1}, &t), 0);
  float in[6] = {1, 2, 3, 4, 5, 6}, out[6] = {0};
  assert_int_equal(ferry_client_tensor_copy_in(c, t, in, 24), 0);
  assert_int_equal(ferry_client_tensor_copy_out(c, t, out, 24), 0);
  assert_memory_equal(in, out, 24);
  ferry_client_close(c); /* releases t (kDevFreeData) itself */
  peer_join(&p);
  assert_int_equal(p.served, 12);
}

/* ---- hostile peers ------------------------------------------------------- */

static void hostile(const char *reply, int expect_rc, int timeout_ms) {
  step steps[2] = {{INIT_REQ, VOID_RET}, {NULL, reply}};
  peer p;
  peer_start(&p, steps, 2);
  ferry_client *c = connect_ok(&p, timeout_ms);
  ferry_remote *f = NULL;
  int rc = ferry_client_get_function(c, "x", &f);
  if (rc != expect_rc)
    fail_msg("reply %s: got %d (%s) want %d", reply, rc, ferry_client_errmsg(c), expect_rc);
  assert_null(f);
  assert_true(ferry_client_errmsg(c)[0] != 0);
  /* The session is unusable afterwards, and says so without I/O. */
  assert_int_equal(ferry_client_get_function(c, "x", &f), FERRY_ESTATE);
  ferry_client_close(c);
  peer_join(&p);
}

static void test_hostile_replies(void **state) {
  (void)state;
  /* A 2^62-byte reply: refused from its length alone (nothing allocated). */
  hostile("0000000000000040 04000000", FERRY_ETOOBIG, 5000);
  /* A reply code the client never expects. */
  hostile("0c00000000000000 02000000 01000000 04000000", FERRY_EPROTO, 5000);
  /* A length too short to hold a code. */
  hostile("0200000000000000 0400", FERRY_EPROTO, 5000);
  /* A syscall answering two values. */
  hostile("1800000000000000 04000000 02000000 00000000 00000000 0100000000000000 0200000000000000",
          FERRY_EPROTO, 5000);
  /* A packed sequence with a negative count. */
  hostile("0800000000000000 04000000 ffffffff", FERRY_EPROTO, 5000);
  /* A string whose length runs past the packet. */
  hostile("1400000000000000 04000000 01000000 0b000000 ffffffffffffff7f", FERRY_EPROTO, 5000);
  /* An exception that is not a string. */
  hostile("1000000000000000 05000000 01000000 00000000 0100000000000000", FERRY_EPROTO, 5000);
  /* Hang-up mid-session, and a reply that never comes. */
  hostile("CLOSE", FERRY_ECLOSED, 5000);
  hostile("SILENCE", FERRY_ETIMEDOUT, 200);
  /* A reply announcing more bytes than arrive before the hang-up. */
  hostile("ffff000000000000 04000000 01000000", FERRY_ECLOSED, 5000);
}

static void test_short_copy_ack(void **state) {
  (void)state;
  static const step steps[] = {
      {INIT_REQ, VOID_RET},
      {NULL, "1400000000000000 04000000 01000000 03000000 40e8dd1e7f550000"},
      {NULL, "1400000000000000 04000000 01000000 03000000 0000000000000000"},
      {NULL, "0800000000000000 08000000 0000803f"}, /* 4 bytes of 24 */
  };
  peer p;
  peer_start(&p, steps, 4);
  ferry_client *c = connect_ok(&p, 5000);
  ferry_remote *t = NULL;
  int64_t shape[2] = {2, 3};
  assert_int_equal(ferry_client_tensor_empty(c, (DLDevice){kDLCPU, 0}, 2, shape,
                                             (DLDataType){kDLFloat, 32, 1}, &t), 0);
  float out[6];
  assert_int_equal(ferry_client_tensor_copy_out(c, t, out, 24), FERRY_EPROTO);
  ferry_client_close(c);
  peer_join(&p);
}

/* Hex of a kCopyAck carrying n bytes of value v (malloc'ed). */
static char *ack_hex(size_t n, uint8_t v) {
  char *h = malloc(2 * (12 + n) + 1);
  assert_non_null(h);
  uint8_t pre[12];
  put_le64(pre, 4 + n);
  put_le32(pre + 8, 8);
  size_t k = 0;
  for (int i = 0; i < 12; i++)
    k += (size_t)sprintf(h + k, "%02x", pre[i]);
  for (size_t i = 0; i < n; i++)
    k += (size_t)sprintf(h + k, "%02x", v);
  return h;
}

/* A copy out bigger than the client's own reply ceiling is read in chunks
 * even when the server sets no limit: 100000 bytes with a 65536-byte
 * ceiling go as 65532 + 34468 (offsets 0 and 65532). */
static void test_copy_out_own_ceiling(void **state) {
  (void)state;
  char *ack1 = ack_hex(65532, 1), *ack2 = ack_hex(34468, 2);
  step steps[] = {
      {INIT_REQ, VOID_RET},
      {NULL, "1400000000000000 04000000 01000000 03000000 40e8dd1e7f550000"},
      {NULL, "1400000000000000 04000000 01000000 03000000 0000000000000000"},
      {"3400000000000000 06000000 40e8dd1e7f550000 01000000 00000000 01000000 01080100"
       "a086010000000000 0000000000000000 fcff000000000000",
       ack1},
      {"3400000000000000 06000000 40e8dd1e7f550000 01000000 00000000 01000000 01080100"
       "a086010000000000 fcff000000000000 a486000000000000",
       ack2},
      {NULL, VOID_RET}, /* sync */
  };
  peer p;
  peer_start(&p, steps, 6);
  ferry_client_opts o;
  ferry_client_opts_init(&o);
  o.max_reply_bytes = 65536;
  ferry_client *c = NULL;
  char err[256];
  assert_int_equal(ferry_client_connect("127.0.0.1", p.port, "", &o, &c, err, sizeof err), 0);
  ferry_remote *t = NULL;
  int64_t shape[1] = {100000};
  assert_int_equal(ferry_client_tensor_empty(c, (DLDevice){kDLCPU, 0}, 1, shape,
                                             (DLDataType){kDLUInt, 8, 1}, &t), 0);
  uint8_t *out = malloc(100000);
  assert_int_equal(ferry_client_tensor_copy_out(c, t, out, 100000), 0);
  for (size_t i = 0; i < 100000; i++)
    assert_int_equal(out[i], i < 65532 ? 1 : 2);
  free(out);
  ferry_client_close(c);
  peer_join(&p);
  assert_int_equal(p.served, 6);
  free(ack1);
  free(ack2);
}

static void test_handshake_refused(void **state) {
  (void)state;
  peer p;
  peer_start(&p, NULL, 0);
  p.hello_reply = "73f20f00"; /* MISMATCH */
  p.expect_key = "client:cpu -timeout=10";
  ferry_client_opts o;
  ferry_client_opts_init(&o);
  o.session_timeout_s = 10;
  ferry_client *c = NULL;
  char err[256] = "";
  assert_int_equal(ferry_client_connect("127.0.0.1", p.port, "cpu", &o, &c, err, sizeof err),
                   FERRY_EMISMATCH);
  assert_null(c);
  assert_non_null(strstr(err, "cannot find server that matches key=client:cpu"));
  peer_join(&p);
  /* Nobody listening. */
  int lfd, port;
  char e2[128];
  assert_int_equal(ferry_tcp_listen("127.0.0.1", 0, 0, 1, &lfd, &port, e2, sizeof e2), 0);
  close(lfd);
  assert_int_equal(ferry_client_connect("127.0.0.1", port, "", &o, &c, err, sizeof err),
                   FERRY_ECONNREFUSED);
}

static void test_init_refused(void **state) {
  (void)state;
  static const step steps[] = {
      {INIT_REQ, "2400000000000000 05000000 01000000 0b000000 1000000000000000"
                 "56616c75654572726f723a20626f6f6d"},
  };
  peer p;
  peer_start(&p, steps, 1);
  ferry_client *c = NULL;
  char err[256] = "";
  assert_int_equal(ferry_client_connect("127.0.0.1", p.port, "", NULL, &c, err, sizeof err),
                   FERRY_EREMOTE);
  assert_null(c);
  assert_non_null(strstr(err, "ValueError: boom"));
  peer_join(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_global_call),     cmocka_unit_test(test_errors),
      cmocka_unit_test(test_tensor_unchunked), cmocka_unit_test(test_tensor_chunked),
      cmocka_unit_test(test_hostile_replies), cmocka_unit_test(test_short_copy_ack),
      cmocka_unit_test(test_copy_out_own_ceiling),
      cmocka_unit_test(test_handshake_refused), cmocka_unit_test(test_init_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
