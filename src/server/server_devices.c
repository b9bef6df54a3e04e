/* The device list a server logs at start.  Finding it loads the OpenCL
 * driver and creates a context, which the server's parent must never hold
 * (a kernel that wedges the driver would take every later session with
 * it), so a short-lived child probes and writes the list into a pipe. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/net.h"
#include "runtime/runtime.h"
#include "server/server_main.h"

#define PROBE_TIMEOUT_MS 20000

void ferry_server_probe_devices(char *out, size_t cap) {
  snprintf(out, cap, "cpu (the device probe failed)");
  int fds[2];
  if (pipe(fds) != 0)
    return;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return;
  }
  if (pid == 0) {
    close(fds[0]);
    char list[1024];
    ferry_rt_describe_devices(list, sizeof list);
    /* A short list reads as whatever arrived; the child has nothing more
     * to say on a failure. */
    (void)!ferry_fd_write_all(fds[1], list, strlen(list));
    _exit(0);
  }
  close(fds[1]);
  size_t len = 0;
  char buf[1024];
  for (;;) {
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    int r = poll(&p, 1, PROBE_TIMEOUT_MS);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break; /* a driver that hangs at init: the list stays "failed" */
    ssize_t got = read(fds[0], buf + len, sizeof buf - 1 - len);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    len += (size_t)got;
    if (len == sizeof buf - 1)
      break;
  }
  close(fds[0]);
  buf[len] = 0;
  if (len > 0)
    snprintf(out, cap, "%s", buf);
  kill(pid, SIGKILL); /* no-op when it has exited */
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
}
