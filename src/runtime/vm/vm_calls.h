/* Between vm_module.c (creation, vm_initialization) and vm_calls.c (the
 * stateful functions and the lookup by name). */
#ifndef FERRY_RUNTIME_VM_VM_CALLS_H
#define FERRY_RUNTIME_VM_VM_CALLS_H

#include "runtime/vm/vm.h"

/* get_function of the VM module (vm_calls.c). */
int ferry_vm_get_function(ferry_module *m, const char *name, ferry_func **out, ferry_err *err);
/* Functions implemented in vm_module.c; *handled = 0 for other names. */
int ferry_vm_module_fn(ferry_vm *vm, const char *name, ferry_call *c, int *handled);
/* Drops the stored inputs, outputs and saved closures. */
void ferry_vm_clear_state(ferry_vm *vm);
/* A TENSOR constant as an NDArray of the VM's device (vm_calls.c). */
int ferry_vm_const_tensor(ferry_vm *vm, const ferry_relax_const *c, ferry_value *out,
                          ferry_err *err) FERRY_MUST_CHECK;

#endif
