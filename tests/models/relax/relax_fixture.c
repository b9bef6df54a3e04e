/* Fixture generator: a Relax VM program described in text (an .rvm file,
 * relax_exec_asm.h) → a C file holding the module blob TVM's
 * export_library would embed, for either generation:
 *
 *   v020: __tvm_dev_mblob         u64 N | u64 3 | "relax.VMExecutable"
 *         (classic ABI, TVM 0.20)  payload | "_lib" | "_import_tree"
 *                                  vec [0, 1, 1] | vec [1]
 *   v026: __tvm_ffi__library_bin  u64 N | vec [0, 1, 1] | vec [1] |
 *         (tvm-ffi ABI, >= 0.21)   "relax.VMExecutable" payload | "_lib"
 *
 * payload = u64 len + the executable (spec relax-vm.md section 1).  A
 * comment line `# relax_fixture: tensors NAME RxC, ...` in the description
 * declares float32 weights `tensor(NAME)` may name, filled with
 * w[i][j] = ((7 i + 3 j) % 11 - 5) / 8 (exact in float32, so a test can
 * recompute them).  The
 * C file is compiled with the kernels (testlib.c or testlib_ffi.c) into a
 * library that ferry server loads like one from TVM; tests/models/
 * CMakeLists.txt does that for every fx_*.rvm.
 *
 *   relax_fixture v020|v026 IN.rvm OUT.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/relax_exec_asm.h"

static int put_u64(ferry_buf *b, uint64_t v) {
  uint8_t le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (uint8_t)(v >> (8 * i));
  return ferry_buf_append(b, le, 8);
}

static int put_str(ferry_buf *b, const char *s) {
  size_t n = strlen(s);
  int rc = put_u64(b, n);
  return rc ? rc : ferry_buf_append(b, s, n);
}

static int put_tree(ferry_buf *b) {
  int rc = put_u64(b, 3);
  for (int i = 0; rc == 0 && i < 3; i++)
    rc = put_u64(b, i == 0 ? 0 : 1);
  rc = rc ? rc : put_u64(b, 1);
  return rc ? rc : put_u64(b, 1);
}

/* The whole blob (from its u64 N) for exec (len bytes). */
static int blob(ferry_buf *out, enum ferry_relax_gen gen, const uint8_t *exec, size_t len) {
  ferry_buf body;
  ferry_buf_init(&body, out->max);
  int rc = 0;
  if (gen == FERRY_RELAX_GEN_V020)
    rc = put_u64(&body, 3);
  else
    rc = put_tree(&body);
  rc = rc ? rc : put_str(&body, "relax.VMExecutable");
  rc = rc ? rc : put_u64(&body, len);
  rc = rc ? rc : ferry_buf_append(&body, exec, len);
  rc = rc ? rc : put_str(&body, "_lib");
  if (gen == FERRY_RELAX_GEN_V020) {
    rc = rc ? rc : put_str(&body, "_import_tree");
    rc = rc ? rc : put_tree(&body);
  }
  rc = rc ? rc : put_u64(out, body.len);
  rc = rc ? rc : ferry_buf_append(out, body.data, body.len);
  ferry_buf_close(&body);
  return rc;
}

#define MAX_W 8

struct weights {
  char names[MAX_W][64];
  int64_t shape[MAX_W][2];
  float *data[MAX_W];
  DLTensor t[MAX_W];
  ferry_relax_asm_tensor list[MAX_W];
  size_t n;
};

/* Reads the `relax_fixture: tensors` line, if any; -1 on a bad one. */
static int weights_parse(const char *text, struct weights *w) {
  const char *p = strstr(text, "relax_fixture: tensors ");
  w->n = 0;
  if (!p)
    return 0;
  p += strlen("relax_fixture: tensors ");
  while (*p && *p != '\n') {
    long r = 0, c = 0;
    int used = 0;
    if (w->n == MAX_W || sscanf(p, "%63s %ldx%ld%n", w->names[w->n], &r, &c, &used) != 3 ||
        r < 1 || c < 1 || r * c > (1L << 20))
      return -1;
    size_t k = w->n++;
    w->shape[k][0] = r, w->shape[k][1] = c;
    if ((w->data[k] = malloc((size_t)(r * c) * sizeof(float))) == NULL)
      return -1;
    for (long i = 0; i < r; i++)
      for (long j = 0; j < c; j++)
        w->data[k][i * c + j] = (float)((7 * i + 3 * j) % 11 - 5) / 8.0f;
    DLTensor t = {.data = w->data[k], .device = {kDLCPU, 0}, .ndim = 2,
                  .dtype = {kDLFloat, 32, 1}, .shape = w->shape[k]};
    w->t[k] = t;
    w->list[k].name = w->names[k];
    w->list[k].tensor = &w->t[k];
    p += used;
    while (*p == ',' || *p == ' ')
      p++;
  }
  return 0;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *p = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      char *q = cap < (1u << 24) ? realloc(p, cap ? cap * 2 : 4096) : NULL;
      if (!q) {
        free(p);
        fclose(f);
        return NULL;
      }
      p = q, cap = cap ? cap * 2 : 4096;
    }
    size_t got = fread(p + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
  }
  fclose(f);
  char *q = realloc(p, n + 1); /* NUL-terminated, for strstr */
  if (!q) {
    free(p);
    return NULL;
  }
  q[n] = 0;
  *len = n;
  return q;
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "v020") && strcmp(argv[1], "v026"))) {
    fprintf(stderr, "usage: relax_fixture v020|v026 IN.rvm OUT.c\n");
    return 2;
  }
  enum ferry_relax_gen gen = strcmp(argv[1], "v020") ? FERRY_RELAX_GEN_V026 : FERRY_RELAX_GEN_V020;
  size_t len = 0;
  char *text = slurp(argv[2], &len), why[512] = "";
  if (!text) {
    fprintf(stderr, "relax_fixture: cannot read %s\n", argv[2]);
    return 1;
  }
  ferry_buf exec, out;
  ferry_buf_init(&exec, 1 << 26);
  ferry_buf_init(&out, 1 << 26);
  struct weights w;
  int rc = weights_parse(text, &w);
  if (rc)
    snprintf(why, sizeof why, "bad 'relax_fixture: tensors' line");
  rc = rc ? rc : ferry_relax_asm(text, len, gen, w.list, w.n, &exec, why, sizeof why);
  for (size_t i = 0; i < w.n; i++)
    free(w.data[i]);
  free(text);
  if (rc || (rc = blob(&out, gen, exec.data, exec.len))) {
    fprintf(stderr, "relax_fixture: %s: %s\n", argv[2], why[0] ? why : "blob too large");
    return 1;
  }
  FILE *f = fopen(argv[3], "w");
  const char *sym = gen == FERRY_RELAX_GEN_V020 ? "__tvm_dev_mblob" : "__tvm_ffi__library_bin";
  rc = f == NULL;
  if (f) {
    fprintf(f, "/* written by relax_fixture from %s */\n", argv[2]);
    fprintf(f, "__attribute__((visibility(\"default\"))) extern const unsigned char %s[%zu];\n",
            sym, out.len);
    fprintf(f, "const unsigned char %s[%zu] = {", sym, out.len);
    for (size_t i = 0; i < out.len; i++)
      fprintf(f, "%s%u,", i % 16 ? "" : "\n", out.data[i]);
    fprintf(f, "\n};\n");
    rc = fclose(f) != 0;
  }
  ferry_buf_close(&exec);
  ferry_buf_close(&out);
  if (rc)
    fprintf(stderr, "relax_fixture: cannot write %s\n", argv[3]);
  return rc;
}
