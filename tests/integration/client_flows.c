/* Every client flow of rpc-session.md §5 (but the graph executor) against
 * a real server, through the public API only (ferry/client.h).  Run by
 * tests/integration/test_client.py:
 *
 *   client_flows --host H --port P [--key K] LIB.so
 *   client_flows --tracker H:P --key K [--priority N] LIB.so
 *   (either with --dialect ffi to speak TVM >= 0.21's session dialect)
 *
 * Prints "ok <flow>" per flow and "FAIL <flow>: <why>" on the first
 * failure (exit status 1).  Values are checked here: addone's output
 * element by element, add_i64(2, 40) == 42, mul_f64(1.5, 4.0) == 6.0, the
 * text of fail(), the file round trip, listdir, remove, the time
 * evaluator's numbers, and a 1 MiB tensor round trip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/client.h"

static ferry_client *c;
static const char *flow = "connect";

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond)) {                                                            \
      printf("FAIL %s: ", flow);                                              \
      printf(__VA_ARGS__);                                                    \
      printf(" [client: %s]\n", c ? ferry_client_errmsg(c) : "");             \
      exit(1);                                                                \
    }                                                                         \
  } while (0)

static void ok(void) { printf("ok %s\n", flow); }

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *tracker = NULL, *key = "", *lib = NULL;
  int port = 9090, priority = 1, ffi = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
      host = argv[++i];
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
      port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--tracker") == 0 && i + 1 < argc)
      tracker = argv[++i];
    else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
      key = argv[++i];
    else if (strcmp(argv[i], "--priority") == 0 && i + 1 < argc)
      priority = atoi(argv[++i]);
    else if (strcmp(argv[i], "--dialect") == 0 && i + 1 < argc)
      ffi = strcmp(argv[++i], "ffi") == 0;
    else
      lib = argv[i];
  }
  if (!lib) {
    fprintf(stderr, "usage: client_flows [--host H --port P | --tracker H:P] [--key K] LIB.so\n");
    return 2;
  }
  ferry_client_opts o;
  ferry_client_opts_init(&o);
  o.timeout_ms = 20000;
  o.dialect = ffi ? FERRY_CLIENT_FFI : FERRY_CLIENT_CLASSIC;
  char err[1024] = "";
  int rc;
  if (tracker) {
    char th[256];
    snprintf(th, sizeof th, "%s", tracker);
    char *colon = strrchr(th, ':');
    CHECK(colon, "bad --tracker");
    *colon = 0;
    rc = ferry_client_connect_tracker(th, atoi(colon + 1), key, priority, &o, &c, err, sizeof err);
  } else {
    rc = ferry_client_connect(host, port, key, &o, &c, err, sizeof err);
  }
  CHECK(rc == 0, "%s", err);
  ok();

  /* §5.2 upload, §5.3 load_module */
  flow = "upload";
  CHECK(ferry_client_upload_file(c, lib, "testlib.so") == 0, "upload of %s", lib);
  ok();
  flow = "load_module";
  ferry_remote *mod = NULL;
  CHECK(ferry_client_load_module(c, "testlib.so", &mod) == 0, "load_module");
  CHECK(ferry_remote_kind(mod) == FERRY_KIND_MODULE, "not a module");
  ok();

  /* §5.4-5.7: addone on a 3x4 tensor, read back */
  flow = "addone";
  ferry_remote *f = NULL, *a = NULL, *b = NULL;
  CHECK(ferry_client_module_function(c, mod, "addone", &f) == 0, "lookup");
  int64_t shape[2] = {3, 4};
  DLDevice cpu = {kDLCPU, 0};
  DLDataType f32 = {kDLFloat, 32, 1};
  CHECK(ferry_client_tensor_empty(c, cpu, 2, shape, f32, &a) == 0, "alloc a");
  CHECK(ferry_client_tensor_empty(c, cpu, 2, shape, f32, &b) == 0, "alloc b");
  float in[12], out[12];
  for (int i = 0; i < 12; i++)
    in[i] = (float)i * 0.5f - 2.0f;
  CHECK(ferry_client_tensor_copy_in(c, a, in, sizeof in) == 0, "copy in");
  ferry_value args[2] = {ferry_remote_value(a), ferry_remote_value(b)};
  ferry_result r;
  CHECK(ferry_client_call(c, f, args, 2, &r) == 0, "call");
  CHECK(r.value.kind == FERRY_KIND_NONE, "addone returned a %s", ferry_kind_name(r.value.kind));
  CHECK(ferry_client_tensor_copy_out(c, b, out, sizeof out) == 0, "copy out");
  for (int i = 0; i < 12; i++)
    CHECK(out[i] == in[i] + 1.0f, "b[%d] = %g, want %g", i, out[i], in[i] + 1.0f);
  ok();

  /* __tvm_main__ names addone */
  flow = "entry_func";
  ferry_remote *entry = NULL;
  CHECK(ferry_client_module_function(c, mod, "__tvm_main__", &entry) == 0, "lookup");
  CHECK(ferry_client_release(c, entry) == 0, "release");
  ok();

  flow = "add_i64";
  ferry_remote *g = NULL;
  CHECK(ferry_client_module_function(c, mod, "add_i64", &g) == 0, "lookup");
  ferry_value ia[2] = {ferry_arg_int(2), ferry_arg_int(40)};
  CHECK(ferry_client_call(c, g, ia, 2, &r) == 0, "call");
  CHECK(r.value.kind == FERRY_KIND_INT && r.value.v.i == 42, "add_i64(2, 40) gave %s %lld",
        ferry_kind_name(r.value.kind), (long long)r.value.v.i);
  CHECK(ferry_client_release(c, g) == 0, "release");
  ok();

  flow = "mul_f64";
  CHECK(ferry_client_module_function(c, mod, "mul_f64", &g) == 0, "lookup");
  ferry_value fa[2] = {ferry_arg_float(1.5), ferry_arg_float(4.0)};
  CHECK(ferry_client_call(c, g, fa, 2, &r) == 0, "call");
  CHECK(r.value.kind == FERRY_KIND_FLOAT && r.value.v.f == 6.0, "mul_f64(1.5, 4) gave %g",
        r.value.v.f);
  CHECK(ferry_client_release(c, g) == 0, "release");
  ok();

  flow = "fail";
  CHECK(ferry_client_module_function(c, mod, "fail", &g) == 0, "lookup");
  rc = ferry_client_call(c, g, NULL, 0, &r);
  CHECK(rc == FERRY_EREMOTE, "fail() gave %d", rc);
  CHECK(strstr(ferry_client_errmsg(c), "fail: deliberate error from testlib") != NULL,
        "message '%s'", ferry_client_errmsg(c));
  printf("fail-message %s\n", ferry_client_errmsg(c));
  CHECK(ferry_client_release(c, g) == 0, "release");
  ok();

  flow = "missing_function";
  g = NULL;
  rc = ferry_client_module_function(c, mod, "no_such_function", &g);
  CHECK(rc == FERRY_ENOTFOUND && g == NULL, "got %d", rc);
  CHECK(strcmp(ferry_client_errmsg(c), "Module has no function 'no_such_function'") == 0,
        "message '%s'", ferry_client_errmsg(c));
  rc = ferry_client_get_function(c, "no.such.global", &g);
  CHECK(rc == FERRY_ENOTFOUND && g == NULL, "global: got %d", rc);
  ok();

  /* §5.8 time evaluator */
  flow = "time_evaluator";
  ferry_time_opts to;
  ferry_time_opts_init(&to);
  to.number = 5;
  to.repeat = 3;
  ferry_remote *ev = NULL;
  CHECK(ferry_client_time_evaluator(c, mod, "addone", cpu, &to, &ev) == 0, "create");
  double secs[8];
  int n = 0;
  CHECK(ferry_client_time(c, ev, args, 2, secs, 8, &n) == 0, "run");
  CHECK(n == 3, "%d results", n);
  for (int i = 0; i < n; i++)
    CHECK(secs[i] > 0 && secs[i] < 1.0 && isfinite(secs[i]), "timing %d = %g s", i, secs[i]);
  printf("time-evaluator-us %.3f %.3f %.3f\n", secs[0] * 1e6, secs[1] * 1e6, secs[2] * 1e6);
  CHECK(ferry_client_release(c, ev) == 0, "release");
  ok();

  /* A 1 MiB tensor round trip (one copy packet each way unless the
   * server asks for chunks). */
  flow = "big_tensor";
  int64_t big_shape[1] = {262144};
  ferry_remote *big = NULL;
  CHECK(ferry_client_tensor_empty(c, cpu, 1, big_shape, f32, &big) == 0, "alloc");
  float *bin = malloc(262144 * sizeof(float)), *bout = malloc(262144 * sizeof(float));
  CHECK(bin && bout, "malloc");
  for (int i = 0; i < 262144; i++)
    bin[i] = (float)(i % 1000) * 0.25f;
  CHECK(ferry_client_tensor_copy_in(c, big, bin, 262144 * sizeof(float)) == 0, "copy in");
  CHECK(ferry_client_tensor_copy_out(c, big, bout, 262144 * sizeof(float)) == 0, "copy out");
  CHECK(memcmp(bin, bout, 262144 * sizeof(float)) == 0, "data differs");
  free(bin);
  free(bout);
  CHECK(ferry_client_release(c, big) == 0, "release");
  ok();

  /* Files: round trip, listdir, remove, download of a removed file. */
  flow = "files";
  const char text[] = "hello ferry\n";
  CHECK(ferry_client_upload(c, "hello.txt", text, sizeof text - 1) == 0, "upload");
  void *data = NULL;
  size_t len = 0;
  CHECK(ferry_client_download(c, "hello.txt", &data, &len) == 0, "download");
  CHECK(len == sizeof text - 1 && memcmp(data, text, len) == 0, "content differs");
  free(data);
  size_t liblen = 0;
  char *libbytes = read_file(lib, &liblen);
  CHECK(libbytes, "cannot read %s", lib);
  CHECK(ferry_client_download(c, "testlib.so", &data, &len) == 0, "download lib");
  CHECK(len == liblen && memcmp(data, libbytes, len) == 0, "library bytes differ");
  free(data);
  free(libbytes);
  ok();

  flow = "listdir";
  char **names = NULL;
  size_t count = 0;
  CHECK(ferry_client_listdir(c, ".", &names, &count) == 0, "listdir");
  int seen_hello = 0, seen_lib = 0;
  for (size_t i = 0; i < count; i++) {
    const char *base = strrchr(names[i], '/');
    base = base ? base + 1 : names[i];
    seen_hello |= strcmp(base, "hello.txt") == 0;
    seen_lib |= strcmp(base, "testlib.so") == 0;
    printf("listdir-entry %s\n", names[i]);
  }
  ferry_client_free_names(names, count);
  CHECK(seen_hello && seen_lib, "listdir lacks hello.txt or testlib.so");
  /* "" is the session folder too (what `ferry ls` asks by default). */
  CHECK(ferry_client_listdir(c, "", &names, &count) == 0, "listdir('')");
  CHECK(count == 2, "listdir('') has %zu entries", count);
  ferry_client_free_names(names, count);
  ok();

  flow = "remove";
  CHECK(ferry_client_remove(c, "hello.txt") == 0, "remove");
  CHECK(ferry_client_listdir(c, ".", &names, &count) == 0, "listdir");
  for (size_t i = 0; i < count; i++) {
    const char *base = strrchr(names[i], '/');
    CHECK(strcmp(base ? base + 1 : names[i], "hello.txt") != 0, "hello.txt still listed");
  }
  ferry_client_free_names(names, count);
  rc = ferry_client_download(c, "hello.txt", &data, &len);
  CHECK(rc == FERRY_EREMOTE, "download of a removed file gave %d", rc);
  printf("download-missing %s\n", ferry_client_errmsg(c));
  ok();

  /* §5.10: release what is left explicitly, then shut down. */
  flow = "release";
  CHECK(ferry_client_release(c, f) == 0, "release f");
  CHECK(ferry_client_release(c, a) == 0, "release a");
  CHECK(ferry_client_release(c, b) == 0, "release b");
  CHECK(ferry_client_release(c, mod) == 0, "release mod");
  ok();
  flow = "close";
  ferry_client_close(c);
  c = NULL;
  ok();
  return 0;
}
