/* Failure descriptions of the RPC codecs (see rpc_error.h). */
#include "wire/rpc_error.h"

#include <stdarg.h>
#include <stdio.h>

int ferry_rpc_why_set(ferry_rpc_why *w, int code, const char *fmt, ...) {
  if (w && !w->msg[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}
