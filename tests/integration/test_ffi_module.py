"""Issue 7 part B: compiled modules of the tvm-ffi ABI (TVM >= 0.21,
build/tests/models/testlib_ffi.so) uploaded to a real `ferry server` and
called by the C client (`ferry run`) in both session dialects, next to the
classic-ABI testlib.so in the same server; libraries ferry must refuse come
back as the load's error message and the session goes on.
"""
import json
import os
import re
import struct
import subprocess
import time

import numpy as np
import pytest

from conftest import BUILD, GOLDEN, run_ferry

MODELS = os.path.join(BUILD, "tests", "models")
FFILIB = os.path.join(MODELS, "testlib_ffi.so")
CLASSICLIB = os.path.join(MODELS, "testlib.so")
BADSLOT = os.path.join(MODELS, "ffi_badslot.so")

pytestmark = pytest.mark.skipif(not os.path.exists(FFILIB),
                                reason="needs build/tests/models/testlib_ffi.so")


def _dialects():
    """classic always; ffi once the client speaks it (issue 7 part A)."""
    p = subprocess.run([os.path.join(BUILD, "ferry"), "run", "--help"], capture_output=True,
                       text=True, timeout=10)
    return ["classic", "ffi"] if "--dialect" in p.stdout else ["classic"]


DIALECTS = _dialects()


@pytest.fixture
def server(spawn, tmp_path):
    srv = spawn("server", "--port", "0", "--work-dir", str(tmp_path / "w"))
    yield srv
    # Session children report ASan/UBSan findings (leaks at their exit) on
    # the server's stderr; under a sanitizer build none may appear.
    time.sleep(0.3)
    bad = [line for line in srv.lines if "Sanitizer" in line or "runtime error:" in line]
    assert not bad, "\n".join(srv.lines[-60:])


def run(server, dialect, lib, func, *args):
    extra = ["--dialect", dialect] if dialect != "classic" else []
    return run_ferry("run", "--port", str(server.port), "--timeout", "30", *extra, "--verbose",
                     lib, func, *args, timeout=60)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_scalars(server, dialect):
    p = run(server, dialect, FFILIB, "add_i64", "--arg", "int:2", "--arg", "int:40")
    assert (p.returncode, p.stdout) == (0, "42\n"), p.stderr
    assert "(%s dialect)" % dialect in p.stderr
    p = run(server, dialect, FFILIB, "mul_f64", "--arg", "float:1.5", "--arg", "float:4.0")
    assert p.returncode == 0 and float(p.stdout) == 6.0, p.stderr
    p = run(server, dialect, FFILIB, "str_len", "--arg", "str:ferry")
    assert (p.returncode, p.stdout) == (0, "5\n"), p.stderr
    # A Str object made by the compiled code travels back as a string.
    p = run(server, dialect, FFILIB, "greet", "--arg", "str:tvm")
    assert p.returncode == 0 and p.stdout.strip() == "hello, tvm", p.stderr
    # The library calls a ferry global through its context slots.
    p = run(server, dialect, FFILIB, "workspace_sum", "--arg", "int:100")
    assert (p.returncode, p.stdout) == (0, "4950\n"), p.stderr


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("func", ["addone", "main"])
def test_tensor_kernel(server, dialect, func, tmp_path):
    a = np.random.RandomState(7).randn(3, 4).astype("float32")
    np.save(tmp_path / "a.npy", a)
    p = run(server, dialect, FFILIB, func, "--input", str(tmp_path / "a.npy"),
            "--output", str(tmp_path / "b.npy"))
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), a + 1)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_errors(server, dialect):
    p = run(server, dialect, FFILIB, "fail")
    assert p.returncode == 1
    assert "fail: deliberate error from testlib" in p.stderr
    p = run(server, dialect, FFILIB, "add_i64", "--arg", "float:1", "--arg", "int:2")
    assert p.returncode == 1 and "add_i64 expects two ints" in p.stderr
    p = run(server, dialect, FFILIB, "no_such_function")
    assert p.returncode == 1 and "no_such_function" in p.stderr
    # A library needing a runtime function ferry lacks: refused by name.
    p = run(server, dialect, BADSLOT, "use_future")
    assert p.returncode == 1
    assert "needs the runtime function TVMFFIFutureRuntimeCall" in p.stderr
    # The server is unharmed: the next session works.
    p = run(server, dialect, FFILIB, "add_i64", "--arg", "int:1", "--arg", "int:1")
    assert (p.returncode, p.stdout) == (0, "2\n"), p.stderr


@pytest.mark.parametrize("dialect", DIALECTS)
def test_both_abis_in_one_server(server, dialect):
    for lib in (FFILIB, CLASSICLIB, FFILIB):
        p = run(server, dialect, lib, "add_i64", "--arg", "int:20", "--arg", "int:22")
        assert (p.returncode, p.stdout) == (0, "42\n"), (lib, p.stderr)


def _recorded_module(path):
    """The testlib_ffi.so bytes a TVM v0.26 client uploaded in the recording
    (a Bytes object: i32 66, u32 66, u64 length, the ELF)."""
    c2s = b""
    with open(os.path.join(GOLDEN, "ffi", "session-module", "client-server.jsonl")) as f:
        for line in f:
            o = json.loads(line)
            if o["dir"] == "c2s":
                c2s += bytes.fromhex(o["hex"])
    at = c2s.find(b"\x7fELF")
    assert at > 16 and struct.unpack_from("<ii", c2s, at - 16) == (66, 66)
    (n,) = struct.unpack_from("<Q", c2s, at - 8)
    path.write_bytes(c2s[at:at + n])
    return str(path)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_recorded_tvm_module(server, dialect, tmp_path):
    """The library from the v0.26 recording itself (built by the recording's
    authors from tests/golden/testlib_ffi.c), called as its client did."""
    lib = _recorded_module(tmp_path / "testlib_ffi.so")
    p = run(server, dialect, lib, "add_i64", "--arg", "int:2", "--arg", "int:40")
    assert (p.returncode, p.stdout) == (0, "42\n"), p.stderr
    p = run(server, dialect, lib, "mul_f64", "--arg", "float:1.5", "--arg", "float:4.0")
    assert p.returncode == 0 and float(p.stdout) == 6.0, p.stderr
    p = run(server, dialect, lib, "fail")
    assert p.returncode == 1 and "fail: deliberate error from testlib" in p.stderr
    a = np.arange(12, dtype="float32").reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    p = run(server, dialect, lib, "addone", "--input", str(tmp_path / "a.npy"),
            "--output", str(tmp_path / "b.npy"))
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), a + 1)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_time_evaluator(server, dialect, tmp_path):
    """runtime.RPCTimeEvaluator wraps a tvm-ffi function like a classic one."""
    np.save(tmp_path / "a.npy", np.ones((64, 64), "float32"))
    extra = ["--dialect", dialect] if dialect != "classic" else []
    p = run_ferry("time", "--port", str(server.port), *extra, FFILIB, "addone",
                  "--input", str(tmp_path / "a.npy"), "--output", str(tmp_path / "b.npy"),
                  "--number", "10", "--repeat", "3", timeout=60)
    assert p.returncode == 0, p.stderr
    m = re.match(r"addone: mean (\S+) us, std (\S+) us, min (\S+) us, max (\S+) us "
                 r"\(3 repeats of 10 runs\)", p.stdout)
    assert m, p.stdout
    mean, std, lo, hi = map(float, m.groups())
    assert 0 < lo <= mean <= hi < 1e6 and std >= 0
