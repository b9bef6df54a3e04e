/* State shared by the server's files (not part of the layer's interface).
 *
 * Everything hangs off one struct ferry_server owned by ferry_server_run;
 * the only process-wide state is the signal self-pipe, which signal
 * handlers must reach without an argument. */
#ifndef FERRY_SERVER_SERVER_STATE_H
#define FERRY_SERVER_SERVER_STATE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/tracker_link.h"
#include "server/server_main.h"
#include "wire/handshake.h"

/* Handshakes read at once; further clients wait in the listen backlog. */
#define SERVER_MAX_HANDSHAKES 16
/* A match key is "<key>:<suffix>"; keys are bounded by the handshake limit. */
#define SERVER_MAX_KEY 512
#define SERVER_PEER_MAX 64
/* Grace between SIGTERM and SIGKILL of a timed-out session. */
#define SERVER_KILL_GRACE_MS 200
/* Accepting pauses this long when the process is out of descriptors. */
#define SERVER_ACCEPT_PAUSE_MS 100
/* A session whose client hung up gets this long to end by itself (it
 * reads EOF at once unless its code is busy) before it is killed. */
#define SERVER_HANGUP_GRACE_MS 500
/* Connections refused by --allow are logged at most once per interval (the
 * rest are counted), so that a stranger cannot fill the log. */
#define SERVER_REFUSED_LOG_MS 1000
/* Writing the timeout packet to a client that does not read is bounded. */
#define SERVER_TIMEOUT_PACKET_MS 1000

/* One accepted connection whose handshake is being read. */
typedef struct server_hs {
  int fd;                   /* -1: slot free */
  int64_t deadline_ms;
  int parked;               /* complete and accepted; waits for the running session to end */
  ferry_handshake_reader rd;
  char peer[SERVER_PEER_MAX];
} server_hs;

typedef struct server_session {
  int active;
  pid_t pid;                /* the child, also its process group */
  int fd;                   /* the client's socket (the parent's copy) */
  char peer[SERVER_PEER_MAX];
  char dir[PATH_MAX];
  uint64_t id;
  int64_t start_ms;
  int64_t deadline_ms;      /* -1: no timeout */
  double timeout_s;         /* what the client asked for (for the message) */
  int timed_out;
  int64_t kill_at_ms;       /* SIGKILL escalation after SIGTERM; -1: none */
  /* The client hung up (POLLRDHUP/POLLHUP/POLLERR on fd): the session is
   * killed at hangup_kill_ms unless it ended by then.  -1: not seen. */
  int64_t hangup_kill_ms;
  int hung_up;              /* killed because the client had gone */
  uint64_t quota;           /* work quota of this session; 0: none */
} server_session;

enum server_tracker_state {
  SERVER_TRACKER_OFF = 0,   /* no --tracker */
  SERVER_TRACKER_DOWN,      /* waiting for next_try_ms to reconnect */
  SERVER_TRACKER_UP,        /* registered (UPDATE_INFO sent) */
};

typedef struct server_tracker {
  enum server_tracker_state state;
  ferry_tracker_link link;  /* link.fd is polled for an unexpected close */
  int64_t next_try_ms;
  int backoff_ms;
  int64_t next_poll_ms;
  int idle_polls;           /* polls in a row without our key pending */
  int need_put;             /* a fresh key must be offered */
  int offered;              /* the current key was PUT on this link */
  int failures;             /* consecutive failed connects (log throttling) */
  int healthy;              /* a poll succeeded on this link */
  char reported_key[SERVER_MAX_KEY]; /* the running session's match key,
                                        "" when no report is due */
  int start_reported;       /* the tracker took its start report */
} server_tracker;

enum server_proxy_state {
  SERVER_PROXY_OFF = 0,
  SERVER_PROXY_DOWN,        /* waiting for next_try_ms to dial */
  SERVER_PROXY_WAITING,     /* registered, waiting for the proxy to pair us */
};

typedef struct server_proxy {
  enum server_proxy_state state;
  int fd;
  int64_t next_try_ms;
  int backoff_ms;
  ferry_handshake_reader rd;
} server_proxy;

typedef struct server_health {
  int due;        /* a self-test must pass before the next offer */
  int failures;   /* in a row */
  int reported;   /* failures the tracker was last told (0: healthy) */
  int64_t next_ms;
  int backoff_ms;
} server_health;

typedef struct ferry_server {
  const ferry_server_config *cfg;
  char **preload;           /* NULL-terminated --load-library list */
  char base_dir[PATH_MAX];  /* parent of session folders */
  int base_dir_owned;       /* we made it: remove it at exit */
  int listen_fd;            /* -1 in proxy mode */
  int64_t accept_paused_until_ms; /* after EMFILE; 0: not paused */
  int64_t refused_log_ms;   /* when a refusal by --allow was last logged */
  uint64_t refused_quiet;   /* refusals not logged since */
  int port;                 /* bound port (or the proxy's) */
  int stopping;
  uint64_t sessions;        /* sessions started so far */
  char devices[1024];       /* "cpu, opencl:0 (NAME)": logged, sent to the tracker */
  /* The key a client must present: "<key>:<suffix>" with a tracker, the
   * device key without; empty string while none is valid. */
  char matchkey[SERVER_MAX_KEY];
  int has_matchkey;
  server_hs hs[SERVER_MAX_HANDSHAKES];
  server_session sess;
  server_tracker tracker;
  server_health health;
  server_proxy proxy;
} ferry_server;

/* ---- server_health.c ---- */
void server_health_init(ferry_server *s);
/* A session ended with this outcome: a crash or a timeout asks for a
 * self-test before the next offer. */
void server_health_session_ended(ferry_server *s, const char *outcome);
/* Runs a due self-test.  Returns 0 when the server may be offered, else
 * when to call again (ferry_now_ms clock). */
int64_t server_health_tick(ferry_server *s, int64_t now);

/* ---- server_main.c ---- */
/* Wakes the poll loop: the byte says why ('C' child, 'T' terminate). */
int server_signal_fd(void);
/* The earlier of two deadlines, where -1 means "none". */
int64_t server_min_deadline(int64_t a, int64_t b);

/* ---- server_listen.c ---- */
void server_listen_init(ferry_server *s);
/* Accepts what the backlog holds (up to the free handshake slots). */
void server_listen_accept(ferry_server *s);
/* Reads from handshake slot i; finishes, parks or drops it. */
void server_listen_read(ferry_server *s, int i);
/* Drops handshakes whose deadline passed; returns the next deadline. */
int64_t server_listen_expire(ferry_server *s, int64_t now);
/* Starts the session of the oldest parked handshake, if any and idle. */
void server_listen_unpark(ferry_server *s);
void server_listen_close_all(ferry_server *s);
/* Sends W(SUCCESS) S("server:<key>") on a blocking fd. */
int server_listen_reply_success(ferry_server *s, int fd);

/* ---- server_fork.c ---- */
/* Starts the session for an accepted client (fd ownership moves to the
 * session, also on failure).  client_key is the full key string the
 * client sent (its options are parsed here).  reply: send W(SUCCESS)
 * S("server:<key>") first (direct clients; a proxy has already answered). */
void server_fork_start(ferry_server *s, int fd, const char *peer,
                       const char *client_key, size_t client_key_len,
                       int reply);
/* Reaps a finished session child (called on SIGCHLD). */
void server_fork_reap(ferry_server *s);
/* Enforces the session timeout; returns the next deadline or -1. */
int64_t server_fork_tick(ferry_server *s, int64_t now);
/* The session socket to watch for the client's hang-up, or -1 (none
 * running, --no-fork, or the hang-up was already seen). */
int server_fork_watch_fd(const ferry_server *s);
/* poll() reported the peer's hang-up on server_fork_watch_fd(). */
void server_fork_client_gone(ferry_server *s);
/* Kills a running session and waits for it (shutdown). */
void server_fork_stop(ferry_server *s);
/* Removes a folder tree without following symbolic links. */
int server_fork_remove_tree(const char *path);
/* Makes the base folder of sessions. */
int server_fork_init(ferry_server *s, char *err, size_t errcap);
void server_fork_close(ferry_server *s);

/* ---- server_tracker.c ---- */
void server_tracker_init(ferry_server *s);
/* Runs due tracker work (connect, PUT, poll); returns the next deadline. */
int64_t server_tracker_tick(ferry_server *s, int64_t now);
/* The tracker socket became readable while no request was in flight. */
void server_tracker_readable(ferry_server *s);
/* A session ended: offer the server again under a fresh key. */
void server_tracker_session_done(ferry_server *s);
/* A session started: the current key is spent. */
void server_tracker_session_started(ferry_server *s);
/* Reports a session start or end (FERRY_SESSION_*) to a ferry tracker;
 * returns the lease it grants in seconds (0: none). */
double server_tracker_report(ferry_server *s, int event, const char *outcome);
void server_tracker_close(ferry_server *s);
/* Sets a fresh "<key>:<random>" match key (or the device key). */
void server_tracker_new_matchkey(ferry_server *s);

/* ---- server_proxy.c ---- */
void server_proxy_init(ferry_server *s);
int64_t server_proxy_tick(ferry_server *s, int64_t now);
void server_proxy_readable(ferry_server *s);
void server_proxy_session_done(ferry_server *s);
void server_proxy_close(ferry_server *s);

#endif
