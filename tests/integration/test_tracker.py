"""ferry tracker against TVM's recorded traffic, scenarios and bad input.

Every test starts a real `ferry tracker --port 0` on 127.0.0.1.
"""
import json
import os
import resource
import signal
import socket
import struct
import time

import pytest

from conftest import (GOLDEN, RPC_TRACKER_MAGIC, TrackerConn, is_closed,
                      load_link, recv_exact)

MAGIC = struct.pack("<i", RPC_TRACKER_MAGIC)




def frame(obj_or_bytes):
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    return struct.pack("<i", len(data)) + data


def recv_raw(conn):
    n = struct.unpack("<i", recv_exact(conn.sock, 4))[0]
    return recv_exact(conn.sock, n)


def timed_frames(events, direction, has_magic):
    """Re-frames one direction of a recorded connection: [(t, bytes)], each
    frame stamped with the time of the chunk that completed it."""
    buf, out, off, magic_seen = b"", [], 0, not has_magic
    for d, t, data in events:
        if d != direction:
            continue
        buf += data
        while True:
            if not magic_seen:
                if len(buf) - off < 4:
                    break
                assert buf[off:off + 4] == MAGIC
                off += 4
                magic_seen = True
                continue
            if len(buf) - off < 4:
                break
            n = struct.unpack_from("<i", buf, off)[0]
            if len(buf) - off - 4 < n:
                break
            out.append((t, buf[off + 4:off + 4 + n]))
            off += 4 + n
    return out


def normalize(reply):
    """A reply as a JSON value with the run-to-run varying orders removed:
    server_info entries and pending match keys are sets (golden README)."""
    v = json.loads(reply)
    if isinstance(v, list) and len(v) == 2 and isinstance(v[1], dict) and "server_info" in v[1]:
        v[1]["server_info"] = sorted(v[1]["server_info"], key=json.dumps)
    elif isinstance(v, list) and all(isinstance(x, str) for x in v):
        v = sorted(v)
    return v


def golden_links():
    paths = []
    for dialect in ("classic", "ffi"):
        for rel in ("tracker/tracker.jsonl", "proxy/proxy-tracker.jsonl"):
            p = os.path.join(GOLDEN, dialect, rel)
            if os.path.exists(p):
                paths.append(p)
    return paths


@pytest.mark.parametrize("path", golden_links(), ids=lambda p: os.path.relpath(p, GOLDEN))
def test_golden_replay(tracker, path):
    """Sends every recorded request in recorded order (across connections)
    and compares each reply with TVM's: byte for byte where nothing varies,
    as JSON values otherwise."""
    trk = tracker()
    conns = load_link(path)
    sched = []  # (t, conn, request bytes, expected reply bytes)
    for cid, c in conns.items():
        if not c["c2s"]:
            continue
        assert c["c2s"][:4] == MAGIC and c["s2c"][:4] == MAGIC
        reqs = timed_frames(c["events"], "c2s", True)
        reps = timed_frames(c["events"], "s2c", True)
        assert len(reqs) == len(reps), "every recorded request was answered"
        for (t, rq), (_, rp) in zip(reqs, reps):
            sched.append((t, cid, rq, rp))
    sched.sort(key=lambda x: x[0])
    live = {}
    for t, cid, rq, rp in sched:
        if cid not in live:
            live[cid] = TrackerConn(trk.port)  # asserts the magic echo
        conn = live[cid]
        conn.sock.sendall(frame(rq))
        got = recv_raw(conn)
        if got != rp:
            assert normalize(got) == normalize(rp), (rq, got, rp)
        if rp == b"0":
            assert got == b"0"  # C++/JVM parse it with stoi/parseInt
    assert len(sched) >= 4
    for c in live.values():
        c.close()


# ---- scenarios ---------------------------------------------------------------

def summary(port):
    q = TrackerConn(port)
    try:
        return q.call([6])[1]
    finally:
        q.close()


def wait_queue(port, key, free=None, pending=None, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        qi = summary(port)["queue_info"].get(key, {"free": 0, "pending": 0})
        if (free is None or qi["free"] == free) and (pending is None or qi["pending"] == pending):
            return qi
        assert time.monotonic() < deadline, (key, qi)
        time.sleep(0.02)


def register(port, key, matchkey, dport=9090, addr=None):
    s = TrackerConn(port)
    assert s.call([5, {"key": "server:" + key, "addr": [addr, dport]}]) == 0
    assert s.call([3, key, [dport, matchkey], addr]) == 0
    return s


def no_reply(conn, wait=0.3):
    conn.sock.settimeout(wait)
    try:
        conn.sock.recv(1, socket.MSG_PEEK)
    except socket.timeout:
        return True
    finally:
        conn.sock.settimeout(10)
    return False


def test_priorities_and_fifo(tracker):
    trk = tracker()
    clients = []
    for i, prio in enumerate([1, 5, 1, 5, 3]):
        c = TrackerConn(trk.port)
        c.send([4, "gpu", "", prio])
        wait_queue(trk.port, "gpu", pending=i + 1)
        clients.append(c)
    srv = TrackerConn(trk.port)
    assert srv.call([5, {"key": "server:gpu", "addr": [None, 9000]}]) == 0
    order = []
    for i in range(5):
        assert srv.call([3, "gpu", [9000, "gpu:%d" % i], None]) == 0
        for j, c in enumerate(clients):
            if j in order:
                continue
            if not no_reply(c, 0.05):
                grant = c.recv()
                assert grant == [0, ["127.0.0.1", 9000, "gpu:%d" % i]]
                order.append(j)
                break
        assert len(order) == i + 1
    # priority 5 first (FIFO among them), then 3, then the two of priority 1
    assert order == [1, 3, 4, 0, 2]
    assert srv.call([7]) == []


def test_several_servers_and_clients(tracker):
    trk = tracker()
    servers = [register(trk.port, "cpu", "cpu:%d" % i, 9100 + i) for i in range(3)]
    grants = []
    clients = []
    for i in range(5):
        c = TrackerConn(trk.port)
        c.send([4, "cpu", "", 1])
        clients.append(c)
    for c in clients[:3]:
        grants.append(c.recv()[1])
    # the oldest offer went first
    assert [g[2] for g in grants] == ["cpu:0", "cpu:1", "cpu:2"]
    assert all(g[0] == "127.0.0.1" for g in grants)
    qi = wait_queue(trk.port, "cpu", free=0, pending=2)
    for i, s in enumerate(servers):
        assert s.call([7]) == []  # handed out: gone from the pending set
    assert servers[1].call([3, "cpu", [9101, "cpu:new"], None]) == 0
    assert clients[3].recv() == [0, ["127.0.0.1", 9101, "cpu:new"]]
    assert no_reply(clients[4])
    assert "server:cpu" in [x["key"] for x in summary(trk.port)["server_info"]]
    assert len(summary(trk.port)["server_info"]) == 3
    trk.wait_for(r"grant cpu \(cpu:new, offered by 127\.0\.0\.1:\d+\) to 127\.0\.0\.1:\d+")
    trk.wait_for(r"register cpu \(cpu:0 at 127\.0\.0\.1:9100\) from 127\.0\.0\.1:\d+")
    trk.wait_for(r"request cpu priority 1 from 127\.0\.0\.1:\d+")


def test_client_disconnects_while_queued(tracker):
    trk = tracker()
    gone = TrackerConn(trk.port)
    gone.send([4, "npu", "", 9])
    wait_queue(trk.port, "npu", pending=1)
    gone.close()
    wait_queue(trk.port, "npu", pending=0)  # dropped at once (TVM kept it)
    trk.wait_for(r"drop 127\.0\.0\.1:\d+: connection closed by peer \(withdrew 0 offers, dropped 1 request\)")
    srv = register(trk.port, "npu", "npu:a")
    wait_queue(trk.port, "npu", free=1)
    assert srv.call([7]) == ["npu:a"]  # not handed to the departed client
    c = TrackerConn(trk.port)
    assert c.call([4, "npu", "", 1]) == [0, ["127.0.0.1", 9090, "npu:a"]]


def test_server_disconnects_while_offered(tracker):
    trk = tracker()
    srv = register(trk.port, "dsp", "dsp:1")
    # an odd match key (no ':' / another queue's prefix) is withdrawn too
    assert srv.call([3, "dsp", [9090, "weird"], None]) == 0
    assert srv.call([3, "dsp", [9090, "other:1"], None]) == 0
    wait_queue(trk.port, "dsp", free=3)
    srv.close()
    wait_queue(trk.port, "dsp", free=0)
    assert summary(trk.port)["server_info"] == []
    # an offer of a peer that never sent UPDATE_INFO is withdrawn as well
    anon = TrackerConn(trk.port)
    assert anon.call([3, "dsp", [9090, "dsp:2"], None]) == 0
    wait_queue(trk.port, "dsp", free=1)
    anon.close()
    wait_queue(trk.port, "dsp", free=0)
    c = TrackerConn(trk.port)
    c.send([4, "dsp", "", 1])
    assert no_reply(c)
    wait_queue(trk.port, "dsp", pending=1)


def test_values_echoed_verbatim(tracker):
    trk = tracker()
    cpp = TrackerConn(trk.port)  # TVM's C++ server sends the port as a string
    assert cpp.call([5, {"key": "server:cppcpu", "addr": [None, "19220"]}]) == 0
    assert cpp.call([3, "127.0.0.1:5555", [19220, "127.0.0.1:5555:0.1"], "10.0.0.5"]) == 0
    assert cpp.call([3, "s", ["19221", "s:a/b"]]) == 0  # 3-element form
    info = summary(trk.port)["server_info"]
    assert info == [{"key": "server:cppcpu", "addr": ["127.0.0.1", "19220"]}]
    c = TrackerConn(trk.port)
    assert c.call([4, "127.0.0.1:5555", "", 1]) == [0, ["10.0.0.5", 19220, "127.0.0.1:5555:0.1"]]
    c.send([4, "s", "", 1])
    assert recv_raw(c) == b'[0, ["127.0.0.1", "19221", "s:a/b"]]'
    # pending keys are raw text the C++ server searches: no added escapes
    assert cpp.call([3, "s", [1, "s:x/y"], None]) == 0
    cpp.send([7])
    assert recv_raw(cpp) == b'["s:x/y"]'
    assert cpp.call([1]) == 0  # PING


def test_magic_and_frame_in_one_packet(tracker):
    trk = tracker()
    s = socket.create_connection(("127.0.0.1", trk.port), timeout=10)
    s.sendall(MAGIC + frame([6]) + frame([1]))
    assert recv_exact(s, 4) == MAGIC
    n = struct.unpack("<i", recv_exact(s, 4))[0]
    assert json.loads(recv_exact(s, n))[0] == 0
    assert recv_exact(s, 5) == b"\x01\x00\x00\x000"
    # many pipelined requests in one write: all answered, in order
    s.sendall(frame([1]) * 2000)
    assert recv_exact(s, 5 * 2000) == b"\x01\x00\x00\x000" * 2000
    s.close()


def test_stop(tracker):
    trk = tracker("--stop-key", "tracker:s3cret")
    idle = TrackerConn(trk.port)
    c = TrackerConn(trk.port)
    assert c.call([2, "tracker:guess"]) == -1
    assert c.call([2, "tracker:s3cret"]) == 0
    assert trk.proc.wait(10) == 0
    assert is_closed(idle.sock)
    trk.wait_for("stopping \\(STOP request\\)")


def test_sigterm_and_sigint_stop_cleanly(tracker):
    for sig in (signal.SIGTERM, signal.SIGINT):
        trk = tracker()
        s = register(trk.port, "k", "k:1")
        c = TrackerConn(trk.port)
        c.send([4, "q", "", 1])
        wait_queue(trk.port, "q", pending=1)
        assert trk.stop(sig) == 0
        assert is_closed(s.sock)


def test_port_range_and_silent(tracker, spawn):
    trk = tracker("--silent")
    c = register(trk.port, "k", "k:1")
    # a second tracker on the same first port moves to the next free one
    busy = trk.port
    other = spawn("tracker", "--port", str(busy), "--port-end", str(busy + 20), "--silent")
    assert busy < other.port < busy + 20
    time.sleep(0.2)
    assert not any("register" in l for l in trk.lines)  # --silent: no INFO lines


# ---- bad input ---------------------------------------------------------------

def still_serves(port):
    q = TrackerConn(port)
    assert q.call([1]) == 0
    q.close()


BAD_FRAMES = [
    ("zero length", struct.pack("<i", 0), r"invalid msg_size 0"),
    ("negative length", struct.pack("<i", -5), r"invalid msg_size -5"),
    ("over 1 MiB", struct.pack("<i", (1 << 20) + 1), r"invalid msg_size 1048577"),
    ("huge length", struct.pack("<i", 0x7FFFFFFF), r"invalid msg_size 2147483647"),
    ("not JSON", frame(b"{oops"), r"malformed message: not valid JSON"),
    ("not a list", frame({"code": 6}), r"malformed message: a request must be a non-empty JSON list"),
    ("empty list", frame([]), r"non-empty JSON list"),
    ("unknown code", frame([42]), r"unknown tracker code 42"),
    ("code zero", frame([0]), r"unknown tracker code 0"),
    ("string code", frame(["3"]), r"code must be an integer"),
    ("PUT wrong types", frame([3, 7, [9090, "k:1"], None]), r"PUT needs"),
    ("PUT bad port", frame([3, "k", [[1], "k:1"], None]), r"PUT port must be"),
    ("REQUEST string priority", frame([4, "k", "", "1"]), r"REQUEST needs"),
    ("UPDATE_INFO no addr", frame([5, {"key": "server:x"}]), r"UPDATE_INFO needs"),
    ("STOP without key", frame([2]), r"STOP needs"),
    ("key over 4 KiB", frame([4, "k" * 5000, "", 1]), r"REQUEST field too long"),
]


@pytest.mark.parametrize("name,data,reason", BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_bad_frames_close_with_reason(tracker, name, data, reason):
    trk = tracker()
    good = register(trk.port, "k", "k:1")
    bad = TrackerConn(trk.port)
    bad.sock.sendall(data)
    assert is_closed(bad.sock)
    trk.wait_for(r"WARN tracker: drop 127\.0\.0\.1:\d+: .*" + reason)
    still_serves(trk.port)
    assert good.call([7]) == ["k:1"]  # the other peers are untouched


def test_wrong_magic(tracker):
    trk = tracker()
    for magic in (struct.pack("<i", 0xFF271), b"GET / HTTP/1.1\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", trk.port), timeout=10)
        s.sendall(magic)
        assert is_closed(s)  # and no echo before closing
    trk.wait_for(r"drop 127\.0\.0\.1:\d+: invalid magic 71f20f00")
    still_serves(trk.port)


def test_ten_megabyte_key(tracker):
    trk = tracker()
    s = TrackerConn(trk.port)
    body = json.dumps([3, "x" * (10 << 20), [1, "x:1"], None]).encode()
    try:
        s.sock.sendall(frame(body))
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert is_closed(s.sock)
    trk.wait_for(r"invalid msg_size %d" % len(body))
    still_serves(trk.port)


def test_half_frame_then_stall(tracker):
    trk = tracker("--frame-timeout", "1")
    s = TrackerConn(trk.port)
    s.sock.sendall(struct.pack("<i", 100) + b"[3, \"k\"")
    half_magic = socket.create_connection(("127.0.0.1", trk.port), timeout=10)
    half_magic.sendall(MAGIC[:2])
    idle = socket.create_connection(("127.0.0.1", trk.port), timeout=10)
    still_serves(trk.port)  # served while the staller waits
    assert is_closed(s.sock, timeout=5)
    assert is_closed(half_magic, timeout=5)
    trk.wait_for(r"incomplete frame for 1000 ms")
    trk.wait_for(r"incomplete magic for 1000 ms")
    assert not is_closed(idle, timeout=0.5)  # idle peers are just held


def test_slow_but_steady_stream_is_not_dropped(tracker):
    """The frame deadline is per frame: a peer whose every write ends inside
    a frame, but which keeps completing frames, is not cut off."""
    trk = tracker("--frame-timeout", "1")
    s = TrackerConn(trk.port)
    n = 50
    stream = frame(b"[1]") * n  # 7 bytes each
    # every write ends one byte into the next frame: input is always left
    # over, yet a frame completes with every write
    cuts = [0, 8] + list(range(15, len(stream), 7)) + [len(stream)]
    t0 = time.monotonic()
    for a, b in zip(cuts, cuts[1:]):
        s.sock.sendall(stream[a:b])
        time.sleep(0.05)
    assert time.monotonic() - t0 > 2
    assert recv_exact(s.sock, 5 * n) == b"\x01\x00\x00\x000" * n
    assert not any("incomplete" in l for l in trk.lines)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_thousands_of_idle_connections(tracker):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 4400:
        pytest.skip("needs ~4400 file descriptors")
    trk = tracker("--silent")
    still_serves(trk.port)
    before = rss_kib(trk.proc.pid)
    idle = []
    try:
        for i in range(2000):
            s = socket.create_connection(("127.0.0.1", trk.port), timeout=10)
            if i % 2:
                s.sendall(MAGIC)  # half of them finished the handshake
            idle.append(s)
        srv = register(trk.port, "k", "k:0")
        c = TrackerConn(trk.port)
        for i in range(50):  # others are served meanwhile
            assert c.call([4, "k", "", 1])[1][2] == "k:%d" % i
            assert srv.call([3, "k", [9090, "k:%d" % (i + 1)], None]) == 0
        after = rss_kib(trk.proc.pid)
        # ~1 KiB of state per idle peer; 2000 of them must stay far below
        # what buffering per connection would cost.
        assert after - before < 16 * 1024, (before, after)
        for s in idle[1::2]:
            assert recv_exact(s, 4) == MAGIC
        assert summary(trk.port)["queue_info"]["k"] == {"free": 1, "pending": 0}
    finally:
        for s in idle:
            s.close()


def test_partial_frames_bounded_memory(tracker):
    """Peers that each park most of a 1 MiB frame cost their bytes only,
    and the tracker keeps serving."""
    trk = tracker("--silent")
    before = rss_kib(trk.proc.pid)
    parked = []
    for i in range(20):
        s = TrackerConn(trk.port)
        s.sock.sendall(struct.pack("<i", 1 << 20) + b"[" + b" " * ((1 << 20) - 10))
        parked.append(s)
    still_serves(trk.port)
    time.sleep(0.3)
    after = rss_kib(trk.proc.pid)
    assert after - before < 80 * 1024, (before, after)
    for s in parked:  # finishing the frame: valid JSON list, unknown code
        s.sock.sendall(b"99]" + b" " * 6)  # 9 bytes complete the frame
    for s in parked:
        assert is_closed(s.sock)
    still_serves(trk.port)


def test_reader_that_never_reads_is_paused(tracker):
    """A peer that pipelines SUMMARY requests and never reads the replies:
    the tracker stops processing its requests once ~4 MiB are queued for it
    (instead of buffering every reply), keeps serving the others, and
    resumes when the peer reads."""
    trk = tracker("--silent")
    servers = []
    for i in range(100):  # a ~200 KB summary
        s = TrackerConn(trk.port)
        assert s.call([5, {"key": "server:k%d" % i, "addr": [None, 9000 + i],
                           "pad": "x" * 2000}]) == 0
        servers.append(s)
    one = len(json.dumps(summary(trk.port)))
    assert one > 150000
    before = rss_kib(trk.proc.pid)
    hog = TrackerConn(trk.port)
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    n = 300  # ~60 MB of replies if they were all buffered
    hog.sock.sendall(frame([6]) * n)
    time.sleep(1.0)
    still_serves(trk.port)
    grown = rss_kib(trk.proc.pid) - before
    assert grown < 30 * 1024, grown
    hog.sock.settimeout(30)
    for i in range(n):
        v = json.loads(recv_raw(hog))
        assert v[0] == 0 and len(v[1]["server_info"]) == 100
    still_serves(trk.port)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_accept_errors_back_off(tmp_path):
    """Out of file descriptors (EMFILE): the tracker logs, pauses accepting
    instead of spinning (TVM v0.20 spun), and accepts the waiting peers once
    descriptors are free again."""
    from conftest import FERRY
    import subprocess
    import threading
    proc = subprocess.Popen(["sh", "-c", 'ulimit -n 40 && exec "$0" tracker --port 0', FERRY],
                            stderr=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: [lines.append(l) for l in proc.stderr], daemon=True).start()
    try:
        deadline = time.monotonic() + 10
        while not any("listening on" in l for l in lines):
            assert time.monotonic() < deadline and proc.poll() is None, lines
            time.sleep(0.05)
        port = int([l for l in lines if "listening on" in l][0].rsplit(":", 1)[1])
        socks = []
        for i in range(60):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(MAGIC)
            socks.append(s)
        time.sleep(1.0)
        served, waiting = [], []
        for s in socks:
            s.settimeout(0.2)
            try:
                assert s.recv(4) == MAGIC
                served.append(s)
            except socket.timeout:
                waiting.append(s)
        assert served and waiting, (len(served), len(waiting))
        assert any("accept failed: Too many open files" in l for l in lines), lines[-5:]
        c0 = cpu_seconds(proc.pid)
        time.sleep(1.5)
        assert cpu_seconds(proc.pid) - c0 < 0.5  # backing off, not spinning
        for s in served:
            s.close()
        for s in waiting[:20]:
            s.settimeout(10)
            assert recv_exact(s, 4) == MAGIC
        for s in waiting:
            s.close()
        q = TrackerConn(port)
        assert q.call([1]) == 0
        q.close()
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
