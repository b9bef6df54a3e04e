#include "ferry/value.h"

const char *ferry_kind_name(enum ferry_kind kind) {
  switch (kind) {
  case FERRY_KIND_NONE:
    return "None";
  case FERRY_KIND_INT:
    return "int";
  case FERRY_KIND_BOOL:
    return "bool";
  case FERRY_KIND_FLOAT:
    return "float";
  case FERRY_KIND_OPAQUE:
    return "handle";
  case FERRY_KIND_DTYPE:
    return "DataType";
  case FERRY_KIND_DEVICE:
    return "Device";
  case FERRY_KIND_TENSOR:
    return "DLTensor";
  case FERRY_KIND_STR:
    return "str";
  case FERRY_KIND_BYTES:
    return "bytes";
  case FERRY_KIND_FUNC:
    return "Function";
  case FERRY_KIND_MODULE:
    return "Module";
  case FERRY_KIND_NDARRAY:
    return "NDArray";
  case FERRY_KIND_OBJECT:
    return "Object";
  }
  return "unknown";
}
