"""The aarch64 build end to end, under user-mode emulation (issue 6).

An aarch64 `ferry server` runs under qemu-aarch64 and registers at the
x86-64 `ferry tracker`; an x86-64 `ferry server` registers beside it under
another key.  The x86-64 client (`ferry run`, `ferry time`) requests each
through the tracker and runs the same test kernels, compiled for each
architecture (build-aarch64/tests/models/*.so and build/tests/models/*.so):
the outputs must be equal, and the time evaluator must work on the device.

The aarch64 build is FERRY_CROSS_BUILD (default <root>/build-aarch64); if it
has no ferry, `make cross ARCH=aarch64` builds it.  The test is skipped only
when qemu-aarch64 or the cross compiler is not installed
(scripts/install-deps.sh --cross aarch64 installs both).

Emulation detail: Debian's cross packages put an ld.so (libc6-arm64-cross)
under /usr/aarch64-linux-gnu, while the arm64 multiarch -dev packages pull in
libc6:arm64 with its libc.so.6 under /lib/aarch64-linux-gnu, which that
ld.so also searches.  When the two are of different Debian revisions the
mixed pair works until the first fork(), where the child loops forever in
glibc's stack bookkeeping.  LD_LIBRARY_PATH pins the libc that belongs to the
loader.  A real board has one glibc and needs none of this.
"""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import BUILD, FERRY, LISTEN_RE, ROOT, Daemon, run_ferry

CROSS = os.environ.get("FERRY_CROSS_BUILD", os.path.join(ROOT, "build-aarch64"))
CROSS_FERRY = os.path.join(CROSS, "ferry")
CROSS_MODELS = os.path.join(CROSS, "tests", "models")
HOST_MODELS = os.path.join(BUILD, "tests", "models")
TRIPLE = "aarch64-linux-gnu"
ARM_KEY = "arm64"
X86_KEY = "x86"
# glibc's own libraries: nothing else may be NEEDED by the device binary.
GLIBC_RE = re.compile(r"^(libc|libm|libdl|libpthread|librt)\.so\.\d+$|^ld-linux-aarch64\.so\.1$")


def _missing_tools():
    return [t for t in ("qemu-aarch64", TRIPLE + "-gcc") if shutil.which(t) is None]


def _cache_value(name):
    try:
        with open(os.path.join(CROSS, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def _ensure_cross_build():
    missing = _missing_tools()
    if missing:
        pytest.skip("cross test skipped: %s not installed (run: sh scripts/install-deps.sh "
                    "--cross aarch64)" % ", ".join(missing))
    if not os.path.exists(CROSS_FERRY):
        if CROSS != os.path.join(ROOT, "build-aarch64"):
            pytest.fail("FERRY_CROSS_BUILD=%s has no ferry" % CROSS)
        p = subprocess.run(["make", "-C", ROOT, "cross", "ARCH=aarch64"], capture_output=True,
                           text=True, timeout=900)
        assert p.returncode == 0, "make cross ARCH=aarch64 failed:\n" + p.stdout + p.stderr
    for lib in ("testlib.so", "matmul.so", "parallel.so"):
        assert os.path.exists(os.path.join(CROSS_MODELS, lib)), \
            "%s lacks tests/models/%s (configure it with -DFERRY_MODELS=ON)" % (CROSS, lib)
        assert os.path.exists(os.path.join(HOST_MODELS, lib)), "%s lacks %s" % (BUILD, lib)


def _qemu_prefix():
    """qemu's -L: the sysroot the build used, else Debian's cross root."""
    root = os.environ.get("QEMU_LD_PREFIX") or _cache_value("FERRY_SYSROOT") or "/usr/" + TRIPLE
    libdir = os.path.join(root, "lib")
    # See the module comment: pin the libc of the loader under `root`.
    return ["qemu-aarch64", "-L", root, "-E", "LD_LIBRARY_PATH=" + libdir]


class EmulatedDaemon(Daemon):
    """Daemon (conftest) whose program is the aarch64 ferry under qemu."""

    def __init__(self, args, timeout=60.0):
        cmd = _qemu_prefix() + [CROSS_FERRY] + list(args)
        self.args = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines = []
        self.stdout_lines = []
        self._cv = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines),
                             daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.port = int(self.wait_for(LISTEN_RE, timeout).group(2))


def _query_keys(tracker_port):
    p = run_ferry("query", "--port", str(tracker_port), "--json", timeout=20)
    if p.returncode != 0:
        return set()
    summary = json.loads(p.stdout)
    if isinstance(summary, list):  # the tracker's raw reply: [code, summary]
        summary = summary[-1]
    return set((summary.get("queue_info") or {}).keys())


def _wait_registered(tracker_port, key, deadline_s):
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        if key in _query_keys(tracker_port):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError("key %r not registered at the tracker within %gs" % (key, deadline_s))


@pytest.fixture(scope="module")
def devices():
    """A tracker, an x86-64 server (key x86) and an emulated aarch64 server
    (key arm64) registered at it."""
    _ensure_cross_build()
    started = []
    try:
        tracker = Daemon(["tracker", "--port", "0"])
        started.append(tracker)
        addr = "127.0.0.1:%d" % tracker.port
        started.append(Daemon(["server", "--port", "0", "--tracker", addr, "--key", X86_KEY]))
        t0 = time.monotonic()
        arm = EmulatedDaemon(["server", "--port", "0", "--tracker", addr, "--key", ARM_KEY])
        started.append(arm)
        _wait_registered(tracker.port, ARM_KEY, 60)
        arm.registered_after = time.monotonic() - t0
        _wait_registered(tracker.port, X86_KEY, 20)
        yield {"tracker": addr, "arm": arm}
    finally:
        for d in reversed(started):
            d.stop()


def _run_both(devices, tmp_path, lib, func, *args):
    """Runs func of lib on both devices through the tracker; returns the two
    completed processes and the output folders (arm, x86)."""
    res = []
    for key, models in ((ARM_KEY, CROSS_MODELS), (X86_KEY, HOST_MODELS)):
        out = tmp_path / key
        out.mkdir(exist_ok=True)
        argv = [a.replace("{out}", str(out)) for a in args]
        p = run_ferry("run", "--tracker", devices["tracker"], "--key", key, "--timeout", "60",
                      os.path.join(models, lib), func, *argv, timeout=90)
        res.append((p, out))
    return res


def test_device_binary_needs_glibc_only():
    _ensure_cross_build()
    p = subprocess.run(["readelf", "-h", "-d", CROSS_FERRY], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert re.search(r"Machine:\s+AArch64", p.stdout), p.stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", p.stdout)
    assert needed and "libc.so.6" in needed, p.stdout
    others = [n for n in needed if not GLIBC_RE.match(n)]
    assert not others, "the device binary needs more than glibc: %s" % others


def test_emulated_server_registers(devices):
    arm = devices["arm"]
    assert "registered at tracker" in arm.log()
    # Visible with the query tool, like TVM's query_rpc_tracker.
    p = run_ferry("query", "--port", devices["tracker"].split(":")[1], timeout=20)
    assert p.returncode == 0 and ARM_KEY in p.stdout and X86_KEY in p.stdout, p.stdout
    print("aarch64 server registered %.2fs after start under qemu" % arm.registered_after)


def test_tensor_kernels_match_x86(devices, tmp_path):
    rs = np.random.RandomState(6)
    a = rs.randn(4, 8).astype("float32")
    np.save(tmp_path / "a.npy", a)
    for func in ("addone", "scale"):
        (parm, oarm), (px86, ox86) = _run_both(devices, tmp_path, "testlib.so", func,
                                               "--input", str(tmp_path / "a.npy"),
                                               "--output", "{out}/b.npy")
        assert parm.returncode == 0, parm.stderr
        assert px86.returncode == 0, px86.stderr
        barm, bx86 = np.load(oarm / "b.npy"), np.load(ox86 / "b.npy")
        assert barm.dtype == np.float32 and barm.shape == (4, 8)
        assert barm.tobytes() == bx86.tobytes(), func
        np.testing.assert_array_equal(barm, a + 1 if func == "addone" else a * 2)

    m = rs.randn(6, 10).astype("float32")
    n = rs.randn(10, 3).astype("float32")
    np.save(tmp_path / "m.npy", m)
    np.save(tmp_path / "n.npy", n)
    (parm, oarm), (px86, ox86) = _run_both(devices, tmp_path, "matmul.so", "matmul",
                                           "--input", str(tmp_path / "m.npy"),
                                           "--input", str(tmp_path / "n.npy"),
                                           "--output", "{out}/c.npy:float32:6x3")
    assert parm.returncode == 0, parm.stderr
    assert px86.returncode == 0, px86.stderr
    carm, cx86 = np.load(oarm / "c.npy"), np.load(ox86 / "c.npy")
    # Same C loop on both, but aarch64 gcc may fuse multiply-adds: allow
    # rounding differences, and check against numpy as well.
    np.testing.assert_allclose(carm, cx86, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(carm, m @ n, rtol=1e-4, atol=1e-4)


def test_parallel_kernels_match_x86(devices, tmp_path):
    # Integer-valued doubles: the sum is exact whatever the task split.
    a = np.arange(20000, dtype="float64") % 97
    np.save(tmp_path / "a.npy", a)
    (parm, oarm), (px86, ox86) = _run_both(devices, tmp_path, "parallel.so", "psum",
                                           "--input", str(tmp_path / "a.npy"),
                                           "--output", "{out}/s.npy:float64:1")
    assert parm.returncode == 0, parm.stderr
    assert px86.returncode == 0, px86.stderr
    sarm, sx86 = np.load(oarm / "s.npy"), np.load(ox86 / "s.npy")
    assert sarm.tobytes() == sx86.tobytes()
    assert sarm[0] == a.sum()


def test_scalars_and_errors_match_x86(devices, tmp_path):
    for func, args in (("add_i64", ("--arg", "int:2", "--arg", "int:40")),
                       ("mul_f64", ("--arg", "float:1.5", "--arg", "float:-4.25"))):
        (parm, _), (px86, _) = _run_both(devices, tmp_path, "testlib.so", func, *args)
        assert parm.returncode == 0, parm.stderr
        assert (parm.returncode, parm.stdout) == (px86.returncode, px86.stdout), func
    assert parm.stdout.strip() and float(parm.stdout) == -6.375
    # A kernel's error text crosses the wire the same way from both.
    (parm, _), (px86, _) = _run_both(devices, tmp_path, "testlib.so", "fail")
    assert parm.returncode == px86.returncode == 1
    assert "fail: deliberate error from testlib" in parm.stderr, parm.stderr
    assert "fail: deliberate error from testlib" in px86.stderr


def test_time_evaluator_on_emulated_device(devices, tmp_path):
    np.save(tmp_path / "a.npy", np.ones((16, 16), "float32"))
    p = run_ferry("time", "--tracker", devices["tracker"], "--key", ARM_KEY, "--timeout", "60",
                  os.path.join(CROSS_MODELS, "testlib.so"), "addone",
                  "--input", str(tmp_path / "a.npy"), "--output", str(tmp_path / "b.npy"),
                  "--number", "5", "--repeat", "3", timeout=90)
    assert p.returncode == 0, p.stderr
    m = re.match(r"addone: mean (\S+) us, std (\S+) us, min (\S+) us, max (\S+) us "
                 r"\(3 repeats of 5 runs\)", p.stdout)
    assert m, p.stdout
    mean, std, lo, hi = map(float, m.groups())
    assert 0 < lo <= mean <= hi and std >= 0
    # The server is offered again once the timing session ended.
    p = run_ferry("run", "--tracker", devices["tracker"], "--key", ARM_KEY, "--timeout", "60",
                  os.path.join(CROSS_MODELS, "testlib.so"), "add_i64",
                  "--arg", "int:20", "--arg", "int:22", timeout=90)
    assert (p.returncode, p.stdout) == (0, "42\n"), p.stderr


def test_package(tmp_path):
    """scripts/package.sh (make package): one folder with the stripped
    binary, its busybox names, the README and the systemd units; the packed
    binary runs under its TVM names."""
    _ensure_cross_build()
    import tarfile
    p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "package.sh"), CROSS, "aarch64",
                        str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        version = re.search(r"project\(ferry VERSION ([0-9.]+)", f.read()).group(1)
    name = "ferry-%s-aarch64" % version
    tarball = tmp_path / (name + ".tar.gz")
    assert str(tarball) in p.stdout
    with tarfile.open(tarball) as tf:
        members = {m.name: m for m in tf.getmembers()}
        # The "tar" filter (Python >= 3.12, backported) keeps the symlinks.
        kw = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
        tf.extractall(tmp_path / "x", **kw)
    for alias in ("rpc_server", "rpc_tracker", "rpc_proxy", "query_rpc_tracker"):
        m = members[name + "/" + alias]
        assert m.issym() and m.linkname == "ferry"
    for f in ("ferry", "README.md", "systemd/ferry-server.service",
              "systemd/ferry-tracker.service", "systemd/ferry-proxy.service", "systemd/ferry.env"):
        assert name + "/" + f in members, f
    assert members[name + "/ferry"].mode & 0o111
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    root = tmp_path / "x" / name
    binary = str(root / "ferry")
    # Stripped (no symbol table), smaller than the build's, glibc only.
    sections = subprocess.run(["readelf", "-S", "-d", binary], capture_output=True, text=True,
                              timeout=30).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections
    assert os.path.getsize(binary) < os.path.getsize(CROSS_FERRY)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", sections)
    assert needed and all(GLIBC_RE.match(n) for n in needed), needed
    unit = (root / "systemd" / "ferry-server.service").read_text()
    assert re.search(r"^ExecStart=/usr/local/bin/ferry server .*--tracker \$\{FERRY_TRACKER\} "
                     r"--key \$\{FERRY_KEY\}", unit, re.M)
    assert "EnvironmentFile=-/etc/default/ferry" in unit
    assert "FERRY_KEY=aarch64" in (root / "systemd" / "ferry.env").read_text()
    # Under a TVM name the packed binary acts as that tool.
    for alias, cmd in (("rpc_server", "server"), ("query_rpc_tracker", "query")):
        h = subprocess.run(_qemu_prefix() + [str(root / alias), "--help"], capture_output=True,
                           text=True, timeout=60)
        assert h.returncode == 0 and h.stdout.startswith("usage: ferry %s" % cmd), h.stdout + h.stderr
