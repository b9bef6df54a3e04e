#include "ferry/error.h"

const char *ferry_strerror(int err) {
  switch (err) {
  case FERRY_OK:
    return "success";
#define FERRY_ERROR_MSG_(name, code, msg)                                     \
  case FERRY_E##name:                                                         \
    return msg;
    FERRY_ERRNO_MAP(FERRY_ERROR_MSG_)
#undef FERRY_ERROR_MSG_
  }
  return "unknown error";
}

const char *ferry_err_name(int err) {
  switch (err) {
  case FERRY_OK:
    return "FERRY_OK";
#define FERRY_ERROR_NAME_(name, code, msg)                                    \
  case FERRY_E##name:                                                         \
    return "FERRY_E" #name;
    FERRY_ERRNO_MAP(FERRY_ERROR_NAME_)
#undef FERRY_ERROR_NAME_
  }
  return "FERRY_E?";
}
