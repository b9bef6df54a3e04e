"""ferry server --through-proxy (tracker-proxy-server.md §3.2, §5.1.10):
registration at a proxy, the session with options relayed from the
client's key, and re-dialing forever with back-off.

Most tests play the proxy with a raw socket so that each answer
(SUCCESS, DUPLICATE, MISMATCH, a closed link) is under the test's control;
the last one pairs with a real `ferry proxy` when it is built.
"""
import socket
import struct
import time

import pytest

from conftest import RPC_MAGIC, recv_exact, run_ferry
from test_server import (CODE_SUCCESS, handshake, read_all, timeout_message,
                         timeout_packet)

CODE_DUPLICATE = 0xFF272
CODE_MISMATCH = 0xFF273


class FakeProxy:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def accept_server(self, timeout=10.0):
        """Accepts the server's dial and returns (conn, its key string)."""
        self.sock.settimeout(timeout)
        c, _ = self.sock.accept()
        c.settimeout(timeout)
        magic, n = struct.unpack("<ii", recv_exact(c, 8))
        assert magic == RPC_MAGIC
        return c, recv_exact(c, n).decode()

    def close(self):
        self.sock.close()


@pytest.fixture
def proxy():
    p = FakeProxy()
    yield p
    p.close()


def start_server(spawn, tmp_path, port, key="K0"):
    return spawn("server", "--through-proxy", "--host", "127.0.0.1", "--port",
                 str(port), "--key", key, "--work-dir", str(tmp_path / "w"),
                 wait_listen=False)


def pair(conn, client_key):
    k = client_key.encode()
    conn.sendall(struct.pack("<ii", CODE_SUCCESS, len(k)) + k)


def test_registers_and_runs_the_relayed_session(spawn, tmp_path, proxy):
    srv = start_server(spawn, tmp_path, proxy.port)
    c, key = proxy.accept_server()
    assert key == "server:K0"
    # Nothing is sent to the proxy before pairing.
    c.settimeout(0.5)
    with pytest.raises(socket.timeout):
        c.recv(1)
    # The client's options travel in the key the proxy relays.
    pair(c, "client:K0:0.123 -timeout=1")
    data = read_all(c)
    assert data == timeout_packet(timeout_message("1.0"))
    srv.wait_for(r"session 1 from proxy 127\.0\.0\.1:%d ended: timed out" % proxy.port)
    # After each session the server registers again at once.
    t0 = time.monotonic()
    c2, key = proxy.accept_server(timeout=5)
    assert key == "server:K0"
    assert time.monotonic() - t0 < 2.0


def test_redials_after_close_duplicate_and_mismatch(spawn, tmp_path, proxy):
    srv = start_server(spawn, tmp_path, proxy.port)
    c, _ = proxy.accept_server()
    c.close()
    c, _ = proxy.accept_server(timeout=10)
    c.sendall(struct.pack("<i", CODE_DUPLICATE))
    c.close()
    c, _ = proxy.accept_server(timeout=15)
    c.sendall(struct.pack("<i", CODE_MISMATCH))
    c.close()
    c, _ = proxy.accept_server(timeout=15)
    c.sendall(struct.pack("<i", 0x12345))  # not a proxy at all
    c.close()
    c, key = proxy.accept_server(timeout=20)
    assert key == "server:K0"
    assert srv.proc.poll() is None
    pair(c, "client:K0")
    c.close()  # the client vanished right after pairing
    srv.wait_for(r"session 1 from proxy \S+ ended")
    c, _ = proxy.accept_server(timeout=5)


def test_proxy_that_appears_later(spawn, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    srv = start_server(spawn, tmp_path, port)
    srv.wait_for("proxy 127.0.0.1:%d:" % port)  # refused, retrying
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.listen(4)
    s.settimeout(10)
    c, _ = s.accept()
    magic, n = struct.unpack("<ii", recv_exact(c, 8))
    assert magic == RPC_MAGIC and recv_exact(c, n) == b"server:K0"
    s.close()


def _proxy_built():
    try:
        return run_ferry("proxy", "--help", timeout=10).returncode == 0
    except Exception:
        return False


@pytest.mark.skipif(not _proxy_built(),
                    reason="`ferry proxy` is not built yet (the proxy engineer's part)")
def test_with_a_real_proxy(spawn, tmp_path):
    px = spawn("proxy", "--host", "127.0.0.1", "--port", "0", "--web-port", "0")
    srv = start_server(spawn, tmp_path, px.port)
    srv.wait_for("registered at proxy")
    deadline = time.monotonic() + 10
    while True:
        s, code, skey = handshake(px.port, "client:K0 -timeout=1")
        if code == CODE_SUCCESS or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == CODE_SUCCESS and skey == "server:K0"
    assert read_all(s) == timeout_packet(timeout_message("1.0"))
