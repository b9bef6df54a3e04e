#!/usr/bin/python3
"""Per-call latency of a ferry server for a client that writes like TVM's:
each packet's 8-byte length and its body in two send() calls, Nagle on (no
TCP_NODELAY).  Without an immediate ACK from the server, the body waits for
the server's delayed ACK of the length (~40 ms on Linux).

Not a test (it reports times); run by hand, optionally against an older
binary in the same run so the numbers are comparable:

  /usr/bin/python3 bench/quickack_latency.py build/ferry [OLD/ferry ...]

For each binary it starts `ferry server` on 127.0.0.1, does the handshake
(magic, key length and key in separate writes), kInitServer, looks up
tvm.rpc.server.workpath and calls it 50 times, and prints ms/call, plus a
raw TCP ping-pong of the same shape (two writes, Nagle on, a peer that sets
TCP_QUICKACK after every read) as the baseline of the same run.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

RPC_MAGIC = 0xFF271
CALLS = 50


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed")
        b += c
    return b


def send_split(s, body):
    # TVM's client: length, then body, two writes, Nagle on.
    s.send(struct.pack("<Q", len(body)))
    s.send(body)


def recv_packet(s):
    (n,) = struct.unpack("<Q", recv_exact(s, 8))
    return recv_exact(s, n)


def classic_str(b):
    return struct.pack("<ii", 1, 11) + struct.pack("<Q", len(b)) + b


def run_session(port):
    s = socket.create_connection(("127.0.0.1", port))
    key = b"client:"
    s.send(struct.pack("<i", RPC_MAGIC))
    s.send(struct.pack("<i", len(key)))
    s.send(key)
    code, n = struct.unpack("<ii", recv_exact(s, 8))
    assert code == RPC_MAGIC, hex(code)
    recv_exact(s, n)
    send_split(s, struct.pack("<iQ", 2, 5) + b"0.8.0" + struct.pack("<i", 0))
    recv_packet(s)
    send_split(s, struct.pack("<i", 9) + classic_str(b"tvm.rpc.server.workpath"))
    body = recv_packet(s)
    (h,) = struct.unpack_from("<Q", body, 12)
    call = struct.pack("<iQ", 3, h) + classic_str(b"x")
    t0 = time.perf_counter()
    for _ in range(CALLS):
        send_split(s, call)
        r = recv_packet(s)
        assert struct.unpack_from("<i", r)[0] == 4, r
    dt = time.perf_counter() - t0
    send_split(s, struct.pack("<i", 0))  # kShutdown
    s.close()
    return dt * 1000.0 / CALLS


def measure_server(ferry):
    p = subprocess.Popen([ferry, "server", "--host", "127.0.0.1", "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = None
    for line in p.stdout:
        m = re.search(r"listening on \S+:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    try:
        return run_session(port)
    finally:
        p.terminate()
        p.wait(10)


def measure_raw():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]

    def echo():
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        def rx(n):
            b = b""
            while len(b) < n:
                k = c.recv(n - len(b))
                if not k:
                    raise EOFError("closed")
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                b += k
            return b
        try:
            while True:
                (n,) = struct.unpack("<Q", rx(8))
                body = rx(n)
                c.sendall(struct.pack("<Q", len(body)) + body)
        except (EOFError, OSError):
            pass
        c.close()

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    s = socket.create_connection(("127.0.0.1", port))
    body = b"\0" * 40
    t0 = time.perf_counter()
    for _ in range(CALLS):
        send_split(s, body)
        recv_packet(s)
    dt = time.perf_counter() - t0
    s.close()
    ls.close()
    return dt * 1000.0 / CALLS


def main():
    binaries = sys.argv[1:] or [os.path.join("build", "ferry")]
    raw = measure_raw()
    print("raw TCP ping-pong (two writes, Nagle on, quick ACK): %.3f ms/call" % raw)
    for b in binaries:
        ms = measure_server(b)
        print("%s: %.3f ms/call over %d calls (%.1fx the raw ping-pong)"
              % (b, ms, CALLS, ms / raw))


if __name__ == "__main__":
    main()
