/* Blocking tracker link against a scripted fake tracker on 127.0.0.1 (a
 * thread): the typed exchanges, and every way a tracker can misbehave. */
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "base/net.h"
#include "client/tracker_link.h"
#include "wire/constants.h"

enum mode { GOOD, BAD_MAGIC, ZERO_LEN, HUGE_LEN, SILENT, REFUSE, HANG_UP, GARBAGE };

typedef struct fake {
  int lfd, port;
  enum mode mode;
  pthread_t th;
  char last[512]; /* last request body received */
} fake;

static int read_n(int fd, void *p, size_t n) {
  return ferry_read_full(fd, p, n, ferry_now_ms() + 5000, NULL);
}

static void send_frame(int fd, const char *body) {
  uint8_t h[4];
  put_le32(h, (uint32_t)strlen(body));
  (void)!ferry_write_full(fd, h, 4, -1);
  (void)!ferry_write_full(fd, body, strlen(body), -1);
}

static void *fake_main(void *arg) {
  fake *f = arg;
  int fd = accept(f->lfd, NULL, NULL);
  if (fd < 0)
    return NULL;
  uint8_t m[4];
  if (read_n(fd, m, 4) != 0)
    goto out;
  if (f->mode == BAD_MAGIC) {
    (void)!ferry_write_full(fd, "HTTP", 4, -1);
    goto out;
  }
  (void)!ferry_write_full(fd, m, 4, -1);
  if (f->mode == HANG_UP)
    goto out;
  for (;;) {
    uint8_t h[4];
    if (read_n(fd, h, 4) != 0)
      break;
    uint32_t n = get_le32(h);
    if (n >= sizeof f->last || read_n(fd, f->last, n) != 0)
      break;
    f->last[n] = 0;
    if (f->mode == ZERO_LEN || f->mode == HUGE_LEN) {
      put_le32(h, f->mode == ZERO_LEN ? 0u : 0x7FFFFFFFu);
      (void)!ferry_write_full(fd, h, 4, -1);
      continue;
    }
    if (f->mode == SILENT) {
      usleep(600 * 1000);
      break;
    }
    if (f->mode == GARBAGE) {
      send_frame(fd, "{\"what\": 1}");
      continue;
    }
    if (f->mode == REFUSE) {
      send_frame(fd, "-1");
      continue;
    }
    switch (f->last[1]) {
    case '3': case '5': case '1': send_frame(fd, "0"); break;
    case '7': send_frame(fd, "[\"k:1\", \"k:a/b\"]"); break;
    case '4': send_frame(fd, "[0, [\"10.0.0.5\", \"9090\", \"k:1\"]]"); break;
    case '6':
      send_frame(fd, "[0, {\"queue_info\": {\"k\": {\"free\": 1, \"pending\": 2}}, "
                     "\"server_info\": [{\"key\": \"server:k\", \"addr\": [\"1.2.3.4\", 9090]}]}]");
      break;
    default: goto out;
    }
  }
out:
  close(fd);
  return NULL;
}

static void fake_start(fake *f, enum mode mode) {
  memset(f, 0, sizeof *f);
  f->mode = mode;
  char err[128];
  assert_int_equal(ferry_tcp_listen("127.0.0.1", 0, 0, 4, &f->lfd, &f->port, err, sizeof err), 0);
  assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(fake *f) {
  pthread_join(f->th, NULL);
  close(f->lfd);
}

static void typed_exchanges(void **state) {
  (void)state;
  fake f;
  fake_start(&f, GOOD);
  ferry_tracker_link l;
  ferry_tracker_link_init(&l);
  char err[256] = "";
  assert_int_equal(ferry_tracker_link_connect(&l, "127.0.0.1", f.port, 2000, err, sizeof err), 0);
  assert_int_equal(ferry_tracker_link_update_info(&l, "server:k", NULL, 9090, 2000, err, sizeof err), 0);
  assert_string_equal(f.last, "[5, {\"key\": \"server:k\", \"addr\": [null, 9090]}]");
  assert_int_equal(ferry_tracker_link_put(&l, "k", 9090, "k:1", "10.0.0.5", 2000, err, sizeof err), 0);
  assert_string_equal(f.last, "[3, \"k\", [9090, \"k:1\"], \"10.0.0.5\"]");
  ferry_tracker_strlist keys;
  assert_int_equal(ferry_tracker_link_pending(&l, &keys, 2000, err, sizeof err), 0);
  assert_int_equal(keys.n, 2);
  assert_true(ferry_tracker_strlist_contains(&keys, "k:a/b"));
  ferry_tracker_strlist_close(&keys);
  ferry_tracker_grant g;
  assert_int_equal(ferry_tracker_link_request(&l, "k", 3, &g, 2000, err, sizeof err), 0);
  assert_string_equal(f.last, "[4, \"k\", \"\", 3]");
  assert_string_equal(g.host, "10.0.0.5");
  assert_int_equal(g.port, 9090);
  assert_string_equal(g.matchkey, "k:1");
  ferry_tracker_grant_close(&g);
  ferry_tracker_summary s;
  assert_int_equal(ferry_tracker_link_summary(&l, &s, 2000, err, sizeof err), 0);
  assert_int_equal(s.nqueues, 1);
  assert_int_equal(s.queues[0].pending, 2);
  assert_string_equal(s.servers[0].addr, "1.2.3.4:9090");
  ferry_tracker_summary_close(&s);
  assert_int_equal(ferry_tracker_link_ping(&l, 2000, err, sizeof err), 0);
  assert_string_equal(err, "");
  ferry_tracker_link_close(&l);
  fake_stop(&f);
}

static int connect_and_ping(enum mode mode, int timeout_ms, char *err, size_t errcap) {
  fake f;
  fake_start(&f, mode);
  ferry_tracker_link l;
  ferry_tracker_link_init(&l);
  err[0] = 0;
  int rc = ferry_tracker_link_connect(&l, "127.0.0.1", f.port, timeout_ms, err, errcap);
  if (rc == 0)
    rc = ferry_tracker_link_ping(&l, timeout_ms, err, errcap);
  ferry_tracker_link_close(&l);
  fake_stop(&f);
  return rc;
}

static void misbehaving_trackers(void **state) {
  (void)state;
  char err[256];
  assert_int_equal(connect_and_ping(BAD_MAGIC, 2000, err, sizeof err), FERRY_EMAGIC);
  assert_non_null(strstr(err, "is not an RPC tracker"));
  assert_int_equal(connect_and_ping(ZERO_LEN, 2000, err, sizeof err), FERRY_EPROTO);
  assert_non_null(strstr(err, "invalid length 0"));
  assert_int_equal(connect_and_ping(HUGE_LEN, 2000, err, sizeof err), FERRY_ETOOBIG);
  assert_non_null(strstr(err, "over the 1 MiB limit"));
  assert_int_equal(connect_and_ping(SILENT, 200, err, sizeof err), FERRY_ETIMEDOUT);
  assert_int_equal(connect_and_ping(REFUSE, 2000, err, sizeof err), FERRY_EREMOTE);
  assert_non_null(strstr(err, "status -1"));
  assert_int_equal(connect_and_ping(HANG_UP, 2000, err, sizeof err), FERRY_ECLOSED);
  assert_int_equal(connect_and_ping(GARBAGE, 2000, err, sizeof err), FERRY_EPROTO);
  assert_non_null(strstr(err, "bad reply to PING"));
}

static void refused_and_unconnected(void **state) {
  (void)state;
  int lfd, port;
  char err[256] = "";
  assert_int_equal(ferry_tcp_listen("127.0.0.1", 0, 0, 1, &lfd, &port, err, sizeof err), 0);
  close(lfd); /* nobody listens on port now */
  ferry_tracker_link l;
  ferry_tracker_link_init(&l);
  assert_int_equal(ferry_tracker_link_connect(&l, "127.0.0.1", port, 1000, err, sizeof err),
                   FERRY_ECONNREFUSED);
  assert_int_equal(l.fd, -1);
  err[0] = 0;
  assert_int_equal(ferry_tracker_link_ping(&l, 100, err, sizeof err), FERRY_ESTATE);
  ferry_tracker_link_close(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(typed_exchanges),
      cmocka_unit_test(misbehaving_trackers),
      cmocka_unit_test(refused_and_unconnected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
