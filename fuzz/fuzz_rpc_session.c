/* libFuzzer target: a whole session fed from the fuzzer input through
 * memory I/O, against the real runtime in a scratch work folder.  Replies
 * are discarded; the session must end (EOF) without a crash, a leak or
 * undefined behaviour whatever the bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct mem_io {
  const uint8_t *p;
  size_t n, off, step;
} mem_io;

static long mem_read(void *ctx, void *buf, size_t want) {
  mem_io *m = ctx;
  size_t left = m->n - m->off;
  size_t k = want < left ? want : left;
  if (k > m->step)
    k = m->step; /* short reads, as sockets give */
  memcpy(buf, m->p + m->off, k);
  m->off += k;
  return (long)k;
}

static int mem_write(void *ctx, const void *buf, size_t n) {
  (void)ctx;
  (void)buf;
  (void)n;
  return 0;
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
  mem_io m = {data + 1, size - 1, 0, (size_t)data[0] * 64 + 1};
  ferry_session_io io = {&m, mem_read, mem_write, NULL, NULL};
  ferry_session_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.work_dir = work_dir;
  cfg.num_threads = 1;
  cfg.max_packet = 1 << 20;
  cfg.max_alloc = 1 << 24;
  cfg.copy_packet_size = data[0] & 1 ? 4096 : 0;
  ferry_err err;
  ferry_err_clear(&err);
  (void)ferry_session_run(&io, &cfg, &err);
  return 0;
}
