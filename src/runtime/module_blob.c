/* Rebuilding the module tree of a __tvm_dev_mblob (spec runtime-abi.md
 * 5.2).  Each module type with a binary payload needs a loader; the table
 * below is the seam where the graph executor's GraphExecutorFactory loader
 * is added.  A type without a loader stops the load with its name: a
 * reader cannot skip a payload it does not understand. */
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"
#include "wire/mblob.h"

struct blob_loader {
  const char *type_key;
  ferry_blob_loader_fn load;
};
/* One line per module type with a binary payload, e.g.
 *   {"GraphExecutorFactory", ferry_graph_factory_load_blob}, */
static const struct blob_loader blob_loaders[] = {
    {"GraphExecutorFactory", ferry_graph_factory_load_blob},
    {"relax.VMExecutable", ferry_vm_exec_load_classic},
    {"opencl", ferry_opencl_load_blob},
    {NULL, NULL},
};

static ferry_blob_loader_fn find_loader(const char *key, size_t len) {
  for (const struct blob_loader *l = blob_loaders; l->type_key; l++)
    if (strlen(l->type_key) == len && memcmp(l->type_key, key, len) == 0)
      return l->load;
  return NULL;
}

static const char *wire_err_text(int rc) {
  return rc == FERRY_EAGAIN ? "truncated" : rc == FERRY_ETOOBIG ? "over a size limit" : "malformed";
}

int ferry_blob_load_modules(ferry_rt *rt, const uint8_t *blob, size_t blob_max, ferry_module *lib,
                            const char *libname, ferry_module **root, ferry_err *err) {
  *root = NULL;
  ferry_mblob_reader r;
  int rc = ferry_mblob_open(&r, blob, blob_max);
  if (rc)
    return ferry_err_set(err, FERRY_EPROTO, "%s: embedded module blob is %s", libname,
                         wire_err_text(rc));
  ferry_module **mods = calloc(r.count ? r.count : 1, sizeof *mods);
  if (mods == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  size_t nmods = 0;
  int have_tree = 0, have_lib = 0;
  ferry_mblob_entry tree, e;
  memset(&tree, 0, sizeof tree);
  for (;;) {
    rc = ferry_mblob_next(&r, &e);
    if (rc) {
      rc = ferry_err_set(err, FERRY_EPROTO, "%s: embedded module blob is %s", libname,
                         wire_err_text(rc));
      goto out;
    }
    if (e.kind == FERRY_MBLOB_END)
      break;
    if (e.kind == FERRY_MBLOB_IMPORT_TREE) {
      if (have_tree) {
        rc = ferry_err_set(err, FERRY_EPROTO, "%s: two import trees in the module blob",
                           libname);
        goto out;
      }
      tree = e;
      have_tree = 1;
    } else if (e.kind == FERRY_MBLOB_LIB) {
      if (have_lib) {
        rc = ferry_err_set(err, FERRY_EPROTO, "%s: two _lib entries in the module blob",
                           libname);
        goto out;
      }
      have_lib = 1;
      ferry_obj_retain(&lib->base);
      mods[nmods++] = lib;
    } else {
      ferry_blob_loader_fn load = find_loader(e.key, e.key_len);
      if (load == NULL) {
        rc = ferry_err_set(err, FERRY_EUNSUPPORTED,
                           "%s embeds a module of type '%.*s', which this server cannot load "
                           "(no loader for that module type; was the library built for a "
                           "device other than CPU?)",
                           libname, (int)e.key_len, e.key);
        goto out;
      }
      size_t used = 0;
      ferry_module *m = NULL;
      rc = load(rt, e.payload, e.payload_avail, &used, &m, err);
      if (rc == FERRY_OK && ferry_mblob_skip(&r, used) != FERRY_OK) {
        ferry_obj_release(&m->base);
        rc = ferry_err_set(err, FERRY_EPROTO, "%s: module '%.*s' overran the blob", libname,
                           (int)e.key_len, e.key);
      }
      if (rc)
        goto out;
      mods[nmods++] = m;
    }
  }
  if (have_tree) {
    if (nmods == 0 || ferry_mblob_check_tree(&tree, nmods) != FERRY_OK) {
      rc = ferry_err_set(err, FERRY_EPROTO, "%s: import tree of the module blob is invalid",
                         libname);
      goto out;
    }
    for (size_t i = 0; i < nmods && rc == FERRY_OK; i++)
      for (uint64_t j = ferry_mblob_u64(tree.row_ptr, i);
           j < ferry_mblob_u64(tree.row_ptr, i + 1) && rc == FERRY_OK; j++)
        rc = ferry_module_import(mods[i], mods[ferry_mblob_u64(tree.child, (size_t)j)], err);
    if (rc)
      goto out;
    ferry_obj_retain(&mods[0]->base);
    *root = mods[0];
  } else {
    /* Old layout: the library is the root and imports every module. */
    for (size_t i = 0; i < nmods && rc == FERRY_OK; i++)
      if (mods[i] != lib)
        rc = ferry_module_import(lib, mods[i], err);
    if (rc)
      goto out;
    ferry_obj_retain(&lib->base);
    *root = lib;
  }
out:
  for (size_t i = 0; i < nmods; i++)
    ferry_obj_release(&mods[i]->base);
  free(mods);
  return rc;
}
