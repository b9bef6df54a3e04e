/* Relax VM benchmark: what the interpreter adds around a model's kernels,
 * against a baseline measured in the same run.
 *
 *   baseline: the five kernels of the real TVM v0.20 MLP (matmul, add, relu,
 *             matmul1, softmax) called by hand through ferry_func_call on
 *             prepared tensors, as a hand-written loop would;
 *   ferry:    ferry_vm_invoke of the model's main (23 instructions: the
 *             checks, alloc_storage / alloc_tensor from the pool, the same
 *             five kernels, null_value kills).
 *
 * Reported: the ratio (should stay near 1.0, as the graph executor's does)
 * and the VM's fixed cost per call instruction ((ferry - baseline) / 23).
 *
 *   bench_relax_vm [--golden DIR] [--n RUNS]
 *
 * --golden defaults to <this program's folder>/../../tests/golden (a build
 * folder inside the source tree). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bench_procs.h"
#include "common/bench_rt.h"
#include "runtime/vm/vm.h"

static int call(ferry_rt *rt, ferry_func *f, ferry_value *args, int n, ferry_err *err) {
  ferry_call c;
  ferry_call_init(&c, rt, args, n, err, 1 << 16);
  int rc = ferry_func_call(f, &c);
  ferry_call_close(&c);
  return rc;
}

static ferry_value tv(ferry_ndarray *a) {
  ferry_value v = {.kind = FERRY_KIND_TENSOR, .v.tensor = &a->tensor};
  return v;
}

int main(int argc, char **argv) {
  bench_set_name("bench_relax_vm");
  char golden[PATH_MAX];
  long n = 20000;
  bench_self_path(golden, sizeof golden, "../../tests/golden");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--golden") == 0)
      snprintf(golden, sizeof golden, "%s", argv[i + 1]);
    else if (strcmp(argv[i], "--n") == 0)
      n = strtol(argv[i + 1], NULL, 10);
  }
  if (n < 1) {
    fprintf(stderr, "bench_relax_vm: bad --n\n");
    return 2;
  }
  ferry_rt *rt = bench_rt_open("vm", 1);
  ferry_err err;
  ferry_err_clear(&err);
  char lib[PATH_MAX + 64];
  snprintf(lib, sizeof lib, "%s/relax/v0.20/mlp.so", golden);
  ferry_module *root;
  ferry_vm *vm;
  if (ferry_library_load(rt, lib, &root, &err) ||
      ferry_vm_exec_cast(root) == NULL || ferry_vm_new(ferry_vm_exec_cast(root), &vm, &err)) {
    fprintf(stderr, "bench_relax_vm: %s: %s\n", lib, err.msg);
    return 1;
  }
  ferry_func *init;
  ferry_value dev[3] = {{.kind = FERRY_KIND_INT, .v.i = 1},
                        {.kind = FERRY_KIND_INT, .v.i = 0},
                        {.kind = FERRY_KIND_INT, .v.i = 2}};
  if (ferry_module_get_function(&vm->mod, "vm_initialization", 0, &init, &err) ||
      call(rt, init, dev, 3, &err)) {
    fprintf(stderr, "bench_relax_vm: %s\n", err.msg);
    return 1;
  }
  ferry_obj_release(&init->base);
  /* The kernels and weights the VM uses (constants 7, 10, 14 of mlp.txt). */
  static const char *const names[5] = {"matmul", "add", "relu", "matmul1", "softmax"};
  ferry_func *k[5];
  ferry_module *kl = root->imports[0];
  for (int i = 0; i < 5; i++)
    if (ferry_module_get_function(kl, names[i], 1, &k[i], &err)) {
      fprintf(stderr, "bench_relax_vm: %s\n", err.msg);
      return 1;
    }
  ferry_ndarray *w1 = (ferry_ndarray *)vm->consts[7].v.obj, *b1 = (ferry_ndarray *)vm->consts[10].v.obj,
                *w2 = (ferry_ndarray *)vm->consts[14].v.obj;
  DLDataType f32 = {kDLFloat, 32, 1};
  DLDevice cpu = {kDLCPU, 0};
  int64_t sx[2] = {1, 64}, sh[2] = {1, 32}, so[2] = {1, 10};
  ferry_ndarray *x, *t1, *t2, *t3, *t4, *out;
  if (ferry_ndarray_new(rt, 2, sx, f32, cpu, &x, &err) ||
      ferry_ndarray_new(rt, 2, sh, f32, cpu, &t1, &err) ||
      ferry_ndarray_new(rt, 2, sh, f32, cpu, &t2, &err) ||
      ferry_ndarray_new(rt, 2, sh, f32, cpu, &t3, &err) ||
      ferry_ndarray_new(rt, 2, so, f32, cpu, &t4, &err) ||
      ferry_ndarray_new(rt, 2, so, f32, cpu, &out, &err))
    return 1;
  for (int i = 0; i < 64; i++)
    ((float *)x->tensor.data)[i] = (float)i / 64.0f;
  ferry_value a0[3] = {tv(x), tv(w1), tv(t1)}, a1[3] = {tv(t1), tv(b1), tv(t2)},
              a2[2] = {tv(t2), tv(t3)}, a3[3] = {tv(t3), tv(w2), tv(t4)}, a4[2] = {tv(t4), tv(out)};
  ferry_value in = {.kind = FERRY_KIND_NDARRAY, .v.obj = &x->base};
  int64_t main_idx = ferry_vm_exec_find(vm->exec, "main");
  double best_base = 1e30, best_ours = 1e30;
  for (int round = 0; round < 3; round++) {
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++)
      if (call(rt, k[0], a0, 3, &err) || call(rt, k[1], a1, 3, &err) ||
          call(rt, k[2], a2, 2, &err) || call(rt, k[3], a3, 3, &err) ||
          call(rt, k[4], a4, 2, &err)) {
        fprintf(stderr, "bench_relax_vm: %s\n", err.msg);
        return 1;
      }
    double t1s = bench_now_s();
    for (long i = 0; i < n; i++) {
      ferry_value r;
      if (ferry_vm_invoke(vm, main_idx, &in, 1, 0, &r, &err)) {
        fprintf(stderr, "bench_relax_vm: %s\n", err.msg);
        return 1;
      }
      ferry_vm_value_release(&r);
    }
    double t2s = bench_now_s();
    if (t1s - t0 < best_base)
      best_base = t1s - t0;
    if (t2s - t1s < best_ours)
      best_ours = t2s - t1s;
  }
  double base_ns = best_base / (double)n * 1e9, ours_ns = best_ours / (double)n * 1e9;
  printf("relax VM, v0.20 mlp (5 kernels, 23 instructions)  baseline %9.1f ns  ferry %9.1f ns  "
         "ratio %6.2f\n",
         base_ns, ours_ns, ours_ns / (base_ns > 0 ? base_ns : 1e-9));
  printf("relax VM fixed cost per call instruction            %9.1f ns\n",
         (ours_ns - base_ns) / 23.0);
  for (int i = 0; i < 5; i++)
    ferry_obj_release(&k[i]->base);
  ferry_obj_release(&x->base);
  ferry_obj_release(&t1->base);
  ferry_obj_release(&t2->base);
  ferry_obj_release(&t3->base);
  ferry_obj_release(&t4->base);
  ferry_obj_release(&out->base);
  ferry_obj_release(&vm->mod.base);
  ferry_obj_release(&root->base);
  bench_rt_close(rt);
  return 0;
}
