/* libFuzzer target: random sequences of PUT / REQUEST / release / pending /
 * stats on the tracker scheduler, checking its invariants after each step:
 * counts agree with the per-queue statistics, grants never go to a
 * released owner, and everything is returned at the end (ASan). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tracker/scheduler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOWNERS 6

typedef struct ctx {
  ferry_sched_owner o[NOWNERS];
  int refuse[NOWNERS];
} ctx;

static int grant_cb(void *p, const ferry_sched_grant *g) {
  ctx *c = p;
  int idx = (int)(g->requester - c->o);
  if (idx < 0 || idx >= NOWNERS || g->server < c->o || g->server >= c->o + NOWNERS)
    abort();
  return c->refuse[idx] ? -1 : 0;
}

static void check(ferry_sched *s, ctx *c) {
  size_t nq = ferry_sched_nqueues(s);
  ferry_tracker_queue_stat *st = malloc((nq ? nq : 1) * sizeof *st);
  ferry_sched_stats(s, st);
  size_t free_sum = 0, pend_sum = 0, offers = 0, reqs = 0;
  for (size_t i = 0; i < nq; i++) {
    free_sum += st[i].free;
    pend_sum += st[i].pending;
    /* a queue never holds both free offers and waiting requests */
    if (st[i].free && st[i].pending)
      abort();
  }
  for (int i = 0; i < NOWNERS; i++) {
    offers += c->o[i].noffers;
    reqs += c->o[i].nrequests;
    const char *keys[FERRY_SCHED_MAX_OFFERS_PER_OWNER];
    if (ferry_sched_pending(&c->o[i], keys, FERRY_SCHED_MAX_OFFERS_PER_OWNER) > c->o[i].noffers)
      abort();
  }
  if (free_sum != offers || pend_sum != reqs)
    abort();
  free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ctx c = {0};
  ferry_sched s;
  ferry_sched_init(&s, grant_cb, &c);
  s.max_bytes = 1 << 16;
  for (int i = 0; i < NOWNERS; i++)
    ferry_sched_owner_init(&c.o[i]);
  for (size_t i = 0; i + 2 < size; i += 3) {
    int op = data[i] % 5, who = data[i + 1] % NOWNERS;
    char key[8], mk[16];
    snprintf(key, sizeof key, "k%d", data[i + 2] % 4);
    snprintf(mk, sizeof mk, "%s:%d", key, data[i + 2] / 4);
    switch (op) {
    case 0: (void)!ferry_sched_put(&s, &c.o[who], key, mk, "\"h\"", "1"); break;
    case 1: (void)!ferry_sched_request(&s, &c.o[who], key, (double)(data[i + 2] % 3)); break;
    case 2: ferry_sched_owner_release(&s, &c.o[who]); break;
    case 3: c.refuse[who] = !c.refuse[who]; break;
    default: break;
    }
    check(&s, &c);
  }
  for (int i = 0; i < NOWNERS; i++)
    ferry_sched_owner_release(&s, &c.o[i]);
  ferry_sched_close(&s);
  if (s.bytes != 0)
    abort();
  return 0;
}
