/* Internals shared by the tracker's files (tracker.c: lifecycle and
 * accept; conn.c: one peer's bytes; handlers.c: one request's meaning). */
#ifndef FERRY_TRACKER_IMPL_H
#define FERRY_TRACKER_IMPL_H

#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/util.h"
#include "tracker/farm.h"
#include "tracker/history_file.h"
#include "tracker/http.h"
#include "tracker/metrics.h"
#include "tracker/scheduler.h"
#include "tracker/tracker.h"
#include "wire/frame.h"
#include "wire/tracker_msg.h"

/* Per-connection output above which we stop reading (and processing) that
 * peer's requests until its socket drains below the low mark: a peer that
 * sends SUMMARY requests and never reads cannot make the tracker buffer
 * replies without bound. */
#define FERRY_TRACKER_OUT_HIGH (4u << 20)
#define FERRY_TRACKER_OUT_LOW (1u << 20)
/* Bytes handed to one read: small enough that the frame reader always has
 * room for them (see conn_alloc_cb), large enough for throughput. */
#define FERRY_TRACKER_READ_CHUNK (32u << 10)
/* All peers' partly received frames together may hold at most this much. */
#define FERRY_TRACKER_MAX_BUFFERED (256u << 20)
/* Tracker-wide ceilings, so that many peers each within their own limits
 * still cannot exhaust memory: scheduler state (offers, requests, queues),
 * UPDATE_INFO objects, and output queued for all peers.  Above the output
 * ceiling the peers holding the most unread output are dropped until it is
 * back to half: pausing everyone instead (as before) let a few peers that
 * never read stop the tracker for all. */
#define FERRY_TRACKER_MAX_STATE (256u << 20)
#define FERRY_TRACKER_MAX_INFO_TOTAL (64u << 20)
#define FERRY_TRACKER_MAX_OUT_TOTAL (256u << 20)
/* Accepts per wake-up of the listening socket (bounded work). */
#define FERRY_TRACKER_ACCEPTS_PER_WAKE 64

typedef struct tconn tconn;

struct ferry_tracker {
  uv_loop_t loop;
  uv_poll_t listen_poll; /* we accept(2) ourselves so errors can back off */
  int listen_fd;
  int listen_active;
  uv_timer_t accept_backoff;
  int backoff_ms;
  uv_timer_t tick; /* 1 s: incomplete-frame deadlines */
  uv_signal_t sigint, sigterm;
  int handle_signals;
  int stopping;
  char host[64];
  int port;
  char stop_key[FERRY_TRACKER_MAX_KEY + 1];
  int frame_timeout_ms;
  ferry_allow allow;            /* empty: everyone may connect */
  ferry_allow allow_servers;    /* empty: everyone may PUT and UPDATE_INFO */
  char allow_text[256];         /* the --allow list, for log lines */
  int64_t refused_sec;          /* the second of the last refusal log line */
  unsigned refused_logged;      /* refusal lines logged in that second */
  unsigned long refused_quiet;  /* refusals not logged since */
  ferry_sched sched;
  ferry_farm farm;
  ferry_metrics metrics;
  ferry_http *http; /* NULL: no HTTP side */
  ferry_history_file history; /* fd -1: no --state-dir */
  tconn *conns, *conns_tail; /* doubly linked, in accept order */
  size_t nconns;
  size_t buffered;   /* bytes held by all frame readers */
  size_t info_total; /* bytes of all connections' info objects */
  size_t out_queued; /* bytes in write requests of all live connections */
  uint64_t next_id;
  uint8_t readbuf[FERRY_TRACKER_READ_CHUNK]; /* shared: one thread */
  ferry_buf scratch; /* reply building, reused */
};

struct tconn {
  uv_tcp_t tcp; /* first: handle->data is not needed */
  ferry_tracker *t;
  tconn *prev, *next;
  ferry_sched_owner owner;
  ferry_frame_reader rd;
  size_t rd_held;               /* bytes this reader counts in t->buffered */
  ferry_tracker_info *info;     /* NULL until UPDATE_INFO */
  char ip[48];                  /* peer IP text */
  char ip_json[64];             /* the same as a JSON string literal */
  char name[64];                /* "ip:port" for log lines */
  int closing;                  /* uv_close requested */
  int paused;                   /* reading stopped: its own output is
                                   over FERRY_TRACKER_OUT_HIGH */
  size_t out_bytes;             /* bytes in its write requests */
  int magic_done;
  int may_serve;                /* its address is in --allow-servers */
  int warned;                   /* refusals already logged at WARN, bits */
  int64_t partial_since_ms;     /* when an incomplete frame started; 0 none */
};

#define ferry_tconn_of_owner(o) ferry_container_of(o, tconn, owner)

/* conn.c */
void ferry_tconn_accept(ferry_tracker *t, int fd);
/* Closes the connection (idempotent); reason is logged at `level`
 * (enum ferry_log_level).  Its offers and requests are released at once. */
void ferry_tconn_close(tconn *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Closes after queued output is written (STOP's reply). */
void ferry_tconn_close_after_flush(tconn *c);
/* Queues one frame (i32le length + body); 0 or a FERRY_E* code. */
int ferry_tconn_send(tconn *c, const void *body, size_t len);

/* handlers.c */
/* Handles one request frame.  Returns 0, or an error after which the caller
 * closes the connection (the reason already logged). */
int ferry_tracker_handle(tconn *c, const uint8_t *body, size_t len);
int ferry_tracker_grant_cb(void *ctx, const ferry_sched_grant *g);

/* farm_conn.c (docs/internals/farm.md) */
int64_t ferry_tracker_wall_ms(void);
/* Before a PUT reaches the scheduler: the device is free again; returns 1
 * if its offers are to be held (drained or offline). */
int ferry_tracker_farm_put(tconn *c, const char *key, const char *addr_json,
                           const char *port_json);
void ferry_tracker_farm_info(tconn *c, const char *info_key);
void ferry_tracker_farm_granted(tconn *srv, tconn *req, const ferry_sched_grant *g);
/* These reply (0 or a FERRY_E* code, as the other handlers). */
int ferry_tracker_farm_report(tconn *c, const ferry_tracker_report *r);
int ferry_tracker_farm_status(tconn *c);
int ferry_tracker_farm_drain(tconn *c, const ferry_tracker_request *r);
int ferry_tracker_farm_status_json(ferry_tracker *t, ferry_buf *b);
/* Publishes the status JSON and the metrics text to the HTTP side. */
void ferry_tracker_http_publish(ferry_tracker *t);
/* Once a second: requests past their deadline get their refusal. */
void ferry_tracker_farm_tick(ferry_tracker *t, int64_t now_ms);

/* tracker.c */
void ferry_tracker_stop(ferry_tracker *t, const char *why);

#endif
