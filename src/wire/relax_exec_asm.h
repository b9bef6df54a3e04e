/* A small text description of a Relax VM program, assembled into
 * executable bytes through the builder (relax_exec_build.h), so that the
 * same description gives what TVM v0.20 and what TVM v0.26 would write.
 * It reads like TVM's own `as_text`, with the constants spelled out:
 *
 *   # two_outputs: x f32(3, 4) -> (x + 1, x * 2)
 *   func main(x)
 *     call vm.builtin.check_tensor_info %0, 2, float32, "ctx" -> %void
 *     call vm.builtin.alloc_storage %vm, shape(48), 0, uint8, "global" -> %1
 *     call add %0, tensor(w), %2
 *     if %1, else
 *     goto done
 *   else:
 *     ...
 *   done:
 *     ret %5
 *
 * One statement per line; '#' starts a comment.  Statements: `func NAME(
 * PARAM, ...)` (every function is declared before any body, in the order
 * of the file, as TVM declares them), `call CALLEE ARG, ... [-> REG]`
 * (default destination %void), `ret REG`, `goto LABEL`, `if REG, LABEL`
 * (LABEL is where the false branch starts), `LABEL:`.  Arguments: `%N`,
 * `%void`, `%vm`; an integer (an immediate, or a pooled int if it does not
 * fit 56 bits); `float(1.5)`; a dtype name (`float32`, `uint8`, `int64`,
 * `bool`, `float16x4`); a string in double quotes (\" and \\ escapes);
 * `shape(D, ...)`; `tensor(NAME)` (a tensor the caller supplies by name);
 * `@NAME` (a function as a value).  Names may contain letters, digits,
 * '_' and '.'. */
#ifndef FERRY_WIRE_RELAX_EXEC_ASM_H
#define FERRY_WIRE_RELAX_EXEC_ASM_H

#include "wire/relax_exec_build.h"

#define FERRY_RELAX_ASM_MAX_LINE 65536 /* bytes in one statement */
#define FERRY_RELAX_ASM_MAX_LABELS 4096 /* per function */

typedef struct ferry_relax_asm_tensor {
  const char *name;
  const DLTensor *tensor;
} ferry_relax_asm_tensor;

/* Assembles text (len bytes) for generation gen and appends the validated
 * executable to out.  tensors: the tensors `tensor(NAME)` may name.  On
 * failure err says "relax asm: line N: ..." (or the validator's refusal)
 * and out is unchanged. */
int ferry_relax_asm(const char *text, size_t len, enum ferry_relax_gen gen,
                    const ferry_relax_asm_tensor *tensors, size_t ntensors, ferry_buf *out,
                    char *err, size_t errlen) FERRY_MUST_CHECK;

#endif
