/* The relax.VMExecutable module bytes (spec relax-vm.md section 1): the
 * payload that export_library embeds in __tvm_dev_mblob (TVM <= 0.20) or
 * __tvm_ffi__library_bin (TVM >= 0.21), after its own u64 length.
 *
 *   u64 magic (V1 ...151D, V2 ...151E) | str version "0.14"
 *   vec<func>    i32 kind, str name, i64 start, i64 end, i64 num_args,
 *                i64 register_file_size, vec<str> param_names
 *   V2 only:     u64 n, n x (i64 const_idx, str scope)
 *   u64 n, n x (i32 tag, payload)       the constant pool
 *   vec<i64> instr_offset | vec<i64> instr_data
 *
 * Three pure steps, each with its own error text (in a caller buffer):
 * ferry_relax_exec_parse reads the layout and bounds every read and count;
 * ferry_relax_exec_validate checks the bytecode so that an interpreter can
 * run it without rechecking; relax_exec_text.c prints what TVM's `stats`
 * and `as_text` print.  ferry_relax_exec_write (relax_exec_write.c) is the
 * inverse of parse; relax_exec_build.h and relax_exec_asm.h build
 * executables for fixtures on top of it.  Nothing here does I/O. */
#ifndef FERRY_WIRE_RELAX_EXEC_H
#define FERRY_WIRE_RELAX_EXEC_H

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ferry/error.h"

#define FERRY_RELAX_MAGIC_V1 0xD225DE2F4214151Dull
#define FERRY_RELAX_MAGIC_V2 0xD225DE2F4214151Eull
#define FERRY_RELAX_VERSION "0.14"

/* Ceilings.  Each is far above what a compiled model needs (the real MLP:
 * 11 functions, 18 constants, 23 instructions, 150 words) and each one
 * bounds an allocation or a loop before it happens. */
#define FERRY_RELAX_MAX_BYTES (1ull << 31)   /* whole executable */
#define FERRY_RELAX_MAX_VERSION 64           /* version string */
#define FERRY_RELAX_MAX_FUNCS 65536          /* function table entries */
#define FERRY_RELAX_MAX_NAME 4096            /* function / parameter name */
#define FERRY_RELAX_MAX_PARAMS 4096          /* parameter names per function */
#define FERRY_RELAX_MAX_REGS (1 << 20)       /* register_file_size */
#define FERRY_RELAX_MAX_SCOPES 65536         /* memory-scope entries */
#define FERRY_RELAX_MAX_SCOPE_LEN 256        /* one scope string */
#define FERRY_RELAX_MAX_CONSTS (1 << 20)     /* constant pool entries */
#define FERRY_RELAX_MAX_SHAPE_NDIM 1024      /* a Shape constant */
#define FERRY_RELAX_MAX_STRING (1 << 20)     /* a String constant */
#define FERRY_RELAX_MAX_INSTRS (1 << 22)     /* instr_offset entries */
#define FERRY_RELAX_MAX_WORDS (1 << 24)      /* instr_data words */
#define FERRY_RELAX_MAX_CALL_ARGS 65536      /* arguments of one Call */
#define FERRY_RELAX_ERR_MAX 256              /* suggested error buffer size */

/* Which numbering the constant tags use.  The tags collide between the
 * generations (1, 3, 5 mean dtype / string / float in v0.20 and int /
 * float / dtype in tvm-ffi), so the caller picks the table from the
 * library's ABI: __tvm_dev_mblob = CLASSIC, __tvm_ffi__library_bin = FFI.
 * The magic never decides it (v0.21 and v0.22 write ffi tags under the V1
 * magic). */
enum ferry_relax_tags {
  FERRY_RELAX_TAGS_CLASSIC = 0, /* v0.20: 0 tensor, 1 dtype, 2 shape, 3 str, 4 int, 5 float */
  /* tvm-ffi type indices: 1 int, 3 float, 5 dtype, 65 str, and shape /
   * tensor 69 / 70 (v0.22 and later) or 71 / 72 (v0.21).  In v0.22+ 71 and
   * 72 are Array and Map, which are never constants, so one table reads
   * both; a file that mixes the two numberings is refused. */
  FERRY_RELAX_TAGS_FFI = 1,
};

enum ferry_relax_func_kind {
  FERRY_RELAX_FUNC_PACKED = 0, /* resolved by name at initialisation */
  FERRY_RELAX_FUNC_VM = 1,     /* bytecode [start_instr, end_instr) */
  FERRY_RELAX_FUNC_VMTIR = 2,  /* compiled mode: __vmtir__<name> */
};

enum ferry_relax_const_kind {
  FERRY_RELAX_CONST_TENSOR = 0,
  FERRY_RELAX_CONST_DTYPE,
  FERRY_RELAX_CONST_SHAPE,
  FERRY_RELAX_CONST_STRING,
  FERRY_RELAX_CONST_INT,
  FERRY_RELAX_CONST_FLOAT,
};

enum ferry_relax_opcode {
  FERRY_RELAX_OP_CALL = 1, /* [1, dst, func_idx, num_args, arg...] */
  FERRY_RELAX_OP_RET = 2,  /* [2, result_reg] */
  FERRY_RELAX_OP_GOTO = 3, /* [3, pc_offset] */
  FERRY_RELAX_OP_IF = 4,   /* [4, cond_reg, false_offset] */
};

/* Argument words: kind in bits 63..56, value in bits 55..0 (sign-extended). */
enum ferry_relax_arg_kind {
  FERRY_RELAX_ARG_REG = 0,
  FERRY_RELAX_ARG_IMM = 1,
  FERRY_RELAX_ARG_CONST = 2,
  FERRY_RELAX_ARG_FUNC = 3,
};
#define FERRY_RELAX_REG_VOID (INT64_C(1) << 54)     /* reads as None; writes dropped */
#define FERRY_RELAX_REG_VM ((INT64_C(1) << 54) + 1) /* reads as the VM context */

static inline int ferry_relax_arg_kind(int64_t word) {
  return (int)(((uint64_t)word >> 56) & 0xFF);
}
static inline int64_t ferry_relax_arg_value(int64_t word) {
  uint64_t v = (uint64_t)word & ((UINT64_C(1) << 56) - 1);
  /* Sign-extend bit 55 without shifting a negative value. */
  return (v & (UINT64_C(1) << 55)) ? (int64_t)(v | ~((UINT64_C(1) << 56) - 1)) : (int64_t)v;
}
static inline int64_t ferry_relax_arg_make(int kind, int64_t value) {
  return (int64_t)(((uint64_t)(unsigned)kind << 56) |
                   ((uint64_t)value & ((UINT64_C(1) << 56) - 1)));
}

typedef struct ferry_relax_str {
  const char *p; /* points into the executable bytes; not NUL-terminated */
  size_t len;
} ferry_relax_str;

typedef struct ferry_relax_func {
  int32_t kind; /* enum ferry_relax_func_kind once validated; as read before */
  ferry_relax_str name;
  int64_t start_instr, end_instr, num_args, register_file_size;
  size_t nparams;
  size_t param_first;      /* index of params[0] in param_store */
  ferry_relax_str *params; /* into ferry_relax_exec.param_store */
} ferry_relax_func;

typedef struct ferry_relax_scope {
  int64_t const_idx; /* checked by ferry_relax_exec_validate */
  ferry_relax_str scope;
} ferry_relax_scope;

typedef struct ferry_relax_const {
  enum ferry_relax_const_kind kind;
  int32_t tag;   /* as written, for the writer and for messages */
  size_t offset; /* byte offset of the tag in the executable */
  union {
    DLDataType dtype;
    int64_t i;
    double f;
    ferry_relax_str str;
    /* SHAPE: ndim raw little-endian i64 at p (ferry_relax_shape_dim).
     * TENSOR: the whole NDArray blob at p (decode with ferry_ndarray_decode;
     * the parser has checked that it decodes). */
    struct {
      const uint8_t *p;
      size_t n;
    } raw;
  } u;
} ferry_relax_const;

typedef struct ferry_relax_exec {
  uint64_t magic;
  enum ferry_relax_tags tags;
  int ffi_v021; /* FFI tags: 1 v0.21's shape / tensor numbers, 0 v0.22's, -1 neither seen */
  ferry_relax_str version;
  size_t nfuncs;
  ferry_relax_func *funcs;
  ferry_relax_str *param_store; /* all parameter names, owned */
  size_t nscopes;
  ferry_relax_scope *scopes;
  size_t nconsts;
  ferry_relax_const *consts;
  size_t ninstrs;
  int64_t *instr_offset; /* owned copies (the input need not be aligned) */
  size_t nwords;
  int64_t *instr_data;
  /* Byte offsets of the sections, for messages and tests. */
  size_t off_funcs, off_scopes, off_consts, off_code;
  const uint8_t *bytes; /* the input, borrowed: it must outlive the struct */
  size_t len;
} ferry_relax_exec;

/* Parses len bytes (the executable itself, without the u64 length in front
 * of it).  The result borrows `bytes` (names, strings, tensor data) and
 * owns its arrays: release it with ferry_relax_exec_close.  On failure
 * *out is left empty (nothing to free; closing it is harmless) and err (if
 * errlen > 0) says what and at which byte offset.  FERRY_EAGAIN: input ends
 * early; FERRY_EMAGIC: wrong magic or version; FERRY_ETOOBIG: a count or
 * length over its ceiling or over what the rest of the input could hold;
 * FERRY_EPROTO: a value that cannot be (unknown tag, a tag of the other
 * generation, a bad tensor, trailing bytes); FERRY_ENOMEM. */
int ferry_relax_exec_parse(ferry_relax_exec *out, const uint8_t *bytes, size_t len,
                           enum ferry_relax_tags tags, char *err,
                           size_t errlen) FERRY_MUST_CHECK;
void ferry_relax_exec_close(ferry_relax_exec *exec);

/* Checks what parse cannot: function kinds, ranges and parameter counts,
 * unique names, every instruction (opcode, length, registers below the
 * frame size, constant and function indices, Call arity against a VM
 * callee, jump targets inside the function, If offsets > 1, a Ret at the
 * end) and the scope section's constant indices.  FERRY_EPROTO with the
 * function's name, its index and the instruction index in err. */
int ferry_relax_exec_validate(const ferry_relax_exec *exec, char *err,
                              size_t errlen) FERRY_MUST_CHECK;

/* Dimension i of a SHAPE constant. */
int64_t ferry_relax_shape_dim(const ferry_relax_const *c, size_t i);

/* What TVM's `stats` and `as_text` return, appended to out (a parsed exec;
 * indices that validation would refuse print as TVM prints them). */
int ferry_relax_exec_stats(const ferry_relax_exec *exec, ferry_buf *out) FERRY_MUST_CHECK;
int ferry_relax_exec_text(const ferry_relax_exec *exec, ferry_buf *out) FERRY_MUST_CHECK;

/* Appends the executable's bytes (the inverse of parse: parse then write
 * gives the input back byte for byte).  Writes what the struct holds, as it
 * is: each constant with its own tag, the scope section only under the V2
 * magic, tensors as their stored NDArray blob, so a test can build lying
 * files on purpose.  Borrowed pointers (names, blobs) may point anywhere.
 * FERRY_ETOOBIG/ENOMEM from the buffer; on failure out->len is unchanged. */
int ferry_relax_exec_write(const ferry_relax_exec *exec, ferry_buf *out) FERRY_MUST_CHECK;

#endif
