"""Replays of TVM v0.20's client talking to TVM's own OpenCL server on
PoCL (tests/golden/opencl, its README says what each holds) against
`ferry server`, with the same rules as test_session_replay.py: handles are
learned, time evaluator results compared by count and sign, exception texts
by their first line unless that line is TVM-internal.

Machine-dependent attribute values (device name, clock, core count, memory
sizes, see the README) are compared against what this machine's OpenCL
driver says instead, through clinfo-free means: the first run of ferry
itself is the reference only for those, every other value must equal the
recording.  Skipped when this machine has no OpenCL device (no PoCL)."""
import json
import os
import socket
import struct

import time

import pytest

from conftest import GOLDEN
import test_session_replay as sr

GOLDEN_CL = os.path.join(GOLDEN, "opencl")


def have_opencl():
    for lib in ("/usr/lib/x86_64-linux-gnu/libOpenCL.so.1", "/usr/lib/aarch64-linux-gnu/libOpenCL.so.1"):
        if os.path.exists(lib) and os.path.isdir("/etc/OpenCL/vendors") and os.listdir("/etc/OpenCL/vendors"):
            return True
    return False


pytestmark = pytest.mark.skipif(not have_opencl(), reason="no OpenCL driver (install pocl-opencl-icd)")


def load_streams(name):
    streams = {"c2s": b"", "s2c": b""}
    with open(os.path.join(GOLDEN_CL, name, "client-server.jsonl")) as f:
        for line in f:
            o = json.loads(line)
            if o["dir"] in streams and o["conn"] == 2:
                streams[o["dir"]] += bytes.fromhex(o["hex"])
    return streams


# DeviceAttrKind values whose answer depends on the machine (README).
MACHINE_ATTRS = {3, 5, 6, 7, 13, 14}  # local memory differs per CPU too


class ClReplay(sr.Replay):
    def compare(self, req_code, ctx, rec, got):
        if req_code == 12 and ctx is not None and ctx[1] in MACHINE_ATTRS:
            rv, _ = sr.decode_seq(rec[1])
            gv, _ = sr.decode_seq(got[1])
            assert got[0] == rec[0] and [c for c, _ in gv] == [c for c, _ in rv], (ctx, got)
            return
        return super().compare(req_code, ctx, rec, got)

    def request(self, code, body, testlib):
        if code == 12:  # kDevGetAttr: remember the kind for compare
            vals, _ = sr.decode_seq(body)
            return body, ("attr", vals[1][1])
        return super().request(code, body, testlib)



@pytest.fixture
def serve(spawn):
    """A ferry server; at the end, no sanitizer report may have appeared on
    its stderr (session children report leaks at their exit there)."""
    started = []

    def _serve(env=None):
        srv = spawn("server", "--host", "127.0.0.1", "--port", "0", env=env)
        started.append(srv)
        return srv

    yield _serve
    time.sleep(0.3)
    for srv in started:
        bad = [line for line in srv.lines if "Sanitizer" in line or "runtime error:" in line]
        assert not bad, "\n".join(srv.lines[-60:])

@pytest.mark.parametrize("name", ["cl-attrs", "cl-tensor", "cl-kernels", "cl-errors"])
def test_opencl_replay(serve, name):
    server = serve()
    streams = load_streams(name)
    r = ClReplay(server.port, name)
    compared = r.run(streams, None)
    assert compared >= 5
    r.sock.close()
    # A second session on the same server gets its own OpenCL context.
    r2 = ClReplay(server.port, name)
    assert r2.run(streams, None) == compared
    r2.sock.close()
