/* The relax.VMExecutable module: what export_library of a TVM >= 0.20
 * model puts at the root of the library's module tree (its import is the
 * kernel library, _lib).  Loaded from either library form; parsed and
 * validated here, at load, so that a lying executable is refused before
 * anything runs it.  Its functions (TVM executable.h): stats, as_text,
 * vm_load_executable, has_function. */
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "runtime/vm/vm.h"

static void exec_destroy(ferry_obj *o) {
  ferry_vm_exec *e = (ferry_vm_exec *)o;
  ferry_relax_exec_close(&e->ex);
  free(e->bytes);
  ferry_module_release_imports(&e->mod);
  free(e);
}

ferry_vm_exec *ferry_vm_exec_cast(ferry_module *m) {
  return m != NULL && m->type_key != NULL && strcmp(m->type_key, FERRY_VM_EXEC_KEY) == 0
             ? (ferry_vm_exec *)m
             : NULL;
}

int64_t ferry_vm_exec_find(const ferry_vm_exec *e, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < e->ex.nfuncs; i++)
    if (e->ex.funcs[i].name.len == n && memcmp(e->ex.funcs[i].name.p, name, n) == 0)
      return (int64_t)i;
  return -1;
}

/* ---- functions ------------------------------------------------------------------ */

static int text_fn(ferry_vm_exec *e, ferry_call *c, int which) {
  ferry_buf b;
  ferry_buf_init(&b, FERRY_RT_MAX_RET_BYTES);
  int rc = which ? ferry_relax_exec_text(&e->ex, &b) : ferry_relax_exec_stats(&e->ex, &b);
  if (rc == FERRY_OK)
    rc = ferry_call_return_str(c, b.len ? (const char *)b.data : "", b.len);
  else
    rc = ferry_err_set(c->err, rc, "%s: the text is too large", which ? "as_text" : "stats");
  ferry_buf_close(&b);
  return rc;
}

static int exec_call(void *ctx, ferry_call *c);

struct exec_fn {
  ferry_vm_exec *e;
  int which; /* 0 stats, 1 as_text, 2 vm_load_executable, 3 has_function */
};

static void exec_fn_free(void *ctx) {
  struct exec_fn *f = ctx;
  ferry_obj_release(&f->e->mod.base);
  free(f);
}

static int exec_call(void *ctx, ferry_call *c) {
  struct exec_fn *f = ctx;
  static const char *const names[] = {"stats", "as_text", "vm_load_executable", "has_function"};
  const char *name = names[f->which];
  int rc = ferry_arg_count(c, name, f->which == 3 ? 1 : 0, f->which == 3 ? 1 : 0);
  if (rc)
    return rc;
  if (f->which <= 1)
    return text_fn(f->e, c, f->which);
  if (f->which == 3) {
    const char *fname;
    if ((rc = ferry_arg_str(c, name, 0, &fname)))
      return rc;
    c->ret.kind = FERRY_KIND_BOOL;
    c->ret.v.i = ferry_vm_exec_find(f->e, fname) >= 0;
    return FERRY_OK;
  }
  ferry_vm *vm;
  if ((rc = ferry_vm_new(f->e, &vm, c->err)))
    return rc;
  ferry_call_return_obj(c, FERRY_KIND_MODULE, &vm->mod.base);
  return FERRY_OK;
}

static int exec_get_function(ferry_module *m, const char *name, ferry_func **out,
                             ferry_err *err) {
  ferry_vm_exec *e = (ferry_vm_exec *)m;
  int which = strcmp(name, "stats") == 0                ? 0
              : strcmp(name, "as_text") == 0            ? 1
              : strcmp(name, "vm_load_executable") == 0 ? 2
              : strcmp(name, "has_function") == 0      ? 3
                                                        : -1;
  *out = NULL;
  if (which < 0)
    return FERRY_ENOTFOUND;
  struct exec_fn *f = malloc(sizeof *f);
  if (f == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  f->e = e;
  f->which = which;
  if (ferry_closure_new(exec_call, f, exec_fn_free, out) != FERRY_OK) {
    free(f);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  ferry_obj_retain(&m->base);
  return FERRY_OK;
}

/* ---- loaders --------------------------------------------------------------------- */

/* Parses and validates len bytes of executable into *out. */
static int exec_new(ferry_rt *rt, const uint8_t *bytes, size_t len, ferry_module **out,
                    enum ferry_relax_tags tags, ferry_err *err) {
  *out = NULL;
  if (len > FERRY_RELAX_MAX_BYTES)
    return ferry_err_set(err, FERRY_EPROTO, "relax.VMExecutable: %zu bytes, over the %llu-byte "
                         "ceiling", len, (unsigned long long)FERRY_RELAX_MAX_BYTES);
  ferry_vm_exec *e = calloc(1, sizeof *e);
  if (e == NULL || (e->bytes = malloc(len ? len : 1)) == NULL) {
    free(e);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  ferry_obj_init(&e->mod.base, FERRY_OBJ_MODULE, exec_destroy);
  e->mod.type_key = FERRY_VM_EXEC_KEY;
  e->mod.get_function = exec_get_function;
  e->rt = rt;
  e->ffi = tags == FERRY_RELAX_TAGS_FFI;
  memcpy(e->bytes, bytes, len);
  e->len = len;
  char why[FERRY_RELAX_ERR_MAX];
  int rc = ferry_relax_exec_parse(&e->ex, e->bytes, len, tags, why, sizeof why);
  if (rc == FERRY_OK)
    rc = ferry_relax_exec_validate(&e->ex, why, sizeof why);
  if (rc) {
    ferry_obj_release(&e->mod.base);
    return ferry_err_set(err, rc == FERRY_ENOMEM ? rc : FERRY_EPROTO, "%s", why);
  }
  for (size_t i = 0; i < e->ex.nfuncs; i++)
    if (e->ex.funcs[i].kind == FERRY_RELAX_FUNC_VMTIR) {
      /* The name lives in e's bytes: say it before releasing e. */
      rc = ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "relax executable: function '%.*s' is compiled VM-TIR "
                         "(exec_mode=\"compiled\"), which ferry does not run; build with "
                         "the default bytecode mode",
                         (int)e->ex.funcs[i].name.len, e->ex.funcs[i].name.p);
      ferry_obj_release(&e->mod.base);
      return rc;
    }
  *out = &e->mod;
  return FERRY_OK;
}

/* A classic __tvm_dev_mblob holds the executable as a string: u64 length,
 * then the bytes. */
static int exec_load_prefixed(ferry_rt *rt, const uint8_t *payload, size_t avail,
                              size_t *consumed, ferry_module **out, enum ferry_relax_tags tags,
                              ferry_err *err) {
  *out = NULL;
  *consumed = 0;
  if (avail < 8)
    return ferry_err_set(err, FERRY_EPROTO, "relax.VMExecutable: the length is truncated");
  uint64_t unvalidated_len = get_le64(payload);
  if (unvalidated_len > FERRY_RELAX_MAX_BYTES || unvalidated_len > avail - 8)
    return ferry_err_set(err, FERRY_EPROTO,
                         "relax.VMExecutable: length %llu is more than the %zu bytes left in "
                         "the library",
                         (unsigned long long)unvalidated_len, avail - 8);
  int rc = exec_new(rt, payload + 8, (size_t)unvalidated_len, out, tags, err);
  if (rc == FERRY_OK)
    *consumed = 8 + (size_t)unvalidated_len;
  return rc;
}

int ferry_vm_exec_load_classic(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                               size_t *consumed, ferry_module **out, ferry_err *err) {
  return exec_load_prefixed(rt, payload, payload_avail, consumed, out, FERRY_RELAX_TAGS_CLASSIC,
                            err);
}

int ferry_vm_exec_load_ffi(ferry_rt *rt, const uint8_t *payload, size_t payload_avail,
                           size_t *consumed, ferry_module **out, ferry_err *err) {
  int rc = exec_new(rt, payload, payload_avail, out, FERRY_RELAX_TAGS_FFI, err);
  *consumed = rc == FERRY_OK ? payload_avail : 0;
  return rc;
}
