"""Hand-written OpenCL C kernels packed by cl_fixtures.py into libraries of
both generations, run by `ferry server` on cl(0): vector add, a tiled
matmul with __local memory and barriers, a kernel pair sharing a device
workspace (v0.20 host code in TVM's convention), results against numpy;
then a kernel that crashes and one that loops, each ending only its own
session while the server goes on with a fresh OpenCL context."""
import socket
import struct

import numpy as np
import pytest

import cl_fixtures
from cl_client import Client
from test_opencl import CL0, get, put, serve  # noqa: F401  (serve is a fixture)
from test_opencl_replay import have_opencl
import test_session_replay as sr

pytestmark = pytest.mark.skipif(not have_opencl(), reason="no OpenCL driver")


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    d = tmp_path_factory.mktemp("clfix")
    return {g: open(cl_fixtures.build(d, g), "rb").read() for g in ("v020", "v026")}


def load(c, libs, gen):
    return c.upload_and_load("cl_%s.so" % gen, libs[gen])


def out(c, shape):
    n = int(np.prod(shape)) * 4
    return Client.tensor(c.alloc(CL0, n), CL0, shape)


def test_v020_host_code(serve, libs):
    c = Client(serve().port)
    mod = load(c, libs, "v020")
    a = np.arange(1024, dtype=np.float32) * 0.5
    b = 1000 - np.arange(1024, dtype=np.float32) * 0.25
    ta, tb, tc = put(c, a), put(c, b), out(c, (1024,))
    c.call(c.get_function(mod, "vadd"), (7, ta), (7, tb), (7, tc))
    assert (get(c, tc, (1024,)) == a + b).all()
    x = ((np.arange(4096) % 7 - 3) / 4).astype(np.float32).reshape(64, 64)
    y = ((np.arange(4096) % 5 - 2) / 2).astype(np.float32).reshape(64, 64)
    tx, ty, tz = put(c, x), put(c, y), out(c, (64, 64))
    c.call(c.get_function(mod, "matmul"), (7, tx), (7, ty), (7, tz))
    np.testing.assert_allclose(get(c, tz, (64, 64)), x @ y, rtol=1e-5, atol=1e-5)
    # The workspace is a device buffer, freed again by the host code.
    tw = out(c, (1024,))
    for _ in range(3):
        c.call(c.get_function(mod, "ws"), (7, ta), (7, tw))
    assert (get(c, tw, (1024,)) == a * 2 + 1).all()
    # Host-side checks of the generated code come back as TVM's asserts.
    with pytest.raises(RuntimeError, match="TVMError: Assert fail"):
        c.call(c.get_function(mod, "vadd"), (7, ta), (7, tb))
    c.close()


def test_v026_kernels_through_the_imports(serve, libs):
    c = Client(serve().port)
    mod = load(c, libs, "v026")
    a = np.arange(1024, dtype=np.float32)
    ta, tb = put(c, a), put(c, a * 3)
    tc = out(c, (1024,))
    k = c.get_function(mod, "vadd_kernel", 1)
    c.call(k, (3, ta["data"]), (3, tb["data"]), (3, tc["data"]), (0, 1000), (0, 16), (0, 64))
    got = get(c, tc, (1024,))
    assert (got[:1000] == a[:1000] * 4).all()
    # A launch larger than the device allows: the CL error and the limits.
    with pytest.raises(RuntimeError, match="CL_INVALID_WORK_GROUP_SIZE|work-items per block"):
        c.call(k, (3, ta["data"]), (3, tb["data"]), (3, tc["data"]), (0, 1), (0, 1), (0, 1 << 20))
    # A CPU pointer where a buffer is expected.
    cpu = c.alloc((1, 0), 4096)
    with pytest.raises(RuntimeError, match="not a live OpenCL buffer"):
        c.call(k, (3, cpu), (3, tb["data"]), (3, tc["data"]), (0, 1), (0, 16), (0, 64))
    c.call(k, (3, ta["data"]), (3, tb["data"]), (3, tc["data"]), (0, 1024), (0, 16), (0, 64))
    assert (get(c, tc, (1024,)) == a * 4).all()
    c.close()


def session_ends(c):
    c.sock.settimeout(30)
    try:
        while True:
            if not c.sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def healthy(server, libs):
    c = Client(server.port)
    mod = load(c, libs, "v020")
    a = np.ones(1024, dtype=np.float32)
    ta, tb, tc = put(c, a), put(c, a), out(c, (1024,))
    c.call(c.get_function(mod, "vadd"), (7, ta), (7, tb), (7, tc))
    assert (get(c, tc, (1024,)) == 2).all()
    c.close()


def test_a_crashing_kernel_ends_only_its_session(spawn, libs):
    # Not `serve`: under ASan the deliberate fault is (rightly) reported.
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    c = Client(server.port)
    mod = load(c, libs, "v026")
    t = put(c, np.zeros(64, dtype=np.float32))
    k = c.get_function(mod, "crash_kernel", 1)
    try:
        c.call(k, (3, t["data"]), (0, 4), (0, 64))
        c.sync(CL0)
    except (RuntimeError, ConnectionError, struct.error, AssertionError):
        pass
    assert session_ends(c)
    healthy(server, libs)


def test_a_looping_kernel_ends_only_its_session(serve, libs):
    server = serve()
    c = Client(server.port, key=b"client: -timeout=3")
    mod = load(c, libs, "v026")
    t = put(c, np.zeros(4, dtype=np.float32))
    c.call(c.get_function(mod, "loop_kernel", 1), (3, t["data"]), (0, 1), (0, 1))
    # kDevStreamSync waits for the kernel, which never finishes.
    c.send(15, sr.encode_seq([(6, struct.pack("<ii", *CL0)), (3, 0)]))
    assert session_ends(c)
    healthy(server, libs)


def test_ferry_run_and_time_on_opencl(serve, libs, tmp_path):
    from conftest import run_ferry
    server = serve()
    lib = tmp_path / "cl_v020.so"
    lib.write_bytes(libs["v020"])
    a = np.arange(1024, dtype=np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", a * 2)
    p = run_ferry("run", "--port", str(server.port), "--device", "opencl:0", str(lib), "vadd",
                  "--input", str(tmp_path / "a.npy"), "--input", str(tmp_path / "b.npy"),
                  "--output", str(tmp_path / "c.npy"), timeout=120)
    assert p.returncode == 0, p.stderr
    assert (np.load(tmp_path / "c.npy") == a * 3).all()
    p = run_ferry("time", "--port", str(server.port), "--device", "opencl", str(lib), "vadd",
                  "--input", str(tmp_path / "a.npy"), "--input", str(tmp_path / "b.npy"),
                  "--output", str(tmp_path / "c.npy"), timeout=120)
    assert p.returncode == 0, p.stderr
    assert "vadd: mean" in p.stdout
    p = run_ferry("run", "--port", str(server.port), "--device", "gpu", str(lib), "vadd",
                  timeout=60)
    assert p.returncode == 2 and "bad --device 'gpu'" in p.stderr
