/* The relay of `ferry dump --listen`: one accepting loop, and per relayed
 * connection two blocking threads, one per direction.
 *
 * Why threads and not libuv: a direction is a loop of recv() into one
 * fixed chunk, write-all of that chunk to the other socket, then describe
 * it.  The bytes are forwarded exactly as they came (the decoder reads a
 * copy, so it cannot change them); and since the next recv() waits until the chunk is written,
 * a slow receiver stops the sender through TCP itself (back-pressure) with
 * one chunk of memory per direction.  Decoding and printing happen under
 * one mutex, so lines of different connections never interleave. */
#include "cli/dump_relay.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/net.h"
#include "wire/dump_record.h"

typedef struct relay relay;

typedef struct pair {
  relay *r;
  unsigned id;
  int fd[2];       /* [0] the peer that connected to us, [1] the target */
  int alive;       /* directions still pumping */
  ferry_dump_conn dc;
} pair;

struct relay {
  const ferry_dump_relay_cfg *cfg;
  pthread_mutex_t mu;
  FILE *raw;
  int64_t t0;
  int active;
  ferry_buf out;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static double now_s(relay *r) {
  return (double)(ferry_now_ms() - r->t0) / 1000.0;
}

/* Prints r->out and empties it.  Called with r->mu held. */
static void flush_locked(relay *r) {
  if (r->out.len) {
    if (fwrite(r->out.data, 1, r->out.len, stdout) != r->out.len)
      stop_flag = 1; /* stdout is gone (a closed pipe): nothing to show to */
    fflush(stdout);
  }
  r->out.len = 0;
}

static void record_locked(relay *r, unsigned id, enum ferry_dump_rec_kind kind, int dir,
                          double t, const uint8_t *p, size_t n) {
  if (!r->raw)
    return;
  ferry_buf line;
  ferry_buf_init(&line, 2 * FERRY_DUMP_RELAY_CHUNK + 256);
  if (ferry_dump_record_write(&line, id, kind, dir, t, p, n) == FERRY_OK) {
    if (fwrite(line.data, 1, line.len, r->raw) != line.len) {
      fprintf(stderr, "ferry dump: writing the recording failed; recording stopped\n");
      fclose(r->raw);
      r->raw = NULL;
    }
  }
  ferry_buf_close(&line);
}

static void describe_locked(relay *r, pair *pr, int rc_feed) {
  if (rc_feed)
    fprintf(stderr, "ferry dump: #%u: description lost: %s\n", pr->id,
            ferry_strerror(rc_feed));
  flush_locked(r);
  if (r->raw && fflush(r->raw)) {
    fprintf(stderr, "ferry dump: writing the recording failed; recording stopped\n");
    fclose(r->raw);
    r->raw = NULL;
  }
}

/* The last direction to end frees the pair. */
static void side_done(pair *pr, int dir, int clean) {
  relay *r = pr->r;
  pthread_mutex_lock(&r->mu);
  double t = now_s(r);
  int rc = ferry_dump_conn_end(&pr->dc, dir, t, &r->out);
  if (!clean && !rc)
    rc = ferry_dump_conn_event(&pr->dc, t, dir ? "target side reset" : "peer side reset",
                               &r->out);
  record_locked(r, pr->id, FERRY_DUMP_REC_CLOSE, dir, t, NULL, 0);
  int last = --pr->alive == 0;
  if (last) {
    rc = rc ? rc : ferry_dump_conn_event(&pr->dc, t, "closed", &r->out);
    r->active--;
  }
  describe_locked(r, pr, rc);
  pthread_mutex_unlock(&r->mu);
  if (last) {
    close(pr->fd[0]);
    close(pr->fd[1]);
    ferry_dump_conn_close(&pr->dc);
    free(pr);
  }
}

/* Copies one direction until EOF or an error, then passes the EOF on. */
static void pump(pair *pr, int dir) {
  relay *r = pr->r;
  int src = pr->fd[dir], dst = pr->fd[1 - dir];
  uint8_t *buf = malloc(FERRY_DUMP_RELAY_CHUNK);
  int clean = 0;
  while (buf) {
    ssize_t n = recv(src, buf, FERRY_DUMP_RELAY_CHUNK, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      clean = n == 0;
      break;
    }
    /* TVM peers write a length and its body in two writes with Nagle on:
     * acknowledge at once, or each message waits for a delayed ACK. */
    ferry_tcp_quickack(src);
    /* Decoded (a copy into the decoder) before it is forwarded, printed
     * after: the description queue is then in causal order (a reply is
     * queued before the request it enables can arrive), and printing,
     * which may block on a slow terminal, never holds the bytes up. */
    pthread_mutex_lock(&r->mu);
    double t = now_s(r);
    record_locked(r, pr->id, FERRY_DUMP_REC_DATA, dir, t, buf, (size_t)n);
    int rc = ferry_dump_conn_feed(&pr->dc, dir, t, buf, (size_t)n, &r->out);
    pthread_mutex_unlock(&r->mu);
    int wrc = ferry_write_full(dst, buf, (size_t)n, -1);
    pthread_mutex_lock(&r->mu);
    describe_locked(r, pr, rc);
    pthread_mutex_unlock(&r->mu);
    if (wrc)
      break;
  }
  free(buf);
  if (clean) {
    shutdown(dst, SHUT_WR);
  } else {
    /* A reset or a failed write: end both directions, as a direct
     * connection would have ended. */
    shutdown(dst, SHUT_RDWR);
    shutdown(src, SHUT_RDWR);
  }
  side_done(pr, dir, clean);
}

static void *s2c_main(void *arg) {
  pump(arg, FERRY_DUMP_S2C);
  return NULL;
}

/* Dials the target, starts the other direction's thread, pumps c2s. */
static void *conn_main(void *arg) {
  pair *pr = arg;
  relay *r = pr->r;
  const ferry_dump_relay_cfg *cfg = r->cfg;
  char err[128];
  int rc = ferry_tcp_connect(cfg->to_host, cfg->to_port, 10000, &pr->fd[1], err, sizeof err);
  pthread_t th;
  if (!rc && pthread_create(&th, NULL, s2c_main, pr) != 0) {
    close(pr->fd[1]);
    rc = FERRY_ESYS;
    snprintf(err, sizeof err, "no thread for the connection");
  }
  if (rc) {
    pthread_mutex_lock(&r->mu);
    char msg[600];
    snprintf(msg, sizeof msg, "cannot connect to %s:%d: %s; connection closed", cfg->to_host,
             cfg->to_port, err);
    int frc = ferry_dump_conn_event(&pr->dc, now_s(r), msg, &r->out);
    r->active--;
    describe_locked(r, pr, frc);
    pthread_mutex_unlock(&r->mu);
    close(pr->fd[0]);
    ferry_dump_conn_close(&pr->dc);
    free(pr);
    return NULL;
  }
  pthread_detach(th);
  pump(pr, FERRY_DUMP_C2S);
  return NULL;
}

static void accept_one(relay *r, int lfd, unsigned *next_id) {
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0)
    return;
  if (!ferry_allow_fd(&r->cfg->allow, fd)) {
    char peer[80];
    ferry_peer_name(fd, peer, sizeof peer);
    fprintf(stderr, "ferry dump: %s is not in --allow; closed\n", peer);
    close(fd);
    return;
  }
  pthread_mutex_lock(&r->mu);
  int full = r->active >= r->cfg->max_conns;
  if (!full)
    r->active++;
  pthread_mutex_unlock(&r->mu);
  if (full) {
    fprintf(stderr, "ferry dump: %d connections relayed already (--max-conns); closed\n",
            r->cfg->max_conns);
    close(fd);
    return;
  }
  ferry_tcp_nodelay(fd);
  pair *pr = calloc(1, sizeof *pr);
  pthread_t th;
  if (pr) {
    pr->r = r;
    pr->id = (*next_id)++;
    pr->fd[0] = fd;
    pr->fd[1] = -1;
    pr->alive = 2;
    ferry_dump_conn_init(&pr->dc, pr->id, &r->cfg->opts);
    pthread_mutex_lock(&r->mu);
    char peer[80], msg[160];
    ferry_peer_name(fd, peer, sizeof peer);
    snprintf(msg, sizeof msg, "open from %s", peer);
    record_locked(r, pr->id, FERRY_DUMP_REC_OPEN, 0, now_s(r), NULL, 0);
    describe_locked(r, pr, ferry_dump_conn_event(&pr->dc, now_s(r), msg, &r->out));
    pthread_mutex_unlock(&r->mu);
  }
  if (!pr || pthread_create(&th, NULL, conn_main, pr) != 0) {
    if (pr) {
      ferry_dump_conn_close(&pr->dc);
      free(pr);
    }
    close(fd);
    pthread_mutex_lock(&r->mu);
    r->active--;
    pthread_mutex_unlock(&r->mu);
    return;
  }
  pthread_detach(th);
}

int ferry_dump_relay_run(const ferry_dump_relay_cfg *cfg) {
  relay r;
  memset(&r, 0, sizeof r);
  r.cfg = cfg;
  pthread_mutex_init(&r.mu, NULL);
  ferry_buf_init(&r.out, (size_t)16 << 20);
  r.t0 = ferry_now_ms();
  int lfd = -1, bound = 0;
  char err[160];
  if (ferry_tcp_listen(cfg->host, cfg->port, 0, 64, &lfd, &bound, err, sizeof err)) {
    fprintf(stderr, "ferry dump: cannot listen on %s:%d: %s\n", cfg->host, cfg->port, err);
    return 1;
  }
  if (cfg->raw_path) {
    r.raw = fopen(cfg->raw_path, "w");
    if (!r.raw) {
      fprintf(stderr, "ferry dump: cannot write %s: %s\n", cfg->raw_path, strerror(errno));
      close(lfd);
      return 1;
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  fprintf(stderr, "ferry dump: listening on %s:%d, relaying to %s:%d\n", cfg->host, bound,
          cfg->to_host, cfg->to_port);
  unsigned next_id = 1;
  while (!stop_flag) {
    struct pollfd p = {lfd, POLLIN, 0};
    int n = poll(&p, 1, 200);
    if (n > 0)
      accept_one(&r, lfd, &next_id);
  }
  close(lfd);
  /* Relayed connections still open are cut by the exit; what they sent so
   * far is printed and recorded already. */
  pthread_mutex_lock(&r.mu);
  flush_locked(&r);
  if (r.raw)
    fclose(r.raw);
  r.raw = NULL;
  /* The mutex stays held: threads still relaying block on it until the
   * process exits, and print nothing more. */
  ferry_buf_close(&r.out);
  fprintf(stderr, "ferry dump: stopped\n");
  return 0;
}
