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
 * Then the model bench_graph measures, as TVM would compile it for the VM:
 * a chain of K=8 calls of testlib's addone whose results alternate between
 * two tensors (main: check_tensor_info, two alloc_storage + alloc_tensor,
 * the K calls, ret), assembled in this program, against the same K calls by
 * hand; at bench_graph's size (16 floats) and at a realistic one (64 Ki
 * floats, kernels of tens of microseconds).  Last the CNN fixture
 * (tests/models/relax/fx_cnn.rvm) against its three kernels by hand.
 *
 *   bench_relax_vm [--golden DIR] [--models DIR] [--n RUNS]
 *
 * --golden defaults to <this program's folder>/../../tests/golden (a build
 * folder inside the source tree), --models to <folder>/../tests/models. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bench_procs.h"
#include "common/bench_rt.h"
#include "runtime/rt_internal.h"
#include "runtime/vm/vm.h"
#include "wire/relax_exec_asm.h"

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

#define CHAIN_K 8

/* The chain model as TVM's VM code for it looks: the results alternate
 * between two planned tensors (%2, %4). */
static int chain_text(char *t, size_t cap, long elems) {
  int w = snprintf(t, cap,
                   "func main(x)\n"
                   "  call vm.builtin.check_tensor_info %%0, 1, float32, \"x\"\n"
                   "  call vm.builtin.alloc_storage %%vm, shape(%ld), 0, uint8, \"global\" -> %%1\n"
                   "  call vm.builtin.alloc_tensor %%1, 0, shape(%ld), float32 -> %%2\n"
                   "  call vm.builtin.alloc_storage %%vm, shape(%ld), 0, uint8, \"global\" -> %%3\n"
                   "  call vm.builtin.alloc_tensor %%3, 0, shape(%ld), float32 -> %%4\n"
                   "  call addone %%0, %%2\n",
                   elems * 4, elems, elems * 4, elems);
  for (int i = 1; i < CHAIN_K && w > 0 && (size_t)w < cap; i++)
    w += snprintf(t + w, cap - (size_t)w, "  call addone %%%d, %%%d\n", i % 2 ? 2 : 4,
                  i % 2 ? 4 : 2);
  if (w > 0 && (size_t)w < cap)
    w += snprintf(t + w, cap - (size_t)w, "  ret %%%d\n", CHAIN_K % 2 ? 2 : 4);
  return w > 0 && (size_t)w < cap ? 0 : -1;
}

/* One row: the chain through ferry_vm_invoke against CHAIN_K addone calls
 * by hand on two prepared tensors; best of three rounds of n runs. */
static int chain_row(ferry_rt *rt, ferry_module *lib, long elems, long n, ferry_err *err) {
  char text[4096], why[256];
  ferry_buf b;
  ferry_buf_init(&b, 1 << 20);
  uint8_t len8[8] = {0};
  if (chain_text(text, sizeof text, elems) || ferry_buf_append(&b, len8, 8) ||
      ferry_relax_asm(text, strlen(text), FERRY_RELAX_GEN_V020, NULL, 0, &b, why, sizeof why)) {
    fprintf(stderr, "bench_relax_vm: chain: %s\n", why);
    ferry_buf_close(&b);
    return 1;
  }
  uint64_t plen = b.len - 8;
  for (int i = 0; i < 8; i++)
    b.data[i] = (uint8_t)(plen >> (8 * i));
  ferry_module *m = NULL;
  ferry_vm *vm = NULL;
  ferry_func *init = NULL, *k = NULL;
  size_t used = 0;
  int rc = ferry_vm_exec_load_classic(rt, b.data, b.len, &used, &m, err);
  ferry_buf_close(&b);
  ferry_value dev[3] = {{.kind = FERRY_KIND_INT, .v.i = 1},
                        {.kind = FERRY_KIND_INT, .v.i = 0},
                        {.kind = FERRY_KIND_INT, .v.i = 2}};
  rc = rc ? rc : ferry_module_import(m, lib, err);
  rc = rc ? rc : ferry_vm_new(ferry_vm_exec_cast(m), &vm, err);
  rc = rc ? rc : ferry_module_get_function(&vm->mod, "vm_initialization", 0, &init, err);
  rc = rc ? rc : call(rt, init, dev, 3, err);
  rc = rc ? rc : ferry_module_get_function(lib, "addone", 0, &k, err);
  DLDataType f32 = {kDLFloat, 32, 1};
  DLDevice cpu = {kDLCPU, 0};
  int64_t shape[1] = {elems};
  ferry_ndarray *x = NULL, *t[2] = {NULL, NULL};
  rc = rc ? rc : ferry_ndarray_new(rt, 1, shape, f32, cpu, &x, err);
  rc = rc ? rc : ferry_ndarray_new(rt, 1, shape, f32, cpu, &t[0], err);
  rc = rc ? rc : ferry_ndarray_new(rt, 1, shape, f32, cpu, &t[1], err);
  double best_base = 1e30, best_ours = 1e30;
  if (rc == 0) {
    memset(x->tensor.data, 0, (size_t)elems * 4);
    ferry_value first[2] = {tv(x), tv(t[0])}, ab[2] = {tv(t[0]), tv(t[1])},
                ba[2] = {tv(t[1]), tv(t[0])};
    ferry_value in = {.kind = FERRY_KIND_NDARRAY, .v.obj = &x->base};
    int64_t main_idx = ferry_vm_exec_find(vm->exec, "main");
    for (int round = 0; rc == 0 && round < 3; round++) {
      double t0 = bench_now_s();
      for (long i = 0; rc == 0 && i < n; i++) {
        rc = call(rt, k, first, 2, err);
        for (int j = 1; rc == 0 && j < CHAIN_K; j++)
          rc = call(rt, k, j % 2 ? ab : ba, 2, err);
      }
      double t1s = bench_now_s();
      for (long i = 0; rc == 0 && i < n; i++) {
        ferry_value r;
        rc = ferry_vm_invoke(vm, main_idx, &in, 1, 0, &r, err);
        if (rc == 0)
          ferry_vm_value_release(&r);
      }
      double t2s = bench_now_s();
      best_base = t1s - t0 < best_base ? t1s - t0 : best_base;
      best_ours = t2s - t1s < best_ours ? t2s - t1s : best_ours;
    }
  }
  if (rc == 0) {
    double base_ns = best_base / (double)n * 1e9, ours_ns = best_ours / (double)n * 1e9;
    printf("relax VM, chain of %d addone x %6ld floats (%d instructions)  baseline %11.1f ns  "
           "ferry %11.1f ns  ratio %6.2f  (%.1f ns per instruction)\n",
           CHAIN_K, elems, CHAIN_K + 6, base_ns, ours_ns, ours_ns / (base_ns > 0 ? base_ns : 1e-9),
           (ours_ns - base_ns) / (CHAIN_K + 6));
  } else {
    fprintf(stderr, "bench_relax_vm: chain: %s\n", err->msg);
  }
  if (x)
    ferry_obj_release(&x->base);
  for (int i = 0; i < 2; i++)
    if (t[i])
      ferry_obj_release(&t[i]->base);
  if (k)
    ferry_obj_release(&k->base);
  if (init)
    ferry_obj_release(&init->base);
  if (vm)
    ferry_obj_release(&vm->mod.base);
  if (m)
    ferry_obj_release(&m->base);
  return rc ? 1 : 0;
}

/* The CNN fixture (tests/models/relax/fx_cnn.rvm: conv2d+relu, max pool,
 * reshape, dense; 15 instructions) through the VM against its three
 * kernels by hand on prepared tensors of the same shapes. */
static int cnn_row(ferry_rt *rt, const char *lib, long n, ferry_err *err) {
  ferry_module *root = NULL;
  ferry_vm *vm = NULL;
  ferry_func *init = NULL, *k[3] = {NULL, NULL, NULL};
  static const char *const names[3] = {"conv2d_relu", "max_pool2d", "matmul"};
  ferry_value dev[3] = {{.kind = FERRY_KIND_INT, .v.i = 1},
                        {.kind = FERRY_KIND_INT, .v.i = 0},
                        {.kind = FERRY_KIND_INT, .v.i = 2}};
  int rc = ferry_library_load(rt, lib, &root, err);
  rc = rc ? rc : ferry_vm_exec_cast(root) == NULL ? FERRY_EINVAL : 0;
  rc = rc ? rc : ferry_vm_new(ferry_vm_exec_cast(root), &vm, err);
  rc = rc ? rc : ferry_module_get_function(&vm->mod, "vm_initialization", 0, &init, err);
  rc = rc ? rc : call(rt, init, dev, 3, err);
  for (int i = 0; rc == 0 && i < 3; i++)
    rc = ferry_module_get_function(root->imports[0], names[i], 1, &k[i], err);
  DLDataType f32 = {kDLFloat, 32, 1};
  DLDevice cpu = {kDLCPU, 0};
  int64_t sx[4] = {1, 3, 8, 8}, sw[4] = {4, 3, 3, 3}, sc[4] = {1, 4, 8, 8}, sp[4] = {1, 4, 4, 4},
          sf[2] = {1, 64}, sd[2] = {64, 10}, so[2] = {1, 10};
  ferry_ndarray *t[7] = {NULL};
  int ndims[7] = {4, 4, 4, 4, 2, 2, 2};
  int64_t *shapes[7] = {sx, sw, sc, sp, sf, sd, so};
  for (int i = 0; rc == 0 && i < 7; i++) {
    size_t elems = 1;
    for (int d = 0; d < ndims[i]; d++)
      elems *= (size_t)shapes[i][d];
    if ((rc = ferry_ndarray_new(rt, ndims[i], shapes[i], f32, cpu, &t[i], err)) == 0)
      memset(t[i]->tensor.data, 0, 4 * elems);
  }
  double best_base = 1e30, best_ours = 1e30;
  if (rc == 0) {
    ferry_value a0[3] = {tv(t[0]), tv(t[1]), tv(t[2])}, a1[2] = {tv(t[2]), tv(t[3])},
                a2[3] = {tv(t[4]), tv(t[5]), tv(t[6])};
    ferry_value in = {.kind = FERRY_KIND_NDARRAY, .v.obj = &t[0]->base};
    int64_t main_idx = ferry_vm_exec_find(vm->exec, "main");
    for (int round = 0; rc == 0 && round < 3; round++) {
      double t0 = bench_now_s();
      for (long i = 0; rc == 0 && i < n; i++)
        rc = call(rt, k[0], a0, 3, err) || call(rt, k[1], a1, 2, err) ||
             call(rt, k[2], a2, 3, err);
      double t1s = bench_now_s();
      for (long i = 0; rc == 0 && i < n; i++) {
        ferry_value r;
        rc = ferry_vm_invoke(vm, main_idx, &in, 1, 0, &r, err);
        if (rc == 0)
          ferry_vm_value_release(&r);
      }
      double t2s = bench_now_s();
      best_base = t1s - t0 < best_base ? t1s - t0 : best_base;
      best_ours = t2s - t1s < best_ours ? t2s - t1s : best_ours;
    }
  }
  if (rc == 0) {
    double base_ns = best_base / (double)n * 1e9, ours_ns = best_ours / (double)n * 1e9;
    printf("relax VM, fixture cnn (3 kernels, 15 instructions)  baseline %11.1f ns  ferry %11.1f "
           "ns  ratio %6.2f  (%.1f ns per instruction)\n",
           base_ns, ours_ns, ours_ns / (base_ns > 0 ? base_ns : 1e-9), (ours_ns - base_ns) / 15);
  } else {
    fprintf(stderr, "bench_relax_vm: %s: %s\n", lib, err->msg);
  }
  for (int i = 0; i < 7; i++)
    if (t[i])
      ferry_obj_release(&t[i]->base);
  for (int i = 0; i < 3; i++)
    if (k[i])
      ferry_obj_release(&k[i]->base);
  if (init)
    ferry_obj_release(&init->base);
  if (vm)
    ferry_obj_release(&vm->mod.base);
  if (root)
    ferry_obj_release(&root->base);
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  char golden[PATH_MAX], models[PATH_MAX];
  long n = 20000;
  bench_set_name("bench_relax_vm");
  bench_self_path(models, sizeof models, "../tests/models");
  bench_self_path(golden, sizeof golden, "../../tests/golden");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--golden") == 0)
      snprintf(golden, sizeof golden, "%s", argv[i + 1]);
    else if (strcmp(argv[i], "--models") == 0)
      snprintf(models, sizeof models, "%s", argv[i + 1]);
    else if (strcmp(argv[i], "--n") == 0)
      n = strtol(argv[i + 1], NULL, 10);
  }
  if (n < 1) {
    fprintf(stderr, "bench_relax_vm: bad --n\n");
    return 2;
  }
  ferry_err err;
  ferry_err_clear(&err);
  ferry_rt *rt = bench_rt_open("vm", 1);
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
  snprintf(lib, sizeof lib, "%s/testlib.so", models);
  ferry_module *tl = NULL;
  int rc = ferry_library_load(rt, lib, &tl, &err);
  if (rc)
    fprintf(stderr, "bench_relax_vm: %s: %s\n", lib, err.msg);
  rc = rc ? rc : chain_row(rt, tl, 16, n * 2, &err);
  rc = rc ? rc : chain_row(rt, tl, 65536, n / 100 > 0 ? n / 100 : 1, &err);
  if (tl)
    ferry_obj_release(&tl->base);
  snprintf(lib, sizeof lib, "%s/relax/fx_cnn_v020.so", models);
  rc = rc ? rc : cnn_row(rt, lib, n / 4 > 0 ? n / 4 : 1, &err);
  bench_rt_close(rt);
  return rc ? 1 : 0;
}
