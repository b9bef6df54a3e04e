/* Blocking TCP helpers with deadlines, for the parts that use plain
 * sockets (device server, client library, query tool).  The tracker and
 * proxy use libuv instead.  IPv4 and IPv6 literals and host names work. */
#ifndef FERRY_BASE_NET_H
#define FERRY_BASE_NET_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"

/* Milliseconds on a monotonic clock, for deadlines. */
int64_t ferry_now_ms(void);

/* Binds and listens on the first free port of [port, port_end) on host
 * (port_end <= port means just port; port 0 means any port).  On success
 * *fd is a listening socket (CLOEXEC) and *bound the real port.  err
 * (capacity errcap) gets a message on failure. */
int ferry_tcp_listen(const char *host, int port, int port_end, int backlog,
                     int *fd, int *bound, char *err, size_t errcap) FERRY_MUST_CHECK;

/* Connects with a deadline (timeout_ms < 0: wait forever).  Sets
 * TCP_NODELAY.  FERRY_ECONNREFUSED, FERRY_ETIMEDOUT, FERRY_NOTFOUND (name
 * does not resolve) or FERRY_ESYS, with the reason alone in err
 * ("connection refused"): the caller says what it connected to. */
int ferry_tcp_connect(const char *host, int port, int timeout_ms, int *fd,
                      char *err, size_t errcap) FERRY_MUST_CHECK;

/* Reads exactly n bytes, or fails: FERRY_ECLOSED (EOF; *got says how many
 * arrived), FERRY_ETIMEDOUT (deadline_ms reached; a value < 0 means no
 * deadline), FERRY_EIO.  got may be NULL. */
int ferry_read_full(int fd, void *buf, size_t n, int64_t deadline_ms,
                    size_t *got) FERRY_MUST_CHECK;
/* Writes exactly n bytes (retrying short writes and EINTR). */
int ferry_write_full(int fd, const void *buf, size_t n,
                     int64_t deadline_ms) FERRY_MUST_CHECK;

/* Writes exactly n bytes with write(2), so to any descriptor (a file, a
 * pipe), retrying short writes and EINTR; no deadline.  FERRY_EIO when a
 * write fails (errno says why) or writes nothing.  Only calls write, so a
 * forked child may use it before _exit. */
int ferry_fd_write_all(int fd, const void *buf, size_t n) FERRY_MUST_CHECK;

/* Turns off Nagle's algorithm: a session's reply header and its data often
 * leave in two writes, and with Nagle on the second one waits for the
 * peer's delayed ACK (~40 ms a reply). */
void ferry_tcp_nodelay(int fd);

/* Acknowledges received data at once instead of after the delayed-ACK
 * timer.  TVM's client writes a message's length and its body in two
 * writes with Nagle on, so its body waits for our ACK of the length: ~40 ms
 * a request unless we ACK at once.  Linux clears the flag as it pleases,
 * so a receiver sets it again after every read.  A no-op elsewhere, and
 * when the environment has FERRY_NO_QUICKACK set (to anything but "" or
 * "0"; read at the first call): the benchmarks' delayed-ACK baseline. */
void ferry_tcp_quickack(int fd);

/* Textual "ip:port" of the peer of fd, for log lines. */
void ferry_peer_name(int fd, char *out, size_t cap);

#endif
