/* A builder of Relax VM executables that writes the bytes TVM's own
 * ExecBuilder (src/relax/backend/vm/exec_builder.cc) would write for the
 * same program, in either generation: the fixture generator's back end,
 * so tests can have models without TVM.
 *
 * What it reproduces of TVM (checked against the real executables in
 * tests/golden/relax, byte for byte):
 *   - every VM function is declared first (their table order), packed
 *     functions are added at their first use;
 *   - constants are added at their first use; ints that fit 56 bits become
 *     immediates; strings, shapes and tensors are deduplicated in both
 *     generations, dtypes only in V026 (v0.20 keeps one pool entry per
 *     use of a dtype); pooled ints and floats are treated like dtypes, a
 *     rule no real executable has confirmed yet;
 *   - register_file_size is one more than the highest register written or
 *     read (at least the parameter count);
 *   - V020: V1 magic, classic tags; V026: V2 magic, an empty scope
 *     section, tvm-ffi tags (69/70 for shape/tensor).
 * (Checked: declaration order, dedup of strings/shapes/dtypes, register
 * file sizes, tensor blobs — the two real models, both generations.)
 *
 * Errors are sticky: after the first failure every call returns it and
 * ferry_relax_build_finish reports it.  Names and strings passed in are
 * copied. */
#ifndef FERRY_WIRE_RELAX_EXEC_BUILD_H
#define FERRY_WIRE_RELAX_EXEC_BUILD_H

#include "wire/relax_exec.h"

enum ferry_relax_gen {
  FERRY_RELAX_GEN_V020 = 0, /* TVM 0.20, classic ABI (__tvm_dev_mblob) */
  FERRY_RELAX_GEN_V026 = 1, /* TVM 0.22 .. 0.26, tvm-ffi ABI (__tvm_ffi__library_bin) */
};

typedef struct ferry_relax_builder {
  enum ferry_relax_gen gen;
  int rc;           /* first error, sticky */
  int64_t cur;      /* VM function being emitted, -1 when none */
  int64_t max_reg;  /* highest register of the current function */
  ferry_relax_exec x;
  size_t cap_funcs, cap_consts, cap_instrs, cap_words, cap_params;
  void **owned; /* copies of names, strings, dims and tensor blobs */
  size_t nowned, cap_owned;
} ferry_relax_builder;

void ferry_relax_builder_init(ferry_relax_builder *b, enum ferry_relax_gen gen);
void ferry_relax_builder_close(ferry_relax_builder *b);

/* Declares a VM function with its parameter names; returns its index (or
 * a negative FERRY_E* code).  Declare all of them before any body. */
int64_t ferry_relax_build_decl(ferry_relax_builder *b, const char *name, size_t nparams,
                               const char *const *params);
/* Body of declared function `func`: begin, instructions, end. */
int ferry_relax_build_begin(ferry_relax_builder *b, int64_t func);
int ferry_relax_build_end(ferry_relax_builder *b);

/* Argument words.  Those that intern a constant return 0 after a failure
 * (the failure is kept in b->rc). */
int64_t ferry_relax_build_reg(ferry_relax_builder *b, int64_t reg);
int64_t ferry_relax_build_int(ferry_relax_builder *b, int64_t v);
int64_t ferry_relax_build_float(ferry_relax_builder *b, double v);
int64_t ferry_relax_build_dtype(ferry_relax_builder *b, DLDataType t);
int64_t ferry_relax_build_str(ferry_relax_builder *b, const char *s);
int64_t ferry_relax_build_shape(ferry_relax_builder *b, size_t ndim, const int64_t *dims);
/* A tensor constant (compact, CPU; its data is copied). */
int64_t ferry_relax_build_tensor(ferry_relax_builder *b, const DLTensor *t);
/* A function as a value (f[name]); adds a packed entry if new. */
int64_t ferry_relax_build_func(ferry_relax_builder *b, const char *name);

/* Instructions.  dst: a register or FERRY_RELAX_REG_VOID. */
int ferry_relax_build_call(ferry_relax_builder *b, const char *callee, int64_t dst, size_t nargs,
                           const int64_t *args);
int ferry_relax_build_ret(ferry_relax_builder *b, int64_t reg);
int ferry_relax_build_goto(ferry_relax_builder *b, int64_t offset);
int ferry_relax_build_if(ferry_relax_builder *b, int64_t cond, int64_t false_offset);
/* The pc the next instruction will have (for computing jump offsets). */
int64_t ferry_relax_build_pc(const ferry_relax_builder *b);
/* Patches the offset of the Goto or If at pc (emitted with a placeholder). */
int ferry_relax_build_patch(ferry_relax_builder *b, int64_t pc, int64_t offset);

/* Validates and appends the executable's bytes to out.  On failure err
 * says why (a builder error or the validator's refusal). */
int ferry_relax_build_finish(ferry_relax_builder *b, ferry_buf *out, char *err,
                             size_t errlen) FERRY_MUST_CHECK;

#endif
