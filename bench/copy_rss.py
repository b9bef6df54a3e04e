#!/usr/bin/env python3
"""Peak memory of a session for large transfers, as a multiple of their size.

Starts `ferry server --no-fork` (the session runs in the server process, so
its VmHWM is the session's peak), then for N bytes (default 256 MiB), each
on a fresh server:

  copy_to    kDevAllocData(N), kCopyToRemote(N)          ideal: 1.0 (the tensor)
  copy_from  the same, then kCopyFromRemote(N)          ideal: 1.0
  upload     tvm.rpc.server.upload(name, N bytes)        ideal: 0 (page cache)

and prints (VmHWM after - VmRSS before the transfer) / N, the baseline being
the same process just before the transfer.  Not a pass/fail test.

  FERRY_BUILD=$PWD/build /usr/bin/python3 bench/copy_rss.py [MiB]
"""
import os
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from conftest import Daemon  # noqa: E402
from test_session_replay import decode_seq, encode_seq, open_session  # noqa: E402


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def returned(reply):
    code, body = reply
    assert code == 4, reply
    return decode_seq(body)[0]


def tensor(ptr, n):
    return (struct.pack("<QiiI", ptr, 1, 0, 1) + struct.pack("<BBH", 1, 8, 1) +
            struct.pack("<q", n) + struct.pack("<Q", 0))


def send_big(r, code, head, payload):
    r.sock.sendall(struct.pack("<Qi", 4 + len(head) + len(payload), code) + head)
    view = memoryview(payload)
    for off in range(0, len(view), 1 << 20):
        r.sock.sendall(view[off:off + (1 << 20)])


def recv_into_void(r):
    """Reads one reply, dropping its body; returns the code."""
    hdr = r.sock.recv(8, socket.MSG_WAITALL)
    (n,) = struct.unpack("<Q", hdr)
    code = struct.unpack("<i", r.sock.recv(4, socket.MSG_WAITALL))[0]
    left = n - 4
    while left:
        got = len(r.sock.recv(min(left, 1 << 20)))
        assert got
        left -= got
    return code


def alloc(r, n):
    r.send(13, encode_seq([(6, struct.pack("<ii", 1, 0)), (0, n), (0, 64),
                           (5, struct.pack("<BBHi", 1, 8, 1, 0))]))
    (_, ptr), = returned(r.recv())
    return ptr


def measure(kind, n, payload):
    server = Daemon(["server", "--host", "127.0.0.1", "--port", "0", "--no-fork"])
    try:
        r = open_session(server.port)
        pid = server.proc.pid
        if kind == "upload":
            r.send(9, encode_seq([(11, b"tvm.rpc.server.upload")]))
            (_, fn), = returned(r.recv())
            before = status(pid, "VmRSS")
            head = struct.pack("<Q", fn) + struct.pack("<iii", 2, 11, 12)
            head += struct.pack("<Q", 7) + b"big.bin" + struct.pack("<Q", n)
            send_big(r, 3, head, payload)
            assert recv_into_void(r) == 4
        else:
            ptr = alloc(r, n)
            if kind == "copy_from":
                send_big(r, 7, tensor(ptr, n) + struct.pack("<Q", n), payload)
                assert recv_into_void(r) == 4
            before = status(pid, "VmRSS")
            if kind == "copy_to":
                send_big(r, 7, tensor(ptr, n) + struct.pack("<Q", n), payload)
                assert recv_into_void(r) == 4
            else:
                r.send(6, tensor(ptr, n) + struct.pack("<Q", n))
                assert recv_into_void(r) == 8
        peak = status(pid, "VmHWM")
        r.sock.close()
        return before, peak
    finally:
        server.stop()


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    n = mib << 20
    payload = bytes(range(256)) * (n // 256)
    print("transfer of %d MiB; peak session memory over the transfer, / size:" % mib,
          flush=True)
    for kind in ("copy_to", "copy_from", "upload"):
        before, peak = measure(kind, n, payload)
        print("  %-10s before %7.1f MiB  peak %7.1f MiB  (peak - before) / size = %.2f"
              % (kind, before / 2**20, peak / 2**20, (peak - before) / n))


if __name__ == "__main__":
    main()
