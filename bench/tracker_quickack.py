"""ms per SUMMARY for a TVM-style client (length and body in two send()
calls, Nagle on) against a ferry tracker: a quick check of the tracker's
quick ACK, not part of make bench.  Usage:
  /usr/bin/python3 bench/tracker_quickack.py build/ferry"""
import json, re, socket, struct, subprocess, sys, time
p = subprocess.Popen([sys.argv[1], "tracker", "--port", "0", "--silent"],
                     stderr=subprocess.PIPE, text=True)
port = int(re.search(r":(\d+)$", p.stderr.readline().strip()).group(1))
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
def recv_exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b)); assert c; b += c
    return b
s.sendall(struct.pack("<i", 0x2F271)); recv_exact(4)
body = json.dumps([6]).encode()
def one():
    s.send(struct.pack("<i", len(body))); s.send(body)
    n = struct.unpack("<i", recv_exact(4))[0]; recv_exact(n)
one()
N = 50
t = time.perf_counter()
for _ in range(N):
    one()
dt = time.perf_counter() - t
print("%.2f ms per SUMMARY over %d (TVM-style client: length and body in two writes, Nagle on)" % (dt / N * 1000, N))
s.close(); p.terminate(); p.wait()
