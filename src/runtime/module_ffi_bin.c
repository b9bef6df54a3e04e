/* The module tree of a tvm-ffi library's __tvm_ffi__library_bin (TVM >=
 * 0.21, spec device-modules.md 1.1):
 *
 *   u64 nbytes | vec<u64> indptr | vec<u64> children |
 *   per module: string kind, then (except "_lib") a length-prefixed payload
 *
 * Module 0 is the root; indptr/children are the import tree (CSR).  Each
 * kind with a payload needs a loader, listed below; an unknown kind stops
 * the load with its name.  Every read is bounded by the symbol's size. */
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"
#include "wire/mblob.h"
#include "wire/stream.h"

#define MAX_MODULES 4096

struct ffi_loader {
  const char *kind;
  ferry_blob_loader_fn load;
};
static const struct ffi_loader ffi_loaders[] = {
    {"relax.VMExecutable", ferry_vm_exec_load_ffi},
    {"opencl", ferry_opencl_load_ffi},
    {NULL, NULL},
};

static ferry_blob_loader_fn find_loader(const char *kind, size_t len) {
  for (const struct ffi_loader *l = ffi_loaders; l->kind; l++)
    if (strlen(l->kind) == len && memcmp(l->kind, kind, len) == 0)
      return l->load;
  return NULL;
}

static int read_vec(ferry_stream *s, const uint8_t **arr, size_t *n) {
  uint64_t unvalidated_n;
  int rc = ferry_stream_u64(s, &unvalidated_n);
  if (rc)
    return rc;
  if (unvalidated_n > MAX_MODULES * 4 || unvalidated_n > ferry_stream_left(s) / 8)
    return FERRY_EPROTO;
  *n = (size_t)unvalidated_n;
  return ferry_stream_bytes(s, *n * 8, arr);
}

int ferry_ffi_load_library_bin(ferry_rt *rt, const uint8_t *bin, size_t avail, ferry_module *lib,
                               const char *libname, ferry_module **root, ferry_err *err) {
  *root = NULL;
  ferry_stream s;
  ferry_stream_init(&s, bin, avail);
  uint64_t unvalidated_size;
  ferry_mblob_entry tree;
  memset(&tree, 0, sizeof tree);
  if (ferry_stream_u64(&s, &unvalidated_size) || unvalidated_size > avail - 8 ||
      (ferry_stream_init(&s, bin + 8, (size_t)unvalidated_size), 0) ||
      read_vec(&s, &tree.row_ptr, &tree.nrow_ptr) || read_vec(&s, &tree.child, &tree.nchild) ||
      tree.nrow_ptr < 2)
    return ferry_err_set(err, FERRY_EPROTO, "%s: " "__tvm_ffi__library_bin" " is malformed",
                         libname);
  size_t nmods = tree.nrow_ptr - 1;
  if (ferry_mblob_check_tree(&tree, nmods) != FERRY_OK)
    return ferry_err_set(err, FERRY_EPROTO, "%s: import tree of __tvm_ffi__library_bin is invalid",
                         libname);
  ferry_module **mods = calloc(nmods, sizeof *mods);
  if (mods == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  int rc = FERRY_OK;
  for (size_t i = 0; i < nmods && rc == FERRY_OK; i++) {
    const char *kind;
    size_t klen;
    if (ferry_stream_str(&s, 256, &kind, &klen)) {
      rc = ferry_err_set(err, FERRY_EPROTO, "%s: __tvm_ffi__library_bin is truncated", libname);
      break;
    }
    if (klen == 4 && memcmp(kind, "_lib", 4) == 0) {
      ferry_obj_retain(&lib->base);
      mods[i] = lib;
      continue;
    }
    const char *payload;
    size_t plen;
    if (ferry_stream_str(&s, FERRY_RT_MAX_FILE, &payload, &plen)) {
      rc = ferry_err_set(err, FERRY_EPROTO, "%s: module %.*s of __tvm_ffi__library_bin is "
                         "truncated", libname, (int)klen, kind);
      break;
    }
    ferry_blob_loader_fn load = find_loader(kind, klen);
    if (load == NULL) {
      rc = ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "cannot load %s: it embeds a module of kind %.*s "
                         "(__tvm_ffi__library_bin), which ferry cannot run",
                         libname, (int)(klen < 64 ? klen : 64), kind);
      break;
    }
    size_t used = 0;
    rc = load(rt, (const uint8_t *)payload, plen, &used, &mods[i], err);
  }
  for (size_t i = 0; i < nmods && rc == FERRY_OK; i++)
    if (mods[i] == NULL)
      rc = ferry_err_set(err, FERRY_EPROTO, "%s: __tvm_ffi__library_bin lists a module twice",
                         libname);
  for (size_t i = 0; i < nmods && rc == FERRY_OK; i++)
    for (uint64_t j = ferry_mblob_u64(tree.row_ptr, i);
         j < ferry_mblob_u64(tree.row_ptr, i + 1) && rc == FERRY_OK; j++)
      rc = ferry_module_import(mods[i], mods[ferry_mblob_u64(tree.child, (size_t)j)], err);
  if (rc == FERRY_OK) {
    ferry_obj_retain(&mods[0]->base);
    *root = mods[0];
  }
  for (size_t i = 0; i < nmods; i++)
    if (mods[i])
      ferry_obj_release(&mods[i]->base);
  free(mods);
  return rc;
}
