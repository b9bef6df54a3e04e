/* `ferry pack`: graph JSON + parameter dict + kernel objects -> one
 * deployable library, laid out as TVM's export_library lays out a
 * relay.build network: the kernels, and a `__tvm_dev_mblob` holding a
 * GraphExecutorFactory (graph, parameters, module name "default") that
 * imports the library's own code ("_lib").
 *
 * The blob is written as a C file (a const array named __tvm_dev_mblob,
 * as TVM's devc.c) in a private temporary folder and linked with the
 * objects by the system C compiler ($CC, `cc`, or --cc for a cross
 * compiler), which is exec'd with an argv: no shell sees any of the
 * user's text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "wire/mblob.h"
#include "wire/mblob_write.h"
#include "wire/pack_check.h"

#define MAX_CC_WORDS 16
#define MAX_LINK_ARGS (MAX_CC_WORDS + FERRY_OPT_LIST_MAX * 2 + 1024)

/* Reads a regular file of at most max bytes into a malloc'ed buffer (one
 * spare byte for a NUL). */
static int read_file(const char *what, const char *path, size_t max, uint8_t **out,
                     size_t *len) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fprintf(stderr, "ferry pack: cannot read the %s '%s': %s\n", what, path,
            f ? "not a regular file" : strerror(errno));
    if (f)
      fclose(f);
    return 1;
  }
  if ((uint64_t)st.st_size > max) {
    fprintf(stderr, "ferry pack: the %s '%s' is over %zu bytes\n", what, path, max);
    fclose(f);
    return 1;
  }
  size_t n = (size_t)st.st_size;
  uint8_t *p = malloc(n + 1);
  if (!p || fread(p, 1, n, f) != n) {
    fprintf(stderr, "ferry pack: cannot read the %s '%s'\n", what, path);
    free(p);
    fclose(f);
    return 1;
  }
  fclose(f);
  p[n] = 0;
  *out = p;
  *len = n;
  return 0;
}

/* The blob as C source: TVM's devc.c defines the same symbol. */
static int write_blob_c(const char *path, const ferry_buf *blob) {
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fprintf(f, "/* Written by ferry pack: the module blob of a graph-executor network. */\n"
             "__attribute__((visibility(\"default\")))\n"
             "extern const unsigned char __tvm_dev_mblob[%zu];\n"
             "const unsigned char __tvm_dev_mblob[%zu] = {\n",
          blob->len, blob->len);
  static const char hex[] = "0123456789abcdef";
  char line[16 * 5 + 2];
  for (size_t i = 0; i < blob->len; i += 16) {
    size_t k = 0;
    for (size_t j = i; j < blob->len && j < i + 16; j++) {
      line[k++] = '0';
      line[k++] = 'x';
      line[k++] = hex[blob->data[j] >> 4];
      line[k++] = hex[blob->data[j] & 15];
      line[k++] = ',';
    }
    line[k++] = '\n';
    fwrite(line, 1, k, f);
  }
  fprintf(f, "};\n");
  int bad = ferror(f);
  return fclose(f) == 0 && !bad ? 0 : -1;
}

/* Splits the compiler command ("ccache gcc") on blanks into argv words. */
static int split_cc(char *cc, char **words, int max) {
  int n = 0;
  for (char *t = strtok(cc, " \t"); t; t = strtok(NULL, " \t")) {
    if (n == max)
      return -1;
    words[n++] = t;
  }
  return n;
}

static int run_compiler(char **argv) {
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "ferry pack: fork: %s\n", strerror(errno));
    return 1;
  }
  if (pid == 0) {
    execvp(argv[0], argv);
    fprintf(stderr, "ferry pack: cannot run the compiler '%s': %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR)
      return 1;
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return 0;
  if (!(WIFEXITED(st) && WEXITSTATUS(st) == 127))
    fprintf(stderr, "ferry pack: the compiler '%s' failed (%s %d)\n", argv[0],
            WIFEXITED(st) ? "exit status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  return 1;
}

typedef struct pack_opts {
  const char *graph, *params, *output, *cc, *module_name;
  struct ferry_opt_list ldflags;
} pack_opts;

static int link_library(const pack_opts *o, const ferry_buf *blob, char **objs, int nobj) {
  const char *tmp = getenv("TMPDIR");
  char dir[4096], src[4200];
  snprintf(dir, sizeof dir, "%s/ferry-pack-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "ferry pack: cannot create a temporary folder: %s\n", strerror(errno));
    return 1;
  }
  snprintf(src, sizeof src, "%s/devc.c", dir);
  int status = 1;
  char *cc = NULL, **dashed = calloc((size_t)nobj, sizeof *dashed);
  if (write_blob_c(src, blob) != 0) {
    fprintf(stderr, "ferry pack: cannot write %s\n", src);
    goto out;
  }
  const char *env_cc = getenv("CC");
  cc = strdup(o->cc ? o->cc : env_cc && *env_cc ? env_cc : "cc");
  char *argv[MAX_LINK_ARGS];
  int n = cc ? split_cc(cc, argv, MAX_CC_WORDS) : -1;
  if (n <= 0) {
    fprintf(stderr, "ferry pack: bad compiler command\n");
    goto out;
  }
  static char shared[] = "-shared", fpic[] = "-fPIC", dash_o[] = "-o", lm[] = "-lm";
  argv[n++] = shared;
  argv[n++] = fpic;
  argv[n++] = dash_o;
  argv[n++] = (char *)o->output;
  argv[n++] = src;
  /* A file called "-shared" is a file, not an option: "./-shared". */
  for (int i = 0; i < nobj && dashed; i++) {
    if (objs[i][0] == '-') {
      size_t len = strlen(objs[i]);
      if (!(dashed[i] = malloc(len + 3)))
        goto out;
      memcpy(dashed[i], "./", 2);
      memcpy(dashed[i] + 2, objs[i], len + 1);
    }
  }
  if (!dashed)
    goto out;
  for (int i = 0; i < nobj; i++)
    argv[n++] = dashed[i] ? dashed[i] : objs[i];
  for (int i = 0; i < o->ldflags.n; i++)
    argv[n++] = (char *)o->ldflags.items[i];
  argv[n++] = lm;
  argv[n] = NULL;
  status = run_compiler(argv);
out:
  for (int i = 0; dashed && i < nobj; i++)
    free(dashed[i]);
  free(dashed);
  free(cc);
  unlink(src);
  rmdir(dir);
  return status;
}

int ferry_cmd_pack(int argc, char **argv) {
  pack_opts o = {.module_name = "default"};
  const ferry_opt table[] = {
      {"graph", FERRY_OPT_STRING, &o.graph, "FILE.json", "the graph JSON (required)"},
      {"params", FERRY_OPT_STRING, &o.params, "FILE",
       "the parameters as a TVM parameter dict (relay.save_param_dict; default: none)"},
      {"output", FERRY_OPT_STRING, &o.output, "FILE.so", "the library to write (required)"},
      {"cc", FERRY_OPT_STRING, &o.cc, "COMPILER",
       "C compiler that links the library, e.g. aarch64-linux-gnu-gcc (default: $CC or cc)"},
      {"module-name", FERRY_OPT_STRING, &o.module_name, "NAME",
       "the factory's function that creates the executor (default: default)"},
      {"ldflag", FERRY_OPT_LIST, &o.ldflags, "FLAG",
       "one more compiler argument for the link, e.g. --ldflag=-lpthread"},
  };
  const ferry_cmd_spec spec = {
      "pack", "--graph G.json [--params P] --output M.so KERNEL.o [MORE.o|.a ...]",
      "Package a compiled network as one library the way TVM's export_library does: the "
      "kernels, and a __tvm_dev_mblob holding a GraphExecutorFactory with the graph and its "
      "parameters.",
      table, (int)(sizeof table / sizeof table[0])};
  int npos = 0;
  int prc = ferry_opts_parse(&spec, argc, argv, &npos);
  if (prc)
    return prc == 1 ? 0 : 2;
  if (!o.graph || !o.output || npos < 1 || !*o.module_name) {
    fprintf(stderr, "ferry pack: expected --graph, --output and at least one kernel object "
                    "(see ferry pack --help)\n");
    return 2;
  }
  if (npos > 1000) {
    fprintf(stderr, "ferry pack: at most 1000 kernel files\n");
    return 2;
  }
  for (int i = 1; i <= npos; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0 || !S_ISREG(st.st_mode)) {
      fprintf(stderr, "ferry pack: kernel file '%s': %s\n", argv[i],
              errno && stat(argv[i], &st) != 0 ? strerror(errno) : "not a regular file");
      return 1;
    }
  }
  uint8_t *json = NULL, *params = NULL;
  size_t json_len = 0, params_len = 0, nparams = 0;
  int status = read_file("graph", o.graph, FERRY_PACK_MAX_JSON, &json, &json_len);
  if (!status && o.params)
    status = read_file("params", o.params, FERRY_MBLOB_MAX_BYTES, &params, &params_len);
  if (!status && o.params && params_len == 0) {
    fprintf(stderr, "ferry pack: the params file '%s' is empty\n", o.params);
    status = 1;
  }
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  if (!status && ferry_pack_check((const char *)json, json_len, params, params_len, &nparams,
                                  &why) != 0) {
    fprintf(stderr, "ferry pack: %s\n", why.msg);
    status = 1;
  }
  ferry_buf blob;
  ferry_buf_init(&blob, (size_t)FERRY_MBLOB_MAX_BYTES + 8);
  if (!status) {
    int rc = ferry_mblob_write_graph_factory(&blob, (const char *)json, json_len, params,
                                             params_len, o.module_name);
    if (rc) {
      fprintf(stderr, "ferry pack: cannot build the module blob: %s\n", ferry_strerror(rc));
      status = 1;
    }
  }
  free(json);
  free(params);
  if (!status)
    status = link_library(&o, &blob, argv + 1, npos);
  if (!status)
    printf("packed %s: %zu parameters, module blob %zu bytes\n", o.output, nparams, blob.len);
  ferry_buf_close(&blob);
  return status;
}
