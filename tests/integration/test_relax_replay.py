"""TVM >= 0.20 models on `ferry server`: the recordings of
tests/golden/relax/replay (TVM's own Python client driving TVM's own
server, v0.20 classic and, under ffi/, v0.26 tvm-ffi; copied from
../shared/golden/relax) replayed against ferry with the helpers of
test_session_replay.py / test_session_replay_ffi.py.

Each recording uploads the real library TVM compiled (mlp, two_outputs),
loads it (a relax.VMExecutable at the root, the kernels imported),
vm_load_executable, vm_initialization(1, 0, 2), set_input,
invoke_stateful, get_output_arity / get_output and copies every output
back, get_function_arity / get_function_param_name, time_evaluator on
invoke_stateful and on a saved function, a direct call (refused by v0.20,
run by v0.26), a shape that fails the check, and a missing function.
Every reply must equal the recorded one modulo handles; the kCopyAck of
each output must be byte for byte TVM's, so the results are TVM's.

Documented deviations, as in the other replays: kInitServer's reply;
TVM's own error texts that start with a [hh:mm:ss] source location
(v0.20) are not compared, the v0.26 texts are compared exactly.
"""
import json
import os
import socket
import struct

import pytest

from conftest import GOLDEN
import test_session_replay as classic
import test_session_replay_ffi as ffi

RELAX = os.path.join(GOLDEN, "relax", "replay")
CASES = [("classic", "mlp"), ("classic", "two_outputs"), ("ffi", "mlp"), ("ffi", "two_outputs")]


def load_streams(dialect, name):
    streams = {"c2s": b"", "s2c": b""}
    path = os.path.join(RELAX, *(["ffi"] if dialect == "ffi" else []), name, "client-server.jsonl")
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            if o["dir"] in streams and o["conn"] == 2:
                streams[o["dir"]] += bytes.fromhex(o["hex"])
    return streams


def copies_of(streams):
    """The kCopyAck bodies TVM's server sent: one per output copied back."""
    _, reps = classic.split(streams["s2c"])
    return [body for code, body in reps if code == 8]


class CountingClassic(classic.Replay):
    def __init__(self, port, name):
        super().__init__(port, name)
        self.copies = []

    def compare(self, req_code, ctx, rec, got):
        if got[0] == 8:
            self.copies.append(got[1])
        return super().compare(req_code, ctx, rec, got)


class CountingFfi(ffi.Replay):
    def __init__(self, port, name):
        super().__init__(port, name)
        self.copies = []

    def compare(self, req_code, ctx, rec, got):
        if got[0] == 8:
            self.copies.append(got[1])
        return super().compare(req_code, ctx, rec, got)


@pytest.mark.parametrize("dialect,name", CASES)
def test_relax_replay(spawn, dialect, name):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    streams = load_streams(dialect, name)
    cls = CountingFfi if dialect == "ffi" else CountingClassic
    r = cls(server.port, "%s/%s" % (dialect, name))
    compared = r.run(streams, b"")
    assert compared >= 40
    want = copies_of(streams)
    assert len(want) == (1 if name == "mlp" else 2)
    assert r.copies == want
    r.sock.shutdown(socket.SHUT_WR)
    r.sock.settimeout(10)
    assert r.sock.recv(1) == b""
    r.sock.close()
    # The same session again on the same server.
    r2 = cls(server.port, "%s/%s again" % (dialect, name))
    assert r2.run(streams, b"") == compared
    r2.sock.close()
    ffi.no_sanitizer_reports(server)


def test_outputs_are_the_numpy_reference():
    """The recorded outputs (what the replay gets back byte for byte) are
    the .npy files TVM's local VM wrote, each checked against numpy when
    the models were built."""
    for dialect, gen in (("classic", "v0.20"), ("ffi", "v0.26")):
        for name, n in (("mlp", 1), ("two_outputs", 2)):
            got = copies_of(load_streams(dialect, name))
            for i in range(n):
                with open(os.path.join(GOLDEN, "relax", gen, "%s_out%d.npy" % (name, i)),
                          "rb") as f:
                    npy = f.read()
                (hlen,) = struct.unpack_from("<H", npy, 8)
                assert got[i] == npy[10 + hlen:], (dialect, name, i)
