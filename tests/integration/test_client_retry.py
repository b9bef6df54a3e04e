"""The client's retries through a tracker (issue 10, item 10): reaching a
tracker that is not up yet, and leaving a granted server that hangs in
the handshake for the next one the tracker grants.  Real ferry processes
on 127.0.0.1; the only stand-in is the hanging "server", which is the
misbehaving peer under test, not a part of ferry."""
import os
import socket
import subprocess
import threading
import time

from conftest import BUILD, FERRY, TrackerConn

TESTLIB = os.path.join(BUILD, "tests", "models", "testlib.so")
ADD = [TESTLIB, "add_i64", "--arg", "int:2", "--arg", "int:40"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_tracker_started_after_the_client(spawn):
    port = free_port()
    tr = "127.0.0.1:%d" % port
    client = subprocess.Popen([FERRY, "run", "--tracker", tr, "--key", "late", "--timeout", "30"]
                              + ADD, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # TVM's client keeps trying for 60 s; ferry's gave up after ~1 s.
    time.sleep(2)
    assert client.poll() is None, "the client gave up before the tracker came: " + \
        client.stderr.read()
    tracker = spawn("tracker", "--port", str(port))
    assert tracker.port == port
    spawn("server", "--port", "0", "--tracker", tr, "--key", "late")
    out, err = client.communicate(timeout=60)
    assert (client.returncode, out) == (0, "42\n"), err


def test_tracker_retry_is_bounded():
    port = free_port()
    t0 = time.monotonic()
    p = subprocess.run([FERRY, "run", "--tracker", "127.0.0.1:%d" % port, "--key", "k",
                        "--tracker-retry", "1"] + ADD, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1
    # One message, naming the tracker once and what to check.
    line = p.stderr.strip()
    assert "\n" not in line, p.stderr
    assert line.count("127.0.0.1:%d" % port) == 1, line
    assert "cannot connect to tracker 127.0.0.1:%d: connection refused" % port in line, line
    assert "check --tracker HOST:PORT" in line, line
    assert time.monotonic() - t0 < 30


class HangingServer:
    """Listens and accepts, and never answers the handshake."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        try:
            while True:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)  # kept open, never answered
        except OSError:
            pass

    def close(self):
        for c in self.accepted:
            c.close()
        self.sock.close()


def test_hanging_granted_server_then_the_real_one(spawn):
    tracker = spawn("tracker", "--port", "0")
    tr = "127.0.0.1:%d" % tracker.port
    fake = HangingServer()
    link = TrackerConn(tracker.port)
    try:
        # Offered first, so the tracker's FIFO grants it first.
        assert link.call([3, "hang", [fake.port, "hang:fake"], None]) == 0
        server = spawn("server", "--port", "0", "--tracker", tr, "--key", "hang")
        server.wait_for("offered at the tracker", timeout=15)
        t0 = time.monotonic()
        p = subprocess.run([FERRY, "run", "--tracker", tr, "--key", "hang", "--timeout", "20"]
                           + ADD, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
        assert (p.returncode, p.stdout) == (0, "42\n"), p.stderr
        assert fake.accepted, "the hanging server was never granted: the test proves nothing"
        assert took < 20
    finally:
        link.close()
        fake.close()
