"""Replays of the recorded tvm-ffi sessions (TVM v0.26) against `ferry server`,
one server speaking both dialects, and hostile packets in the ffi encoding.

For each of tests/golden/ffi/session-{files,tensor,module,errors}, the
client's bytes are re-framed into packets and sent to a real `ferry server`;
every reply is compared with the recorded one modulo what golden/README.md
lists as varying (handles and data pointers are learned from replies and
substituted into later requests; the work path is compared by file name;
folder paths inside error messages are ignored; time evaluator results by
count and sign).  The uploaded module is tests/models/testlib_ffi.so when the
build has it (issue 7 part B), else the classic testlib.so: the calls of the
recording (addone, add_i64, mul_f64, fail, a missing name, the time
evaluator) mean the same in both ABIs.

Documented deviation: ferry answers kInitServer with the empty sequence of
rpc-session.md §7.4 (`[0]`) where TVM v0.26 answers `[1][0]`.
"""
import os
import re
import struct
import threading
import time

import pytest

from conftest import BUILD, GOLDEN, RPC_MAGIC, recv_exact  # noqa: F401
import test_session_replay as classic

SESSIONS = ["session-files", "session-tensor", "session-module", "session-errors"]

# ---- the tvm-ffi packed sequence (rpc-session.md §7.2, as recorded) ---------
# Values are (type_index, value); objects with a second u32 type keep it:
# (66, (66, b"...")), (115, (115, handle)).

POD = {1: "<q", 2: "<q", 3: "<d", 4: "<Q", 68: "<Q", 73: "<Q"}


def decode_seq(b, off=0):
    (n,) = struct.unpack_from("<i", b, off)
    off += 4
    vals = []
    for _ in range(n):
        (t,) = struct.unpack_from("<i", b, off)
        off += 4
        if t == 0:
            v = None
        elif t in POD:
            (v,) = struct.unpack_from(POD[t], b, off)
            off += 8
        elif t in (5, 6):
            v = bytes(b[off:off + 8])
            off += 8
        elif t == 7:
            v, off = classic.decode_tensor(b, off)
        elif t in (8, 9):
            (ln,) = struct.unpack_from("<Q", b, off)
            v = bytes(b[off + 8:off + 8 + ln])
            off += 8 + ln
        elif t in (65, 66):
            inner, ln = struct.unpack_from("<IQ", b, off)
            v = (inner, bytes(b[off + 12:off + 12 + ln]))
            off += 12 + ln
        else:
            inner, h = struct.unpack_from("<IQ", b, off)
            v = (inner, h)
            off += 12
        vals.append((t, v))
    return vals, off


def encode_seq(vals):
    out = struct.pack("<i", len(vals))
    for t, v in vals:
        out += struct.pack("<i", t)
        if t == 0:
            pass
        elif t in POD:
            out += struct.pack(POD[t], v if t in (1, 2, 3) else v & 0xFFFFFFFFFFFFFFFF)
        elif t in (5, 6):
            out += v
        elif t == 7:
            out += classic.encode_tensor(v)
        elif t in (8, 9):
            out += struct.pack("<Q", len(v)) + v
        elif t in (65, 66):
            out += struct.pack("<IQ", v[0], len(v[1])) + v[1]
        else:
            out += struct.pack("<IQ", *v)
    return out


def load_streams(name):
    import json
    streams = {"c2s": b"", "s2c": b""}
    with open(os.path.join(GOLDEN, "ffi", name, "client-server.jsonl")) as f:
        for line in f:
            o = json.loads(line)
            if o["dir"] in streams and o["conn"] == 2:
                streams[o["dir"]] += bytes.fromhex(o["hex"])
    return streams


def module_bytes():
    ffi = os.path.join(BUILD, "tests", "models", "testlib_ffi.so")
    if os.path.exists(ffi):
        with open(ffi, "rb") as f:
            return f.read()
    return classic.build_testlib()


PATHS = re.compile(r"/[^\s'\"]*/")


def same_message(recorded, got):
    """Messages without a path must be equal (the module's own error text,
    e.g. "fail: deliberate error from testlib").  Messages about a file are
    TVM's C++ wording around a temporary folder ("Check failed: (!fs.fail())
    ... Cannot open /tmp/tmpXXX/hello.txt"): ferry words them its own way,
    so only the file's name must be there."""
    if not PATHS.search(recorded):
        return recorded == got
    name = PATHS.split(recorded)[-1].split()[0]
    return name in got


class Replay(classic.Replay):
    def map_values(self, vals):
        out = []
        for t, v in vals:
            if t in (4, 68, 73):
                v = self.sub(v)
            elif t == 115:
                v = (v[0], self.sub(v[1]))
            elif t == 7:
                v = dict(v, data=self.sub(v["data"]))
            out.append((t, v))
        return out

    def request(self, code, body, testlib):
        ctx = None
        if code == 3:
            (h,) = struct.unpack_from("<Q", body)
            vals, end = decode_seq(body, 8)
            assert end == len(body)
            ours = self.sub(h)
            ctx = self.func_name.get(ours)
            if ctx == "tvm.rpc.server.upload" and vals[0][1] == b"testlib.so":
                vals[1] = (66, (66, testlib))
            if ctx == "tvm.rpc.server.ModuleGetFunction":
                ctx = ("mgf", vals[1][1].decode())
            body = struct.pack("<Q", ours) + encode_seq(self.map_values(vals))
        elif code in (6, 7):
            t, off = classic.decode_tensor(body, 0)
            t["data"] = self.sub(t["data"])
            body = classic.encode_tensor(t) + body[off:]
        elif code >= 9:
            vals, end = decode_seq(body)
            assert end == len(body)
            if code == 9:
                ctx = ("ggf", vals[0][1].decode())
            body = encode_seq(self.map_values(vals))
        return body, ctx

    def compare(self, req_code, ctx, rec, got):
        rcode, rbody = rec
        gcode, gbody = got
        where = "%s: reply to %d (%s)" % (self.name, req_code, ctx)
        if rcode == 5:
            assert gcode == 5, "%s: expected an exception, got %r" % (where, got)
            (rv, _), (gv, gend) = decode_seq(rbody), decode_seq(gbody)
            assert gend == len(gbody) and len(gv) == 1 and gv[0][0] == 8, (where, gv)
            rmsg, gmsg = rv[0][1].decode(), gv[0][1].decode()
            assert same_message(rmsg, gmsg), "%s: %r, recorded %r" % (where, gmsg, rmsg)
            return
        assert gcode == rcode, "%s: code %d, recorded %d (%r)" % (where, gcode, rcode, gbody[:200])
        if rcode == 8:
            assert gbody == rbody, "%s: kCopyAck bytes differ" % where
            return
        if req_code == 2:
            assert gbody == struct.pack("<i", 0), where
            return
        rv, _ = decode_seq(rbody)
        gv, gend = decode_seq(gbody)
        assert gend == len(gbody)
        assert [t for t, _ in gv] == [t for t, _ in rv], "%s: types %r, recorded %r" % (
            where, gv, rv)
        if req_code != 3:
            (t, r), (_, g) = rv[0], gv[0]
            if t == 4:
                self.learn(r, g, where)
                if isinstance(ctx, tuple) and ctx[0] == "ggf":
                    self.func_name[g] = ctx[1]
            else:
                assert g == r, "%s: %r, recorded %r" % (where, g, r)
            return
        rtype, gtype = rv[0][1], gv[0][1]
        assert gtype == rtype, "%s: result type %d, recorded %d" % (where, gtype, rtype)
        if rtype >= 64 and rv[1][0] == 4:
            self.learn(rv[1][1], gv[1][1], where)
            if rtype == 68 and isinstance(ctx, tuple):
                self.func_name[gv[1][1]] = ctx[1]
            if rtype == 68 and ctx == "runtime.RPCTimeEvaluator":
                self.func_name[gv[1][1]] = "time_evaluator"
        elif rv[1][0] == 7:
            self.learn(rv[1][1]["data"], gv[1][1]["data"], where)
            self.learn(rv[2][1], gv[2][1], where)
            assert dict(gv[1][1], data=0) == dict(rv[1][1], data=0), where
        elif ctx == "tvm.rpc.server.workpath":
            assert gv[1][1].endswith(b"/" + rv[1][1].split(b"/")[-1]), where
        elif ctx == "time_evaluator":
            r, g = rv[1][1], gv[1][1]
            assert len(g) == len(r), where
            assert all(x > 0 for x in struct.unpack("<%dd" % (len(g) // 8), g)), where
        else:
            assert gv == rv, "%s: %r, recorded %r" % (where, gv, rv)

    def run(self, streams, testlib):
        ckey, creqs = classic.split(streams["c2s"])
        skey, sreps = classic.split(streams["s2c"])
        self.sock.sendall(struct.pack("<iI", RPC_MAGIC, len(ckey)) + ckey)
        magic, klen = struct.unpack("<iI", recv_exact(self.sock, 8))
        assert magic == RPC_MAGIC
        assert recv_exact(self.sock, klen) == skey
        replies = iter(sreps)
        compared = 0
        for code, body in creqs:
            body, ctx = self.request(code, body, testlib)
            self.send(code, body)
            if code == 1:
                break
            self.compare(code, ctx, next(replies), self.recv())
            compared += 1
        assert next(replies, None) is None
        return compared


@pytest.fixture(scope="module")
def testlib():
    return module_bytes()


def no_sanitizer_reports(server):
    """Session children report ASan/UBSan findings (leaks at their exit) on
    the server's stderr, which the Daemon collects."""
    time.sleep(0.3)
    bad = [line for line in server.lines if "Sanitizer" in line or "runtime error:" in line]
    assert not bad, "\n".join(server.lines[-60:])


def closes(sock):
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("name", SESSIONS)
def test_replay_ffi(spawn, testlib, name):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    streams = load_streams(name)
    r = Replay(server.port, name)
    compared = r.run(streams, testlib)
    assert compared >= 4
    # The v0.26 client frees everything and sends kShutdown at once: the
    # server ends the session without waiting for a timeout.
    assert closes(r.sock)
    r.sock.close()
    r2 = Replay(server.port, name)
    assert r2.run(streams, testlib) == compared
    r2.sock.close()
    no_sanitizer_reports(server)


def test_classic_and_ffi_sessions_on_one_server(spawn, testlib):
    """Back to back, then at the same time: each session keeps its dialect."""
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    classic_lib = classic.build_testlib()
    runs = [(classic.Replay, classic.load_streams, classic_lib),
            (Replay, load_streams, testlib)]
    counts = {}
    for name in ("session-module", "session-files"):
        for cls, load, lib in runs:
            r = cls(server.port, name)
            counts[(cls, name)] = r.run(load(name), lib)
            r.sock.close()
    errors = []

    def one(cls, load, lib, name):
        try:
            r = cls(server.port, name)
            assert r.run(load(name), lib) == counts[(cls, name)]
            r.sock.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=run + (name,))
               for name in ("session-module", "session-files") for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    no_sanitizer_reports(server)


# ---- hostile packets in the ffi encoding -------------------------------------

def open_session(port, key=b"client:"):
    r = Replay(port, "hostile")
    r.sock.sendall(struct.pack("<iI", RPC_MAGIC, len(key)) + key)
    magic, klen = struct.unpack("<iI", recv_exact(r.sock, 8))
    assert magic == RPC_MAGIC
    recv_exact(r.sock, klen)
    r.send(2, struct.pack("<Q", 5) + b"0.8.0" + struct.pack("<i", 0))
    assert r.recv() == (4, struct.pack("<i", 0))
    return r


def exception_text(reply):
    code, body = reply
    assert code == 5, reply
    vals, end = decode_seq(body)
    assert end == len(body) and vals[0][0] == 8, vals
    return vals[0][1].decode()


def lookup(r, name):
    r.send(9, encode_seq([(8, name)]))
    code, body = r.recv()
    assert code == 4, body
    (t, h), = decode_seq(body)[0]
    assert t == 4
    return h


def test_hostile_packets_in_ffi_keep_the_session(spawn):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = open_session(server.port)
    h = lookup(r, b"tvm.rpc.server.upload")  # decides the ffi dialect
    assert h != 0
    tensor = {"data": 0x7fff0000, "dev": (1, 0), "dtype": (2, 32, 1), "shape": [4],
              "byte_offset": 0}
    hostile = [
        (99, b"\0" * 8, "unknown RPC code"),
        (9, struct.pack("<ii", 1, 77) + b"\0" * 8, "type index 77"),
        (9, struct.pack("<ii", 1, 13) + b"\0" * 8, "unknown type index 13"),
        (9, struct.pack("<iiQ", 1, 8, 1 << 62), "past the packet"),
        (9, struct.pack("<iiIQ", 1, 66, 66, 1 << 63), "past the packet"),
        (9, struct.pack("<iiIQ", 1, 65, 66, 1), "not a string"),
        (9, struct.pack("<ii", 1, 72) + b"\0" * 8, "unknown type index 72"),
        (11, struct.pack("<i", -5), "argument count"),
        (9, struct.pack("<i", 4096), "past the packet"),
        (3, struct.pack("<Q", 0xdeadbeef) + encode_seq([]), "unknown or released"),
        (3, struct.pack("<Q", h) + encode_seq([(115, (115, 0x41414141))]), "unknown or released"),
        (3, struct.pack("<Q", h) + struct.pack("<ii", 1, 7) +
         struct.pack("<QiiI", 0x1000, 1, 0, 1000) + b"\0" * 4, "ndim 1000"),
        (6, classic.encode_tensor(tensor) + struct.pack("<Q", 16), "of this session"),
        (6, classic.encode_tensor(tensor) + struct.pack("<Q", 1 << 62), ""),
        # The classic encoding inside an ffi session: refused, not guessed.
        (9, classic.encode_seq([(11, b"tvm.rpc.server.upload")]), "type index 11"),
        (10, classic.encode_seq([(3, h), (0, 10)]), "kFreeHandle"),
    ]
    for code, body, want in hostile:
        r.send(code, body)
        text = exception_text(r.recv())
        assert want in text, (code, text)
    # Releases of handles never issued, or twice, are answered with [None].
    for _ in range(2):
        r.send(10, encode_seq([(4, 0x4141414141)]))
        assert r.recv() == (4, encode_seq([(0, None)]))
    # The session still works, and a real release is answered the same way.
    h2 = lookup(r, b"tvm.rpc.server.workpath")
    assert h2 != 0
    r.send(10, encode_seq([(4, h2)]))
    assert r.recv() == (4, encode_seq([(0, None)]))
    r.send(3, struct.pack("<Q", h2) + encode_seq([(8, b"x")]))
    assert "unknown or released" in exception_text(r.recv())
    r.sock.close()
    # A classic session on the same server is not affected.
    c = classic.open_session(server.port)
    c.send(9, classic.encode_seq([(11, b"tvm.rpc.server.upload")]))
    code, body = c.recv()
    assert code == 4 and classic.decode_seq(body)[0][0][0] == 3
    # ... and the ffi encoding inside it is refused in classic's encoding.
    c.send(9, encode_seq([(8, b"tvm.rpc.server.upload")]))
    code, body = c.recv()
    assert code == 5 and classic.decode_seq(body)[0][0][0] == 11
    c.send(10, encode_seq([(4, 0x4141)]))
    assert c.recv()[0] == 5
    c.send(9, classic.encode_seq([(11, b"tvm.rpc.server.upload")]))
    assert c.recv()[0] == 4
    c.sock.close()
    no_sanitizer_reports(server)


def test_ffi_session_timeout_packet(spawn):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = open_session(server.port, b"client: -timeout=1")
    lookup(r, b"tvm.rpc.server.upload")  # the session speaks ffi from here on
    t0 = time.monotonic()
    r.sock.settimeout(10)
    code, body = r.recv()
    assert time.monotonic() - t0 < 5
    assert code == 5
    assert decode_seq(body)[0] == [(8, b'RPCSessionTimeoutError: Your 1.0s session has expired, '
                                       b'try to increase the "session_timeout" value.')]
    assert closes(r.sock)


# ---- TVM v0.21's release of a returned NDArray by its data pointer ----------

def call_global(r, name, args):
    h = lookup(r, name.encode())
    assert h != 0, name
    r.send(3, struct.pack("<Q", h) + encode_seq(args))
    code, body = r.recv()
    assert code == 4, exception_text((code, body))
    return decode_seq(body)[0]


def test_release_by_data_pointer(spawn):
    """rpc-session.md §7.2.8: the v0.21 client sends kFreeHandle with the
    data pointer of a returned NDArray.  ferry maps it to the NDArray (the
    graph executor's output here) and releases it; unknown values are
    answered and ignored."""
    import json
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = open_session(server.port)
    call_global(r, "tvm.rpc.server.upload", [(8, b"testlib.so"),
                                             (66, (66, classic.build_testlib()))])
    (_, kind), (_, lib) = call_global(r, "tvm.rpc.server.load_module", [(8, b"testlib.so")])
    assert kind == 73
    with open(os.path.join(GOLDEN, "graph.json"), "rb") as f:
        graph = json.dumps(json.load(f)).encode()
    (_, kind), (_, ge) = call_global(r, "tvm.graph_executor.create",
                                     [(8, graph), (73, lib), (1, 1), (1, 0)])
    assert kind == 73
    (_, kind), (_, get_output) = call_global(r, "tvm.rpc.server.ModuleGetFunction",
                                             [(73, ge), (8, b"get_output"), (2, 1)])
    assert kind == 68

    def output():
        r.send(3, struct.pack("<Q", get_output) + encode_seq([(1, 0)]))
        code, body = r.recv()
        assert code == 4, exception_text((code, body))
        vals, _ = decode_seq(body)
        assert [t for t, _ in vals] == [1, 7, 4] and vals[0][1] == 70, vals
        return vals[1][1]["data"], vals[2][1]

    def free(value):
        r.send(10, encode_seq([(4, value)]))
        assert r.recv() == (4, encode_seq([(0, None)]))

    data, h1 = output()
    data2, h2 = output()  # a second view of the same output: same data, own handle
    assert data != 0 and data2 == data and h2 not in (0, h1)
    free(data)
    free(data)
    free(data)  # nothing left under this pointer: answered, ignored
    free(0x4141414141)
    # Both were released: the next output reuses one of their table slots
    # (low 24 bits of a handle) under a new generation, instead of a third.
    data3, h3 = output()
    assert data3 == data and h3 not in (h1, h2)
    assert h3 & 0xFFFFFF in (h1 & 0xFFFFFF, h2 & 0xFFFFFF), (hex(h1), hex(h2), hex(h3))
    # The v0.26 form (by handle) works as well.
    free(h3)
    data4, h4 = output()
    assert h4 & 0xFFFFFF == h3 & 0xFFFFFF and h4 != h3
    r.sock.close()
    no_sanitizer_reports(server)
