/* The file functions of the RPC server (spec rpc-session.md 4.2), confined
 * to the session's work folder.
 *
 * A client name is relative to the work folder; absolute names, ".."
 * components and embedded NULs are refused, and every component is opened
 * with O_NOFOLLOW from the work folder down, so a symbolic link cannot
 * lead outside it either.  Object files and .tar archives are linked into
 * a shared library first (linker.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

#define NAME_MAX_LEN 1024

const char *ferry_files_name_problem(const char *name, size_t len, int allow_empty) {
  if (strlen(name) != len)
    return "file name contains a NUL byte";
  if (len > NAME_MAX_LEN)
    return "file name is too long";
  if (len == 0 && !allow_empty)
    return "empty file name";
  if (name[0] == '/')
    return "absolute path refused: names are relative to the session folder";
  for (const char *p = name; *p;) {
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.')
      return "path refused: '..' may not leave the session folder";
    p += n;
    while (*p == '/')
      p++;
  }
  return NULL;
}

/* Checks a client-supplied name; allow_empty: "" names the folder itself. */
static int check_name(ferry_call *c, const char *fname, int i, int allow_empty,
                      const char **out) {
  const char *unvalidated_name;
  int rc = ferry_arg_str(c, fname, i, &unvalidated_name);
  if (rc)
    return rc;
  if (c->rt->work_dir == NULL)
    return ferry_err_set(c->err, FERRY_ESTATE, "%s: this session has no work folder", fname);
  const char *why =
      ferry_files_name_problem(unvalidated_name, c->args[i].v.str.len, allow_empty);
  if (why != NULL) {
    int code = strstr(why, "refused") ? FERRY_EPERM
               : strstr(why, "long")  ? FERRY_ETOOBIG
                                      : FERRY_EINVAL;
    return ferry_err_set(c->err, code, "%s '%.200s': %s", fname, unvalidated_name, why);
  }
  *out = unvalidated_name;
  return FERRY_OK;
}

/* Opens name below the work folder without following symbolic links.
 * flags apply to the last component; returns an fd or -1 with errno. */
int ferry_files_open_below(const char *work_dir, const char *name, int flags, unsigned mode) {
  int dir = open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return -1;
  char comp[NAME_MAX_LEN + 1];
  const char *p = name;
  while (*p == '/')
    p++;
  for (;;) {
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > NAME_MAX_LEN) {
      close(dir);
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(comp, p, n);
    comp[n] = 0;
    const char *q = p + n;
    while (*q == '/')
      q++;
    if (*q == 0) { /* last component */
      int fd = n == 0 ? dup(dir) : openat(dir, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
      int saved = errno;
      close(dir);
      errno = saved;
      return fd;
    }
    int next = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    close(dir);
    if (next < 0) {
      errno = saved;
      return -1;
    }
    dir = next;
    p = q;
  }
}

static int full_path(ferry_call *c, const char *name, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s%s%s", c->rt->work_dir, name[0] ? "/" : "", name);
  if (n < 0 || (size_t)n >= cap)
    return ferry_err_set(c->err, FERRY_ETOOBIG, "path too long");
  return FERRY_OK;
}

/* ---- the work quota --------------------------------------------------------
 * A session may upload files until its folder holds cfg quota bytes
 * (ferry server --work-quota).  The folder is measured at every upload
 * rather than counted, because files also appear and go by other paths
 * (the linker's outputs, remove, a model's own writes); the walk costs
 * O(entries), and the per-entry block charge bounds the number of entries
 * by the quota. */

uint64_t ferry_files_charge(uint64_t size) {
  if (size > UINT64_MAX - FERRY_FILES_BLOCK)
    return UINT64_MAX;
  uint64_t blocks = (size + FERRY_FILES_BLOCK - 1) / FERRY_FILES_BLOCK;
  return (blocks ? blocks : 1) * (uint64_t)FERRY_FILES_BLOCK;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Usage of what is inside the open folder dfd (consumed). */
static uint64_t usage_inside(int dfd, int depth) {
  DIR *d = fdopendir(dfd);
  if (d == NULL) {
    close(dfd);
    return 0;
  }
  uint64_t sum = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    sum = add_sat(sum, ferry_files_charge(S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0));
    if (S_ISDIR(st.st_mode) && depth < 32) {
      int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0)
        sum = add_sat(sum, usage_inside(sub, depth + 1));
    }
  }
  closedir(d);
  return sum;
}

uint64_t ferry_files_usage(const char *work_dir) {
  int dfd = open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return dfd < 0 ? 0 : usage_inside(dfd, 0);
}

/* Refuses an upload of len bytes to name (which it may replace) when the
 * folder would then hold more than the quota. */
static int check_quota(ferry_call *c, const char *name, size_t len) {
  uint64_t quota = c->rt->work_quota;
  if (quota == 0)
    return FERRY_OK;
  uint64_t used = ferry_files_usage(c->rt->work_dir);
  /* The file being replaced (O_TRUNC) gives its room back. */
  int old = ferry_files_open_below(c->rt->work_dir, name, O_RDONLY, 0);
  if (old >= 0) {
    struct stat st;
    if (fstat(old, &st) == 0 && S_ISREG(st.st_mode)) {
      uint64_t back = ferry_files_charge((uint64_t)st.st_size);
      used = used > back ? used - back : 0;
    }
    close(old);
  }
  uint64_t after = add_sat(used, ferry_files_charge(len));
  if (after <= quota)
    return FERRY_OK;
  return ferry_err_set(c->err, FERRY_ETOOBIG,
                       "upload of %s (%zu bytes) refused: the session folder would hold "
                       "%llu bytes, over its quota of %llu bytes (ferry server "
                       "--work-quota)",
                       name, len, (unsigned long long)after, (unsigned long long)quota);
}

/* Removes a file upload_fn created but could not finish. */
static void remove_partial(ferry_call *c, const char *name) {
  const char *slash = strrchr(name, '/');
  int dir;
  if (slash) {
    char parent[NAME_MAX_LEN + 1];
    memcpy(parent, name, (size_t)(slash - name));
    parent[slash - name] = 0;
    dir = ferry_files_open_below(c->rt->work_dir, parent, O_RDONLY | O_DIRECTORY, 0);
  } else {
    dir = open(c->rt->work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (dir >= 0) {
    (void)unlinkat(dir, slash ? slash + 1 : name, 0);
    close(dir);
  }
}

static int upload_fn(ferry_call *c) {
  const char *name, *data;
  size_t len;
  int rc = ferry_arg_count(c, "upload", 2, 2);
  if (rc == FERRY_OK)
    rc = check_name(c, "upload", 0, 0, &name);
  if (rc == FERRY_OK)
    rc = ferry_arg_bytes(c, "upload", 1, &data, &len);
  if (rc == FERRY_OK)
    rc = check_quota(c, name, len);
  if (rc)
    return rc;
  int fd = ferry_files_open_below(c->rt->work_dir, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return ferry_err_set(c->err, FERRY_EIO, "Cannot open %s for writing: %s", name,
                         strerror(errno));
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      /* A full disk (ENOSPC) or a quota of the system's: no half file
       * stays behind to be loaded or to hold the space. */
      int saved = n < 0 ? errno : ENOSPC;
      close(fd);
      remove_partial(c, name);
      return ferry_err_set(c->err, FERRY_EIO, "write to %s failed after %zu of %zu bytes: %s "
                           "(the partial file was removed)",
                           name, done, len, strerror(saved));
    }
    done += (size_t)n;
  }
  if (close(fd) != 0) {
    int saved = errno;
    remove_partial(c, name);
    return ferry_err_set(c->err, FERRY_EIO, "write to %s failed: %s (the partial file was "
                         "removed)", name, strerror(saved));
  }
  return FERRY_OK;
}

/* Reads a whole file below the work folder into the call's result. */
static int read_into_result(ferry_call *c, const char *name) {
  char path[PATH_MAX];
  int rc = full_path(c, name, path, sizeof path);
  if (rc)
    return rc;
  int fd = ferry_files_open_below(c->rt->work_dir, name, O_RDONLY, 0);
  if (fd < 0)
    return ferry_err_set(c->err, FERRY_EIO, "Cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ferry_err_set(c->err, FERRY_EIO, "Cannot open %s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > FERRY_RT_MAX_FILE || (uint64_t)st.st_size >= c->ret_storage.max) {
    close(fd);
    return ferry_err_set(c->err, FERRY_ETOOBIG, "%s is too large to send (%lld bytes)", path,
                         (long long)st.st_size);
  }
  size_t size = (size_t)st.st_size;
  c->ret_storage.len = 0;
  uint8_t *dst = ferry_buf_reserve(&c->ret_storage, size + 1);
  if (dst == NULL) {
    close(fd);
    return ferry_err_set(c->err, FERRY_ENOMEM, "out of memory reading %s", path);
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = read(fd, dst + done, size - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* the file shrank: send what is there */
    done += (size_t)n;
  }
  close(fd);
  dst[done] = 0;
  ferry_buf_commit(&c->ret_storage, done);
  c->ret.kind = FERRY_KIND_BYTES;
  c->ret.v.str.data = (const char *)c->ret_storage.data;
  c->ret.v.str.len = done;
  return FERRY_OK;
}

static int download_fn(ferry_call *c) {
  const char *name;
  int rc = ferry_arg_count(c, "download", 1, 1);
  if (rc == FERRY_OK)
    rc = check_name(c, "download", 0, 0, &name);
  return rc ? rc : read_into_result(c, name);
}

/* Removes base (below the open folder dir): a file, or a folder with all
 * it holds, never following a symbolic link (unlinkat removes the link). */
static void remove_tree(int dir, const char *base, int depth) {
  if (unlinkat(dir, base, 0) == 0 || errno != EISDIR)
    return;
  int fd = depth < 32 ? openat(dir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
        remove_tree(dirfd(d), e->d_name, depth + 1);
    closedir(d);
  } else if (fd >= 0) {
    close(fd);
  }
  (void)unlinkat(dir, base, AT_REMOVEDIR);
}

static int remove_fn(ferry_call *c) {
  const char *name;
  int rc = ferry_arg_count(c, "remove", 1, 1);
  if (rc == FERRY_OK)
    rc = check_name(c, "remove", 0, 1, &name);
  if (rc)
    return rc;
  if (name[0] == 0)
    return FERRY_OK; /* meta-schedule removes "" */
  /* Resolve the parent without following links, then unlink the entry. */
  const char *slash = strrchr(name, '/');
  int dir;
  if (slash) {
    char parent[NAME_MAX_LEN + 1];
    memcpy(parent, name, (size_t)(slash - name));
    parent[slash - name] = 0;
    dir = ferry_files_open_below(c->rt->work_dir, parent, O_RDONLY | O_DIRECTORY, 0);
  } else {
    dir = open(c->rt->work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  const char *base = slash ? slash + 1 : name;
  /* Like TVM's server, a file that is not there is not an error; a folder
   * goes with its contents (TVM's Python server uses rmtree). */
  if (dir >= 0) {
    if (*base && strcmp(base, ".") != 0)
      remove_tree(dir, base, 0);
    close(dir);
  }
  return FERRY_OK;
}

static int listdir_fn(ferry_call *c) {
  const char *name;
  int rc = ferry_arg_count(c, "listdir", 1, 1);
  if (rc == FERRY_OK)
    rc = check_name(c, "listdir", 0, 1, &name);
  if (rc)
    return rc;
  char path[PATH_MAX];
  if ((rc = full_path(c, name, path, sizeof path)))
    return rc;
  int fd = ferry_files_open_below(c->rt->work_dir, name, O_RDONLY | O_DIRECTORY, 0);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    int saved = errno;
    if (fd >= 0)
      close(fd);
    return ferry_err_set(c->err, FERRY_EIO, "Cannot open directory %s: %s", path,
                         strerror(saved));
  }
  ferry_buf out;
  ferry_buf_init(&out, FERRY_RT_MAX_FILE);
  size_t plen = strlen(path);
  const char *sep = plen && path[plen - 1] == '/' ? "" : "/";
  struct dirent *ent;
  rc = FERRY_OK;
  while (rc == FERRY_OK && (ent = readdir(d)) != NULL) {
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
      continue;
    rc = ferry_buf_printf(&out, "%s%s%s,", path, sep, ent->d_name);
  }
  closedir(d);
  if (rc == FERRY_OK)
    rc = ferry_call_return_str(c, out.data ? (const char *)out.data : "", out.len);
  else
    rc = ferry_err_set(c->err, rc, "listdir %s: listing too large", path);
  ferry_buf_close(&out);
  return rc;
}

static int workpath_fn(ferry_call *c) {
  const char *name;
  int rc = ferry_arg_count(c, "workpath", 1, 1);
  if (rc == FERRY_OK)
    rc = check_name(c, "workpath", 0, 1, &name);
  if (rc)
    return rc;
  char path[PATH_MAX];
  if ((rc = full_path(c, name, path, sizeof path)))
    return rc;
  return ferry_call_return_str(c, path, strlen(path));
}

static int load_module_fn(ferry_call *c) {
  const char *name;
  int rc = ferry_arg_count(c, "load_module", 1, 1);
  if (rc == FERRY_OK)
    rc = check_name(c, "load_module", 0, 0, &name);
  char linked[NAME_MAX_LEN + 16];
  if (rc == FERRY_OK)
    rc = ferry_link_module(c->rt, name, linked, sizeof linked, c->err);
  if (rc)
    return rc;
  name = linked;
  char path[PATH_MAX];
  if ((rc = full_path(c, name, path, sizeof path)))
    return rc;
  /* Refuse a path through a symbolic link before handing it to dlopen. */
  int fd = ferry_files_open_below(c->rt->work_dir, name, O_RDONLY, 0);
  if (fd < 0)
    return ferry_err_set(c->err, FERRY_EIO, "cannot load %s: %s", name, strerror(errno));
  close(fd);
  ferry_module *m = NULL;
  rc = ferry_library_load(c->rt, path, &m, c->err);
  if (rc)
    return rc;
  ferry_call_return_obj(c, FERRY_KIND_MODULE, &m->base);
  return FERRY_OK;
}

static int download_linked_fn(ferry_call *c) {
  const char *name;
  int rc = ferry_arg_count(c, "download_linked_module", 1, 1);
  if (rc == FERRY_OK)
    rc = check_name(c, "download_linked_module", 0, 0, &name);
  char linked[NAME_MAX_LEN + 16];
  if (rc == FERRY_OK)
    rc = ferry_link_module(c->rt, name, linked, sizeof linked, c->err);
  return rc ? rc : read_into_result(c, linked);
}

const struct ferry_builtin ferry_files_builtins[] = {
    {"tvm.rpc.server.upload", upload_fn},
    {"tvm.rpc.server.download", download_fn},
    {"tvm.rpc.server.remove", remove_fn},
    {"tvm.rpc.server.listdir", listdir_fn},
    {"tvm.rpc.server.workpath", workpath_fn},
    {"tvm.rpc.server.load_module", load_module_fn},
    {"tvm.rpc.server.download_linked_module", download_linked_fn},
    {NULL, NULL},
};
