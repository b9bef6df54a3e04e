/* Helpers shared by the two builtin files (vm_builtins.c: the static-shape
 * set; vm_builtins_dyn.c: the shape heap and the dynamic-shape set). */
#ifndef FERRY_RUNTIME_VM_VM_BUILTINS_H
#define FERRY_RUNTIME_VM_VM_BUILTINS_H

#include "runtime/vm/vm.h"

int vmb_nargs(const char *name, size_t nargs, size_t min, size_t max, ferry_err *err);
int vmb_int(const char *name, const ferry_value *args, size_t i, int64_t *out, ferry_err *err);
int vmb_shape(const char *name, const ferry_value *args, size_t i, ferry_vm_shape **out,
              ferry_err *err);
int vmb_dtype(const char *name, const ferry_value *args, size_t i, DLDataType *out,
              ferry_err *err);
/* The ErrorContext string at args[at], or "". */
const char *vmb_ctx(const ferry_value *args, size_t nargs, size_t at);
/* A dtype as TVM prints it ("float32", "bool", "int8x4"). */
void vmb_dtype_str(DLDataType t, char *out, size_t cap);
int vmb_elem_bytes(DLDataType t, uint64_t *out);
int vmb_shape_bytes(const char *name, const int64_t *dims, int64_t ndim, DLDataType t,
                    uint64_t *out, ferry_err *err);

extern const struct ferry_vm_builtin ferry_vm_builtins_dyn[];

#endif
