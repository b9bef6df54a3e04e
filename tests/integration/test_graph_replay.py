"""The graph executor through a real `ferry server`.

* Replay of tests/golden/classic/session-graph (TVM v0.19's GraphModule:
  graph_executor.create(graph.json, testlib, cpu), set_input, run,
  get_output, get_num_outputs, load_params, run, get_output) with the
  helpers of test_session_replay.py: every reply equals the recorded one
  modulo handles, and the outputs copied back equal results-graph.json.
* Bad input over the wire (missing kernel, cyclic graph, storage id out of
  range, a truncated graph, params with a wrong magic or a lying length, a
  shape that does not match): an exception to the client, and the session
  goes on.
"""
import json
import os
import socket
import subprocess
import time
import struct

import pytest

from conftest import GOLDEN
from test_session_replay import (Replay, build_testlib, decode_seq, encode_seq, encode_tensor,
                                 exception_text, load_streams, open_session)


class GraphReplay(Replay):
    """A replay that also keeps the bytes of every kCopyFromRemote reply."""

    def __init__(self, port, name):
        super().__init__(port, name)
        self.copies = []

    def compare(self, req_code, ctx, rec, got):
        if got[0] == 8:
            self.copies.append(got[1])
        return super().compare(req_code, ctx, rec, got)


@pytest.fixture(scope="module")
def testlib():
    return build_testlib()


def no_sanitizer_reports(server):
    """Session children report ASan/UBSan findings (leaks at their exit) on
    the server's stderr, which the Daemon collects."""
    time.sleep(0.3)
    bad = [line for line in server.lines if "Sanitizer" in line or "runtime error:" in line]
    assert not bad, "\n".join(server.lines[-60:])


def floats(b):
    return list(struct.unpack("<%df" % (len(b) // 4), b))


def test_graph_replay(spawn, testlib):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    streams = load_streams("session-graph")
    with open(os.path.join(GOLDEN, "classic", "results-graph.json")) as f:
        want = json.load(f)["session-graph"]
    r = GraphReplay(server.port, "session-graph")
    compared = r.run(streams, testlib)
    assert compared >= 30
    assert len(r.copies) == 2
    flat = lambda rows: [x for row in rows for x in row]  # noqa: E731
    assert floats(r.copies[0]) == flat(want["graph_out"])
    assert floats(r.copies[1]) == flat(want["graph_out_after_params"])
    r.sock.shutdown(socket.SHUT_WR)
    r.sock.settimeout(10)
    assert r.sock.recv(1) == b""
    r.sock.close()
    no_sanitizer_reports(server)


# ---- bad input over the wire ---------------------------------------------------

def call_global(r, name, args):
    """kGetGlobalFunc + kCallFunc; -> reply (code, body)."""
    r.send(9, encode_seq([(11, name.encode())]))
    (c, h), = decode_seq(r.recv()[1])[0]
    assert c == 3 and h != 0, name
    r.send(3, struct.pack("<Q", h) + encode_seq(args))
    return r.recv()


def returned(reply):
    code, body = reply
    assert code == 4, exception_text(reply)
    return decode_seq(body)[0]


def graph(func="addone", sid2=2, cyclic=False):
    g = json.load(open(os.path.join(GOLDEN, "graph.json")))
    g["nodes"][2]["attrs"]["func_name"] = func
    g["attrs"]["storage_id"][1][2] = sid2
    if cyclic:
        g["nodes"][1]["inputs"] = [[2, 0, 0]]
    return json.dumps(g).encode()


def params_blob(name=b"x", shape=(3, 4), magic=0xF7E58D4F05049CB7, lie=0):
    n = shape[0] * shape[1]
    arr = struct.pack("<QQiii", 0xDD5E40F096B4A13F, 0, 1, 0, len(shape))
    arr += struct.pack("<BBH", 2, 32, 1) + struct.pack("<%dq" % len(shape), *shape)
    arr += struct.pack("<q", 4 * n + lie) + struct.pack("<%df" % n, *([1.0] * n))
    return (struct.pack("<QQQ", magic, 0, 1) + struct.pack("<Q", len(name)) + name +
            struct.pack("<Q", 1) + arr)


def test_bad_graphs_and_params(spawn, testlib):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = open_session(server.port)
    returned(call_global(r, "tvm.rpc.server.upload", [(11, b"testlib.so"), (12, testlib)]))
    (_, kind), (_, lib) = returned(call_global(r, "tvm.rpc.server.load_module",
                                               [(11, b"testlib.so")]))
    assert kind == 9

    def create(js):
        return call_global(r, "tvm.graph_executor.create", [(11, js), (9, lib), (0, 1), (0, 0)])

    cases = [
        (graph(func="no_such_kernel"), "'no_such_kernel', which the module does not define"),
        (graph(sid2=7), "storage id out of range"),
        (graph(cyclic=True), "earlier node"),
        (graph()[:-40], "graph JSON: not valid JSON"),
        (b"{}", "graph JSON"),
    ]
    for js, want in cases:
        text = exception_text(create(js))
        assert want in text, text
    # A CUDA device is refused.
    text = exception_text(call_global(r, "tvm.graph_executor.create",
                                      [(11, graph()), (9, lib), (0, 2), (0, 0)]))
    assert "device" in text.lower(), text
    # A good executor, then hostile parameter blobs.
    (_, kind), (_, ge) = returned(create(graph()))
    assert kind == 9
    r.send(9, encode_seq([(11, b"tvm.rpc.server.ModuleGetFunction")]))
    (_, mgf), = decode_seq(r.recv()[1])[0]
    r.send(3, struct.pack("<Q", mgf) + encode_seq([(9, ge), (11, b"load_params"), (15, 1)]))
    (_, kind), (_, load) = returned(r.recv())
    assert kind == 10
    bad = [
        (params_blob(magic=0x1234), "magic"),
        (params_blob(lie=4), "malformed"),
        (params_blob(lie=1 << 40), ""),
        (params_blob()[:-3], "truncated"),
        (params_blob(shape=(4, 3)), "different shape"),
    ]
    for blob, want in bad:
        r.send(3, struct.pack("<Q", load) + encode_seq([(12, blob)]))
        text = exception_text(r.recv())
        assert want in text, (want, text)
    r.send(3, struct.pack("<Q", load) + encode_seq([(12, params_blob())]))
    returned(r.recv())
    r.sock.close()
    no_sanitizer_reports(server)


def test_zero_copy_output_freed_then_get_output(spawn, testlib):
    """set_output_zero_copy(0, A); kDevFreeData(A); get_output(0, B): an
    exception that says the zero-copy tensor is gone (ferry used to copy
    from the freed memory), and the session goes on.  kDevFreeData of the
    executor's own storage is refused."""
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = open_session(server.port)
    returned(call_global(r, "tvm.rpc.server.upload", [(11, b"testlib.so"), (12, testlib)]))
    (_, _), (_, lib) = returned(call_global(r, "tvm.rpc.server.load_module",
                                            [(11, b"testlib.so")]))
    (_, kind), (_, ge) = returned(call_global(
        r, "tvm.graph_executor.create", [(11, graph()), (9, lib), (0, 1), (0, 0)]))
    assert kind == 9
    r.send(9, encode_seq([(11, b"tvm.rpc.server.ModuleGetFunction")]))
    (_, mgf), = decode_seq(r.recv()[1])[0]

    def method(name):
        r.send(3, struct.pack("<Q", mgf) + encode_seq([(9, ge), (11, name), (15, 1)]))
        (_, kind), (_, f) = returned(r.recv())
        assert kind == 10
        return f

    def alloc():
        tmpl = {"data": 0, "dev": (1, 0), "dtype": (2, 32, 1), "shape": [3, 4],
                "byte_offset": 0}
        r.send(17, encode_seq([(7, tmpl), (4, None)]))
        (_, ptr), = returned(r.recv())
        return dict(tmpl, data=ptr)

    set_out, get_out, run = (method(n) for n in
                             (b"set_output_zero_copy", b"get_output", b"run"))
    a, b = alloc(), alloc()
    r.send(3, struct.pack("<Q", set_out) + encode_seq([(0, 0), (7, a)]))
    returned(r.recv())
    r.send(14, encode_seq([(6, struct.pack("<ii", 1, 0)), (3, a["data"])]))
    returned(r.recv())
    r.send(3, struct.pack("<Q", get_out) + encode_seq([(0, 0), (7, b)]))
    text = exception_text(r.recv())
    assert "zero-copy" in text, text
    r.send(3, struct.pack("<Q", run) + encode_seq([]))
    assert "zero-copy" in exception_text(r.recv())
    # kDevFreeData of the executor's own output storage (the data pointer
    # of the NDArray get_output(0) returns) is refused: freeing it used to
    # leave the executor writing into freed memory at the next run.
    r.send(3, struct.pack("<Q", get_out) + encode_seq([(0, 0)]))
    tensors = [v for c, v in returned(r.recv()) if c == 7]
    assert len(tensors) == 1 and tensors[0]["data"] != 0, tensors
    r.send(14, encode_seq([(6, struct.pack("<ii", 1, 0)), (3, tensors[0]["data"])]))
    text = exception_text(r.recv())
    assert "storage of an NDArray" in text, text
    # The session goes on: a live tensor set again makes both work.
    c = alloc()
    r.send(3, struct.pack("<Q", set_out) + encode_seq([(0, 0), (7, c)]))
    returned(r.recv())
    r.send(3, struct.pack("<Q", run) + encode_seq([]))
    returned(r.recv())
    r.send(3, struct.pack("<Q", get_out) + encode_seq([(0, 0), (7, b)]))
    returned(r.recv())
    r.sock.close()
    no_sanitizer_reports(server)


# ---- a library carrying a GraphExecutorFactory (what export_library writes) ----

def dmlc_str(b):
    return struct.pack("<Q", len(b)) + b


def factory_blob(graph_json, params):
    """__tvm_dev_mblob bytes: factory (root) importing _lib (spec §5, §8.6)."""
    names = b"".join(dmlc_str(n) for n, _ in params)
    arrays = b""
    for _, vals in params:
        arrays += struct.pack("<QQiii", 0xDD5E40F096B4A13F, 0, 1, 0, 2)
        arrays += struct.pack("<BBH", 2, 32, 1) + struct.pack("<2q", 3, 4)
        arrays += struct.pack("<q", 48) + struct.pack("<12f", *vals)
    payload = (dmlc_str(graph_json) + struct.pack("<QQ", len(params), len(params)) + names +
               arrays + dmlc_str(b"default"))
    body = (struct.pack("<Q", 3) + dmlc_str(b"GraphExecutorFactory") + payload +
            dmlc_str(b"_lib") + dmlc_str(b"_import_tree") +
            struct.pack("<4Q", 3, 0, 1, 1) + struct.pack("<2Q", 1, 1))
    return struct.pack("<Q", len(body)) + body


def build_factory_lib(tmp_path, blob):
    src = tmp_path / "blob.c"
    src.write_text("__attribute__((visibility(\"default\"))) const unsigned char "
                   "__tvm_dev_mblob[] = {%s};\n" % ",".join(str(b) for b in blob))
    out = tmp_path / "netlib.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(out),
                    os.path.join(GOLDEN, "testlib.c"), str(src)], check=True, timeout=120)
    return out.read_bytes()


def test_factory_library(spawn, tmp_path):
    x = [float(i) for i in range(12)]
    lib_bytes = build_factory_lib(tmp_path, factory_blob(graph(func="scale"), [(b"x", x)]))
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = open_session(server.port)
    returned(call_global(r, "tvm.rpc.server.upload", [(11, b"netlib.so"), (12, lib_bytes)]))
    (_, kind), (_, fac) = returned(call_global(r, "tvm.rpc.server.load_module",
                                               [(11, b"netlib.so")]))
    assert kind == 9
    r.send(9, encode_seq([(11, b"tvm.rpc.server.ModuleGetFunction")]))
    (_, mgf), = decode_seq(r.recv()[1])[0]

    def get_fn(mod, name):
        r.send(3, struct.pack("<Q", mgf) + encode_seq([(9, mod), (11, name), (15, 1)]))
        vals = returned(r.recv())
        return vals[1][1] if vals[0][1] == 10 else None

    def call(fn, args):
        r.send(3, struct.pack("<Q", fn) + encode_seq(args))
        return returned(r.recv())

    assert get_fn(fac, b"debug_create") is None
    (_, js), = call(get_fn(fac, b"get_graph_json"), [])[1:]
    assert json.loads(js) == json.loads(graph(func="scale"))
    # GraphModule(lib["default"](dev))
    (_, kind), (_, ge) = call(get_fn(fac, b"default"), [(6, struct.pack("<ii", 1, 0))])
    assert kind == 9
    call(get_fn(ge, b"run"), [])
    (_, kind), (_, t), (_, h) = call(get_fn(ge, b"get_output"), [(0, 0)])
    assert kind == 13 and t["shape"] == [3, 4]
    r.send(6, encode_tensor(t) + struct.pack("<Q", 48))
    code, body = r.recv()
    assert code == 8
    # x -> addone -> scale = 2 (x + 1) with the factory's x: parameters were set.
    assert floats(body) == [2.0 * (v + 1.0) for v in x]
    # module.time_evaluator("run", dev, number=3, repeat=2), as benchmark() does.
    (_, kind), (_, timer) = returned(call_global(
        r, "runtime.RPCTimeEvaluator",
        [(9, ge), (11, b"run"), (0, 1), (0, 0), (0, 3), (0, 2), (0, 0), (0, 100), (0, 0),
         (0, 1), (0, 0), (11, b"")]))
    assert kind == 10
    (_, kind), (_, times) = call(timer, [])
    assert kind == 12 and len(times) == 16
    assert all(t > 0 for t in struct.unpack("<2d", times))
    r.sock.close()
    no_sanitizer_reports(server)


def test_factory_library_bad_params(spawn, tmp_path):
    """A factory whose parameter array has a wrong magic: load_module fails
    with a message naming the factory, and the session goes on."""
    blob = bytearray(factory_blob(graph(func="scale"), [(b"x", [0.0] * 12)]))
    at = bytes(blob).find(struct.pack("<Q", 0xDD5E40F096B4A13F))
    blob[at] ^= 0xFF
    lib_bytes = build_factory_lib(tmp_path, bytes(blob))
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = open_session(server.port)
    returned(call_global(r, "tvm.rpc.server.upload", [(11, b"netlib.so"), (12, lib_bytes)]))
    text = exception_text(call_global(r, "tvm.rpc.server.load_module", [(11, b"netlib.so")]))
    assert "GraphExecutorFactory" in text and "wrong magic" in text, text
    returned(call_global(r, "tvm.rpc.server.workpath", [(11, b"x")]))
    r.sock.close()
    no_sanitizer_reports(server)
