/* Linking uploaded object files and .tar archives into a loadable shared
 * library, as TVM's servers do for load_module / download_linked_module
 * (rpc-session.md 4.2): "x.o" -> cc -shared -o x.o.so x.o; "x.tar" ->
 * extract into x.tar.d/, then link every .o/.c in it into x.tar.so.
 *
 * TVM's export_library writes x.tar with `tar -czf` (gzip-compressed), and
 * TVM's servers untar with `tar -xf`, which notices the compression by
 * itself; ferry does the same for gzip: an archive that starts with gzip's
 * magic is inflated by the system's `gzip -dc` into memory (bounded as a
 * plain archive is, FERRY_RT_MAX_FILE) and then read like any other.
 *
 * The archive is read by ferry itself (ustar headers; regular files and
 * folders only, names checked like client file names, files created with
 * O_NOFOLLOW|O_EXCL below the work folder), so a hostile archive cannot
 * write outside the session folder through "..", absolute names or links.
 * The compiler is $CC or "cc"; without one the error says so. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/net.h"
#include "runtime/rt_internal.h"

extern char **environ;

#define TAR_BLOCK 512
#define TAR_MAX_FILES 4096
#define LINK_MAX_INPUTS 1024

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Reads a whole file below the work folder (bounded). */
static int slurp(ferry_rt *rt, const char *name, uint8_t **out, size_t *len, ferry_err *err) {
  int fd = ferry_files_open_below(rt->work_dir, name, O_RDONLY, 0);
  if (fd < 0)
    return ferry_err_set(err, FERRY_EIO, "Cannot open %s: %s", name, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > FERRY_RT_MAX_FILE) {
    close(fd);
    return ferry_err_set(err, FERRY_EIO, "%s is not a regular file of a sane size", name);
  }
  uint8_t *p = malloc((size_t)st.st_size + 1);
  size_t done = 0;
  while (p && done < (size_t)st.st_size) {
    ssize_t n = read(fd, p + done, (size_t)st.st_size - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    done += (size_t)n;
  }
  close(fd);
  if (p == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory reading %s", name);
  *out = p;
  *len = done;
  return FERRY_OK;
}

/* Inflates the gzip file `name` (below the work folder) with `gzip -dc`:
 * its output is read from a pipe into *out (malloc'd, the caller frees)
 * up to the work quota (the members are written into the work folder
 * anyway), or FERRY_RT_MAX_FILE without one; a larger one kills gzip and
 * is refused, so a small hostile archive cannot make the session allocate
 * without bound.
 * On error nothing needs freeing. */
static int gunzip_slurp(ferry_rt *rt, const char *name, uint8_t **out, size_t *len,
                        ferry_err *err) {
  int in = ferry_files_open_below(rt->work_dir, name, O_RDONLY, 0);
  if (in < 0)
    return ferry_err_set(err, FERRY_EIO, "Cannot open %s: %s", name, strerror(errno));
  int pfd[2];
  if (pipe(pfd) != 0) {
    close(in);
    return ferry_err_set(err, FERRY_EIO, "pipe: %s", strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in, 0);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclose(&fa, pfd[0]);
  char *argv[] = {"gzip", "-dc", NULL};
  pid_t pid;
  int src = posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in);
  close(pfd[1]);
  if (src != 0) {
    close(pfd[0]);
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "%s is gzip-compressed and 'gzip' cannot be run (%s); upload an "
                         "uncompressed .tar instead",
                         name, strerror(src));
  }
  uint64_t limit = rt->work_quota && rt->work_quota < FERRY_RT_MAX_FILE ? rt->work_quota
                                                                       : FERRY_RT_MAX_FILE;
  size_t cap = limit < (1u << 20) ? (size_t)limit : (1u << 20), done = 0;
  uint8_t *p = malloc(cap);
  int rc = p ? FERRY_OK : FERRY_ENOMEM;
  while (rc == FERRY_OK) {
    if (done == cap) {
      if (cap >= limit) {
        rc = FERRY_ETOOBIG;
        break;
      }
      size_t ncap = cap * 2 > limit ? (size_t)limit : cap * 2;
      uint8_t *q = realloc(p, ncap);
      if (!q) {
        rc = FERRY_ENOMEM;
        break;
      }
      p = q;
      cap = ncap;
    }
    ssize_t n = read(pfd[0], p + done, cap - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      rc = FERRY_EIO;
    if (n <= 0)
      break;
    done += (size_t)n;
  }
  close(pfd[0]);
  if (rc)
    kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    rc = FERRY_EPROTO;
  if (rc) {
    free(p);
    if (rc == FERRY_ETOOBIG)
      return ferry_err_set(err, rc, "%s inflates to more than %llu bytes%s", name,
                           (unsigned long long)limit,
                           limit < FERRY_RT_MAX_FILE ? " (the work quota)" : "");
    if (rc == FERRY_EPROTO)
      return ferry_err_set(err, rc, "%s: corrupt gzip data", name);
    return ferry_err_set(err, rc, "%s: cannot inflate: %s", name, ferry_strerror(rc));
  }
  *out = p;
  *len = done;
  return FERRY_OK;
}

/* Octal number field of a tar header (NUL/space terminated). */
static int tar_octal(const uint8_t *f, size_t n, uint64_t *out) {
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && f[i] == ' ')
    i++;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
    if (v >> 60)
      return FERRY_ERANGE;
    v = v * 8 + (uint64_t)(f[i] - '0');
  }
  if (i < n && f[i] != 0 && f[i] != ' ')
    return FERRY_EPROTO;
  *out = v;
  return FERRY_OK;
}

static int write_below(ferry_rt *rt, const char *name, const uint8_t *p, size_t n) {
  int fd = ferry_files_open_below(rt->work_dir, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0)
    return -1;
  if (ferry_fd_write_all(fd, p, n)) {
    close(fd);
    return -1;
  }
  return close(fd);
}

/* Extracts the archive `tar` into folder `dir` (both work-folder names). */
static int extract(ferry_rt *rt, const char *tar, const char *dir, ferry_err *err) {
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = slurp(rt, tar, &buf, &len, err);
  if (rc)
    return rc;
  if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
    free(buf);
    buf = NULL;
    if ((rc = gunzip_slurp(rt, tar, &buf, &len, err)))
      return rc;
  }
  size_t pos = 0;
  int files = 0;
  char rel[PATH_MAX], path[256 + 1 + 100 + 1];
  while (rc == FERRY_OK && pos + TAR_BLOCK <= len) {
    const uint8_t *h = buf + pos;
    if (h[0] == 0)
      break; /* end-of-archive block */
    uint64_t size;
    if (tar_octal(h + 124, 12, &size) != FERRY_OK || size > len - pos - TAR_BLOCK) {
      rc = ferry_err_set(err, FERRY_EPROTO, "%s: corrupt or truncated tar header", tar);
      break;
    }
    char type = (char)h[156];
    /* ustar: prefix "/" name; both NUL-padded fields. */
    size_t nlen = strnlen((const char *)h, 100);
    size_t plen = memcmp(h + 257, "ustar", 5) == 0 ? strnlen((const char *)h + 345, 155) : 0;
    snprintf(path, sizeof path, "%.*s%s%.*s", (int)plen, (const char *)h + 345, plen ? "/" : "",
             (int)nlen, (const char *)h);
    const uint8_t *data = h + TAR_BLOCK;
    pos += TAR_BLOCK + (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
    if (type == 'x' || type == 'g')
      continue; /* pax metadata: not needed to link */
    if (type != '0' && type != 0 && type != '5') {
      rc = ferry_err_set(err, FERRY_EPERM,
                         "%s: member '%s' is a link or special file, which ferry refuses",
                         tar, path);
      break;
    }
    const char *why = ferry_files_name_problem(path, strlen(path), 0);
    if (why != NULL || snprintf(rel, sizeof rel, "%s/%s", dir, path) >= (int)sizeof rel) {
      rc = ferry_err_set(err, FERRY_EPERM, "%s: member '%s' refused: %s", tar, path,
                         why ? why : "name too long");
      break;
    }
    if (++files > TAR_MAX_FILES) {
      rc = ferry_err_set(err, FERRY_ETOOBIG, "%s: more than %d members", tar, TAR_MAX_FILES);
      break;
    }
    if (type == '5') {
      /* A folder: create it below the work folder (parents must exist). */
      char *slash = strrchr(rel, '/');
      while (slash && slash[1] == 0) {
        *slash = 0;
        slash = strrchr(rel, '/');
      }
      int pfd = -1;
      if (slash) {
        *slash = 0;
        pfd = ferry_files_open_below(rt->work_dir, rel, O_RDONLY | O_DIRECTORY, 0);
        *slash = '/';
      }
      if (pfd < 0 || (mkdirat(pfd, slash + 1, 0755) != 0 && errno != EEXIST))
        rc = ferry_err_set(err, FERRY_EIO, "%s: cannot create folder %s", tar, path);
      if (pfd >= 0)
        close(pfd);
      continue;
    }
    if (write_below(rt, rel, data, (size_t)size) != 0)
      rc = ferry_err_set(err, FERRY_EIO, "%s: cannot extract %s: %s", tar, path, strerror(errno));
  }
  free(buf);
  return rc;
}

/* Runs argv, stderr into log (a work-folder name); FERRY_OK on exit 0. */
static int run(ferry_rt *rt, char *const argv[], const char *log, ferry_err *err) {
  char logpath[PATH_MAX * 2];
  if (snprintf(logpath, sizeof logpath, "%s/%s", rt->work_dir, log) >= (int)sizeof logpath)
    return ferry_err_set(err, FERRY_ETOOBIG, "file name too long");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "cannot run the compiler '%s' to link the module (%s); upload a "
                         "shared library (.so) instead",
                         argv[0], strerror(rc));
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return FERRY_OK;
  char msg[1024] = "";
  FILE *f = fopen(logpath, "r");
  if (f) {
    size_t n = fread(msg, 1, sizeof msg - 1, f);
    msg[n] = 0;
    fclose(f);
  }
  return ferry_err_set(err, FERRY_EIO, "linking failed (%s exited with %d): %s", argv[0],
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1, msg);
}

int ferry_link_module(ferry_rt *rt, const char *name, char *out, size_t cap, ferry_err *err) {
  int is_o = has_suffix(name, ".o"), is_tar = has_suffix(name, ".tar");
  if (snprintf(out, cap, is_o || is_tar ? "%s.so" : "%s", name) >= (int)cap)
    return ferry_err_set(err, FERRY_ETOOBIG, "file name too long");
  if (!is_o && !is_tar)
    return FERRY_OK;
  const char *cc = getenv("CC");
  if (cc == NULL || *cc == 0)
    cc = "cc";
  char so[PATH_MAX], log[PATH_MAX], dir[PATH_MAX];
  if (snprintf(so, sizeof so, "%s/%s", rt->work_dir, out) >= (int)sizeof so ||
      snprintf(log, sizeof log, "%s.log", out) >= (int)sizeof log)
    return ferry_err_set(err, FERRY_ETOOBIG, "file name too long");
  char *argv[LINK_MAX_INPUTS + 8];
  char *inputs[LINK_MAX_INPUTS];
  int nin = 0, rc = FERRY_OK;
  if (is_o) {
    char in[PATH_MAX];
    if (snprintf(in, sizeof in, "%s/%s", rt->work_dir, name) >= (int)sizeof in)
      return ferry_err_set(err, FERRY_ETOOBIG, "file name too long");
    int fd = ferry_files_open_below(rt->work_dir, name, O_RDONLY, 0);
    if (fd < 0)
      return ferry_err_set(err, FERRY_EIO, "Cannot open %s: %s", name, strerror(errno));
    close(fd);
    inputs[nin] = strdup(in);
    if (inputs[nin] == NULL)
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    nin++;
  } else {
    /* A fresh folder per link, so an old extraction cannot interfere. */
    snprintf(dir, sizeof dir, "%s.d", name);
    for (int k = 0; k < 1000; k++) {
      if (k)
        snprintf(dir, sizeof dir, "%s.d%d", name, k);
      char full[PATH_MAX * 2];
      if (snprintf(full, sizeof full, "%s/%s", rt->work_dir, dir) >= (int)sizeof full)
        return ferry_err_set(err, FERRY_ETOOBIG, "file name too long");
      if (mkdir(full, 0755) == 0)
        break;
      if (errno != EEXIST || k == 999)
        return ferry_err_set(err, FERRY_EIO, "cannot create %s: %s", dir, strerror(errno));
    }
    if ((rc = extract(rt, name, dir, err)))
      return rc;
    char full[PATH_MAX * 2];
    if (snprintf(full, sizeof full, "%s/%s", rt->work_dir, dir) >= (int)sizeof full)
      return ferry_err_set(err, FERRY_ETOOBIG, "file name too long");
    DIR *d = opendir(full);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && nin < LINK_MAX_INPUTS) {
      if (e->d_type != DT_REG || !(has_suffix(e->d_name, ".o") || has_suffix(e->d_name, ".c") ||
                                   has_suffix(e->d_name, ".cc")))
        continue;
      char in[PATH_MAX * 3];
      if (snprintf(in, sizeof in, "%s/%s", full, e->d_name) >= (int)sizeof in)
        continue;
      if ((inputs[nin] = strdup(in)) == NULL)
        break;
      nin++;
    }
    if (d)
      closedir(d);
    if (nin == 0)
      return ferry_err_set(err, FERRY_EINVAL, "%s contains no object or C files to link", name);
  }
  int a = 0;
  argv[a++] = (char *)cc;
  argv[a++] = "-shared";
  argv[a++] = "-fPIC";
  argv[a++] = "-o";
  argv[a++] = so;
  for (int i = 0; i < nin; i++)
    argv[a++] = inputs[i];
  argv[a] = NULL;
  rc = run(rt, argv, log, err);
  for (int i = 0; i < nin; i++)
    free(inputs[i]);
  return rc;
}
