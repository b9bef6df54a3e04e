"""Runs TVM's own RPC tests against ferry's processes.

Loaded as a pytest plugin (`-p ferry_tvm`) or with install() before a
script runs, it replaces TVM's `rpc.Server`, `rpc.tracker.Tracker` and
`rpc.proxy.Proxy` with classes that start `ferry server --testing`,
`ferry tracker` and `ferry proxy` with the same constructor arguments and
the attributes the tests read (host, port, proc, terminate()).  Every
daemon binds 127.0.0.1 (TVM's default 0.0.0.0 is kept as the `host`
attribute the tests dial: on Linux a connect to 0.0.0.0 reaches the
loopback).  Each daemon's log goes to $FERRY_TVM_LOGDIR (default: a fresh
temporary folder, named at the end of the run).

Nothing of TVM is copied here: the tests are TVM's files, run as they are.
"""
import atexit
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("FERRY_BUILD", os.path.join(ROOT, "build")))
FERRY = os.path.join(BUILD, "ferry")
LOGDIR = os.environ.get("FERRY_TVM_LOGDIR") or tempfile.mkdtemp(prefix="ferry-tvm-logs-")
os.makedirs(LOGDIR, exist_ok=True)

_LISTEN = re.compile(r"listening on \S+:(\d+)")
_live = []
_count = [0]


def _bind_host(host):
    # TVM's daemons default to 0.0.0.0; the suite runs on the loopback only.
    return "127.0.0.1" if host in (None, "", "0.0.0.0", "localhost") else host


class _Daemon:
    """One ferry process; its stderr goes to a log file that is read for
    the line that says it is ready."""

    def __init__(self, name, args, ready=_LISTEN, timeout=20.0):
        _count[0] += 1
        self.log_path = os.path.join(LOGDIR, "%03d-%s.log" % (_count[0], name))
        self._log = open(self.log_path, "wb")
        self._log.write(("$ %s\n" % " ".join([FERRY] + args)).encode())
        self._log.flush()
        self.proc = subprocess.Popen([FERRY] + args, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        _live.append(self)
        self.match = self._wait(ready, timeout)

    def _wait(self, rx, timeout):
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                m = rx.search(f.read().decode("utf-8", "replace"))
            if m:
                return m
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.terminate()
                with open(self.log_path, "rb") as f:
                    raise RuntimeError("ferry did not start (%s):\n%s"
                                       % (self.log_path, f.read().decode("utf-8", "replace")))
            time.sleep(0.02)

    def is_alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.terminate()

    def terminate(self):
        p, self.proc = getattr(self, "proc", None), None
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._log.close()
        if self in _live:
            _live.remove(self)


class _Handle:
    """What TVM's Server, Tracker and Proxy objects offer around the process:
    .proc (None once stopped) and terminate(), also run when the object goes
    away.  Subclasses set self._d (a _Daemon) and self.proc."""

    proc = None

    def terminate(self):
        if self.proc:
            self._d.terminate()
            self.proc = None

    def __del__(self):
        self.terminate()


class Server(_Handle):
    """tvm.rpc.Server(host, port, port_end, is_proxy, tracker_addr, key,
    load_library, custom_addr, silent, no_fork, server_init_callback,
    reuse_addr, timeout) as `ferry server --testing`.

    Multi-hop sessions (rpc.Connect) are allowed to 127.0.0.1 only, which
    is where the suite's other servers are; rpc.PopenSession sessions (a
    minrpc executable the client sends) are allowed (--allow-popen), as
    TVM's own server allows them."""

    def __init__(self, host="0.0.0.0", port=9091, port_end=9199, is_proxy=False,
                 tracker_addr=None, key="", load_library=None, custom_addr=None,
                 silent=False, no_fork=False, server_init_callback=None,
                 reuse_addr=True, timeout=None):
        if server_init_callback is not None:
            raise RuntimeError("ferry server cannot run a Python server_init_callback")
        args = ["server", "--testing", "--allow-hop", "127.0.0.1:*", "--allow-popen",
                "--host", _bind_host(host), "--port", str(port), "--key", key or ""]
        if is_proxy:
            args.append("--through-proxy")
            ready = re.compile(r"registered at proxy \S+:(\d+)")
        else:
            args += ["--port-end", str(port_end)]
            ready = _LISTEN
        if tracker_addr:
            args += ["--tracker", "%s:%d" % (_bind_host(tracker_addr[0]), tracker_addr[1])]
        if custom_addr:
            args += ["--custom-addr", custom_addr]
        if load_library:
            libs = load_library if isinstance(load_library, str) else ":".join(load_library)
            args += ["--load-library", libs]
        if no_fork:
            args.append("--no-fork")
        if timeout:
            args += ["--session-timeout", str(timeout)]
        self._d = _Daemon("server", args, ready)
        self.proc = self._d
        self.port = int(self._d.match.group(1)) if not is_proxy else port
        self.host = host


class Tracker(_Handle):
    """tvm.rpc.tracker.Tracker(host, port, port_end, silent, reuse_addr,
    timeout) as `ferry tracker`."""

    def __init__(self, host="0.0.0.0", port=9190, port_end=9199, silent=False,
                 reuse_addr=True, timeout=None):
        self.stop_key = "ferry-tvm-%d" % os.getpid()
        args = ["tracker", "--host", _bind_host(host), "--port", str(port),
                "--port-end", str(port_end), "--stop-key", self.stop_key]
        self._d = _Daemon("tracker", args)
        self.proc = self._d
        self.port = int(self._d.match.group(1))
        self.host = host


class Proxy(_Handle):
    """tvm.rpc.proxy.Proxy(host, port, port_end, web_port, timeout_client,
    timeout_server, tracker_addr, index_page, resource_files) as
    `ferry proxy`."""

    def __init__(self, host, port=9091, port_end=9199, web_port=0, timeout_client=600,
                 timeout_server=600, tracker_addr=None, index_page=None,
                 resource_files=None):
        args = ["proxy", "--host", _bind_host(host), "--port", str(port),
                "--port-end", str(port_end),
                "--timeout", str(max(timeout_client, timeout_server))]
        if web_port:
            args += ["--web-port", str(web_port)]
        if tracker_addr:
            args += ["--tracker", "%s:%d" % (_bind_host(tracker_addr[0]), tracker_addr[1])]
        ready = re.compile(r"web listening on \S+:\d+") if web_port else _LISTEN
        self._d = _Daemon("proxy", args, ready)
        with open(self._d.log_path, "rb") as f:
            self.port = int(_LISTEN.search(f.read().decode("utf-8", "replace")).group(1))
        self.proc = self._d
        self.host = host


def _stop_all():
    for d in list(_live):
        d.terminate()


def install():
    """Swaps TVM's daemons for ferry's in the tvm.rpc modules."""
    if not os.access(FERRY, os.X_OK):
        raise RuntimeError("no ferry binary at %s (build it, or set FERRY_BUILD)" % FERRY)
    import tvm.rpc
    import tvm.rpc.proxy
    import tvm.rpc.server
    import tvm.rpc.tracker

    tvm.rpc.Server = tvm.rpc.server.Server = Server
    tvm.rpc.tracker.Tracker = Tracker
    tvm.rpc.proxy.Proxy = Proxy
    atexit.register(_stop_all)
    sys.stderr.write("ferry_tvm: TVM's rpc.Server, Tracker and Proxy are ferry's (%s); "
                     "logs in %s\n" % (FERRY, LOGDIR))


# ---- as a pytest plugin ------------------------------------------------------

def pytest_configure(config):
    install()


def pytest_unconfigure(config):
    _stop_all()


def pytest_runtest_teardown(item):
    # TVM's daemons die with their Python objects; a test that fails keeps
    # them in its traceback, so stop what is left before the next test
    # takes the same fixed ports.
    _stop_all()
