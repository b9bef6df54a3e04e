/* Why an RPC codec refused its input.
 *
 * The wire layer sits below the runtime (whose ferry_err it cannot use), so
 * its decoders describe failures in this small caller-owned buffer; the
 * first message wins, like ferry_err.  Every pointer to it may be NULL. */
#ifndef FERRY_WIRE_RPC_ERROR_H
#define FERRY_WIRE_RPC_ERROR_H

#define FERRY_RPC_WHY_MAX 256

typedef struct ferry_rpc_why {
  char msg[FERRY_RPC_WHY_MAX]; /* NUL-terminated; empty while unset */
} ferry_rpc_why;

static inline void ferry_rpc_why_clear(ferry_rpc_why *w) {
  if (w)
    w->msg[0] = 0;
}
/* Records the message unless one is recorded; returns code. */
int ferry_rpc_why_set(ferry_rpc_why *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
