/* --state-dir: the farm's session history in an append-only file
 * (docs/internals/farm.md).  DIR/history.jsonl holds one JSON object per
 * ended session, a line each, appended with O_APPEND and one write(2) per
 * line so that a crash loses at most the line being written.  At start the
 * last FERRY_HISTORY_READ_MAX bytes are read back (the newest
 * FERRY_FARM_HISTORY records fill the ring); a line that does not decode
 * (a torn last line, an edit) is skipped and counted.  Past
 * FERRY_HISTORY_ROTATE bytes the file is renamed history.jsonl.1 (the
 * previous .1 is replaced) and a new one started, so the folder holds at
 * most twice that.  Only the history is kept: the live state stays soft
 * and comes back from the servers' re-registration. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "tracker/farm_json.h"
#include "tracker/history_file.h"
#include "wire/tracker_msg.h"

static int open_file(ferry_history_file *h, char *err, size_t errcap) {
  h->fd = open(h->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (h->fd < 0) {
    snprintf(err, errcap, "--state-dir: cannot open %s: %s", h->path, strerror(errno));
    return FERRY_ESYS;
  }
  struct stat st;
  h->size = fstat(h->fd, &st) == 0 ? (size_t)st.st_size : 0;
  return 0;
}

/* Reads the file's tail back into the farm's history. */
static void load(ferry_history_file *h, ferry_farm *f) {
  int fd = open(h->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size == 0) {
    close(fd);
    return;
  }
  size_t want = (size_t)st.st_size > FERRY_HISTORY_READ_MAX ? FERRY_HISTORY_READ_MAX
                                                            : (size_t)st.st_size;
  char *buf = malloc(want + 1);
  ssize_t got = buf ? pread(fd, buf, want, st.st_size - (off_t)want) : -1;
  close(fd);
  if (got <= 0) {
    free(buf);
    return;
  }
  size_t n = (size_t)got, loaded = 0, bad = 0;
  /* A tail that starts mid-line: skip to the first whole line. */
  char *p = buf, *end = buf + n;
  if ((size_t)st.st_size > want) {
    char *nl = memchr(p, '\n', n);
    p = nl ? nl + 1 : end;
  }
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    ferry_farm_line line;
    if (len && ferry_farm_line_decode((const uint8_t *)p, len, &line) == 0) {
      ferry_farm_record r;
      memset(&r, 0, sizeof r);
      memcpy(r.key, line.key, sizeof r.key);
      memcpy(r.user, line.user, sizeof r.user);
      memcpy(r.host, line.host, sizeof r.host);
      memcpy(r.outcome, line.outcome, sizeof r.outcome);
      r.session = line.session;
      r.start_ms = (int64_t)(line.start * 1000.0);
      r.end_ms = (int64_t)(line.end * 1000.0);
      ferry_farm_history_add(f, &r);
      loaded++;
    } else if (len) {
      bad++;
    }
    p += len + 1;
  }
  free(buf);
  ferry_info("history: %zu sessions read back from %s%s", loaded, h->path,
             bad ? " (some lines did not decode and were skipped)" : "");
  if (bad)
    ferry_warn("history: %zu lines of %s skipped (not a session record)", bad, h->path);
}

int ferry_history_open(ferry_history_file *h, const char *dir, ferry_farm *f, char *err,
                       size_t errcap) {
  memset(h, 0, sizeof *h);
  h->fd = -1;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errcap, "--state-dir: cannot create %s: %s", dir, strerror(errno));
    return FERRY_ESYS;
  }
  int n = snprintf(h->path, sizeof h->path, "%s/history.jsonl", dir);
  if (n < 0 || (size_t)n >= sizeof h->path) {
    snprintf(err, errcap, "--state-dir: path too long");
    return FERRY_EINVAL;
  }
  load(h, f);
  return open_file(h, err, errcap);
}

void ferry_history_append(ferry_history_file *h, const ferry_farm_record *r) {
  if (h->fd < 0)
    return;
  ferry_buf b;
  ferry_buf_init(&b, 4096);
  if (ferry_farm_encode_record(&b, r) == 0 && ferry_buf_append(&b, "\n", 1) == 0) {
    ssize_t w = write(h->fd, b.data, b.len);
    if (w != (ssize_t)b.len)
      ferry_warn("history: cannot append to %s: %s", h->path,
                 w < 0 ? strerror(errno) : "short write");
    else
      h->size += b.len;
  }
  ferry_buf_close(&b);
  if (h->size > FERRY_HISTORY_ROTATE) {
    char old[sizeof h->path + 2];
    snprintf(old, sizeof old, "%s.1", h->path);
    close(h->fd);
    h->fd = -1;
    if (rename(h->path, old) != 0)
      ferry_warn("history: cannot rotate %s: %s", h->path, strerror(errno));
    char err[256];
    if (open_file(h, err, sizeof err) != 0)
      ferry_warn("%s", err);
  }
}

void ferry_history_close(ferry_history_file *h) {
  if (h->fd >= 0)
    close(h->fd);
  h->fd = -1;
}
