"""Whole networks (issue 5): the model zoo's MLP and CNN packed by `ferry
pack` and run by `ferry run MODEL.so` through a real `ferry tracker`,
`ferry proxy` and `ferry server --through-proxy`; outputs against numpy
references computed here from the parameter files, independently of the C
kernels.  Also the layout of the packed library's module blob and
`ferry pack`/`ferry run` on bad input.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import BUILD, ROOT, TrackerConn, run_ferry

MODELS = os.path.join(BUILD, "tests", "models")
KERNELS = os.path.join(MODELS, "zoo_kernels.o")
TESTLIB = os.path.join(MODELS, "testlib.so")
MAKE_MODELS = os.path.join(ROOT, "tests", "models", "zoo", "make_models.py")

PARAMS_MAGIC = 0xF7E58D4F05049CB7
NDARRAY_MAGIC = 0xDD5E40F096B4A13F


# ---- independent references --------------------------------------------------

class Reader:
    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def u64(self):
        v = struct.unpack_from("<Q", self.data, self.pos)[0]
        self.pos += 8
        return v

    def str(self):
        n = self.u64()
        s = self.data[self.pos:self.pos + n]
        assert len(s) == n
        self.pos += n
        return s

    def ndarray(self):
        assert self.u64() == NDARRAY_MAGIC
        self.u64()
        dev_type, dev_id, ndim = struct.unpack_from("<iii", self.data, self.pos)
        code, bits, lanes = struct.unpack_from("<BBH", self.data, self.pos + 12)
        self.pos += 16
        assert (dev_type, dev_id, code, bits, lanes) == (1, 0, 2, 32, 1)
        shape = struct.unpack_from("<%dq" % ndim, self.data, self.pos)
        self.pos += 8 * ndim
        nbytes = self.u64()
        arr = np.frombuffer(self.data[self.pos:self.pos + nbytes], dtype="<f4").reshape(shape)
        self.pos += nbytes
        return arr


def load_params(path):
    r = Reader(open(path, "rb").read())
    assert r.u64() == PARAMS_MAGIC
    r.u64()
    names = [r.str().decode() for _ in range(r.u64())]
    assert r.u64() == len(names)
    return {n: r.ndarray() for n in names}


def softmax(h):
    e = np.exp(h - h.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def conv2d_same(x, w, b):
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), ((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2))
    out = np.zeros((n, w.shape[0], h, wd), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return out + b[None, :, None, None]


def pool2(x, how):
    n, c, h, w = x.shape
    return how(x.reshape(n, c, h // 2, 2, w // 2, 2), axis=(3, 5))


def reference(name, p, x):
    x = x.astype(np.float64)
    if name == "mlp":
        h = np.maximum(x @ p["dense1_weight"].T + p["dense1_bias"], 0)
        return softmax(h @ p["dense2_weight"].T + p["dense2_bias"])
    h = np.maximum(conv2d_same(x, p["conv1_weight"], p["conv1_bias"]), 0)
    h = pool2(h, np.max)
    h = np.maximum(conv2d_same(h, p["conv2_weight"], p["conv2_bias"]), 0)
    h = pool2(h, np.mean).reshape(1, -1)
    return softmax(h @ p["dense_weight"].T + p["dense_bias"])


# ---- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    if not os.path.exists(KERNELS):
        pytest.skip("zoo kernels not built")
    d = tmp_path_factory.mktemp("zoo")
    subprocess.run([sys.executable, MAKE_MODELS, str(d)], check=True, timeout=60)
    for name in ("mlp", "cnn"):
        p = run_ferry("pack", "--graph", str(d / (name + ".json")),
                      "--params", str(d / (name + ".params")),
                      "--output", str(d / (name + ".so")), KERNELS, timeout=120)
        assert p.returncode == 0, p.stderr
        assert re.search(r"packed .*%s\.so: \d+ parameters" % name, p.stdout), p.stdout
    return d


def wait_free(tracker_port, keys, timeout=15):
    q = TrackerConn(tracker_port)
    deadline = time.monotonic() + timeout
    try:
        while True:
            _, summary = q.call([6])
            qi = summary["queue_info"]
            if all(qi.get(k, {}).get("free", 0) >= 1 for k in keys):
                return
            assert time.monotonic() < deadline, summary
            time.sleep(0.1)
    finally:
        q.close()


def run_model(conn, zoo, name, *extra, input_spec=None):
    out = zoo / ("%s_out_%d.npy" % (name, time.monotonic_ns()))
    inp = str(zoo / (name + "_input.npy"))
    p = run_ferry("run", *conn, "--timeout", "60", str(zoo / (name + ".so")),
                  "--input", input_spec + inp if input_spec else inp,
                  "--output", str(out), *extra, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return np.load(out), p.stdout


def check_output(zoo, name, y):
    want = reference(name, load_params(zoo / (name + ".params")),
                     np.load(zoo / (name + "_input.npy")))
    assert y.shape == want.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-6)
    assert abs(float(y.sum()) - 1.0) < 1e-4


# ---- packing -----------------------------------------------------------------

def test_blob_layout_is_tvms(zoo):
    """The library's __tvm_dev_mblob: GraphExecutorFactory (graph JSON, the
    dict's parameters in order, "default"), _lib, import tree [0,1,1] [1]."""
    data = open(zoo / "cnn.so", "rb").read()
    key = struct.pack("<Q", 20) + b"GraphExecutorFactory"
    at = data.find(key)
    assert at >= 16
    r = Reader(data, at - 16)
    n = r.u64()
    assert r.u64() == 3
    start = r.pos
    assert r.str() == b"GraphExecutorFactory"
    assert r.str() == open(zoo / "cnn.json", "rb").read()
    count = r.u64()
    names = [r.str().decode() for _ in range(r.u64())]
    params = load_params(zoo / "cnn.params")
    assert count == len(names) and names == list(params)
    for nm in names:
        assert r.ndarray().tobytes() == params[nm].tobytes()
    assert r.str() == b"default"
    assert r.str() == b"_lib"
    assert r.str() == b"_import_tree"
    assert [r.u64() for _ in range(r.u64())] == [0, 1, 1]
    assert [r.u64() for _ in range(r.u64())] == [1]
    assert r.pos - start + 8 == n


def test_pack_cross_compiler(zoo, tmp_path):
    cc = shutil.which("aarch64-linux-gnu-gcc")
    if not cc:
        pytest.skip("no aarch64 cross compiler")
    obj = tmp_path / "k.o"
    subprocess.run([cc, "-O2", "-fPIC", "-c", "-I", os.path.join(ROOT, "include"), "-o",
                    str(obj), os.path.join(ROOT, "tests", "models", "zoo", "zoo_kernels.c")],
                   check=True, timeout=120)
    p = run_ferry("pack", "--cc", cc, "--graph", str(zoo / "mlp.json"), "--params",
                  str(zoo / "mlp.params"), "--output", str(tmp_path / "m.so"), str(obj),
                  timeout=120)
    assert p.returncode == 0, p.stderr
    head = open(tmp_path / "m.so", "rb").read(20)
    assert head[:4] == b"\x7fELF" and struct.unpack_from("<H", head, 18)[0] == 183  # EM_AARCH64


def test_pack_dash_file_is_not_an_option(zoo, tmp_path):
    """A kernel file whose name starts with '-' reaches the compiler as a
    file ("./-k.o"), never as an option."""
    shutil.copy(KERNELS, tmp_path / "-k.o")
    p = subprocess.run([os.path.join(BUILD, "ferry"), "pack", "--graph", str(zoo / "mlp.json"),
                        "--output", "m.so", "--", "-k.o"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "m.so").exists()


def pack_fails(zoo, tmp_path, graph, params, objs, pattern):
    out = tmp_path / "bad.so"
    args = ["pack", "--output", str(out)]
    if graph:
        args += ["--graph", str(graph)]
    if params:
        args += ["--params", str(params)]
    p = run_ferry(*args, *objs, timeout=60)
    assert p.returncode != 0
    assert re.search(pattern, p.stderr), p.stderr
    assert not out.exists()


def test_pack_errors(zoo, tmp_path):
    g, prm = zoo / "mlp.json", zoo / "mlp.params"
    good = open(prm, "rb").read()
    pack_fails(zoo, tmp_path, None, prm, [KERNELS], r"expected --graph")
    pack_fails(zoo, tmp_path, g, prm, [], r"at least one kernel")
    pack_fails(zoo, tmp_path, tmp_path / "nope.json", prm, [KERNELS], r"cannot read the graph")
    pack_fails(zoo, tmp_path, g, tmp_path / "nope.params", [KERNELS], r"cannot read the params")
    pack_fails(zoo, tmp_path, g, prm, [str(tmp_path / "nope.o")], r"kernel file .*nope\.o")
    # Parameters of another network: names not in the graph.
    pack_fails(zoo, tmp_path, g, zoo / "cnn.params", [KERNELS], r"not an input of the graph")
    bad = tmp_path / "p.bin"
    bad.write_bytes(b"\0" + good[1:])
    pack_fails(zoo, tmp_path, g, bad, [KERNELS], r"wrong magic")
    bad.write_bytes(good[:-5])  # the last array's data is shorter than it says
    pack_fails(zoo, tmp_path, g, bad, [KERNELS], r"not a valid TVM parameter dict")
    bad.write_bytes(good + b"\0")
    pack_fails(zoo, tmp_path, g, bad, [KERNELS], r"bytes after the last array")
    bad.write_bytes(b"")
    pack_fails(zoo, tmp_path, g, bad, [KERNELS], r"empty")
    # A parameter whose shape is not the graph's.
    import json as _json
    gj = _json.load(open(g))
    gj["attrs"]["shape"][1][1] = [33, 64]
    g2 = tmp_path / "g2.json"
    g2.write_text(_json.dumps(gj))
    pack_fails(zoo, tmp_path, g2, prm, [KERNELS], r"shape of 'dense1_weight'")
    g2.write_text('{"nodes": [')
    pack_fails(zoo, tmp_path, g2, prm, [KERNELS], r"not JSON")
    g2.write_text('{"nodes": []}')
    pack_fails(zoo, tmp_path, g2, prm, [KERNELS], r"needs nodes, arg_nodes")
    # A compiler that fails.
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an object")
    pack_fails(zoo, tmp_path, g, prm, [str(junk)], r"compiler .* failed")


# ---- running -------------------------------------------------------------------

def test_models_through_tracker_and_proxy(spawn, zoo, tmp_path):
    """The how-to's path: a client asks the tracker for a key served by a
    device behind the proxy, and runs the whole network there."""
    tr = spawn("tracker", "--port", "0")
    px = spawn("proxy", "--port", "0", "--tracker", "127.0.0.1:%d" % tr.port)
    spawn("server", "--through-proxy", "--host", "127.0.0.1", "--port", str(px.port),
          "--key", "K0", "--work-dir", str(tmp_path / "w0"), wait_listen=False)
    wait_free(tr.port, ["K0"])
    conn = ["--tracker", "127.0.0.1:%d" % tr.port, "--key", "K0"]
    for name in ("mlp", "cnn"):
        y, out = run_model(conn, zoo, name, "--repeat", "5")
        check_output(zoo, name, y)
        for st in ("upload", "load", "create", "set inputs", "first run", "get outputs"):
            assert re.search(r"^  %s +\d+\.\d+ ms" % st, out, re.M), out
        m = re.search(r"^  run +(\S+) ms  \(on the device: mean of 5 runs, std (\S+) ms\)", out,
                      re.M)
        assert m and float(m.group(1)) > 0, out
        assert re.search(r"^output 0: float32 \(1, 10\) argmax %d " % int(np.argmax(y)), out,
                         re.M), out
        wait_free(tr.port, ["K0"])


def test_model_direct_by_input_name(spawn, zoo):
    srv = spawn("server", "--port", "0")
    y, _ = run_model(["--port", str(srv.port)], zoo, "cnn", input_spec="data=")
    check_output(zoo, "cnn", y)
    y, _ = run_model(["--port", str(srv.port)], zoo, "mlp", "--model", input_spec="0=")
    check_output(zoo, "mlp", y)


def test_model_errors(spawn, zoo, tmp_path):
    srv = spawn("server", "--port", "0")
    conn = ["--port", str(srv.port), "--timeout", "30"]
    # A library without a graph executor factory.
    if os.path.exists(TESTLIB):
        p = run_ferry("run", *conn, TESTLIB, timeout=60)
        assert p.returncode == 1 and "no graph executor factory" in p.stderr, p.stderr
    # A graph naming a function the library does not have.
    import json as _json
    gj = _json.load(open(zoo / "mlp.json"))
    gj["nodes"][-1]["attrs"]["func_name"] = "zoo_missing_kernel"
    g = tmp_path / "g.json"
    g.write_text(_json.dumps(gj))
    lib = tmp_path / "missing.so"
    p = run_ferry("pack", "--graph", str(g), "--params", str(zoo / "mlp.params"), "--output",
                  str(lib), KERNELS, timeout=120)
    assert p.returncode == 0, p.stderr
    p = run_ferry("run", *conn, str(lib), "--input", str(zoo / "mlp_input.npy"), timeout=60)
    assert p.returncode == 1
    assert "cannot create the graph executor" in p.stderr and "zoo_missing_kernel" in p.stderr, \
        p.stderr
    # An input of the wrong shape.
    np.save(tmp_path / "x.npy", np.zeros((1, 63), np.float32))
    p = run_ferry("run", *conn, str(zoo / "mlp.so"), "--input", str(tmp_path / "x.npy"),
                  timeout=60)
    assert p.returncode == 1 and "set_input failed: " in p.stderr, p.stderr
    assert "shape" in p.stderr, p.stderr
    p = run_ferry("run", *conn, str(zoo / "mlp.so"), "--input", "7=" + str(tmp_path / "x.npy"),
                  timeout=60)
    assert p.returncode == 1 and "out of range" in p.stderr, p.stderr
    # Usage errors.
    p = run_ferry("run", *conn, str(zoo / "mlp.so"), "--model", "--arg", "int:1", timeout=60)
    assert p.returncode == 2
    # The server survived all of it.
    y, _ = run_model(["--port", str(srv.port)], zoo, "mlp")
    check_output(zoo, "mlp", y)


# ---- the same network on an emulated aarch64 device ------------------------------

CROSS = os.environ.get("FERRY_CROSS_BUILD", os.path.join(ROOT, "build-aarch64"))
CROSS_KERNELS = os.path.join(CROSS, "tests", "models", "zoo_kernels.o")


def test_cnn_on_emulated_aarch64(spawn, zoo, tmp_path):
    """`ferry pack --cc aarch64-linux-gnu-gcc` with the kernels of the
    aarch64 build (make cross ARCH=aarch64, which make check runs first),
    run by the x86-64 client on an aarch64 `ferry server` under qemu that a
    tracker hands out: same outputs as the numpy reference."""
    cc = shutil.which("aarch64-linux-gnu-gcc")
    if not cc or not shutil.which("qemu-aarch64") or not os.path.exists(CROSS_KERNELS) \
            or not os.path.exists(os.path.join(CROSS, "ferry")):
        pytest.skip("no aarch64 build with zoo kernels, cross compiler or qemu-aarch64")
    from test_cross_aarch64 import EmulatedDaemon
    lib = tmp_path / "cnn-arm.so"
    p = run_ferry("pack", "--cc", cc, "--graph", str(zoo / "cnn.json"), "--params",
                  str(zoo / "cnn.params"), "--output", str(lib), CROSS_KERNELS, timeout=120)
    assert p.returncode == 0, p.stderr
    tr = spawn("tracker", "--port", "0")
    arm = EmulatedDaemon(["server", "--port", "0", "--tracker", "127.0.0.1:%d" % tr.port,
                          "--key", "arm64", "--work-dir", str(tmp_path / "w")])
    try:
        wait_free(tr.port, ["arm64"], timeout=60)
        out = tmp_path / "y.npy"
        p = run_ferry("run", "--tracker", "127.0.0.1:%d" % tr.port, "--key", "arm64",
                      "--timeout", "60", str(lib), "--input", str(zoo / "cnn_input.npy"),
                      "--output", str(out), timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        check_output(zoo, "cnn", np.load(out))
        # An x86-64 library on the aarch64 device: a clear load error.
        p = run_ferry("run", "--tracker", "127.0.0.1:%d" % tr.port, "--key", "arm64",
                      "--timeout", "60", str(zoo / "cnn.so"), "--input",
                      str(zoo / "cnn_input.npy"), timeout=120)
        assert p.returncode == 1 and "cannot load the module" in p.stderr, p.stderr
    finally:
        arm.stop()
