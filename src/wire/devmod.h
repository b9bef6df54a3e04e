/* Decoder of a device module's payload in a module blob: fmt, the
 * function-info map, and the code (spec device-modules.md 1.1, 1.2).  The
 * OpenCL, CUDA and (v0.20) Vulkan payloads all start this way; the OpenCL
 * one is exactly fmt + fmap + data.
 *
 * FunctionInfo has one layout per ABI generation: v0.20 (classic) writes
 * name, arg_types, launch_param_tags; v0.26 (tvm-ffi) adds arg_extra_tags.
 * A reader must be told which: the two cannot be told apart by content.
 * Pure: reads only inside the given bytes; every count has a ceiling
 * checked before allocating. */
#ifndef FERRY_WIRE_DEVMOD_H
#define FERRY_WIRE_DEVMOD_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"
#include "ferry/tvm_c_abi.h"

#define FERRY_DEVMOD_MAX_FMT 32
#define FERRY_DEVMOD_MAX_FUNCS 4096
#define FERRY_DEVMOD_MAX_NAME 1024
#define FERRY_DEVMOD_MAX_ARGS 1024 /* TVM's max_function_args is 128 */
#define FERRY_DEVMOD_MAX_TAGS 16
#define FERRY_DEVMOD_MAX_TAG 64
#define FERRY_DEVMOD_MAX_DATA (256u << 20)

enum ferry_devmod_gen {
  FERRY_DEVMOD_V020 = 0, /* classic ABI (TVM <= 0.20) */
  FERRY_DEVMOD_V026 = 1, /* tvm-ffi ABI (TVM >= 0.21): + arg_extra_tags */
};

typedef struct ferry_devmod_func {
  char *name; /* the map key (the kernel's symbol); NUL-terminated */
  int nargs;
  DLDataType *arg_types;
  int ntags;
  char **tags; /* launch_param_tags, NUL-terminated each */
} ferry_devmod_func;

typedef struct ferry_devmod {
  char fmt[FERRY_DEVMOD_MAX_FMT + 1];
  size_t nfuncs;
  ferry_devmod_func *funcs;
  char *data; /* the code, NUL-terminated copy */
  size_t data_len;
  size_t consumed; /* payload bytes read (fmt .. data) */
} ferry_devmod;

/* Decodes the payload at p (avail bytes readable).  On success *out owns
 * copies of everything (ferry_devmod_free).  On failure *out is zeroed,
 * nothing needs freeing, why says what is wrong, and the code is
 * FERRY_EAGAIN (truncated), FERRY_ETOOBIG (over a ceiling), FERRY_EPROTO
 * (malformed) or FERRY_ENOMEM. */
int ferry_devmod_decode(const uint8_t *p, size_t avail, enum ferry_devmod_gen gen,
                        ferry_devmod *out, char *why, size_t why_cap) FERRY_MUST_CHECK;
void ferry_devmod_free(ferry_devmod *m);

/* OpenCL C source split as TVM's SplitKernels does: a piece per line
 * "// Function: <name>", running to the next such line.  *out gets the
 * piece of kernel `name` (pointer into src, not NUL-terminated) or
 * FERRY_ENOTFOUND. */
int ferry_devmod_kernel_source(const char *src, size_t len, const char *name, const char **out,
                               size_t *out_len) FERRY_MUST_CHECK;

#endif
