"""ferry server running real sessions of the test kernels
(build/tests/models/crash.so) through the C client (`ferry run`): a kernel
that segfaults or aborts, one that never returns (session timeout), and the
server back in the tracker's free list within 2 s after each.
"""
import os
import time

import pytest

from conftest import BUILD, run_ferry
from test_server import wait_until
from test_server_tracker import _tracker_built, free_count

CRASH_SO = os.path.join(BUILD, "tests", "models", "crash.so")

pytestmark = pytest.mark.skipif(
    not os.path.exists(CRASH_SO) or not _tracker_built(),
    reason="needs build/tests/models/crash.so and `ferry tracker`")


@pytest.fixture
def setup(spawn, tmp_path):
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", "0")
    srv = spawn("server", "--port", "0", "--key", "cpu", "--tracker",
                "127.0.0.1:%d" % tr.port, "--work-dir", str(tmp_path / "w"))
    assert wait_until(lambda: free_count(tr.port, "cpu") == 1, 10.0), srv.log()
    return tr, srv


def run_crash(tport, kind, *extra):
    return run_ferry("run", "--tracker", "127.0.0.1:%d" % tport, "--key", "cpu",
                     "--timeout", "30", *extra, CRASH_SO, "crash", "--arg",
                     "int:%d" % kind, timeout=60)


def back_free(tr, srv, what):
    t0 = time.monotonic()
    assert wait_until(lambda: free_count(tr.port, "cpu") == 1, 2.0), srv.log()
    print("%s: back in the free list after %.3f s" % (what, time.monotonic() - t0))


def test_kernel_that_returns(setup):
    tr, srv = setup
    r = run_crash(tr.port, 0)
    assert r.returncode == 0, r.stderr
    srv.wait_for(r"session 1 from \S+ ended: ok")
    back_free(tr, srv, "normal end")


def test_segfaulting_kernel(setup):
    tr, srv = setup
    r = run_crash(tr.port, 1)
    assert r.returncode != 0
    back_free(tr, srv, "SIGSEGV")
    # ASan builds report the SEGV and exit 1 instead of dying by the signal.
    srv.wait_for(r"session 1 from \S+ ended: (crashed \(killed by signal 11|failed)")
    assert run_crash(tr.port, 0).returncode == 0


def test_aborting_kernel(setup):
    tr, srv = setup
    r = run_crash(tr.port, 2)
    assert r.returncode != 0
    back_free(tr, srv, "SIGABRT")
    srv.wait_for(r"session 1 from \S+ ended: crashed \(killed by signal 6")


def test_kernel_that_never_returns_times_out(setup):
    tr, srv = setup
    t0 = time.monotonic()
    r = run_crash(tr.port, 3, "--session-timeout", "1")
    assert r.returncode != 0
    assert time.monotonic() - t0 < 10
    assert ('RPCSessionTimeoutError: Your 1.0s session has expired, try to '
            'increase the "session_timeout" value.') in r.stderr
    back_free(tr, srv, "timeout")
    srv.wait_for(r"session 1 from \S+ ended: timed out")


def _libm_path():
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith("libm.so"):
                return path
    return None


def test_load_library_in_every_session(spawn, tmp_path):
    """--load-library takes a path (relative to the start folder: a session
    runs in its own empty folder) or a bare name for dlopen's search.  A
    library without TVM symbols is used: an ASan build flags two models
    that both define __tvm_module_ctx under RTLD_GLOBAL."""
    libm = _libm_path()
    if not libm:
        pytest.skip("no libm mapped in this Python")
    copy = tmp_path / "libextra.so"
    copy.write_bytes(open(libm, "rb").read())
    srv = spawn("server", "--port", "0", "--key", "cpu", "--work-dir",
                str(tmp_path / "w"), "--load-library",
                os.path.relpath(str(copy)) + ":" + os.path.basename(libm),
                timeout=20)
    for i in (1, 2):
        r = run_ferry("run", "--port", str(srv.port), "--key", "cpu",
                      "--timeout", "30", CRASH_SO, "crash", "--arg", "int:0",
                      timeout=60)
        assert r.returncode == 0, r.stderr + srv.log()
        srv.wait_for(r"session %d from \S+ ended: ok" % i)
