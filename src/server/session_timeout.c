/* TVM's session-timeout exception packet (tracker-proxy-server.md §3.5),
 * written by the server's parent process when a session outlives its
 * -timeout=. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/session.h"
#include "wire/rpc_dialect.h"

/* Python's repr() of a float: the shortest digits that read back to the
 * same double, fixed notation for 1e-4 <= |x| < 1e16, always with a
 * fractional part or an exponent. */
static void python_float_repr(char *out, size_t cap, double x) {
  if (isnan(x) || isinf(x)) {
    snprintf(out, cap, "%s", isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf"));
    return;
  }
  char e[64];
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(e, sizeof e, "%.*e", prec - 1, x);
    if (strtod(e, NULL) == x)
      break;
  }
  const char *ep = strchr(e, 'e');
  int exp10 = ep ? atoi(ep + 1) : 0;
  if (x != 0 && (exp10 < -4 || exp10 >= 16)) {
    /* %e prints at least two exponent digits, as Python does. */
    char mant[32];
    size_t mlen = (size_t)(ep - e);
    memcpy(mant, e, mlen);
    mant[mlen] = 0;
    if (strchr(mant, '.')) { /* drop trailing zeros of the mantissa */
      while (mant[mlen - 1] == '0')
        mant[--mlen] = 0;
      if (mant[mlen - 1] == '.')
        mant[--mlen] = 0;
    }
    snprintf(out, cap, "%se%c%02d", mant, exp10 < 0 ? '-' : '+', abs(exp10));
    return;
  }
  int decimals = prec - 1 - exp10;
  if (decimals < 1)
    snprintf(out, cap, "%.0f.0", x);
  else
    snprintf(out, cap, "%.*f", decimals, x);
}

int ferry_session_timeout_packet(ferry_buf *out, double timeout_s,
                                 enum ferry_dialect_id dialect) {
  char num[64], msg[256];
  python_float_repr(num, sizeof num, timeout_s);
  int len = snprintf(msg, sizeof msg,
                     "RPCSessionTimeoutError: Your %ss session has expired, try to increase "
                     "the \"session_timeout\" value.",
                     num);
  const ferry_dialect *d = ferry_dialect_get(dialect);
  if (!d)
    d = &ferry_dialect_classic;
  return ferry_rpc_exception_encode(out, d, msg, (size_t)len);
}
