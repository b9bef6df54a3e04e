"""ferry server without a tracker: listening, handshakes, session children,
timeouts, work folders, shutdown (tracker-proxy-server.md §3.1, §3.5, §5).

A raw-socket client does the data-plane handshake; the session protocol
after it is exercised only as far as the lifecycle needs (a client that
closes, goes silent, or vanishes in the middle of a packet).
"""
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import (GOLDEN, RPC_MAGIC, Daemon, is_closed, load_link,
                      recv_exact, run_ferry)

CODE_SUCCESS = 0xFF271
CODE_MISMATCH = 0xFF273


# ---- helpers shared with test_server_*.py -----------------------------------

def handshake(port, key, host="127.0.0.1", timeout=10.0):
    """Connects and sends W(RPC_MAGIC) S(key); returns (sock, code, server_key)."""
    s = socket.create_connection((host, port), timeout=timeout)
    k = key.encode()
    s.sendall(struct.pack("<ii", RPC_MAGIC, len(k)) + k)
    code = struct.unpack("<i", recv_exact(s, 4))[0]
    server_key = None
    if code == CODE_SUCCESS:
        n = struct.unpack("<i", recv_exact(s, 4))[0]
        server_key = recv_exact(s, n).decode()
    return s, code, server_key


def timeout_packet(message, type_code=11):
    """TVM's session-timeout exception packet (spec §3.5), built here from the
    spec's layout so that the server's bytes are checked independently."""
    m = message.encode()
    body = struct.pack("<iii", 5, 1, type_code) + struct.pack("<Q", len(m)) + m
    return struct.pack("<Q", len(body)) + body


def timeout_message(shown):
    return ('RPCSessionTimeoutError: Your %ss session has expired, try to '
            'increase the "session_timeout" value.' % shown)


def read_all(sock, timeout=10.0):
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def children(pid):
    """Direct children of pid (the session processes of a server)."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except FileNotFoundError:
        pass
    return out


def wait_until(pred, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def _own_group(pid):
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def wait_child(server, timeout=5.0):
    """The session child, once it has its own process group (it is found
    by /proc right after fork, possibly before setpgid ran)."""
    kids = wait_until(lambda: [k for k in children(server.proc.pid)
                               if _own_group(k)], timeout)
    assert kids, "no session child of %d" % server.proc.pid
    return kids[0]


def session_dirs(base):
    return sorted(d for d in os.listdir(base) if d.startswith("session-"))


# ---- tests ---------------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    return str(d)


def start_server(spawn, workdir, *extra, key="cpu"):
    return spawn("server", "--host", "127.0.0.1", "--port", "0", "--key", key,
                 "--work-dir", workdir, *extra)


def test_handshake_success_and_session_child(spawn, workdir):
    srv = start_server(spawn, workdir)
    s, code, skey = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS
    assert skey == "server:cpu"
    kid = wait_child(srv)
    assert kid != srv.proc.pid
    # The child has its own process group (so a timeout kills all of it).
    assert os.getpgid(kid) == kid
    assert len(session_dirs(workdir)) == 1
    s.close()
    srv.wait_for(r"session 1 from 127\.0\.0\.1:\d+ ended: ok")
    assert wait_until(lambda: not session_dirs(workdir))
    assert wait_until(lambda: not children(srv.proc.pid))


def test_mismatch_key_answers_mismatch_and_keeps_serving(spawn, workdir):
    srv = start_server(spawn, workdir)
    s, code, _ = handshake(srv.port, "client:gpu")
    assert code == CODE_MISMATCH
    assert is_closed(s)
    # A server key, an empty key and a key without role are mismatches too.
    for bad in ("server:cpu", "client:", "cpu", "client:cpux", ""):
        s, code, _ = handshake(srv.port, bad)
        assert code == CODE_MISMATCH, bad
        assert is_closed(s)
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS
    s.close()
    srv.wait_for(r"mismatch key from 127\.0\.0\.1")


def test_options_after_the_key_are_accepted(spawn, workdir):
    srv = start_server(spawn, workdir)
    s, code, _ = handshake(srv.port, "client:cpu -timeout=10 -other=1")
    assert code == CODE_SUCCESS
    s.close()
    # An unparsable timeout is a mismatch, never a dead server (TVM C++ aborts).
    for bad in ("abc", "inf", "nan", "-1"):
        s, code, _ = handshake(srv.port, "client:cpu -timeout=" + bad)
        assert code == CODE_MISMATCH, bad
    # Huge values are capped, not overflowed into an instant timeout.
    s, code, _ = handshake(srv.port, "client:cpu -timeout=1e300")
    assert code == CODE_SUCCESS
    s.settimeout(1.0)
    with pytest.raises(socket.timeout):
        s.recv(1)
    s.close()
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS


def test_wrong_magic_is_closed_silently(spawn, workdir):
    srv = start_server(spawn, workdir)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert read_all(s) == b""
    srv.wait_for("wrong magic")
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS


@pytest.mark.parametrize("length", [-1, -(2 ** 31), 4097, 2 ** 31 - 1])
def test_bad_key_length_mismatch_without_allocation(spawn, workdir, length):
    srv = start_server(spawn, workdir)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(struct.pack("<ii", RPC_MAGIC, length))
    data = read_all(s)
    assert data == struct.pack("<i", CODE_MISMATCH)
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS


def test_silent_connection_does_not_block_others(spawn, workdir):
    srv = start_server(spawn, workdir)
    silent = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(3)]
    # Half a handshake, then nothing.
    silent[0].sendall(struct.pack("<i", RPC_MAGIC))
    t0 = time.monotonic()
    s, code, _ = handshake(srv.port, "client:cpu", timeout=5)
    assert code == CODE_SUCCESS
    assert time.monotonic() - t0 < 2.0
    for x in silent:
        x.close()


def test_more_silent_connections_than_slots(spawn, workdir):
    """40 idle connections (the server reads 16 handshakes at once): the
    oldest are dropped to make room, so a real client still gets in."""
    srv = start_server(spawn, workdir)
    silent = [socket.create_connection(("127.0.0.1", srv.port))
              for _ in range(40)]
    time.sleep(0.3)
    s, code, _ = handshake(srv.port, "client:cpu", timeout=5)
    assert code == CODE_SUCCESS
    srv.wait_for("handshakes pending: dropping the oldest")
    dropped = sum(1 for x in silent if is_closed(x, timeout=0.2))
    assert dropped >= 40 - 16
    for x in silent:
        x.close()


def test_handshake_deadline_closes_silent_clients(spawn, workdir):
    srv = start_server(spawn, workdir, "--handshake-timeout", "1")
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(struct.pack("<i", RPC_MAGIC))
    assert is_closed(s, timeout=5.0)
    srv.wait_for("no complete handshake in time")


def test_session_timeout_packet_bytes(spawn, workdir):
    srv = start_server(spawn, workdir)
    # -timeout=1 (a Python int) is shown as the float 1.0, as TVM does.
    s, code, _ = handshake(srv.port, "client:cpu -timeout=1")
    assert code == CODE_SUCCESS
    t0 = time.monotonic()
    data = read_all(s, timeout=10)
    elapsed = time.monotonic() - t0
    assert data == timeout_packet(timeout_message("1.0"))
    assert 0.8 < elapsed < 5.0
    srv.wait_for(r"session 1 from \S+ ended: timed out")
    assert wait_until(lambda: not session_dirs(workdir))
    assert wait_until(lambda: not children(srv.proc.pid))


def test_session_timeout_float_value(spawn, workdir):
    srv = start_server(spawn, workdir)
    s, code, _ = handshake(srv.port, "client:cpu -timeout=0.5")
    assert code == CODE_SUCCESS
    assert read_all(s) == timeout_packet(timeout_message("0.5"))


def test_server_side_session_limit(spawn, workdir):
    srv = start_server(spawn, workdir, "--session-timeout", "1")
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS
    assert read_all(s) == timeout_packet(timeout_message("1.0"))


def test_timeout_kills_the_whole_process_group(spawn, workdir):
    srv = start_server(spawn, workdir)
    s, code, _ = handshake(srv.port, "client:cpu -timeout=1")
    kid = wait_child(srv)
    assert os.getpgid(kid) == kid
    # A process in the session's group, as a kernel might start one.
    stray = subprocess.Popen(["sleep", "60"],
                             preexec_fn=lambda: os.setpgid(0, kid))
    data = read_all(s)
    assert data == timeout_packet(timeout_message("1.0"))
    assert stray.wait(timeout=5) < 0  # killed by a signal


def test_crashed_session_is_logged_and_cleaned(spawn, workdir):
    srv = start_server(spawn, workdir)
    s, code, _ = handshake(srv.port, "client:cpu")
    kid = wait_child(srv)
    assert len(session_dirs(workdir)) == 1
    # SIGILL rather than SIGSEGV: an ASan build turns a SEGV into exit(1).
    os.kill(kid, signal.SIGILL)
    assert is_closed(s)
    srv.wait_for(r"session 1 from \S+ ended: crashed \(killed by signal 4")
    assert wait_until(lambda: not session_dirs(workdir))
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS


def test_client_vanishing_mid_packet(spawn, workdir):
    srv = start_server(spawn, workdir)
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS
    # A packet announcing 1 MiB, then 100 bytes, then gone.
    s.sendall(struct.pack("<Q", 1 << 20) + b"\x00" * 100)
    s.close()
    srv.wait_for(r"session 1 from \S+ ended")
    assert wait_until(lambda: not session_dirs(workdir))
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS


def test_second_client_waits_for_the_running_session(spawn, workdir):
    srv = start_server(spawn, workdir)
    a, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS
    wait_child(srv)
    b = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    k = b"client:cpu"
    b.sendall(struct.pack("<ii", RPC_MAGIC, len(k)) + k)
    b.settimeout(1.0)
    with pytest.raises(socket.timeout):
        b.recv(4)
    a.close()
    b.settimeout(10)
    assert struct.unpack("<i", recv_exact(b, 4))[0] == CODE_SUCCESS
    b.close()
    srv.wait_for(r"session 2 from \S+ ended")


def test_sigterm_kills_sessions_and_removes_folders(spawn, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    srv = spawn("server", "--port", "0", "--key", "cpu", env={"TMPDIR": str(tmp)})
    s, code, _ = handshake(srv.port, "client:cpu")
    kid = wait_child(srv)
    assert len(os.listdir(str(tmp))) == 1  # ferry-server-XXXXXX
    assert srv.stop(signal.SIGTERM) == 0
    with pytest.raises(ProcessLookupError):
        os.killpg(kid, 0)
    assert os.listdir(str(tmp)) == []
    assert is_closed(s)


def test_port_range_skips_busy_ports(spawn, workdir):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    p = busy.getsockname()[1]
    srv = spawn("server", "--port", str(p), "--port-end", str(p + 20), "--key",
                "cpu", "--work-dir", workdir)
    assert p < srv.port < p + 20
    busy.close()


def test_no_free_port_is_an_error():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    p = busy.getsockname()[1]
    r = run_ferry("server", "--port", str(p), "--port-end", str(p + 1),
                  timeout=10)
    assert r.returncode == 1
    assert "ferry server:" in r.stderr


def test_option_errors():
    r = run_ferry("server", "--tracker", "127.0.0.1:9190", timeout=10)
    assert r.returncode == 2 and "--key" in r.stderr
    r = run_ferry("server", "--tracker", "nocolon", "--key", "k", timeout=10)
    assert r.returncode == 2
    r = run_ferry("server", "--key", "a b", timeout=10)
    assert r.returncode == 2
    r = run_ferry("server", "--load-library", "/nonexistent/lib.so", "--port",
                  "0", timeout=10)
    assert r.returncode == 1 and "cannot find library" in r.stderr
    r = run_ferry("server", "--load-library", "libferry-none.so", "--port",
                  "0", timeout=10)
    assert r.returncode == 1 and "libferry-none.so" in r.stderr
    notlib = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "test_server.py")
    r = run_ferry("server", "--load-library", notlib, "--port", "0", timeout=10)
    assert r.returncode == 1 and "--load-library" in r.stderr
    r = run_ferry("server", "--help", timeout=10)
    assert r.returncode == 0 and "--through-proxy" in r.stdout


def test_silent_still_prints_the_port(spawn, workdir):
    srv = start_server(spawn, workdir, "--silent")
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS
    s.close()
    time.sleep(0.3)
    assert not any(" INFO " in line for line in srv.lines)


def test_no_fork_runs_the_session_in_process(spawn, workdir):
    srv = start_server(spawn, workdir, "--no-fork")
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS
    time.sleep(0.2)
    assert children(srv.proc.pid) == []
    s.close()
    srv.wait_for(r"session 1 from \S+ ended: ok")
    assert wait_until(lambda: not session_dirs(workdir))
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS


def _golden_packets(dialect, count):
    """The first `count` session packets a TVM client sent in a recording."""
    link = load_link(os.path.join(GOLDEN, dialect, "session-files",
                                  "client-server.jsonl"))
    c2s = max(link.values(), key=lambda c: len(c["c2s"]))["c2s"]
    off = 8 + struct.unpack_from("<i", c2s, 4)[0]
    out = []
    for _ in range(count):
        n = struct.unpack_from("<Q", c2s, off)[0]
        out.append(c2s[off:off + 8 + n])
        off += 8 + n
    return out


def _read_packet(sock):
    n = struct.unpack("<Q", recv_exact(sock, 8))[0]
    return struct.pack("<Q", n) + recv_exact(sock, n)


@pytest.mark.parametrize("dialect,type_code", [("classic", 11), ("ffi", 8)])
def test_timeout_packet_in_the_session_dialect(spawn, workdir, dialect,
                                               type_code):
    """kInitServer and a GetGlobalFunc recorded from TVM's client of that
    dialect, then silence: the timeout packet carries the message with the
    string type of the dialect the session spoke (11 classic, 8 tvm-ffi)."""
    srv = start_server(spawn, workdir)
    if dialect == "ffi":
        probe = run_ferry("run", "--port", str(srv.port), "--key", "cpu",
                          "--dialect", "ffi", "--timeout", "5", "--global",
                          "runtime.GetFFIString", timeout=30)
        if "not built in" in probe.stderr:
            pytest.skip("the tvm-ffi session dialect is not built in yet")
        srv.wait_for(r"session 1 from \S+ ended")
    s, code, _ = handshake(srv.port, "client:cpu -timeout=2")
    assert code == CODE_SUCCESS
    for pkt in _golden_packets(dialect, 2):
        s.sendall(pkt)
        _read_packet(s)
    rest = read_all(s)
    assert rest == timeout_packet(timeout_message("2.0"), type_code)


def test_bytes_after_the_handshake_reach_the_session(spawn, workdir):
    """A client that sends its first packet together with the handshake:
    the parent reads exactly the handshake, the child gets the rest."""
    srv = start_server(spawn, workdir)
    init = _golden_packets("classic", 1)[0]
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    k = b"client:cpu"
    s.sendall(struct.pack("<ii", RPC_MAGIC, len(k)) + k + init)
    assert struct.unpack("<i", recv_exact(s, 4))[0] == CODE_SUCCESS
    n = struct.unpack("<i", recv_exact(s, 4))[0]
    assert recv_exact(s, n) == b"server:cpu"
    reply = _read_packet(s)
    # kInitServer is answered with a kReturn (code 4).
    assert struct.unpack_from("<i", reply, 8)[0] == 4


def test_no_descriptor_leak_over_many_sessions(spawn, workdir):
    srv = start_server(spawn, workdir)
    fds = lambda: len(os.listdir("/proc/%d/fd" % srv.proc.pid))
    s, code, _ = handshake(srv.port, "client:cpu")
    s.close()
    srv.wait_for(r"session 1 from \S+ ended")
    before = fds()
    for i in range(2, 32):
        key = "client:cpu -timeout=5" if i % 3 else "client:nope"
        s, code, _ = handshake(srv.port, key)
        if i % 5 == 0 and code == CODE_SUCCESS:
            s.sendall(struct.pack("<Q", 1 << 20) + b"x")  # vanish mid-packet
        s.close()
    s, code, _ = handshake(srv.port, "client:cpu")
    s.close()
    assert wait_until(lambda: not children(srv.proc.pid))
    assert wait_until(lambda: not session_dirs(workdir))
    assert wait_until(lambda: fds() == before), (fds(), before)


def test_nonsense_tracker_is_retried_with_backoff(spawn, workdir):
    """A peer that accepts, echoes the tracker magic and then answers
    garbage: the server keeps running and reconnects with back-off, not in
    a tight loop (spec §10.3 item 12)."""
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(16)
    lsn.settimeout(0.2)
    srv = start_server(spawn, workdir, "--tracker",
                       "127.0.0.1:%d" % lsn.getsockname()[1])
    conns = 0
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        try:
            c, _ = lsn.accept()
        except socket.timeout:
            continue
        conns += 1
        c.settimeout(5)
        try:
            recv_exact(c, 4)
            c.sendall(struct.pack("<i", 0x2F271))
            n = struct.unpack("<i", recv_exact(c, 4))[0]
            recv_exact(c, n)
            c.sendall(struct.pack("<i", 5) + b"[1,2]")
        except (ConnectionError, socket.timeout):
            pass
        c.close()
    lsn.close()
    assert 1 <= conns <= 4, conns
    assert srv.proc.poll() is None
    # Direct clients are refused meanwhile (no valid match key).
    s, code, _ = handshake(srv.port, "client:cpu")
    assert code == CODE_MISMATCH
