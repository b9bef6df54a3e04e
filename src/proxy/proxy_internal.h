/* Shared between the proxy's shell files: the proxy object, its
 * connections and its tracker link.  Not a public interface. */
#ifndef FERRY_PROXY_INTERNAL_H
#define FERRY_PROXY_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/buf.h"
#include "proxy/addrcount.h"
#include "proxy/pairing.h"
#include "proxy/proxy.h"
#include "wire/constants.h"
#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/websocket.h"

#define PX_READ_CHUNK 262144       /* bytes per read: fewer wake-ups per MiB relayed */
#define PX_CLOSE_DEADLINE_MS 30000 /* flush before close, at most this long */
#define PX_HTTP_DEADLINE_MS 10000  /* an HTTP request head */

typedef struct ferry_proxy ferry_proxy;

enum pconn_state {
  PC_HTTP,      /* web port: reading the request head */
  PC_HANDSHAKE, /* reading W(magic) S(key) */
  PC_WAITING,   /* handshake done, in the pairing table */
  PC_PAIRED,    /* relaying */
  PC_FILE,      /* web port: streaming a file */
  PC_CLOSING,
};

typedef struct pconn {
  ferry_proxy *px;
  struct pconn *prev, *next; /* every open connection, for shutdown */
  uv_tcp_t tcp;
  uv_timer_t timer;          /* handshake / close deadline */
  uv_shutdown_t shutdown_req;
  int handles_open;
  int web;                   /* accepted on the web port */
  int ws;                    /* speaks WebSocket frames */
  int state;
  char name[96];
  ferry_handshake_reader hs;
  int role;
  struct pconn *peer;
  size_t inflight;           /* bytes queued for writing to this conn */
  int paused;                /* reading stopped: a queue is full */
  uint8_t addr[16];          /* peer address (ferry_addrcount_key) */
  int counted;               /* counts in px->peers (not yet paired) */
  ferry_http_request http;
  ferry_ws_decoder wsd;
  int ws_close_sent;         /* our close frame is queued */
  int ws_close_rcvd;         /* the peer's close frame arrived */
  int file_fd;               /* PC_FILE */
  /* splice.c: the kernel-side relay */
  int splice;                /* 0 off, 1 waiting for the replies to go, 2 on */
  uv_poll_t poll;            /* on poll_fd */
  int poll_open;
  int poll_fd;               /* dup of the socket; -1 */
  int poll_events;
  int pipe_r, pipe_w;        /* what was read from this conn; -1 */
  size_t pipe_bytes, pipe_cap;
  int eof;                   /* the peer sent FIN (splice read 0) */
} pconn;

/* A write request with its bytes; room for a WebSocket header in front. */
typedef struct wchunk {
  uv_write_t req;
  pconn *to;
  size_t counted;           /* bytes added to to->inflight */
  size_t cap;               /* payload capacity */
  struct wchunk *next_free; /* in the pool */
  uint8_t data[];
} wchunk;

#define PX_POOL_MAX 16 /* recycled read chunks (4 MiB) */
/* A relay leg's queue limit never drops below this, however many pairs
 * share max_buffered: 4096 connections x 16 KiB = the 64 MiB default. */
#define PX_MIN_SHARE 16384
#define PX_MIN_READ 1024     /* no read into less room than this */
#define PX_COPY_BELOW 16384  /* reads smaller than this are copied out */

typedef struct web_route {
  char *url;      /* "/tvmjs.bundle.js" */
  char *path;     /* file on disk */
  int index_page; /* html served with the WebSocket URL rewritten */
} web_route;

enum tlink_state { TL_IDLE, TL_CONNECTING, TL_MAGIC, TL_READY, TL_WAIT_REPLY };

typedef struct tlink {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  int tcp_open;           /* the handle is initialised and not yet closed */
  int state;
  int pending;            /* FERRY_TRACKER_PUT / UPDATE_INFO / GET_PENDING_MATCHKEYS */
  ferry_frame_reader rd;
  int64_t reconnect_at_ms;
  int64_t reply_deadline_ms;
  int64_t next_poll_ms;
  int flush;              /* a parked server left: drop and re-offer */
  int failures;           /* consecutive connect failures, for quieter logs */
  int64_t put_hold_ms;    /* no PUT before this: the tracker refused one */
  char put_key[FERRY_HANDSHAKE_MAX_KEY + 64]; /* match key of the PUT in flight */
  struct sockaddr_storage addr;
  char scratch[16384];    /* read buffer */
} tlink;

struct ferry_proxy {
  uv_loop_t loop;
  const ferry_proxy_config *cfg;
  uv_tcp_t listener, web_listener;
  int has_web;
  int port, web_port;
  uv_signal_t sigint, sigterm;
  uv_timer_t tick;        /* expiry of waiters, tracker link */
  ferry_pairing table;
  pconn *conns;
  size_t nconns;
  ferry_addrcount peers;  /* unpaired connections per address */
  size_t npaired;         /* connections in PC_PAIRED (relay legs) */
  int has_tracker;
  tlink tl;
  wchunk *pool;
  size_t npool;
  web_route *routes;
  size_t nroutes;
  int stopping;
};

/* accept.c */
void px_on_connection(uv_stream_t *server, int status, int web);
void px_conns_sweep(ferry_proxy *px);

/* conn.c */
void px_conn_close(pconn *c, int flush);
/* Starts the handshake (or HTTP head) deadline and reading. */
void px_conn_start(pconn *c, uint64_t deadline_ms);
/* Sends W(code) and closes after it was written. */
void px_conn_reject(pconn *c, int32_t code);
/* c no longer counts against its address's --max-per-address. */
void px_conn_uncount(pconn *c);
void px_pool_free(ferry_proxy *px);
/* How many bytes (allocated) one relay leg's queue may hold: high_water,
 * or its share of max_buffered if smaller (at least PX_MIN_SHARE). */
size_t px_leg_limit(const ferry_proxy *px);
/* Copies src to dst (capacity cap, NUL-terminated, truncated) with every
 * byte outside printable ASCII shown as '?'; for logging peer text. */
void px_printable(char *dst, size_t cap, const char *src, size_t len);
/* Payload bytes that arrived with the HTTP upgrade (before pairing). */
void px_conn_feed_payload(pconn *c, uint8_t *p, size_t n);

/* The close callback of every handle of a pconn: frees it after the last. */
void px_handle_closed_cb(uv_handle_t *h);

/* splice.c (Linux; elsewhere px_splice_available() is 0 and the portable
 * relay of conn.c is used) */
#define PX_PIPE_SIZE (256 * 1024) /* asked for each direction's pipe */
int px_splice_available(void);
/* a and a->peer are paired, nothing is queued to either and neither is
 * reading: relay them through pipes from now on.  FERRY_ESYS (no pipe or
 * descriptor left) or FERRY_EUNSUPPORTED: nothing changed, use the
 * portable relay. */
int px_splice_start(pconn *a);
/* Stops c's splice relay (its poll handle closes through
 * px_handle_closed_cb); nothing if it has none. */
void px_splice_close(pconn *c);

/* web.c */
int px_web_handle_request(pconn *c, uint8_t *rest, size_t rest_len);
void px_file_continue(pconn *c);
int px_web_load_routes(ferry_proxy *px, char *err, size_t errcap);
void px_web_free_routes(ferry_proxy *px);
int px_send_raw(pconn *c, const void *p, size_t n);
int px_send_ws_control(pconn *c, int opcode, const void *p, size_t n);
int px_ws_feed(pconn *c, uint8_t *p, size_t n);

/* tracker_link.c */
int px_tracker_init(ferry_proxy *px, char *err, size_t errcap);
void px_tracker_tick(ferry_proxy *px);
void px_tracker_kick(ferry_proxy *px);
void px_tracker_stale_offer(ferry_proxy *px);
void px_tracker_stop(ferry_proxy *px);

int64_t px_now(ferry_proxy *px);

#endif
