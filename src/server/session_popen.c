/* rpc.PopenSession as a session constructor: kInitServer naming
 * "rpc.PopenSession" with the bytes of an executable, which this server
 * writes into the session folder and runs as the session's minrpc server
 * (TVM's rpc.connect(..., session_constructor_args=["rpc.PopenSession",
 * binary]): "minrpc on the remote").
 *
 * TVM's server runs it through its Python rpc.PopenSession: the file is
 * executed with two descriptor numbers as arguments, the one it reads
 * requests from and the one it writes replies to, and then served as a
 * client session.  As with rpc.Connect (session_hop.c), what the middle
 * server does amounts to forwarding each request unchanged, so after
 * kInitServer the bytes are relayed both ways (session_hop_relay) over a
 * socket pair whose one end is passed as both descriptors.
 *
 * Off unless the server runs with --allow-popen.  The power is the same
 * a client already has through load_module (its code runs in the
 * session), but it is a new way in, so it is the owner's choice.  The
 * executable is bounded by the packet limit and by the work quota, lives
 * in the session folder (removed with it), and runs in the session's
 * process group, so a timeout or a client that leaves ends it too. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/net.h"
#include "server/session_internal.h"

/* kInitServer with the minrpc child: it answers at once. */
#define POPEN_DEADLINE_MS 10000

static int write_exe(const char *path, const char *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
  if (fd < 0)
    return -1;
  if (ferry_fd_write_all(fd, p, n)) {
    close(fd);
    return -1;
  }
  return close(fd);
}

int session_popen_start(ferry_session *s, const ferry_value *v, int n, ferry_err *err) {
  if (!s->cfg->allow_popen)
    return ferry_err_set(err, FERRY_EPERM,
                         "RPCError: rpc.PopenSession sessions (running an executable the "
                         "client sends) are off on this server; start it with --allow-popen "
                         "to allow them");
  if (n < 2 || v[1].kind != FERRY_KIND_BYTES || v[1].v.str.len == 0)
    return ferry_err_set(err, FERRY_EINVAL,
                         "RPCError: rpc.PopenSession wants the executable's bytes (a path on "
                         "the server is not accepted: upload the bytes)");
  if (s->cfg->work_quota && v[1].v.str.len > s->cfg->work_quota)
    return ferry_err_set(err, FERRY_ETOOBIG,
                         "RPCError: rpc.PopenSession: the executable (%zu bytes) is over the "
                         "work quota (%llu bytes)",
                         v[1].v.str.len, (unsigned long long)s->cfg->work_quota);
  if (!s->io->fd)
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "RPCError: this session's transport cannot relay a popen session");
  char path[4096];
  if (snprintf(path, sizeof path, "%s/popen-%d.minrpc", s->cfg->work_dir ? s->cfg->work_dir : ".",
               (int)getpid()) >= (int)sizeof path)
    return ferry_err_set(err, FERRY_ETOOBIG, "RPCError: work folder name too long");
  if (write_exe(path, v[1].v.str.data, v[1].v.str.len) != 0)
    return ferry_err_set(err, FERRY_EIO, "RPCError: rpc.PopenSession: cannot write %s: %s",
                         path, strerror(errno));
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
    return ferry_err_set(err, FERRY_EIO, "RPCError: socketpair: %s", strerror(errno));
  int client_fd = s->io->fd(s->io->ctx);
  /* Formatted before fork: the session may have worker threads, so the
   * child calls only async-signal-safe functions before execv. */
  char num[16];
  snprintf(num, sizeof num, "%d", sp[1]);
  char *argv[] = {path, num, num, NULL};
  pid_t pid = fork();
  if (pid == 0) {
    /* The child end loses CLOEXEC and is passed as both descriptors; the
     * client's socket (CLOEXEC anyway) is not the child's to touch. */
    close(client_fd);
    if (fcntl(sp[1], F_SETFD, 0) == 0)
      execv(path, argv);
    _exit(127);
  }
  close(sp[1]);
  if (pid < 0) {
    close(sp[0]);
    return ferry_err_set(err, FERRY_EIO, "RPCError: fork: %s", strerror(errno));
  }
  s->popen_pid = (int)pid;
  int rc = session_hop_init(s, sp[0], "the rpc.PopenSession executable", v + 2, n - 2,
                            ferry_now_ms() + POPEN_DEADLINE_MS, err);
  if (rc) {
    close(sp[0]);
    session_popen_reap(s);
    return rc;
  }
  s->hop_fd = sp[0];
  return FERRY_OK;
}

void session_popen_reap(ferry_session *s) {
  if (s->popen_pid <= 0)
    return;
  /* The relay has closed its end, so a minrpc server is ending by itself;
   * one that does not is killed, as TVM's pipe channel does. */
  kill((pid_t)s->popen_pid, SIGKILL);
  while (waitpid((pid_t)s->popen_pid, NULL, 0) < 0 && errno == EINTR)
    ;
  s->popen_pid = 0;
}
