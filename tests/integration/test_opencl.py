"""OpenCL in `ferry server` beyond the recordings (issue 12): the real
TVM v0.26 (tvm-ffi) OpenCL libraries of tests/golden/opencl/ffi run on
cl(0) with results against numpy; bad input over the wire (a copy past a
buffer, a forged buffer handle, a texture scope, a device that does not
exist) answered with a clear error while the session goes on; a server
without an OpenCL driver.  Skipped without an OpenCL driver, except the
no-driver case."""
import os
import struct

import numpy as np

import pytest

from conftest import GOLDEN
from cl_client import Client
# serve: the ferry server fixture that checks its stderr for sanitizer reports.
from test_opencl_replay import have_opencl, serve  # noqa: F401
import test_session_replay as sr

CL0 = (4, 0)
FFI = os.path.join(GOLDEN, "opencl", "ffi")
needs_cl = pytest.mark.skipif(not have_opencl(), reason="no OpenCL driver")


def put(c, arr):
    ptr = c.alloc(CL0, arr.nbytes)
    t = Client.tensor(ptr, CL0, arr.shape)
    c.copy_to(t, arr.tobytes())
    return t


def get(c, t, shape):
    n = int(np.prod(shape)) * 4
    return np.frombuffer(c.copy_from(t, n), dtype=np.float32).reshape(shape)


@needs_cl
@pytest.mark.parametrize("lib", ["vector_add", "matmul_tiled"])
def test_tvm_026_opencl_library(serve, lib):
    server = serve()
    c = Client(server.port)
    with open(os.path.join(FFI, lib + ".so"), "rb") as f:
        mod = c.upload_and_load(lib + ".so", f.read())
    fn = c.get_function(mod, "main")
    rng = np.random.default_rng(0)
    if lib == "vector_add":
        a = rng.random(1 << 20, dtype=np.float32)
        b = rng.random(1 << 20, dtype=np.float32)
        want = a + b
    else:
        a = rng.random((256, 256), dtype=np.float32)
        b = rng.random((256, 256), dtype=np.float32)
        want = a @ b
    ta, tb = put(c, a), put(c, b)
    tc = Client.tensor(c.alloc(CL0, want.nbytes), CL0, want.shape)
    c.call(fn, (7, ta), (7, tb), (7, tc))
    c.sync(CL0)
    np.testing.assert_allclose(get(c, tc, want.shape), want, rtol=1e-4, atol=1e-4)
    c.close()


@needs_cl
def test_bad_input_keeps_the_session(serve):
    server = serve()
    c = Client(server.port)
    t = put(c, np.arange(16, dtype=np.float32))
    # A copy past the end of the buffer (byte_offset + size).
    with pytest.raises(RuntimeError, match="past its end"):
        c.copy_from(dict(t, byte_offset=32), 64)
    with pytest.raises(RuntimeError, match="past its end"):
        c.copy_to(dict(t, byte_offset=60), b"\0" * 8)
    # A forged handle: inside a descriptor, and a made-up address.
    for bad in (t["data"] + 8, 0x7fff0000):
        with pytest.raises(RuntimeError, match="not a live OpenCL buffer"):
            c.copy_from(dict(t, data=bad), 4)
        with pytest.raises(RuntimeError, match="not a live OpenCL buffer"):
            c.free(CL0, bad)
    # An OpenCL buffer named as CPU memory is not CPU memory.
    with pytest.raises(RuntimeError, match="not inside a live allocation"):
        c.copy_from(dict(t, dev=(1, 0)), 4)
    # A texture scope, and a device that does not exist (TVM's wording).
    tmpl = Client.tensor(0, CL0, [4, 4])
    with pytest.raises(RuntimeError, match="global.texture"):
        c.send(17, sr.encode_seq([(7, tmpl), (11, b"global.texture")]))
        c.reply()
    with pytest.raises(RuntimeError, match="Invalid device id 7"):
        c.alloc((4, 7), 16)
    with pytest.raises(RuntimeError, match="Invalid device id 7"):
        c.send(11, sr.encode_seq([(6, struct.pack("<ii", 4, 7))]))  # kDevSetDevice
        c.reply()
    c.send(11, sr.encode_seq([(6, struct.pack("<ii", *CL0))]))
    c.reply()
    assert c.attr((4, 7), 0) == 0
    # The session goes on and the data is intact.
    assert get(c, t, (16,)).tolist() == list(range(16))
    c.free(CL0, t["data"])
    c.close()


def test_no_opencl_driver(serve):
    env = {"FERRY_OPENCL_LIBRARY": "/nonexistent/libOpenCL.so.1"}
    server = serve(env)
    c = Client(server.port)
    assert c.attr(CL0, 0) == 0
    with pytest.raises(RuntimeError, match="no opencl device on this server"):
        c.alloc(CL0, 16)
    # CPU still works.
    ptr = c.alloc((1, 0), 16)
    c.free((1, 0), ptr)
    c.close()


def parent_maps_opencl(server):
    with open("/proc/%d/maps" % server.proc.pid) as f:
        maps = f.read()
    return "libOpenCL" in maps or "libpocl" in maps


@needs_cl
def test_server_logs_devices_and_its_parent_holds_no_context(serve):
    server = serve()
    assert any("serving devices: cpu, opencl:0 (" in line for line in server.lines), server.lines
    c = Client(server.port)
    t = put(c, np.ones(4, dtype=np.float32))
    assert get(c, t, (4,)).tolist() == [1.0] * 4
    c.close()
    # The session child loaded the driver; the parent never does.
    assert not parent_maps_opencl(server)


def test_server_without_opencl_says_so(serve):
    server = serve({"FERRY_OPENCL_LIBRARY": "/nonexistent/libOpenCL.so.1"})
    line = [x for x in server.lines if "serving devices:" in x]
    assert line and "no opencl" in line[0] and "/nonexistent/" in line[0], server.lines


@needs_cl
def test_metaschedule_runner_calls(serve):
    """What MetaSchedule's runner does with an OpenCL input: random_fill,
    then a sync."""
    c = Client(serve().port)
    t = put(c, np.zeros(4096, dtype=np.float32))
    c.call(c.global_func("tvm.contrib.random.random_fill_for_measure"), (7, t))
    c.sync(CL0)
    got = get(c, t, (4096,))
    assert ((got >= 1) & (got < 10)).all() and len(set(got.tolist())) > 100
    with pytest.raises(RuntimeError, match="not a live OpenCL buffer"):
        c.call(c.global_func("tvm.contrib.random.random_fill"), (7, dict(t, data=t["data"] + 8)))
    c.close()


@needs_cl
def test_fp16_kernel_on_a_device_without_fp16(serve):
    """TVM's fp16 preamble ends in #error without cl_khr_fp16 (PoCL has
    none): the call fails with the build log, the session goes on."""
    c = Client(serve().port)
    with open(os.path.join(GOLDEN, "opencl", "kernels", "vadd_fp16.so"), "rb") as f:
        mod = c.upload_and_load("vadd_fp16.so", f.read())
    fn = c.get_function(mod, "vadd_fp16")
    ts = [Client.tensor(c.alloc(CL0, 2048), CL0, [1024], dtype=(2, 16, 1)) for _ in range(3)]
    for _ in range(2):  # not cached as a success, and not fatal
        with pytest.raises(RuntimeError) as e:
            c.call(fn, *[(7, t) for t in ts])
        text = str(e.value)
        assert "OpenCL build error for device=" in text and "CL_BUILD_PROGRAM_FAILURE" in text
        assert "Half precision" in text and "vadd_fp16_kernel" in text
    t = put(c, np.arange(4, dtype=np.float32))
    assert get(c, t, (4,)).tolist() == [0, 1, 2, 3]
    c.close()
