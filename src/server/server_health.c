/* The server's self-test and its offline state (docs/internals/farm.md).
 *
 * With a tracker, the server tests itself before its first offer and
 * after every session that crashed or timed out: the --health-check
 * command (through /bin/sh; exit status 0 passes), or by default a forked
 * child that makes and removes a folder in the work folder (the server
 * can still fork and write).  It is not offered while the test fails;
 * after --health-failures failures in a row it tells the tracker it is
 * offline, with the reason ("ferry_health" in UPDATE_INFO; TVM's tracker
 * merges and ignores it), and retries with a back-off of 1 s doubling to
 * 60 s.  When a test passes again it says so and offers itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "server/server_state.h"
#include "wire/tracker_msg.h"

#define HEALTH_TIMEOUT_MS 10000
#define HEALTH_BACKOFF_MIN_MS 1000
#define HEALTH_BACKOFF_MAX_MS 60000

/* Runs the self-test once; 0 if it passed, else why in `why`. */
static int self_test(ferry_server *s, char *why, size_t cap) {
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(why, cap, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    if (s->cfg->health_check) {
      execl("/bin/sh", "sh", "-c", s->cfg->health_check, (char *)NULL);
      _exit(127);
    }
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s/selftest-XXXXXX", s->base_dir);
    if (n < 0 || (size_t)n >= sizeof dir || !mkdtemp(dir))
      _exit(3);
    _exit(rmdir(dir) == 0 ? 0 : 4);
  }
  int64_t deadline = ferry_now_ms() + HEALTH_TIMEOUT_MS;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (r < 0 && errno != EINTR) {
      snprintf(why, cap, "waitpid: %s", strerror(errno));
      return -1;
    }
    if (ferry_now_ms() > deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
      snprintf(why, cap, "self-test took longer than %d s", HEALTH_TIMEOUT_MS / 1000);
      return -1;
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  if (WIFEXITED(status))
    snprintf(why, cap, "%s exited with status %d",
             s->cfg->health_check ? "--health-check" : "the built-in self-test",
             WEXITSTATUS(status));
  else
    snprintf(why, cap, "self-test killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return -1;
}

/* Sends the health state; a failure here is left to the next poll. */
static void report(ferry_server *s, int failures, const char *reason) {
  server_tracker *t = &s->tracker;
  if (t->state != SERVER_TRACKER_UP)
    return;
  ferry_buf b;
  ferry_buf_init(&b, 4096);
  char err[256] = "";
  int rc = ferry_tracker_encode_health(&b, failures, reason);
  if (rc == 0)
    rc = ferry_tracker_link_call(&t->link, b.data, b.len, 5000, err, sizeof err);
  ferry_buf_close(&b);
  if (rc)
    ferry_warn("tracker health report: %s", err[0] ? err : ferry_strerror(rc));
  else
    s->health.reported = failures;
}

void server_health_init(ferry_server *s) {
  memset(&s->health, 0, sizeof s->health);
  s->health.due = 1; /* before the first offer */
  s->health.backoff_ms = HEALTH_BACKOFF_MIN_MS;
}

void server_health_session_ended(ferry_server *s, const char *outcome) {
  if (strncmp(outcome, "crashed", 7) == 0 || strncmp(outcome, "timed out", 9) == 0) {
    s->health.due = 1;
    s->health.next_ms = 0;
  }
}

int64_t server_health_tick(ferry_server *s, int64_t now) {
  server_health *h = &s->health;
  if (!h->due)
    return 0;
  if (now < h->next_ms)
    return h->next_ms;
  char why[200] = "";
  if (self_test(s, why, sizeof why) == 0) {
    if (h->failures)
      ferry_notice("self-test passed after %d failure%s", h->failures,
                   h->failures == 1 ? "" : "s");
    if (h->reported)
      report(s, 0, NULL);
    h->failures = 0;
    h->due = 0;
    h->backoff_ms = HEALTH_BACKOFF_MIN_MS;
    return 0;
  }
  h->failures++;
  int limit = s->cfg->health_failures > 0 ? s->cfg->health_failures : 3;
  ferry_warn("self-test failed (%d of %d in a row): %s", h->failures, limit, why);
  if (h->failures >= limit) {
    /* Offline: say so (again after a reconnect), then back off. */
    char reason[256];
    snprintf(reason, sizeof reason, "%d failed self-tests: %s", h->failures, why);
    report(s, h->failures, reason);
    h->next_ms = ferry_now_ms() + h->backoff_ms;
    h->backoff_ms = h->backoff_ms * 2 > HEALTH_BACKOFF_MAX_MS ? HEALTH_BACKOFF_MAX_MS
                                                              : h->backoff_ms * 2;
  } else {
    h->next_ms = ferry_now_ms() + HEALTH_BACKOFF_MIN_MS;
  }
  return h->next_ms;
}
