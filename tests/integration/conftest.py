"""Shared helpers for the integration tests.

Every test starts real ferry processes on 127.0.0.1 with ephemeral ports
(--port 0; the daemon logs "listening on HOST:PORT", which we parse) and
stops them at the end.  Nothing of ferry's is mocked.
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("FERRY_BUILD", os.path.join(ROOT, "build")))
FERRY = os.path.join(BUILD, "ferry")
GOLDEN = os.path.join(ROOT, "tests", "golden")

RPC_MAGIC = 0xFF271
RPC_TRACKER_MAGIC = 0x2F271
LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")


class Daemon:
    """A ferry subprocess whose stderr is collected line by line."""

    def __init__(self, args, wait_listen=True, env=None, timeout=10.0):
        self.args = [FERRY] + list(args)
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=e)
        self.lines = []
        self.stdout_lines = []
        self._cv = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.port = None
        if wait_listen:
            m = self.wait_for(LISTEN_RE, timeout)
            self.port = int(m.group(2))

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self._cv:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_for(self, pattern, timeout=10.0, start=0):
        """Waits for a stderr line matching pattern (regex or str) at index
        >= start; returns the match.  Fails the test on timeout or exit."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and
                                 not any(t.is_alive() for t in self._threads)):
                    raise AssertionError(
                        "no line matching %r from %s; log:\n%s"
                        % (rx.pattern, " ".join(self.args), "\n".join(self.lines[-40:])))
                self._cv.wait(min(left, 0.1))

    def log(self):
        with self._cv:
            return "\n".join(self.lines)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(2)
        return self.proc.returncode


@pytest.fixture
def spawn():
    """spawn(args...) -> Daemon; every daemon is stopped after the test."""
    started = []

    def _spawn(*args, **kw):
        d = Daemon(args, **kw)
        started.append(d)
        return d

    yield _spawn
    for d in reversed(started):
        d.stop()


@pytest.fixture
def tracker(spawn):
    """tracker(*options) -> a running `ferry tracker --port 0`.  At the end
    each must stop cleanly on SIGTERM: exit status 0, which under ASan also
    means no leak and no sanitizer report.  (Test files that want a plain
    tracker object override this fixture.)"""
    started = []

    def _start(*extra):
        d = spawn("tracker", "--port", "0", *extra)
        started.append(d)
        return d

    yield _start
    for d in started:
        if d.proc.poll() is None:
            assert d.stop() == 0, d.log()[-4000:]
        assert "Sanitizer" not in d.log(), d.log()[-4000:]


def run_ferry(*args, timeout=60, input=None, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([FERRY] + list(args), capture_output=True, text=True,
                          timeout=timeout, input=input, env=e)


# ---- byte helpers ----------------------------------------------------------

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def is_closed(sock, timeout=5.0):
    """True if the peer closes (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class TrackerConn:
    """A raw tracker link: magic exchange, then JSON frames."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(struct.pack("<i", RPC_TRACKER_MAGIC))
        magic = struct.unpack("<i", recv_exact(self.sock, 4))[0]
        assert magic == RPC_TRACKER_MAGIC

    def send(self, obj):
        data = json.dumps(obj).encode()
        self.sock.sendall(struct.pack("<i", len(data)) + data)

    def recv(self):
        n = struct.unpack("<i", recv_exact(self.sock, 4))[0]
        return json.loads(recv_exact(self.sock, n).decode())

    def call(self, obj):
        self.send(obj)
        return self.recv()

    def close(self):
        self.sock.close()


# ---- golden recordings -----------------------------------------------------

def load_link(path):
    """Reads a golden .jsonl link: {conn: {"c2s": bytes, "s2c": bytes,
    "events": [(dir, t, bytes)]}} with chunks concatenated per direction."""
    conns = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            c = conns.setdefault(rec["conn"], {"c2s": b"", "s2c": b"", "events": []})
            d = rec["dir"]
            data = bytes.fromhex(rec.get("hex", "")) if d in ("c2s", "s2c") else b""
            if d in ("c2s", "s2c"):
                c[d] += data
            c["events"].append((d, rec.get("t", 0.0), data if data else rec.get("hex", "")))
    return conns


def split_tracker_frames(data, has_magic=True):
    """Splits one direction of a tracker link into (magic, [json values])."""
    off = 0
    magic = None
    if has_magic and len(data) >= 4:
        magic = struct.unpack_from("<i", data, 0)[0]
        off = 4
    out = []
    while off + 4 <= len(data):
        n = struct.unpack_from("<i", data, off)[0]
        out.append(json.loads(data[off + 4: off + 4 + n].decode()))
        off += 4 + n
    return magic, out
