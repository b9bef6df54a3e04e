"""Quick ACK on every proxy connection (issue 10, item 13).

TVM's client writes each message's length and body in two writes without
TCP_NODELAY: the body waits (Nagle) for the ACK of the length, and with
the receiver's delayed ACK that costs ~40 ms a message.  The proxy sets
TCP_QUICKACK after every read, on both legs and during the handshake.
No timing here (see bench/bench_proxy for the latency): the test watches
the proxy's system calls with strace and checks that each connection gets
TCP_QUICKACK after its reads.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading

import pytest

from conftest import FERRY, LISTEN_RE, RPC_MAGIC, recv_exact

CODE_SUCCESS = 0xFF271


def split_dial(port, key):
    """A peer as TVM's: no TCP_NODELAY, length and body written apart."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    k = key.encode()
    s.sendall(struct.pack("<i", RPC_MAGIC))
    s.sendall(struct.pack("<i", len(k)))
    s.sendall(k)
    return s


@pytest.mark.parametrize("relay", ["portable", "splice"])
def test_quickack_after_reads_on_both_legs(tmp_path, relay):
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace not installed")
    trace = tmp_path / "trace"
    proc = subprocess.Popen(
        [strace, "-f", "-qq", "-e", "trace=setsockopt,accept4,accept,fcntl", "-o", str(trace),
         FERRY, "proxy", "--port", "0"] + (["--splice"] if relay == "splice" else []),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = []
    port = None
    try:
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            m = LISTEN_RE.search(line)
            if m:
                port = int(m.group(2))
                break
        assert port, "".join(lines)
        threading.Thread(target=lambda: [lines.append(l.decode("utf-8", "replace"))
                                         for l in iter(proc.stderr.readline, b"")],
                         daemon=True).start()
        srv = split_dial(port, "server:Q")
        cli = split_dial(port, "client:Q")
        for s in (srv, cli):
            code = struct.unpack("<i", recv_exact(s, 4))[0]
            assert code == CODE_SUCCESS
            n = struct.unpack("<i", recv_exact(s, 4))[0]
            recv_exact(s, n)
        for _ in range(3):  # messages each way, length and body apart
            for a, b in ((cli, srv), (srv, cli)):
                a.sendall(struct.pack("<q", 5))
                a.sendall(b"hello")
                assert recv_exact(b, 13) == struct.pack("<q", 5) + b"hello"
        srv.close()
        cli.close()
    finally:
        # SIGTERM to the proxy itself (strace does not pass it on).
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            for child in f.read().split():
                os.kill(int(child), signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = trace.read_text()
    accepted = set(int(m.group(1)) for m in
                   re.finditer(r"accept4?\(.*\)\s*=\s*(\d+)", text))
    # The splice relay polls a dup of each socket: count it as the socket.
    alias = dict((int(m.group(2)), int(m.group(1))) for m in
                 re.finditer(r"fcntl\((\d+), F_DUPFD_CLOEXEC, 0\)\s*=\s*(\d+)", text))
    acked = {}
    for m in re.finditer(r"setsockopt\((\d+), SOL_TCP, TCP_QUICKACK, \[1\], 4\)\s*=\s*0", text):
        fd = alias.get(int(m.group(1)), int(m.group(1)))
        acked[fd] = acked.get(fd, 0) + 1
    assert len(accepted) >= 2, text[-2000:]
    # Both legs: the handshake (three reads at most) and three messages.
    for fd in accepted:
        assert acked.get(fd, 0) >= 2, "fd %d: %r\n%s" % (fd, acked, text[-3000:])
