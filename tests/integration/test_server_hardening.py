"""ferry server against careless or hostile peers (issue 10): --allow, a
session whose client left while its code loops, the work-folder quota.

Sessions are driven by the raw-socket client of test_session_replay_ffi
(the tvm-ffi dialect, as TVM >= 0.21 speaks it).
"""
import os
import socket
import struct
import time

import pytest

from conftest import BUILD, RPC_MAGIC, is_closed, recv_exact
from test_server import (CODE_SUCCESS, children, handshake, session_dirs,
                         start_server, wait_until)
import test_session_replay_ffi as ffi


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path / "work")


# ---- --allow ----------------------------------------------------------------

def connect_from(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def test_allow_refuses_other_addresses_at_accept(spawn, workdir):
    srv = start_server(spawn, workdir, "--allow", "127.0.0.1/32")
    srv.wait_for(r"accepting clients from 127\.0\.0\.1/32 only")
    s = connect_from(srv.port, "127.0.0.2")
    k = b"client:cpu"
    try:
        s.sendall(struct.pack("<ii", RPC_MAGIC, len(k)) + k)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert is_closed(s)
    srv.wait_for(r"connection from 127\.0\.0\.2:\d+ refused: not in --allow")
    assert not session_dirs(workdir)
    # From 127.0.0.1 the same handshake is served.
    s, code, skey = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS and skey == "server:cpu"
    s.close()
    srv.wait_for(r"session 1 from 127\.0\.0\.1:\d+ ended")
    ffi.no_sanitizer_reports(srv)


def test_refused_connections_do_not_flood_the_log(spawn, workdir):
    srv = start_server(spawn, workdir, "--allow", "127.0.0.1")
    for _ in range(200):
        s = connect_from(srv.port, "127.0.0.2")
        assert is_closed(s)
        s.close()
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS
    s.close()
    srv.wait_for(r"session 1 from 127\.0\.0\.1:\d+ ended")
    refused = [line for line in srv.lines if "not in --allow" in line]
    assert 1 <= len(refused) < 50, len(refused)


def test_allow_list_errors_are_usage_errors():
    from conftest import run_ferry
    r = run_ferry("server", "--port", "0", "--allow", "10.0.0.1/8")
    assert r.returncode == 2 and "host bits" in r.stderr
    r = run_ferry("server", "--port", "0", "--allow", "nonsense")
    assert r.returncode == 2 and "nonsense" in r.stderr


# ---- a session whose client left while its code is stuck ---------------------

CTOR_LOOP = os.path.join(BUILD, "tests", "models", "ctor_loop.so")


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.exists(CTOR_LOOP), reason="needs ctor_loop.so")
def test_client_leaving_ends_a_stuck_session(spawn, workdir):
    """load_module of a library whose constructor never returns, then the
    client closes: without a session timeout, the session child must still
    be killed and the server must serve the next client."""
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--work-dir", workdir)
    r = ffi.open_session(srv.port)
    with open(CTOR_LOOP, "rb") as f:
        ffi.call_global(r, "tvm.rpc.server.upload",
                        [(8, b"ctor_loop.so"), (66, (66, f.read()))])
    h = ffi.lookup(r, b"tvm.rpc.server.load_module")
    r.send(3, struct.pack("<Q", h) + ffi.encode_seq([(8, b"ctor_loop.so")]))
    kids = wait_until(lambda: children(srv.proc.pid))
    assert len(kids) == 1
    kid = kids[0]
    # The child is stuck in dlopen: no reply comes.
    r.sock.settimeout(1.0)
    with pytest.raises(socket.timeout):
        r.sock.recv(1)
    assert alive(kid)
    r.sock.close()
    srv.wait_for(r"session 1: client 127\.0\.0\.1:\d+ hung up")
    srv.wait_for(r"session 1 from \S+ ended: client gone", timeout=10)
    assert wait_until(lambda: not alive(kid), timeout=5)
    assert wait_until(lambda: not session_dirs(workdir))
    # The device is free again: a new session is served at once.
    r2 = ffi.open_session(srv.port)
    assert ffi.lookup(r2, b"tvm.rpc.server.workpath") != 0
    r2.sock.close()
    srv.wait_for(r"session 2 from \S+ ended: ok")
    ffi.no_sanitizer_reports(srv)


def test_client_that_closes_normally_is_not_killed(spawn, workdir):
    """The hang-up watch must not turn an ordinary end into a kill."""
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--work-dir", workdir)
    for i in (1, 2):
        r = ffi.open_session(srv.port)
        assert ffi.lookup(r, b"tvm.rpc.server.workpath") != 0
        r.send(1, b"")  # kShutdown
        r.sock.close()
        srv.wait_for(r"session %d from \S+ ended: ok" % i)
    assert "killing it" not in srv.log()


# ---- the work-folder quota ---------------------------------------------------

def session_files(workdir):
    out = []
    for d in session_dirs(workdir):
        for root, dirs, files in os.walk(os.path.join(workdir, d)):
            out += [os.path.join(root, f) for f in files]
    return out


def upload(r, name, data):
    h = ffi.lookup(r, b"tvm.rpc.server.upload")
    r.send(3, struct.pack("<Q", h) + ffi.encode_seq([(8, name), (66, (66, data))]))
    return r.recv()


def test_upload_over_the_quota_is_refused_and_the_session_goes_on(spawn, workdir):
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--work-dir", workdir,
                "--work-quota", "1M")
    r = ffi.open_session(srv.port)
    # Under the quota: written.
    assert upload(r, b"a.bin", b"a" * (512 << 10))[0] == 4
    assert [os.path.basename(f) for f in session_files(workdir)] == ["a.bin"]
    # Together with a.bin past 1 MiB: refused, with the quota in the message,
    # and nothing of it on disk.
    text = ffi.exception_text(upload(r, b"b.bin", b"b" * (600 << 10)))
    assert "quota of 1048576 bytes" in text and "--work-quota" in text, text
    assert "b.bin" in text
    assert [os.path.basename(f) for f in session_files(workdir)] == ["a.bin"]
    # One file alone past the quota: refused too.
    text = ffi.exception_text(upload(r, b"big.bin", b"c" * (2 << 20)))
    assert "quota" in text
    # Replacing a.bin gives its room back; the session still works.
    assert upload(r, b"a.bin", b"d" * (900 << 10))[0] == 4
    assert os.path.getsize(session_files(workdir)[0]) == 900 << 10
    h = ffi.lookup(r, b"tvm.rpc.server.remove")
    r.send(3, struct.pack("<Q", h) + ffi.encode_seq([(8, b"a.bin")]))
    assert r.recv()[0] == 4
    assert upload(r, b"b.bin", b"b" * (600 << 10))[0] == 4
    r.send(1, b"")
    r.sock.close()
    srv.wait_for(r"session 1 from \S+ ended: ok")
    ffi.no_sanitizer_reports(srv)


def test_many_empty_files_count_against_the_quota(spawn, workdir):
    """Empty files are charged a block each: inodes are not free."""
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--work-dir", workdir,
                "--work-quota", "64K")
    r = ffi.open_session(srv.port)
    for i in range(16):
        assert upload(r, b"e%d" % i, b"")[0] == 4
    assert "quota of 65536 bytes" in ffi.exception_text(upload(r, b"e16", b""))
    r.sock.close()


def test_work_quota_option_errors():
    from conftest import run_ferry
    for bad in ("-1", "5X", "1KK", ""):
        r = run_ferry("server", "--port", "0", "--work-quota", bad)
        assert r.returncode == 2 and "--work-quota" in r.stderr, (bad, r.stderr)


@pytest.mark.skipif(not os.path.exists(CTOR_LOOP), reason="needs ctor_loop.so")
def test_stuck_session_of_a_gone_client_is_offered_again_by_the_tracker(spawn, tmp_path):
    import test_server_tracker as tt
    tracker = spawn("tracker", "--host", "127.0.0.1", "--port", "0")
    srv = tt.start_server(spawn, tmp_path, tracker.port)
    t, (_, port, mk) = tt.request(tracker.port, "cpu")
    r = ffi.open_session(port, key=b"client:" + mk.encode())
    with open(CTOR_LOOP, "rb") as f:
        ffi.call_global(r, "tvm.rpc.server.upload",
                        [(8, b"ctor_loop.so"), (66, (66, f.read()))])
    h = ffi.lookup(r, b"tvm.rpc.server.load_module")
    r.send(3, struct.pack("<Q", h) + ffi.encode_seq([(8, b"ctor_loop.so")]))
    kid = wait_until(lambda: children(srv.proc.pid))[0]
    assert tt.free_count(tracker.port, "cpu") == 0
    r.sock.close()
    t.close()
    assert wait_until(lambda: tt.free_count(tracker.port, "cpu") == 1, 10.0), srv.log()
    assert not alive(kid)
