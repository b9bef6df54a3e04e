/* ferry_value: one argument or result, independent of any wire dialect.
 *
 * TVM's two session dialects (classic type codes of c_runtime_api.h, and
 * tvm-ffi type indices) and its two module ABIs (TVMValue + type code, and
 * TVMFFIAny) each number these kinds differently.  Each of those numberings
 * is translated to and from ferry_kind in exactly one place (one file per
 * dialect in src/wire/, one per ABI in src/runtime/); everything between
 * (session dispatch, handle table, registry, time evaluator, graph executor)
 * speaks only ferry_value. */
#ifndef FERRY_VALUE_H
#define FERRY_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

enum ferry_kind {
  FERRY_KIND_NONE = 0,
  FERRY_KIND_INT,     /* v.i */
  FERRY_KIND_BOOL,    /* v.i, 0 or 1 */
  FERRY_KIND_FLOAT,   /* v.f */
  FERRY_KIND_OPAQUE,  /* v.handle: a pointer-sized value (data buffers, streams) */
  FERRY_KIND_DTYPE,   /* v.dtype */
  FERRY_KIND_DEVICE,  /* v.device */
  FERRY_KIND_TENSOR,  /* v.tensor: a borrowed DLTensor (no ownership) */
  FERRY_KIND_STR,     /* v.str: NUL-terminated, len excludes the NUL */
  FERRY_KIND_BYTES,   /* v.str: raw bytes */
  FERRY_KIND_FUNC,    /* v.obj (runtime) or v.handle (on the wire) */
  FERRY_KIND_MODULE,  /* v.obj or v.handle */
  FERRY_KIND_NDARRAY, /* v.obj or v.handle: an owned tensor object */
  FERRY_KIND_OBJECT,  /* v.obj or v.handle: any other object */
};

struct ferry_obj;

typedef struct ferry_value {
  enum ferry_kind kind;
  union {
    int64_t i;
    double f;
    uint64_t handle;
    DLDataType dtype;
    DLDevice device;
    DLTensor *tensor;
    struct {
      const char *data;
      size_t len;
    } str;
    struct ferry_obj *obj;
  } v;
} ferry_value;

/* Human-readable kind name for error messages ("int", "DLTensor", ...). */
const char *ferry_kind_name(enum ferry_kind kind);

#endif
