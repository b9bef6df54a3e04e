"""rpc.PopenSession as a session constructor (--allow-popen): the server
writes the executable the client sends into the session folder, runs it
with a socket it reads and writes (passed as two descriptor numbers, as
TVM's minrpc servers expect), starts the session on it and relays the
rest of the session.  Refused by default.

The executable here is a small Python script that plays a minrpc server:
it answers kInitServer, then every request with the handle 4242, and
exits on kShutdown, leaving a file that says it saw both descriptors."""
import os
import struct

import test_session_replay as classic
from test_server_testing import classic_lookup, init_with, raw_session
from test_session_replay import exception_text
from test_session_replay_ffi import no_sanitizer_reports

FAKE_MINRPC = b"""#!/usr/bin/python3
import os, struct, sys
rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
def read(n):
    b = b""
    while len(b) < n:
        c = os.read(rfd, n - len(b))
        if not c:
            sys.exit(0)
        b += c
    return b
def reply(code, body):
    os.write(wfd, struct.pack("<Qi", 4 + len(body), code) + body)
with open("fake-minrpc-ran", "w") as f:
    f.write("%d %d" % (rfd, wfd))
while True:
    n, code = struct.unpack("<Qi", read(12))
    read(n - 4)
    if code == 1:
        sys.exit(0)
    seq = struct.pack("<ii", 0, 0) if code == 2 else struct.pack("<iiQ", 1, 3, 4242)
    reply(4, seq)
"""


def popen_seq(binary):
    return classic.encode_seq([(11, b"rpc.PopenSession"), (12, binary)])


def test_popen_session_is_relayed(spawn, tmp_path):
    work = tmp_path / "work"
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--key", "x0",
                "--work-dir", str(work), "--allow-popen")
    r = raw_session(srv.port)
    code, _ = init_with(r, popen_seq(FAKE_MINRPC))
    assert code == 4
    # Requests now reach the executable, which answers 4242 to everything.
    assert classic_lookup(r, b"tvm.rpc.server.workpath") == 4242
    assert classic_lookup(r, b"anything") == 4242
    ran = [os.path.join(d, "fake-minrpc-ran") for d, _, files in os.walk(work)
           if "fake-minrpc-ran" in files]
    assert len(ran) == 1
    rfd, wfd = open(ran[0]).read().split()
    assert rfd == wfd
    r.send(1, b"")  # kShutdown, relayed
    srv.wait_for(r"session 1 from \S+ ended: ok")
    r.sock.close()
    no_sanitizer_reports(srv)


def test_popen_session_refusals(spawn):
    plain = spawn("server", "--host", "127.0.0.1", "--port", "0", "--key", "x0")
    r = raw_session(plain.port)
    text = exception_text(init_with(r, popen_seq(FAKE_MINRPC)))
    assert "rpc.PopenSession sessions" in text and "--allow-popen" in text, text
    # The session goes on (uninitialised, as after any refused init).
    assert classic_lookup(r, b"tvm.rpc.server.workpath") != 0
    r.sock.close()
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--key", "x0",
                "--allow-popen")
    cases = [
        (classic.encode_seq([(11, b"rpc.PopenSession"), (11, b"/bin/sh")]), "bytes"),
        (classic.encode_seq([(11, b"rpc.PopenSession")]), "bytes"),
        # Not an executable: it cannot start, so kInitServer gets no answer.
        (popen_seq(b"\x7fELF junk"), "starting the session on"),
    ]
    for seq, want in cases:
        r = raw_session(srv.port)
        text = exception_text(init_with(r, seq))
        assert want in text, text
        assert classic_lookup(r, b"tvm.rpc.server.workpath") != 0
        r.sock.close()
    no_sanitizer_reports(srv)
