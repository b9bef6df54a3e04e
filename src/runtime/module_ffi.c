/* Libraries of the tvm-ffi ABI (TVM >= 0.21) next to classic ones: how the
 * loader recognises one, the context slots it fills in it, the check that
 * every slot the library declares is one ferry fills, and the ffi.SystemLib
 * global.  The value mapping and the callbacks are in abi_ffi.c; the
 * loading steps shared with classic libraries stay in module_library.c.
 *
 * A tvm-ffi library (tvm-ffi src/ffi/extra/library_module.cc):
 *   - exports each function as __tvm_ffi_<name> (TVMFFISafeCallType) and
 *     its entry function as __tvm_ffi_main;
 *   - has a pointer variable __tvm_ffi__library_ctx that receives the
 *     library module (passed back to TVMFFIEnvModLookupFromImports);
 *   - has pointer variables "__<function>" for the runtime functions it
 *     calls (TVM v0.26 registers the eight below; v0.21 used
 *     __TVMBackendGetFuncFromEnv instead of the lookup + once pair);
 *   - may embed serialised modules in __tvm_ffi__library_bin: a Relax VM
 *     executable is loaded (bin_loaders below); any other kind (device
 *     code) is refused by name. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/tvm_ffi_abi.h"
#include "runtime/rt_internal.h"
#include "wire/mblob.h"

#define SLOT(fn) {"__" #fn, (void (*)(void))fn}
const struct ferry_ctx_slot ferry_ffi_ctx_slots[] = {
    SLOT(TVMFFIFunctionCall),
    SLOT(TVMFFIErrorSetRaisedFromCStr),
    SLOT(TVMFFIErrorSetRaisedFromCStrParts),
    SLOT(TVMFFIEnvModLookupFromImports),
    SLOT(TVMFFIHandleInitOnce),
    SLOT(TVMFFIHandleDeinitOnce),
    /* TVM v0.21-0.25: returns a handle for TVMFFIFunctionCall, which is
     * what ferry's TVMBackendGetFuncFromEnv hands out. */
    SLOT(TVMBackendGetFuncFromEnv),
    SLOT(TVMBackendAllocWorkspace),
    SLOT(TVMBackendFreeWorkspace),
    SLOT(TVMBackendParallelLaunch),
    SLOT(TVMBackendParallelBarrier),
};
#undef SLOT
const size_t ferry_ffi_nctx_slots = sizeof ferry_ffi_ctx_slots / sizeof ferry_ffi_ctx_slots[0];

static int known_slot(const char *name) {
  for (size_t i = 0; i < ferry_ffi_nctx_slots; i++)
    if (strcmp(ferry_ffi_ctx_slots[i].symbol, name) == 0)
      return 1;
  return 0;
}

/* Ceilings on what the slot check reads from the file. */
#define MAX_SECTIONS 4096
#define MAX_DYN_BYTES (64u << 20)

static int read_at(int fd, void *buf, size_t n, off_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    done += (size_t)r;
  }
  return 0;
}

/* Reads section sh of the file into a fresh buffer (bounded). */
static void *read_section(int fd, const ElfW(Shdr) *sh, size_t file_size) {
  if (sh->sh_size == 0 || sh->sh_size > MAX_DYN_BYTES || sh->sh_offset > file_size ||
      sh->sh_size > file_size - sh->sh_offset)
    return NULL;
  void *p = malloc(sh->sh_size + 1);
  if (p != NULL && read_at(fd, p, sh->sh_size, (off_t)sh->sh_offset) != 0) {
    free(p);
    return NULL;
  }
  if (p)
    ((char *)p)[sh->sh_size] = 0; /* a string table without a final NUL stays bounded */
  return p;
}

int ferry_ffi_check_slots(const char *path, const char *name, ferry_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ferry_err_set(err, FERRY_EIO, "cannot open %s: %s", name, strerror(errno));
  int rc = FERRY_OK;
  char *strtab = NULL;
  ElfW(Sym) *syms = NULL;
  ElfW(Shdr) *shdrs = NULL;
  ElfW(Ehdr) eh;
  off_t end = lseek(fd, 0, SEEK_END);
  size_t file_size = end > 0 ? (size_t)end : 0;
  if (read_at(fd, &eh, sizeof eh, 0) == 0 && eh.e_shnum == 0)
    goto out; /* no section table (sstrip): nothing to check, dlopen needs none */
  if (read_at(fd, &eh, sizeof eh, 0) != 0 || eh.e_shentsize != sizeof(ElfW(Shdr)) ||
      eh.e_shnum > MAX_SECTIONS || eh.e_shoff > file_size ||
      (size_t)eh.e_shnum * sizeof(ElfW(Shdr)) > file_size - eh.e_shoff) {
    rc = ferry_err_set(err, FERRY_EDLOPEN, "cannot load %s: unreadable ELF section table", name);
    goto out;
  }
  shdrs = malloc((size_t)eh.e_shnum * sizeof *shdrs);
  if (shdrs == NULL ||
      read_at(fd, shdrs, (size_t)eh.e_shnum * sizeof *shdrs, (off_t)eh.e_shoff) != 0) {
    rc = ferry_err_set(err, FERRY_EDLOPEN, "cannot load %s: unreadable ELF section table", name);
    goto out;
  }
  for (size_t s = 0; s < eh.e_shnum && rc == FERRY_OK; s++) {
    if (shdrs[s].sh_type != SHT_DYNSYM || shdrs[s].sh_link >= eh.e_shnum ||
        shdrs[s].sh_entsize != sizeof(ElfW(Sym)))
      continue;
    syms = read_section(fd, &shdrs[s], file_size);
    strtab = read_section(fd, &shdrs[shdrs[s].sh_link], file_size);
    if (syms == NULL || strtab == NULL) {
      rc = ferry_err_set(err, FERRY_EDLOPEN, "cannot load %s: unreadable dynamic symbols", name);
      break;
    }
    size_t nsyms = shdrs[s].sh_size / sizeof(ElfW(Sym));
    size_t strsize = shdrs[shdrs[s].sh_link].sh_size;
    for (size_t i = 0; i < nsyms; i++) {
      const ElfW(Sym) *sym = &syms[i];
      int type = ELF64_ST_TYPE(sym->st_info);
      if (sym->st_shndx == SHN_UNDEF || sym->st_name >= strsize ||
          (type != STT_OBJECT && type != STT_COMMON) || sym->st_size != sizeof(void *))
        continue;
      const char *sname = strtab + sym->st_name;
      /* Every runtime function tvm-ffi code reaches through a slot is
       * named __TVM...; one ferry leaves empty would be a jump to NULL at
       * the first call, so refuse the library now, by name. */
      if (strncmp(sname, "__TVM", 5) == 0 && !known_slot(sname)) {
        rc = ferry_err_set(err, FERRY_EDLOPEN,
                           "cannot load %s: it needs the runtime function %s (context slot "
                           "%s), which ferry does not provide",
                           name, sname + 2, sname);
        break;
      }
    }
    free(syms);
    free(strtab);
    syms = NULL;
    strtab = NULL;
  }
out:
  free(syms);
  free(strtab);
  free(shdrs);
  close(fd);
  return rc;
}

/* First key of a __tvm_ffi__library_bin that is not "_lib", for the
 * message refusing it: u64 size, vec<u64> indptr, vec<u64> children, then
 * per module a string key and, except for "_lib", a byte string. */
void ferry_ffi_library_bin_kind(const uint8_t *bin, size_t avail, char *out, size_t cap) {
  snprintf(out, cap, "unknown");
  size_t off = 8;
  uint64_t counts[2];
  for (int v = 0; v < 2; v++) {
    if (avail < off + 8)
      return;
    memcpy(&counts[v], bin + off, 8);
    off += 8;
    if (counts[v] > (avail - off) / 8)
      return;
    off += (size_t)counts[v] * 8;
  }
  uint64_t nmods = counts[0] ? counts[0] - 1 : 0;
  for (uint64_t m = 0; m < nmods; m++) {
    uint64_t klen;
    if (avail < off + 8)
      return;
    memcpy(&klen, bin + off, 8);
    off += 8;
    if (klen > avail - off)
      return;
    const char *key = (const char *)bin + off;
    off += (size_t)klen;
    if (!(klen == 4 && memcmp(key, "_lib", 4) == 0)) {
      snprintf(out, cap, "%.*s", (int)(klen < 64 ? klen : 64), key);
      for (char *p = out; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
          *p = '?';
      return;
    }
  }
}

/* ffi.SystemLib: what a TVM >= 0.21 client calls for remote.system_lib().
 * ferry keeps one system-library table for both ABIs. */
static int ffi_system_lib_fn(ferry_call *c) {
  const char *prefix = "";
  int rc = ferry_arg_count(c, "ffi.SystemLib", 0, 1);
  if (rc == FERRY_OK && c->nargs == 1)
    rc = ferry_arg_str(c, "ffi.SystemLib", 0, &prefix);
  if (rc)
    return rc;
  ferry_module *m;
  rc = ferry_syslib_get(c->rt, prefix, &m, c->err);
  if (rc)
    return rc;
  ferry_call_return_obj(c, FERRY_KIND_MODULE, &m->base);
  return FERRY_OK;
}

const struct ferry_builtin ferry_ffi_builtins[] = {
    {"ffi.SystemLib", ffi_system_lib_fn},
    {NULL, NULL},
};
