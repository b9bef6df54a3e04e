"""`ferry server --testing`: the rpc.test.* functions TVM's Python server
registers for TVM's own RPC test suite (python/tvm/rpc/testing.py), over
the wire in both session dialects, and their absence without --testing.

Raw clients: test_session_replay (classic) and test_session_replay_ffi
(tvm-ffi).  Returned functions are called through their handles, returned
tensors are read back with kCopyFromRemote and passed back as DLTensors,
as TVM's client does.
"""
import struct

import pytest

import test_session_replay as classic
import test_session_replay_ffi as ffi


@pytest.fixture
def server(spawn):
    return spawn("server", "--host", "127.0.0.1", "--port", "0", "--testing")


# ---- the tvm-ffi dialect (TVM >= 0.21) ---------------------------------------

def ffi_call(r, h, args):
    r.send(3, struct.pack("<Q", h) + ffi.encode_seq(args))
    return r.recv()


def ffi_ret(reply):
    """-> (type index, value[, more]) of a kReturn of kCallFunc."""
    code, body = reply
    assert code == 4, ffi.exception_text(reply)
    vals = ffi.decode_seq(body)[0]
    assert vals[0][0] == 1
    return vals[1:]


def ffi_alloc_ones(r):
    """A (3, 4) float64 tensor of ones in the server's memory."""
    dev = struct.pack("<ii", 1, 0)
    r.send(13, ffi.encode_seq([(6, dev), (1, 96), (1, 64), (5, struct.pack("<BBHi", 2, 64, 1, 0))]))
    code, body = r.recv()
    assert code == 4, ffi.exception_text((code, body))
    (_, ptr), = ffi.decode_seq(body)[0]
    t = {"data": ptr, "dev": (1, 0), "dtype": (2, 64, 1), "shape": [3, 4], "byte_offset": 0}
    data = struct.pack("<12d", *[1.0] * 12)
    r.send(7, classic.encode_tensor(t) + struct.pack("<Q", len(data)) + data)
    assert r.recv()[0] == 4
    return t


def test_ffi_testing_functions(server):
    r = ffi.open_session(server.port)
    addone = ffi.lookup(r, b"rpc.test.addone")
    assert ffi_ret(ffi_call(r, addone, [(1, 10)])) == [(1, 11)]
    assert ffi_ret(ffi_call(r, addone, [(3, 1.5)])) == [(3, 2.5)]
    strcat = ffi.lookup(r, b"rpc.test.strcat")
    assert ffi_ret(ffi_call(r, strcat, [(8, b"abc"), (1, 11)])) == [(8, b"abc:11")]
    assert ffi_ret(ffi_call(r, strcat, [(8, b"x"), (3, 1.0)])) == [(8, b"x:1.0")]
    exc = ffi.lookup(r, b"rpc.test.except")
    assert ffi.exception_text(ffi_call(r, exc, [(8, b"abc")])) == "ValueError: abc"
    concat = ffi.lookup(r, b"rpc.test.runtime_str_concat")
    # Strings as the v0.26 client sends runtime String objects (65/65).
    assert ffi_ret(ffi_call(r, concat, [(65, (65, b"abc")), (65, (65, b"def"))])) == \
        [(8, b"abcdef")]
    # A returned function (a closure over 10) called through its handle.
    lhs = ffi.lookup(r, b"rpc.test.add_to_lhs")
    [(t, fadd)] = ffi_ret(ffi_call(r, lhs, [(1, 10)]))
    assert t == 4 and fadd != 0
    assert ffi_ret(ffi_call(r, fadd, [(1, 12)])) == [(1, 22)]
    r.send(10, ffi.encode_seq([(4, fadd)]))
    assert r.recv()[0] == 4
    assert "unknown or released" in ffi.exception_text(ffi_call(r, fadd, [(1, 1)]))
    # remote_array_func (and v0.26's name for it) checks a tensor of ones.
    ones = ffi_alloc_ones(r)
    for name in (b"rpc.test.remote_array_func", b"rpc.test.remote_tensor_func"):
        f = ffi.lookup(r, name)
        assert ffi_ret(ffi_call(r, f, [(7, ones)])) == [(0, None)]
    # remote_return_nd: closures over a returned tensor.
    m = ffi.lookup(r, b"rpc.test.remote_return_nd")
    fns = {}
    for name in ("get_arr", "ref_count", "get_elem", "get_arr_elem"):
        [(t, h)] = ffi_ret(ffi_call(r, m, [(8, name.encode())]))
        assert t == 4 and h != 0
        fns[name] = h
    assert "unknown name" in ffi.exception_text(ffi_call(r, m, [(8, b"nope")]))
    got = ffi_ret(ffi_call(r, fns["get_arr"], []))
    assert got[0][0] == 7 and got[0][1]["shape"] == [10] and got[0][1]["dtype"] == (2, 32, 1)
    arr = got[0][1]
    r.send(6, classic.encode_tensor(arr) + struct.pack("<Q", 40))
    code, body = r.recv()
    assert code == 8 and body == b"\0" * 40
    assert ffi_ret(ffi_call(r, fns["get_elem"], [(1, 0)])) == [(3, 0.0)]
    assert "IndexError" in ffi.exception_text(ffi_call(r, fns["get_elem"], [(1, 10)]))
    assert ffi_ret(ffi_call(r, fns["get_arr_elem"], [(7, arr), (1, 0)])) == [(3, 0.0)]
    [(t, n)] = ffi_ret(ffi_call(r, fns["ref_count"], []))
    assert t == 1 and n >= 1
    # The array is not the ones tensor remote_array_func wants.
    f = ffi.lookup(r, b"rpc.test.remote_array_func")
    assert "AssertionError" in ffi.exception_text(ffi_call(r, f, [(7, arr)]))
    # testing.echo, which TVM's echo and multi-hop tests call.
    echo = ffi.lookup(r, b"testing.echo")
    assert ffi_ret(ffi_call(r, echo, [(1, 1), (1, 2), (1, 3)])) == [(1, 1)]
    assert ffi_ret(ffi_call(r, echo, [(8, b"xyz")])) == [(8, b"xyz")]
    assert ffi_ret(ffi_call(r, echo, [(66, (66, b"123"))])) == [(9, b"123")]
    [(t, h)] = ffi_ret(ffi_call(r, echo, [(4, fns["get_arr"])]))
    assert t == 4 and h == fns["get_arr"]
    r.send(1, b"")
    r.sock.close()
    server.wait_for(r"session 1 from \S+ ended: ok")
    ffi.no_sanitizer_reports(server)


# ---- the classic dialect (TVM <= 0.20) ---------------------------------------

def classic_lookup(r, name):
    r.send(9, classic.encode_seq([(11, name)]))
    (c, h), = classic.decode_seq(r.recv()[1])[0]
    assert c == 3
    return h


def classic_call(r, h, args):
    r.send(3, struct.pack("<Q", h) + classic.encode_seq(args))
    code, body = r.recv()
    if code == 5:
        return classic.exception_text((code, body))
    assert code == 4
    return classic.decode_seq(body)[0]


def test_classic_testing_functions(server):
    r = classic.open_session(server.port)
    assert classic_call(r, classic_lookup(r, b"rpc.test.addone"), [(0, 10)]) == [(0, 0), (0, 11)]
    assert classic_call(r, classic_lookup(r, b"rpc.test.strcat"), [(11, b"abc"), (0, 11)]) == \
        [(0, 11), (11, b"abc:11")]
    assert classic_call(r, classic_lookup(r, b"rpc.test.except"), [(11, b"abc")]) == \
        "ValueError: abc"
    assert classic_call(r, classic_lookup(r, b"rpc.test.runtime_str_concat"),
                        [(11, b"abc"), (11, b"def")]) == [(0, 11), (11, b"abcdef")]
    [(_, code), (_, fadd)] = classic_call(r, classic_lookup(r, b"rpc.test.add_to_lhs"), [(0, 10)])
    assert code == 10
    assert classic_call(r, fadd, [(0, 12)]) == [(0, 0), (0, 22)]
    m = classic_lookup(r, b"rpc.test.remote_return_nd")
    [(_, code), (_, get_arr)] = classic_call(r, m, [(11, b"get_arr")])
    [(_, code), (_, get_arr_elem)] = classic_call(r, m, [(11, b"get_arr_elem")])
    ret = classic_call(r, get_arr, [])
    assert ret[0] == (0, 13) and ret[1][1]["shape"] == [10]
    assert classic_call(r, get_arr_elem, [(7, ret[1][1]), (0, -1)]) == [(0, 2), (2, 0.0)]
    # testing.test_raise_error_callback(msg) returns a function that raises
    # msg (test_rpc_echo calls it remotely); the session goes on.
    [(_, code), (_, raiser)] = classic_call(
        r, classic_lookup(r, b"testing.test_raise_error_callback"), [(11, b"RuntimeError")])
    assert code == 10 and raiser != 0
    assert classic_call(r, raiser, []) == "RuntimeError"
    assert "TypeError" in classic_call(r, raiser, [(0, 1)])
    assert classic_call(r, classic_lookup(r, b"rpc.test.addone"), [(0, 1)]) == [(0, 0), (0, 2)]
    r.sock.close()
    ffi.no_sanitizer_reports(server)


# ---- off by default ------------------------------------------------------------

def test_testing_functions_are_absent_without_the_flag(spawn):
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = ffi.open_session(srv.port)
    for name in (b"rpc.test.addone", b"rpc.test.add_to_lhs", b"rpc.test.remote_return_nd"):
        r.send(9, ffi.encode_seq([(8, name)]))
        code, body = r.recv()
        assert code == 4 and ffi.decode_seq(body)[0] == [(4, 0)], name
    r.sock.close()
    c = classic.open_session(srv.port)
    assert classic_lookup(c, b"rpc.test.addone") == 0
    c.sock.close()


# ---- multi-hop sessions (rpc.Connect as the session constructor) ------------

def init_with(r, seq):
    r.send(2, struct.pack("<Q", 5) + b"0.8.0" + seq)
    return r.recv()


def raw_session(port):
    r = classic.Replay(port, "hop")
    key = b"client:x0"
    r.sock.sendall(struct.pack("<iI", classic.RPC_MAGIC, len(key)) + key)
    magic, klen = struct.unpack("<iI", classic.recv_exact(r.sock, 8))
    assert magic == classic.RPC_MAGIC
    classic.recv_exact(r.sock, klen)
    return r


@pytest.fixture
def hops(spawn, tmp_path):
    far = spawn("server", "--host", "127.0.0.1", "--port", "0", "--key", "x1",
                "--work-dir", str(tmp_path / "far"), "--testing")
    mid = spawn("server", "--host", "127.0.0.1", "--port", "0", "--key", "x0",
                "--allow-hop", "127.0.0.1:%d" % far.port)
    return far, mid


@pytest.mark.parametrize("dialect", ["ffi", "classic"])
def test_multi_hop_session_is_relayed(hops, tmp_path, dialect):
    far, mid = hops
    r = raw_session(mid.port)
    if dialect == "ffi":
        seq = ffi.encode_seq([(8, b"rpc.Connect"), (8, b"127.0.0.1"), (1, far.port),
                              (8, b"x1"), (2, 0)])
    else:
        seq = classic.encode_seq([(11, b"rpc.Connect"), (11, b"127.0.0.1"), (0, far.port),
                                  (11, b"x1"), (15, 0)])
    assert init_with(r, seq) == (4, struct.pack("<i", 0))
    far.wait_for(r"session 1 from 127\.0\.0\.1:\d+ started")
    # Requests reach the far server: its work folder answers workpath.
    if dialect == "ffi":
        h = ffi.lookup(r, b"tvm.rpc.server.workpath")
        [(t, path)] = ffi_ret(ffi_call(r, h, [(8, b"x")]))
    else:
        [(_, t), (_, path)] = classic_call(r, classic_lookup(r, b"tvm.rpc.server.workpath"),
                                           [(11, b"x")])
    assert path.decode().startswith(str(tmp_path / "far")), path
    # As TVM's test_rpc_session_constructor_args: echo on the far server.
    if dialect == "ffi":
        assert ffi_ret(ffi_call(r, ffi.lookup(r, b"testing.echo"), [(1, 100), (1, 2)])) == \
            [(1, 100)]
    else:
        assert classic_call(r, classic_lookup(r, b"testing.echo"), [(12, b"123")]) == \
            [(0, 12), (12, b"123")]
    r.send(1, b"")  # kShutdown, relayed: both sessions end
    far.wait_for(r"session 1 from \S+ ended: ok")
    mid.wait_for(r"session 1 from \S+ ended: ok")
    r.sock.close()
    ffi.no_sanitizer_reports(mid)


def test_multi_hop_refusals(spawn, hops):
    far, mid = hops
    plain = spawn("server", "--host", "127.0.0.1", "--port", "0", "--key", "x0")
    cases = [
        (plain, far.port, "multi-hop sessions (rpc.Connect to 127.0.0.1:%d) are off" % far.port),
        (plain, far.port, "--allow-hop 127.0.0.1:%d" % far.port),
        (mid, far.port + 1, "not in this server's --allow-hop list"),
    ]
    for srv, port, want in cases:
        r = raw_session(srv.port)
        seq = ffi.encode_seq([(8, b"rpc.Connect"), (8, b"127.0.0.1"), (1, port),
                              (8, b"x1"), (2, 0)])
        text = ffi.exception_text(init_with(r, seq))
        assert want in text, text
        # The session goes on (uninitialised, as after any refused init).
        assert ffi.lookup(r, b"tvm.rpc.server.workpath") != 0
        r.sock.close()
    # A wrong key at the next hop is the next hop's MISMATCH, named.
    r = raw_session(mid.port)
    seq = ffi.encode_seq([(8, b"rpc.Connect"), (8, b"127.0.0.1"), (1, far.port),
                          (8, b"nope"), (2, 0)])
    assert "matches key=nope" in ffi.exception_text(init_with(r, seq))
    r.sock.close()
    # Other constructors stay unsupported.
    r = raw_session(mid.port)
    text = ffi.exception_text(init_with(r, ffi.encode_seq([(8, b"rpc.NonExistingConstructor")])))
    assert text.startswith("RPCError:") and "not supported" in text
    r.sock.close()
    assert "session 1 from" not in far.log()


def test_allow_hop_option_errors():
    from conftest import run_ferry
    for bad in ("nohost", "h:0", "h:99999", ":80", "h:8x", ""):
        r = run_ferry("server", "--port", "0", "--allow-hop", bad)
        assert r.returncode == 2 and "--allow-hop" in r.stderr, (bad, r.stderr)
