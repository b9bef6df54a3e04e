/* ferry error codes: one currency for the whole code base.
 *
 * Every fallible function returns int: 0 on success, a negative FERRY_E*
 * code on failure.  The table below is the only place codes are defined;
 * names and messages are generated from it so they cannot drift apart.
 * Codes are never renumbered: retire one by renaming it FERRY_EOBSOLETEnn. */
#ifndef FERRY_ERROR_H
#define FERRY_ERROR_H

#define FERRY_ERRNO_MAP(XX)                                                   \
  XX(AGAIN, -1, "need more input")                                            \
  XX(NOMEM, -2, "out of memory")                                              \
  XX(INVAL, -3, "invalid argument")                                           \
  XX(TOOBIG, -4, "size over the limit")                                       \
  XX(PROTO, -5, "malformed message")                                          \
  XX(MAGIC, -6, "wrong magic number")                                         \
  XX(IO, -7, "input/output error")                                            \
  XX(CLOSED, -8, "connection closed by peer")                                 \
  XX(TIMEDOUT, -9, "timed out")                                               \
  XX(NOTFOUND, -10, "not found")                                              \
  XX(EXIST, -11, "already exists")                                            \
  XX(PERM, -12, "not permitted")                                              \
  XX(UNSUPPORTED, -13, "not supported")                                       \
  XX(RANGE, -14, "value out of range")                                        \
  XX(SYS, -15, "system call failed")                                          \
  XX(MISMATCH, -16, "key mismatch")                                           \
  XX(DUPLICATE, -17, "duplicate key")                                         \
  XX(CONNREFUSED, -18, "connection refused")                                  \
  XX(REMOTE, -19, "error raised by the remote side")                          \
  XX(BADHANDLE, -20, "unknown or released handle")                            \
  XX(TYPE, -21, "wrong type")                                                 \
  XX(STATE, -22, "operation not valid in this state")                         \
  XX(CRASHED, -23, "process crashed")                                         \
  XX(DLOPEN, -24, "cannot load library")

enum ferry_error {
  FERRY_OK = 0,
#define FERRY_ERROR_ENUM_(name, code, msg) FERRY_E##name = (code),
  FERRY_ERRNO_MAP(FERRY_ERROR_ENUM_)
#undef FERRY_ERROR_ENUM_
};

/* Static English text for a code; never NULL. */
const char *ferry_strerror(int err);
/* Static name such as "FERRY_EPROTO"; never NULL. */
const char *ferry_err_name(int err);

#if defined(__GNUC__)
#define FERRY_MUST_CHECK __attribute__((warn_unused_result))
#else
#define FERRY_MUST_CHECK
#endif

#endif
