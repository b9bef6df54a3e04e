/* libFuzzer target: the Relax VM interpreter on whatever the loader
 * accepts.  The first byte picks the loader (even: classic __tvm_dev_mblob
 * tags, odd: tvm-ffi), the rest is the executable (u64 length added here).
 * What validates is initialised on CPU (unknown packed functions make
 * vm_initialization fail cleanly: there is no kernel library) and every
 * VM function is run with small int and tensor arguments.  Properties:
 * no crash, no leak, no read outside the registers, every run ends (the
 * depth and step bounds), and the session's allocation table is empty
 * once every object is released (nothing leaked into the runtime).  Seed
 * with the .exec files of tests/golden/relax (prefixed with 0x00 / 0x01). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "runtime/vm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ferry_rt *rt;

static void open_rt(void) {
  static char dir[] = "/tmp/ferry_fuzz_vm_XXXXXX";
  if (mkdtemp(dir) == NULL)
    abort();
  ferry_rt_options opt = {.work_dir = dir, .num_threads = 1, .max_memory = 64u << 20};
  ferry_err err;
  ferry_err_clear(&err);
  if (ferry_rt_open(&rt, &opt, &err) != FERRY_OK)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 20))
    return 0;
  if (rt == NULL)
    open_rt();
  uint8_t *p = malloc(size + 7);
  if (p == NULL)
    return 0;
  put_le64(p, size - 1);
  memcpy(p + 8, data + 1, size - 1);
  ferry_err err;
  ferry_err_clear(&err);
  ferry_module *m = NULL;
  size_t used = 0;
  int rc = (data[0] & 1) ? ferry_vm_exec_load_ffi(rt, p + 8, size - 1, &used, &m, &err)
                         : ferry_vm_exec_load_classic(rt, p, size + 7, &used, &m, &err);
  free(p);
  if (rc)
    return 0;
  ferry_vm_exec *e = ferry_vm_exec_cast(m);
  ferry_vm *vm = NULL;
  if (ferry_vm_new(e, &vm, &err) == FERRY_OK) {
    ferry_func *init = NULL;
    if (ferry_module_get_function(&vm->mod, "vm_initialization", 0, &init, &err) == FERRY_OK) {
      ferry_value a[3] = {{.kind = FERRY_KIND_INT, .v.i = 1},
                          {.kind = FERRY_KIND_INT, .v.i = 0},
                          {.kind = FERRY_KIND_INT, .v.i = 2}};
      ferry_call c;
      ferry_call_init(&c, rt, a, 3, &err, 1 << 16);
      rc = ferry_func_call(init, &c);
      ferry_call_close(&c);
      ferry_obj_release(&init->base);
      int64_t shape[2] = {2, 3};
      DLDataType f32 = {kDLFloat, 32, 1};
      DLDevice cpu = {kDLCPU, 0};
      ferry_ndarray *t = NULL;
      if (rc == FERRY_OK && ferry_ndarray_new(rt, 2, shape, f32, cpu, &t, &err) == FERRY_OK) {
        memset(t->tensor.data, 0, 24);
        for (size_t fi = 0; fi < e->ex.nfuncs; fi++) {
          const ferry_relax_func *f = &e->ex.funcs[fi];
          if (f->kind != FERRY_RELAX_FUNC_VM || f->num_args > 16)
            continue;
          ferry_value args[16];
          for (int64_t k = 0; k < f->num_args; k++) {
            if (k % 2 == 0) {
              args[k].kind = FERRY_KIND_NDARRAY;
              args[k].v.obj = &t->base;
            } else {
              args[k].kind = FERRY_KIND_INT;
              args[k].v.i = k;
            }
          }
          ferry_value out;
          ferry_err_clear(&err);
          if (ferry_vm_invoke(vm, (int64_t)fi, args, (size_t)f->num_args, 0, &out, &err) ==
              FERRY_OK)
            ferry_vm_value_release(&out);
        }
        ferry_obj_release(&t->base);
      }
    }
    ferry_obj_release(&vm->mod.base);
  }
  ferry_obj_release(&m->base);
  /* Everything the run allocated went back with its objects. */
  if (rt->nallocs != 0)
    __builtin_trap();
  return 0;
}
