/* The global function registry: every name a client can look up with
 * kGetGlobalFunc.  The built-ins are static tables, one per file that
 * implements them; a later feature (the graph executor) adds its table to
 * the list below.  Built-ins that need session state read it from
 * call->rt, so the table itself is process-wide and immutable. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "runtime/rt_internal.h"

static const struct ferry_builtin *const builtin_tables[] = {
    ferry_files_builtins,
    ferry_modfuncs_builtins,
    ferry_time_builtins,
    ferry_params_builtins,
    ferry_ffi_builtins,
    ferry_graph_builtins,
    ferry_vm_globals,
    ferry_device_builtins,
};

struct builtin_func {
  ferry_func base;
  ferry_builtin_fn fn;
};

static int builtin_call(ferry_func *self, ferry_call *c) {
  return ((struct builtin_func *)self)->fn(c);
}

static void builtin_destroy(ferry_obj *o) { free(o); }

static ferry_builtin_fn find_builtin(const char *name) {
  for (size_t t = 0; t < FERRY_ARRAY_SIZE(builtin_tables); t++)
    for (const struct ferry_builtin *b = builtin_tables[t]; b->name != NULL; b++)
      if (strcmp(b->name, name) == 0)
        return b->fn;
  return NULL;
}

static int max_packet_size_fn(ferry_call *c) {
  c->ret.kind = FERRY_KIND_INT;
  c->ret.v.i = c->rt->max_packet_size;
  return FERRY_OK;
}

int ferry_rt_get_global(ferry_rt *rt, const char *name, ferry_func **out) {
  *out = NULL;
  ferry_builtin_fn fn = find_builtin(name);
  if (fn == NULL && rt != NULL && rt->max_packet_size > 0 &&
      strcmp(name, "tvm.rpc.server.GetCRTMaxPacketSize") == 0)
    fn = max_packet_size_fn;
  if (fn == NULL)
    return FERRY_ENOTFOUND;
  /* A fresh object per lookup: the session counts references per handle,
   * and a small allocation is cheaper than sharing rules. */
  struct builtin_func *f = calloc(1, sizeof *f);
  if (f == NULL)
    return FERRY_ENOMEM;
  ferry_obj_init(&f->base.base, FERRY_OBJ_FUNC, builtin_destroy);
  f->base.call = builtin_call;
  f->fn = fn;
  *out = &f->base;
  return FERRY_OK;
}
