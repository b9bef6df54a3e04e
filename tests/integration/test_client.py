"""The C client (library, `ferry run/time/upload/download/ls/rm`) against a
real `ferry server`: directly, through `ferry tracker`, through `ferry
proxy` (with and without a tracker).  Results are checked against numpy and
the values TVM's own client saw (golden/classic/results.json).
"""
import os
import re
import shutil
import subprocess
import time

import numpy as np
import pytest

from conftest import BUILD, FERRY, ROOT, run_ferry

MODELS = os.path.join(BUILD, "tests", "models")
TESTLIB = os.path.join(MODELS, "testlib.so")
FLOWS = os.path.join(BUILD, "tests", "client_flows")

FLOW_NAMES = ["connect", "upload", "load_module", "addone", "entry_func", "add_i64",
              "mul_f64", "fail", "missing_function", "time_evaluator", "big_tensor",
              "files", "listdir", "remove", "release", "close"]


def run_flows(*args, timeout=60):
    p = subprocess.run([FLOWS] + list(args) + [TESTLIB], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, "client_flows failed:\n" + p.stdout + p.stderr
    done = [line[3:] for line in p.stdout.splitlines() if line.startswith("ok ")]
    assert done == FLOW_NAMES
    return p.stdout


def check_flow_output(out):
    assert "fail-message fail: deliberate error from testlib" in out
    us = [float(x) for x in re.search(r"time-evaluator-us (\S+) (\S+) (\S+)", out).groups()]
    assert all(0 < x < 1e6 for x in us)


@pytest.fixture
def server(spawn):
    return spawn("server", "--port", "0")


@pytest.fixture
def tracker(spawn):
    return spawn("tracker", "--port", "0")


def test_flows_direct(server):
    check_flow_output(run_flows("--port", str(server.port)))


def test_flows_ffi_dialect(server):
    """Issue 7: the same flows in TVM >= 0.21's dialect."""
    p = subprocess.run([FLOWS, "--port", str(server.port), "--dialect", "ffi", TESTLIB],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "client_flows --dialect ffi failed:\n" + p.stdout + p.stderr
    check_flow_output(p.stdout)


def test_flows_through_tracker(spawn, tracker):
    spawn("server", "--port", "0", "--tracker", "127.0.0.1:%d" % tracker.port, "--key", "cpu")
    # The client waits in the tracker's queue until the server has registered.
    check_flow_output(run_flows("--tracker", "127.0.0.1:%d" % tracker.port, "--key", "cpu"))
    # A second session through the tracker: the server is back in the free list.
    check_flow_output(run_flows("--tracker", "127.0.0.1:%d" % tracker.port, "--key", "cpu",
                                "--priority", "5"))


def test_flows_through_proxy(spawn):
    proxy = spawn("proxy", "--port", "0")
    spawn("server", "--through-proxy", "--host", "127.0.0.1", "--port", str(proxy.port),
          "--key", "K0", wait_listen=False)
    # Without a tracker the proxy pairs client:K0 with server:K0 (it waits
    # for the server if the client comes first).
    check_flow_output(run_flows("--port", str(proxy.port), "--key", "K0"))


def test_cli_through_proxy_and_tracker(spawn, tracker, tmp_path):
    proxy = spawn("proxy", "--port", "0", "--tracker", "127.0.0.1:%d" % tracker.port)
    spawn("server", "--through-proxy", "--host", "127.0.0.1", "--port", str(proxy.port),
          "--key", "K1", wait_listen=False)
    a = np.random.RandomState(1).rand(2, 5).astype("float32")
    np.save(tmp_path / "a.npy", a)
    p = run_ferry("run", "--tracker", "127.0.0.1:%d" % tracker.port, "--key", "K1",
                  "--timeout", "20", TESTLIB, "addone", "--input", str(tmp_path / "a.npy"),
                  "--output", str(tmp_path / "b.npy"))
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), a + 1)


def test_cli_run(server, tmp_path):
    port = str(server.port)
    a = np.random.RandomState(0).randn(3, 4).astype("float32")
    np.save(tmp_path / "a.npy", a)
    p = run_ferry("run", "--port", port, "--verbose", TESTLIB, "addone",
                  "--input", str(tmp_path / "a.npy"), "--output", str(tmp_path / "b.npy"))
    assert p.returncode == 0, p.stderr
    assert "classic dialect" in p.stderr
    b = np.load(tmp_path / "b.npy")
    assert b.dtype == np.float32 and b.shape == (3, 4)
    np.testing.assert_array_equal(b, a + 1)
    # Explicit output dtype/shape, and argument order as on the command line.
    p = run_ferry("run", "--port", port, TESTLIB, "addone", "--input", str(tmp_path / "a.npy"),
                  "--output", str(tmp_path / "c.npy") + ":float32:12")
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), (a + 1).reshape(12))

    p = run_ferry("run", "--port", port, TESTLIB, "add_i64", "--arg", "int:2", "--arg", "int:40")
    assert (p.returncode, p.stdout) == (0, "42\n"), p.stderr
    p = run_ferry("run", "--port", port, TESTLIB, "mul_f64", "--arg=float:1.5",
                  "--arg", "float:4.0")
    assert p.returncode == 0 and float(p.stdout) == 6.0, p.stderr


def test_cli_errors(server, tmp_path):
    port = str(server.port)
    p = run_ferry("run", "--port", port, TESTLIB, "fail")
    assert p.returncode == 1
    assert "fail: deliberate error from testlib" in p.stderr
    p = run_ferry("run", "--port", port, TESTLIB, "no_such_function")
    assert p.returncode == 1
    assert "Module has no function 'no_such_function'" in p.stderr
    # Wrong argument types are the kernel's error, reported with its text.
    p = run_ferry("run", "--port", port, TESTLIB, "add_i64", "--arg", "float:1",
                  "--arg", "int:2")
    assert p.returncode == 1 and "add_i64 expects two ints" in p.stderr
    # Usage errors: exit 2, no connection needed.
    for bad in (["--arg", "int:x"], ["--arg", "what:1"], ["--output", "o.npy"]):
        p = run_ferry("run", "--port", port, TESTLIB, "add_i64", *bad)
        assert p.returncode == 2, (bad, p.stderr)
    p = run_ferry("run", "--port", port, "--dialect", "tvm", TESTLIB, "add_i64")
    assert p.returncode == 2
    # A file that is not .npy.
    (tmp_path / "x.npy").write_bytes(b"PK\x03\x04 not numpy")
    p = run_ferry("run", "--port", port, TESTLIB, "addone", "--input", str(tmp_path / "x.npy"),
                  "--output", str(tmp_path / "y.npy"))
    assert p.returncode == 1 and "not a .npy file" in p.stderr
    # Wrong key: the server refuses the handshake.
    p = run_ferry("run", "--port", port, "--key", "other", TESTLIB, "add_i64")
    assert p.returncode == 1 and "cannot find server that matches key=client:other" in p.stderr


def test_cli_time(server, tmp_path):
    np.save(tmp_path / "a.npy", np.ones((64, 64), "float32"))
    p = run_ferry("time", "--port", str(server.port), TESTLIB, "addone",
                  "--input", str(tmp_path / "a.npy"), "--output", str(tmp_path / "b.npy"),
                  "--number", "20", "--repeat", "4")
    assert p.returncode == 0, p.stderr
    m = re.match(r"addone: mean (\S+) us, std (\S+) us, min (\S+) us, max (\S+) us "
                 r"\(4 repeats of 20 runs\)", p.stdout)
    assert m, p.stdout
    mean, std, lo, hi = map(float, m.groups())
    assert 0 < lo <= mean <= hi < 1e6 and std >= 0
    # The time evaluator needs no output file.
    assert not os.path.exists(tmp_path / "b.npy")


def test_tracker_queue_deadline(tracker):
    # No server of this key: TVM's request would wait forever; ours gives up.
    t0 = time.monotonic()
    p = run_ferry("run", "--tracker", "127.0.0.1:%d" % tracker.port, "--key", "nobody",
                  "--timeout", "1", TESTLIB, "add_i64", timeout=30)
    assert p.returncode == 1
    assert "no server of key 'nobody' became free" in p.stderr
    assert time.monotonic() - t0 < 10


def test_file_commands(server, tmp_path):
    port = str(server.port)
    (tmp_path / "f.txt").write_text("payload")
    p = run_ferry("upload", "--port", port, str(tmp_path / "f.txt"))
    assert p.returncode == 0, p.stderr
    p = run_ferry("ls", "--port", port)
    assert p.returncode == 0, p.stderr
    # Every ferry session has a fresh folder: the upload above is gone.
    p = run_ferry("download", "--port", port, "f.txt", "--output", str(tmp_path / "g.txt"))
    assert p.returncode == 1 and "f.txt" in p.stderr
    assert not (tmp_path / "g.txt").exists()
    # Names that leave the session folder are refused by the server.
    p = run_ferry("download", "--port", port, "../../etc/passwd", "--output", "-")
    assert p.returncode == 1 and p.stdout == ""


def test_installed_library_and_pkgconfig(server, tmp_path):
    if not shutil.which("pkg-config") or not shutil.which("cc"):
        pytest.skip("pkg-config or cc missing")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)], check=True,
                   capture_output=True, timeout=60)
    pcdirs = [os.path.join(r, d) for r, ds, _ in os.walk(prefix) for d in ds if d == "pkgconfig"]
    assert pcdirs
    env = dict(os.environ, PKG_CONFIG_PATH=pcdirs[0])
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "--static", "ferry"],
                           capture_output=True, text=True, env=env, check=True).stdout.split()
    src = tmp_path / "app.c"
    src.write_text(r'''
#include <stdio.h>
#include <stdlib.h>
#include <ferry/client.h>
int main(int argc, char **argv) {
  ferry_client *c; char err[256];
  if (ferry_client_connect("127.0.0.1", atoi(argv[1]), "", NULL, &c, err, sizeof err)) {
    fprintf(stderr, "%s\n", err); return 1;
  }
  ferry_remote *f;
  int rc = ferry_client_get_function(c, "tvm.rpc.server.upload", &f);
  printf("%d %d\n", rc, rc == 0 ? (int)ferry_remote_kind(f) : -1);
  ferry_client_close(c);
  return rc != 0;
}
''')
    exe = tmp_path / "app"
    # A sanitizer build installs instrumented objects: link the runtime too.
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        if "FERRY_SANITIZE:BOOL=ON" in f.read():
            flags = ["-fsanitize=address,undefined"] + flags
    subprocess.run(["cc", "-std=c11", str(src), "-o", str(exe)] + flags, check=True,
                   timeout=60)
    p = subprocess.run([str(exe), str(server.port)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "10"]  # FERRY_KIND_FUNC


def test_cli_parallel_kernel(server, tmp_path):
    a = np.random.RandomState(2).rand(10000)
    np.save(tmp_path / "a.npy", a)
    p = run_ferry("run", "--port", str(server.port), os.path.join(MODELS, "parallel.so"), "psum",
                  "--input", str(tmp_path / "a.npy"),
                  "--output", str(tmp_path / "s.npy") + ":float64:1")
    assert p.returncode == 0, p.stderr
    assert np.load(tmp_path / "s.npy")[0] == pytest.approx(a.sum(), rel=1e-12)


def test_crash_and_timeouts(spawn, server):
    crash = os.path.join(MODELS, "crash.so")
    port = str(server.port)
    # A kernel that segfaults ends the session, not the server.
    p = run_ferry("run", "--port", port, crash, "crash", "--arg", "int:1")
    assert p.returncode == 1 and "closed the session" in p.stderr, p.stderr
    # A kernel that never returns: the session timeout the client asked for
    # ends it, and the server's notice reaches the client.
    t0 = time.monotonic()
    p = run_ferry("run", "--port", port, "--session-timeout", "1", crash, "crash",
                  "--arg", "int:3", timeout=30)
    assert p.returncode == 1 and "RPCSessionTimeoutError" in p.stderr, p.stderr
    assert time.monotonic() - t0 < 15
    # The server still serves.
    p = run_ferry("run", "--port", port, TESTLIB, "add_i64", "--arg", "int:2", "--arg", "int:40")
    assert (p.returncode, p.stdout) == (0, "42\n"), p.stderr
    # Without a session timeout, the client's own reply deadline fires.
    other = spawn("server", "--port", "0", "--session-timeout", "5")
    t0 = time.monotonic()
    p = run_ferry("run", "--port", str(other.port), "--timeout", "1", crash, "crash",
                  "--arg", "int:3", timeout=30)
    assert p.returncode == 1 and "no reply" in p.stderr and "within 1000 ms" in p.stderr, p.stderr
    assert time.monotonic() - t0 < 10


def test_cli_argument_kinds_and_order(server, tmp_path):
    port = str(server.port)
    a = np.random.RandomState(3).rand(2, 3).astype("float32")
    b = np.random.RandomState(4).rand(3, 4).astype("float32")
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    mm = os.path.join(MODELS, "matmul.so")
    # Tensors reach the function in command-line order: C = A x B.
    p = run_ferry("run", "--port", port, mm, "matmul", "--input", str(tmp_path / "a.npy"),
                  "--input", str(tmp_path / "b.npy"),
                  "--output", str(tmp_path / "c.npy") + ":float32:2x4")
    assert p.returncode == 0, p.stderr
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), a @ b, rtol=1e-5)
    # Swapped, the shapes no longer chain: the kernel's own check says so.
    p = run_ferry("run", "--port", port, mm, "matmul", "--input", str(tmp_path / "b.npy"),
                  "--input", str(tmp_path / "a.npy"),
                  "--output", str(tmp_path / "d.npy") + ":float32:2x4")
    assert p.returncode == 1 and not (tmp_path / "d.npy").exists()
    # Mixed kinds, interleaved.
    p = run_ferry("run", "--port", port, TESTLIB, "count_args", "--arg", "int:1",
                  "--input", str(tmp_path / "a.npy"), "--arg", "str:x",
                  "--out", str(tmp_path / "o.npy") + ":float32:2", "--arg", "bytes:yz")
    assert (p.returncode, p.stdout) == (0, "5\n"), p.stderr
    for arg, want in (("str:hello world", "hello world"), ("bool:true", "True"),
                      ("float:0.1", "0.10000000000000001"), ("int:-7", "-7")):
        p = run_ferry("run", "--port", port, TESTLIB, "echo", "--arg", arg)
        assert (p.returncode, p.stdout) == (0, want + "\n"), (arg, p.stderr)


def test_tracker_queue_waits_for_busy_server(spawn, tracker):
    tr = "127.0.0.1:%d" % tracker.port
    server = spawn("server", "--port", "0", "--tracker", tr, "--key", "busy")
    crash = os.path.join(MODELS, "crash.so")
    # The first client holds the only server for about 2 s (a kernel that
    # never returns, ended by the session timeout it asked for) ...
    first = subprocess.Popen([FERRY, "run", "--tracker", tr, "--key", "busy", "--timeout", "20",
                              "--session-timeout", "2", crash, "crash", "--arg", "int:3"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server.wait_for(r"session \d+ from .* started", timeout=15)
    # ... so the second waits in the tracker's queue, then gets the server.
    t0 = time.monotonic()
    p = run_ferry("run", "--tracker", tr, "--key", "busy", "--timeout", "20", TESTLIB,
                  "add_i64", "--arg", "int:2", "--arg", "int:40", timeout=60)
    waited = time.monotonic() - t0
    out, err = first.communicate(timeout=30)
    assert first.returncode == 1 and "RPCSessionTimeoutError" in err, err
    assert (p.returncode, p.stdout) == (0, "42\n"), p.stderr
    # It could only be served after the first session ended (2 s timeout).
    assert waited > 0.8, "the second client did not wait for the busy server"
