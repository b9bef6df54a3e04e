/* ferry_fd_write_all (src/base/net.c): everything reaches a file and a pipe
 * (a write larger than the pipe's buffer is short and retried), and a
 * descriptor that cannot be written fails with FERRY_EIO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/net.h"
#include "ferry/error.h"

#define BIG (1 << 20) /* well past a pipe's 64 KiB buffer */

static void test_file(void **state) {
  (void)state;
  char path[] = "/tmp/ferry_net_write_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  static const char msg[] = "every byte of this line";
  assert_int_equal(ferry_fd_write_all(fd, msg, sizeof msg), 0);
  char back[sizeof msg];
  assert_int_equal(pread(fd, back, sizeof back, 0), (ssize_t)sizeof back);
  assert_memory_equal(back, msg, sizeof msg);
  close(fd);
  unlink(path);
}

struct drain {
  int fd;
  size_t got;
  uint8_t *buf;
};

static void *drain_main(void *arg) {
  struct drain *d = arg;
  for (;;) {
    ssize_t r = read(d->fd, d->buf + d->got, BIG - d->got);
    if (r <= 0)
      return NULL;
    d->got += (size_t)r;
  }
}

static void test_pipe_short_writes(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  uint8_t *src = malloc(BIG);
  struct drain d = {p[0], 0, malloc(BIG)};
  assert_non_null(src);
  assert_non_null(d.buf);
  for (size_t i = 0; i < BIG; i++)
    src[i] = (uint8_t)(i * 31 + 7);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, drain_main, &d), 0);
  assert_int_equal(ferry_fd_write_all(p[1], src, BIG), 0);
  close(p[1]);
  pthread_join(th, NULL);
  close(p[0]);
  assert_int_equal(d.got, BIG);
  assert_memory_equal(d.buf, src, BIG);
  free(src);
  free(d.buf);
}

static void test_unwritable(void **state) {
  (void)state;
  int fd = open("/dev/null", O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(ferry_fd_write_all(fd, "x", 1), FERRY_EIO);
  close(fd);
  /* Nothing to write succeeds without a write. */
  assert_int_equal(ferry_fd_write_all(-1, "", 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file),
      cmocka_unit_test(test_pipe_short_writes),
      cmocka_unit_test(test_unwritable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
