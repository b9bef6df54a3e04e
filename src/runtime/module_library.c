/* Library modules: a TVM export_library shared object loaded as TVM's
 * loader does (spec runtime-abi.md 4.3), and system-library modules whose
 * symbols were registered with TVMBackendRegisterSystemLibSymbol (6).
 *
 * Function lookup is dlsym restricted to function symbols defined by the
 * library itself: a name that resolves to data (__tvm_module_ctx) or to a
 * dependency (printf from libc) is "not found" rather than something the
 * client could call and crash the session with. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/tvm_ffi_abi.h"
#include "runtime/rt_internal.h"
#include "wire/elf_check.h"

#define LIB_MAGIC 0x6c696246u /* tells our library modules from other pointers */
#define SYSLIB_CACHE 8

struct env_entry {
  char *name;
  ferry_func *f;
};

struct library_module {
  ferry_module base;
  uint32_t magic;
  ferry_rt *rt;
  void *dl;          /* dlopen handle; NULL for a system library */
  uintptr_t dl_base; /* load address of the library's ELF image */
  char *prefix;      /* system-library symbol prefix */
  char *name;        /* file name, for messages */
  int ffi;           /* tvm-ffi ABI (module_ffi.c) rather than classic */
  pthread_mutex_t env_lock;
  struct env_entry *env;
  size_t nenv;
  struct library_module *next; /* in rt->libs while dl is set */
};

static void library_destroy(ferry_obj *o) {
  struct library_module *lib = (struct library_module *)o;
  ferry_module_release_imports(&lib->base);
  for (size_t i = 0; i < lib->nenv; i++) {
    free(lib->env[i].name);
    ferry_obj_release(&lib->env[i].f->base);
  }
  free(lib->env);
  pthread_mutex_destroy(&lib->env_lock);
  if (lib->dl) {
    pthread_mutex_lock(&lib->rt->lock);
    for (struct library_module **p = &lib->rt->libs; *p; p = &(*p)->next)
      if (*p == lib) {
        *p = lib->next;
        break;
      }
    pthread_mutex_unlock(&lib->rt->lock);
    dlclose(lib->dl);
  }
  free(lib->prefix);
  free(lib->name);
  free(lib);
}

/* The address of a symbol the library defines, or NULL.  want_func: only a
 * function symbol qualifies. */
static void *lib_symbol(struct library_module *lib, const char *name, int want_func) {
  if (lib->dl == NULL) {
    size_t plen = strlen(lib->prefix);
    if (plen) {
      size_t n = strlen(name);
      char *full = malloc(plen + n + 1);
      if (full == NULL)
        return NULL;
      memcpy(full, lib->prefix, plen);
      memcpy(full + plen, name, n + 1);
      void *p = ferry_syslib_symbol(full);
      free(full);
      if (p)
        return p;
    }
    return ferry_syslib_symbol(name);
  }
  dlerror();
  void *p = dlsym(lib->dl, name);
  if (p == NULL)
    return NULL;
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (dladdr1(p, &info, (void **)&sym, RTLD_DL_SYMENT) == 0)
    return NULL;
  if ((uintptr_t)info.dli_fbase != lib->dl_base)
    return NULL; /* found in a dependency, not in this library */
  if (want_func && sym != NULL) {
    int type = ELF64_ST_TYPE(sym->st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC)
      return NULL;
  }
  return p;
}

/* Whether the library's symbol `name` is a function (C-source libraries
 * define __tvm_main__ as a function; LLVM ones as a string). */
static int lib_symbol_is_func(struct library_module *lib, void *p) {
  if (lib->dl == NULL)
    return 0;
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (dladdr1(p, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL)
    return 0;
  int type = ELF64_ST_TYPE(sym->st_info);
  return type == STT_FUNC || type == STT_GNU_IFUNC;
}

/* The address of tvm-ffi function `name` (__tvm_ffi_<name>), or NULL.  A
 * system library looks up __tvm_ffi_<prefix><name>, then __tvm_ffi_<name>,
 * as tvm-ffi's system library does. */
static void *ffi_symbol(struct library_module *lib, const char *name) {
  size_t plen = lib->dl == NULL ? strlen(lib->prefix) : 0;
  size_t n = strlen(name);
  if (n > 4096)
    return NULL;
  char *full = malloc(sizeof FERRY_FFI_SYMBOL_PREFIX + plen + n);
  if (full == NULL)
    return NULL;
  const size_t k = sizeof FERRY_FFI_SYMBOL_PREFIX - 1;
  memcpy(full, FERRY_FFI_SYMBOL_PREFIX, k);
  void *fp = NULL;
  if (lib->dl != NULL) {
    memcpy(full + k, name, n + 1);
    fp = lib_symbol(lib, full, 1);
  } else {
    memcpy(full + k, lib->prefix, plen);
    memcpy(full + k + plen, name, n + 1);
    fp = ferry_syslib_symbol(full);
    if (fp == NULL && plen) {
      memcpy(full + k, name, n + 1);
      fp = ferry_syslib_symbol(full);
    }
  }
  free(full);
  return fp;
}

/* A tvm-ffi library exports <name> as __tvm_ffi_<name>; its entry function
 * is __tvm_ffi_main, which a classic client asks for as __tvm_main__.  A
 * system library may hold functions of both ABIs: tvm-ffi names are tried
 * first there, and absence falls through to the classic lookup. */
static int ffi_library_get_function(struct library_module *lib, const char *name,
                                    ferry_func **out, ferry_err *err) {
  if (strcmp(name, "__tvm_main__") == 0)
    name = "main";
  void *fp = ffi_symbol(lib, name);
  if (fp == NULL && lib->ffi && strcmp(name, "main") == 0)
    return ferry_err_set(err, FERRY_ENOTFOUND,
                         "%s has no entry function (symbol " FERRY_FFI_MAIN " is missing)",
                         lib->name);
  if (fp == NULL)
    return FERRY_ENOTFOUND;
  if (ferry_ffi_func_new(fp, name, &lib->base.base, out) != FERRY_OK)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  return FERRY_OK;
}

static int library_get_function(ferry_module *m, const char *name, ferry_func **out,
                                ferry_err *err) {
  struct library_module *lib = (struct library_module *)m;
  *out = NULL;
  void *fp;
  if (lib->ffi)
    return ffi_library_get_function(lib, name, out, err);
  if (lib->dl == NULL) {
    int rc = ffi_library_get_function(lib, name, out, err);
    if (rc != FERRY_ENOTFOUND)
      return rc;
  }
  if (strcmp(name, "__tvm_main__") == 0) {
    void *entry = lib_symbol(lib, "__tvm_main__", 0);
    if (entry == NULL)
      return ferry_err_set(err, FERRY_ENOTFOUND,
                           "%s has no entry function (symbol __tvm_main__ is missing)",
                           lib->name);
    if (lib_symbol_is_func(lib, entry)) {
      fp = entry;
    } else {
      char ename[256];
      size_t n = strnlen((const char *)entry, sizeof ename);
      if (n == sizeof ename)
        return ferry_err_set(err, FERRY_EPROTO, "%s: __tvm_main__ is not a short string",
                             lib->name);
      memcpy(ename, entry, n + 1);
      fp = lib_symbol(lib, ename, 1);
      if (fp == NULL)
        return ferry_err_set(err, FERRY_ENOTFOUND,
                             "%s: entry function %s named by __tvm_main__ is missing",
                             lib->name, ename);
    }
  } else {
    fp = lib_symbol(lib, name, 1);
    if (fp == NULL)
      return FERRY_ENOTFOUND;
  }
  int rc = ferry_classic_func_new(fp, name, &lib->base.base, out);
  if (rc)
    return ferry_err_set(err, rc, "out of memory");
  return FERRY_OK;
}

static struct library_module *library_new(ferry_rt *rt, const char *name) {
  struct library_module *lib = calloc(1, sizeof *lib);
  if (lib == NULL)
    return NULL;
  ferry_obj_init(&lib->base.base, FERRY_OBJ_MODULE, library_destroy);
  lib->base.type_key = "library";
  lib->base.get_function = library_get_function;
  lib->magic = LIB_MAGIC;
  lib->rt = rt;
  pthread_mutex_init(&lib->env_lock, NULL);
  lib->name = strdup(name);
  if (lib->name == NULL) {
    ferry_obj_release(&lib->base.base);
    return NULL;
  }
  return lib;
}

int ferry_library_env_func(void *mod_node, const char *name, ferry_func **out, ferry_err *err) {
  struct library_module *lib = mod_node;
  if (lib->magic != LIB_MAGIC)
    return ferry_err_set(err, FERRY_EINVAL, "module context is not a library module");
  pthread_mutex_lock(&lib->env_lock);
  for (size_t i = 0; i < lib->nenv; i++)
    if (strcmp(lib->env[i].name, name) == 0) {
      *out = lib->env[i].f;
      pthread_mutex_unlock(&lib->env_lock);
      return FERRY_OK;
    }
  ferry_func *f = NULL;
  int rc = FERRY_ENOTFOUND;
  for (size_t i = 0; i < lib->base.nimports && rc == FERRY_ENOTFOUND; i++)
    rc = ferry_module_get_function(lib->base.imports[i], name, 1, &f, err);
  if (rc == FERRY_ENOTFOUND)
    rc = ferry_rt_get_global(lib->rt, name, &f);
  if (rc == FERRY_OK) {
    struct env_entry *n = realloc(lib->env, (lib->nenv + 1) * sizeof *n);
    char *copy = strdup(name);
    if (n == NULL || copy == NULL) {
      free(copy);
      if (n)
        lib->env = n;
      ferry_obj_release(&f->base);
      rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    } else {
      lib->env = n;
      lib->env[lib->nenv].name = copy;
      lib->env[lib->nenv].f = f;
      lib->nenv++;
      *out = f; /* the cache keeps the reference */
    }
  }
  pthread_mutex_unlock(&lib->env_lock);
  return rc;
}

/* Steps 2-5 of TVM's loader, shared by shared and system libraries.  blob
 * is a __tvm_dev_mblob or, when ffi_bin, a __tvm_ffi__library_bin. */
static int library_init(struct library_module *lib, const uint8_t *blob, size_t blob_avail,
                        int ffi_bin, void *module_ctx, ferry_module **out, ferry_err *err) {
  ferry_module *root = &lib->base;
  if (blob != NULL) {
    int rc = ffi_bin ? ferry_ffi_load_library_bin(lib->rt, blob, blob_avail, &lib->base,
                                                  lib->name, &root, err)
                     : ferry_blob_load_modules(lib->rt, blob, blob_avail, &lib->base, lib->name,
                                               &root, err);
    if (rc)
      return rc;
  } else {
    ferry_obj_retain(&root->base);
  }
  /* Compiled code hands this back to TVMBackendGetFuncFromEnv. */
  if (module_ctx != NULL)
    *(void **)module_ctx = lib;
  *out = root;
  return FERRY_OK;
}

/* Bytes readable at a data symbol of the library (its ELF size), or 0. */
static size_t symbol_size(void *p) {
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (dladdr1(p, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL)
    return 0;
  return (size_t)sym->st_size;
}

static int is_pointer_variable(void *p) {
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (dladdr1(p, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL)
    return 0;
  int type = ELF64_ST_TYPE(sym->st_info);
  return (type == STT_OBJECT || type == STT_COMMON) && sym->st_size >= sizeof(void *);
}

/* Runs the ELF check of wire/elf_check.h over the file before dlopen
 * maps it: a library cut short would otherwise kill the session with
 * SIGBUS inside dlopen instead of answering with an error.  The file is
 * mapped read-only and only the fstat size is read, so the check itself
 * touches no page past the end. */
static int check_elf(const char *path, const char *name, ferry_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ferry_err_set(err, FERRY_EIO, "cannot open %s: %s", name, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return ferry_err_set(err, FERRY_EIO, "cannot load %s: %s", name, strerror(e));
  }
  if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > FERRY_RT_MAX_FILE) {
    close(fd);
    return ferry_err_set(err, FERRY_EDLOPEN,
                         "cannot load %s: not a regular file of at most %llu bytes", name,
                         (unsigned long long)FERRY_RT_MAX_FILE);
  }
  size_t len = (size_t)st.st_size;
  const uint8_t *p = (const uint8_t *)"";
  void *map = NULL;
  if (len > 0) {
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int e = errno;
      close(fd);
      return ferry_err_set(err, FERRY_EIO, "cannot load %s: mmap: %s", name, strerror(e));
    }
    p = map;
  }
  close(fd);
  ferry_elf_target host;
  ferry_elf_host_target(&host);
  char why[256];
  int rc = ferry_elf_check(p, len, &host, why, sizeof why);
  if (map)
    munmap(map, len);
  if (rc)
    return ferry_err_set(err, FERRY_EDLOPEN, "cannot load %s: %s", name, why);
  return FERRY_OK;
}

int ferry_library_load(ferry_rt *rt, const char *path, ferry_module **out, ferry_err *err) {
  *out = NULL;
  const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  int rc = check_elf(path, name, err);
  if (rc)
    return rc;
  /* RTLD_NOW: an unresolved symbol fails here with its name instead of
   * killing the session in the middle of a later call. */
  dlerror();
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    const char *why = dlerror();
    return ferry_err_set(err, FERRY_EDLOPEN, "cannot load %s: %s", name,
                         why ? why : "unknown dlopen error");
  }
  /* The same file loaded again gets the same handle from dlopen and so the
   * same __tvm_module_ctx: share the library module rather than let a
   * second one overwrite the context the first one's code relies on. */
  struct library_module *lib = NULL;
  pthread_mutex_lock(&rt->lock);
  for (struct library_module *l = rt->libs; l; l = l->next)
    if (l->dl == dl && atomic_load(&l->base.base.refs) > 0) {
      lib = l;
      ferry_obj_retain(&lib->base.base);
      break;
    }
  pthread_mutex_unlock(&rt->lock);
  if (lib != NULL) {
    dlclose(dl); /* drop the extra count this dlopen took */
    const uint8_t *blob = lib_symbol(lib, lib->ffi ? FERRY_FFI_LIBRARY_BIN : "__tvm_dev_mblob", 0);
    size_t avail = blob ? symbol_size((void *)blob) : 0;
    rc = library_init(lib, blob, blob && avail == 0 ? FERRY_RT_MAX_FILE : avail, lib->ffi, NULL,
                      out, err);
    ferry_obj_release(&lib->base.base);
    return rc;
  }
  lib = library_new(rt, name);
  if (lib == NULL) {
    dlclose(dl);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  lib->dl = dl;
  pthread_mutex_lock(&rt->lock);
  lib->next = rt->libs;
  rt->libs = lib;
  pthread_mutex_unlock(&rt->lock);
  struct link_map *lm = NULL;
  if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL)
    lib->dl_base = (uintptr_t)lm->l_addr;
  /* TVM >= 0.21 libraries (tvm-ffi ABI) are told apart by their own
   * symbols; they get their own context slots and calling convention. */
  lib->ffi = lib_symbol(lib, FERRY_FFI_LIBRARY_CTX, 0) != NULL ||
             lib_symbol(lib, FERRY_FFI_MAIN, 0) != NULL ||
             lib_symbol(lib, FERRY_FFI_LIBRARY_BIN, 0) != NULL;
  const struct ferry_ctx_slot *slots = lib->ffi ? ferry_ffi_ctx_slots : ferry_backend_ctx_slots;
  size_t nslots = lib->ffi ? ferry_ffi_nctx_slots : ferry_backend_nctx_slots;
  if (lib->ffi && (rc = ferry_ffi_check_slots(path, name, err)) != FERRY_OK) {
    ferry_obj_release(&lib->base.base);
    return rc;
  }
  for (size_t i = 0; i < nslots; i++) {
    void *slot = lib_symbol(lib, slots[i].symbol, 0);
    /* Only a pointer variable is a slot: writing over a function of that
     * name would fault on its read-only code. */
    if (slot != NULL && is_pointer_variable(slot))
      memcpy(slot, &slots[i].impl, sizeof slots[i].impl);
  }
  /* The embedded modules: __tvm_dev_mblob (classic) or, in a tvm-ffi
   * library, __tvm_ffi__library_bin (Relax VM executables, OpenCL
   * modules; other kinds are refused by name there). */
  const uint8_t *blob = lib_symbol(lib, lib->ffi ? FERRY_FFI_LIBRARY_BIN : "__tvm_dev_mblob", 0);
  size_t avail = blob ? symbol_size((void *)blob) : 0;
  if (blob && avail == 0)
    avail = FERRY_RT_MAX_FILE; /* size unknown: trust the blob's own header */
  void *ctx = lib_symbol(lib, lib->ffi ? FERRY_FFI_LIBRARY_CTX : "__tvm_module_ctx", 0);
  rc = library_init(lib, blob, avail, lib->ffi, ctx && is_pointer_variable(ctx) ? ctx : NULL, out,
                    err);
  ferry_obj_release(&lib->base.base); /* the root (or lib itself) holds it now */
  return rc;
}

int ferry_syslib_get(ferry_rt *rt, const char *prefix, ferry_module **out, ferry_err *err) {
  *out = NULL;
  if (prefix[0] == 0 && rt->syslib != NULL) {
    ferry_obj_retain(&rt->syslib->base);
    *out = rt->syslib;
    return FERRY_OK;
  }
  if (strlen(prefix) > 256)
    return ferry_err_set(err, FERRY_EINVAL, "system library prefix is too long");
  struct library_module *lib = library_new(rt, "system library");
  if (lib == NULL || (lib->prefix = strdup(prefix)) == NULL) {
    if (lib)
      ferry_obj_release(&lib->base.base);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  lib->base.type_key = "system_lib";
  const uint8_t *blob = lib_symbol(lib, "__tvm_dev_mblob", 0);
  /* tvm-ffi system-lib code reads its module from its own context symbol. */
  void **ffi_ctx = lib_symbol(lib, FERRY_FFI_LIBRARY_CTX, 0);
  if (ffi_ctx != NULL)
    *ffi_ctx = lib;
  int rc = library_init(lib, blob, blob ? FERRY_RT_MAX_FILE : 0, 0,
                        lib_symbol(lib, "__tvm_module_ctx", 0), out, err);
  ferry_obj_release(&lib->base.base);
  if (rc == FERRY_OK && prefix[0] == 0) {
    ferry_obj_retain(&(*out)->base);
    rt->syslib = *out; /* one module per process, as TVM caches it */
  }
  return rc;
}
