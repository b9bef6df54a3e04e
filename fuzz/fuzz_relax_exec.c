/* libFuzzer target: the relax.VMExecutable parser, validator and
 * disassembler.  The first byte picks the constant tag table (even:
 * classic, odd: tvm-ffi), the rest is the executable.  Checked
 * properties, beyond "no crash, no leak, no read past the input":
 *   - whatever parses writes back to exactly the input bytes;
 *   - stats and as_text succeed on anything that parses;
 *   - on what validates, every instruction of every VM function decodes
 *     inside the code with registers below the frame size, indices inside
 *     their tables and jump targets inside the function (what the
 *     interpreter will rely on without checking). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wire/relax_exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int reg_ok(int64_t r, int64_t regs) {
  return (r >= 0 && r < regs) || r == FERRY_RELAX_REG_VOID || r == FERRY_RELAX_REG_VM;
}

static void walk(const ferry_relax_exec *x) {
  for (size_t fi = 0; fi < x->nfuncs; fi++) {
    const ferry_relax_func *f = &x->funcs[fi];
    if (f->kind != FERRY_RELAX_FUNC_VM)
      continue;
    for (int64_t pc = f->start_instr; pc < f->end_instr; pc++) {
      const int64_t *w = &x->instr_data[x->instr_offset[pc]];
      int64_t regs = f->register_file_size;
      switch (w[0]) {
      case FERRY_RELAX_OP_CALL:
        if (w[2] < 0 || (uint64_t)w[2] >= x->nfuncs || (w[1] != FERRY_RELAX_REG_VOID && (w[1] < 0 || w[1] >= regs)))
          __builtin_trap();
        for (int64_t a = 0; a < w[3]; a++) {
          int64_t v = ferry_relax_arg_value(w[4 + a]);
          int k = ferry_relax_arg_kind(w[4 + a]);
          if ((k == FERRY_RELAX_ARG_REG && !reg_ok(v, regs)) ||
              (k == FERRY_RELAX_ARG_CONST && (v < 0 || (uint64_t)v >= x->nconsts)) ||
              (k == FERRY_RELAX_ARG_FUNC && (v < 0 || (uint64_t)v >= x->nfuncs)) || k > 3)
            __builtin_trap();
        }
        break;
      case FERRY_RELAX_OP_RET:
        if (!reg_ok(w[1], regs) || w[1] == FERRY_RELAX_REG_VM)
          __builtin_trap();
        break;
      case FERRY_RELAX_OP_GOTO:
        if (pc + w[1] <= pc || pc + w[1] >= f->end_instr)
          __builtin_trap();
        break;
      case FERRY_RELAX_OP_IF:
        if (w[1] < 0 || w[1] >= regs || w[2] <= 1 || pc + w[2] >= f->end_instr)
          __builtin_trap();
        break;
      default:
        __builtin_trap();
      }
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  enum ferry_relax_tags tags = (data[0] & 1) ? FERRY_RELAX_TAGS_FFI : FERRY_RELAX_TAGS_CLASSIC;
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  if (ferry_relax_exec_parse(&x, data + 1, size - 1, tags, err, sizeof err) != FERRY_OK) {
    if (err[0] == '\0')
      __builtin_trap(); /* every refusal says why */
    return 0;
  }
  ferry_buf out;
  ferry_buf_init(&out, 1u << 28);
  if (ferry_relax_exec_write(&x, &out) != FERRY_OK || out.len != size - 1 ||
      memcmp(out.data, data + 1, out.len) != 0)
    __builtin_trap();
  out.len = 0;
  if (ferry_relax_exec_stats(&x, &out) != FERRY_OK || ferry_relax_exec_text(&x, &out) != FERRY_OK)
    __builtin_trap();
  ferry_buf_close(&out);
  if (ferry_relax_exec_validate(&x, err, sizeof err) == FERRY_OK)
    walk(&x);
  else if (err[0] == '\0')
    __builtin_trap();
  ferry_relax_exec_close(&x);
  return 0;
}
