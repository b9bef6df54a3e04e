"""ferry query against a real ferry tracker: TVM's layout (spec §8.2-8.3)
with the address left-aligned and keys behind a proxy counted under their
own names; --json; clear failures."""
import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import FERRY, RPC_TRACKER_MAGIC, TrackerConn, run_ferry




def q(port, *extra, **kw):
    return run_ferry("query", "--host", "127.0.0.1", "--port", str(port), *extra, timeout=30, **kw)


def wait_pending(port, key, n):
    deadline = time.monotonic() + 5
    while True:
        c = TrackerConn(port)
        qi = c.call([6])[1]["queue_info"].get(key, {})
        c.close()
        if qi.get("pending") == n:
            return
        assert time.monotonic() < deadline
        time.sleep(0.02)


def farm(port):
    """Spec §8.3's scenario: a direct server `cpu` at 192.168.1.10:9090 and a
    proxy at 192.168.1.20:9090 serving K0, K1, K2."""
    cpu = TrackerConn(port)
    assert cpu.call([5, {"key": "server:cpu", "addr": ["192.168.1.10", 9090]}]) == 0
    assert cpu.call([3, "cpu", [9090, "cpu:0.1"], "192.168.1.10"]) == 0
    proxy = TrackerConn(port)
    assert proxy.call([5, {"key": "server:proxy[K0,K1,K2]", "addr": ["192.168.1.20", 9090]}]) == 0
    for k in ("K0", "K1", "K2"):
        assert proxy.call([3, k, [9090, k + ":0.5"], None]) == 0
    return cpu, proxy


HEAD = ("Tracker address 127.0.0.1:{port}\n\nServer List\n------------------------------\n"
        "server-address           key\n------------------------------\n")


def test_empty_tracker(tracker):
    trk = tracker()
    r = q(trk.port)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (HEAD.format(port=trk.port) +
                        "------------------------------\n\nQueue Status\n"
                        "---------------------------\nkey   total  free  pending\n"
                        "---------------------------\n---------------------------\n\n")


def test_example_a_busy_cpu(tracker):
    trk = tracker()
    cpu, proxy = farm(trk.port)
    user = TrackerConn(trk.port)
    assert user.call([4, "cpu", "", 1])[0] == 0  # cpu is now busy
    waiter = TrackerConn(trk.port)
    waiter.send([4, "cpu", "", 1])
    wait_pending(trk.port, "cpu", 1)
    r = q(trk.port)
    assert r.returncode == 0, r.stderr
    want = (HEAD.format(port=trk.port) +
            "192.168.1.10:9090        server:cpu\n"
            "192.168.1.20:9090        server:proxy[K0,K1,K2]\n"
            "------------------------------\n\nQueue Status\n---------------------------\n"
            "key   total  free  pending\n---------------------------\n"
            # TVM hid K0-K2 (counted under "proxy[K0,K1,K2]"); ferry shows them.
            "K0    1      1     0      \n"
            "K1    1      1     0      \n"
            "K2    1      1     0      \n"
            "cpu   1      0     1      \n"
            "---------------------------\n\n")
    assert r.stdout.splitlines() == want.splitlines()
    assert r.stdout == want


def test_example_b_busy_proxied_key_and_wide_keys(tracker):
    trk = tracker()
    cpu, proxy = farm(trk.port)
    user = TrackerConn(trk.port)
    assert user.call([4, "K1", "", 1])[1][2] == "K1:0.5"
    waiter = TrackerConn(trk.port)
    waiter.send([4, "K1", "", 1])
    wait_pending(trk.port, "K1", 1)
    # a second proxy parks two more servers under K0; a key wider than "key"
    p2 = TrackerConn(trk.port)
    assert p2.call([5, {"key": "server:proxy[K0]", "addr": [None, 9091]}]) == 0
    assert p2.call([3, "K0", [9091, "K0:a"], None]) == 0
    assert p2.call([3, "K0", [9091, "K0:b"], None]) == 0
    wide = TrackerConn(trk.port)
    assert wide.call([5, {"key": "server:rk3399-board", "addr": [None, "9092"]}]) == 0
    assert wide.call([3, "rk3399-board", [9092, "rk3399-board:1"], None]) == 0
    r = q(trk.port)
    assert r.returncode == 0, r.stderr
    sep = "-" * (12 + 23 + 1)
    want = (HEAD.format(port=trk.port) +
            "192.168.1.10:9090        server:cpu\n"
            "192.168.1.20:9090        server:proxy[K0,K1,K2]\n"
            "127.0.0.1:9091           server:proxy[K0]\n"
            "127.0.0.1:9092           server:rk3399-board\n"
            "------------------------------\n\nQueue Status\n" + sep + "\n"
            "key            total  free  pending\n" + sep + "\n"
            "K0             3      3     0      \n"  # 1 + 2 parked servers
            "K1             1      0     1      \n"
            "K2             1      1     0      \n"
            "cpu            1      1     0      \n"
            "rk3399-board   1      1     0      \n" + sep + "\n\n")
    assert r.stdout.splitlines() == want.splitlines()
    assert r.stdout == want


def test_json_and_env(tracker):
    trk = tracker()
    cpu, proxy = farm(trk.port)
    r = q(trk.port, "--json")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v[0] == 0
    assert v[1]["queue_info"]["K0"] == {"free": 1, "pending": 0}
    assert {"key": "server:cpu", "addr": ["192.168.1.10", 9090]} in v[1]["server_info"]
    r = run_ferry("query", "--json", env={"TVM_TRACKER_HOST": "127.0.0.1",
                                          "TVM_TRACKER_PORT": str(trk.port)})
    assert r.returncode == 0 and json.loads(r.stdout) == v


def test_unreachable(tracker):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = q(port)
    assert r.returncode != 0
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the tracker at 127.0.0.1:%d" % port in lines[0]


def fake_tracker(behaviour):
    """A one-shot TCP peer that misbehaves; returns its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        c, _ = srv.accept()
        try:
            behaviour(c)
        finally:
            time.sleep(0.2)
            c.close()
            srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1]


def test_garbage_answers():
    magic = struct.pack("<i", RPC_TRACKER_MAGIC)

    def wrong_magic(c):
        c.recv(4)
        c.sendall(b"HTTP")

    def not_json(c):
        c.recv(4)
        c.sendall(magic)
        c.recv(100)
        c.sendall(struct.pack("<i", 5) + b"hello")

    def bad_length(c):
        c.recv(4)
        c.sendall(magic)
        c.recv(100)
        c.sendall(struct.pack("<i", 0x7FFFFFFF))

    def wrong_shape(c):
        c.recv(4)
        c.sendall(magic)
        c.recv(100)
        c.sendall(struct.pack("<i", 1) + b"0")

    def hangs_up(c):
        c.recv(4)
        c.sendall(magic)
        c.recv(100)

    cases = [(wrong_magic, "is not an RPC tracker"), (not_json, "not valid JSON"),
             (bad_length, "over the 96 MiB limit"), (wrong_shape, "bad SUMMARY reply"),
             (hangs_up, "no reply")]
    for fn, text in cases:
        port = fake_tracker(fn)
        r = q(port)
        assert r.returncode == 1, (fn.__name__, r)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ferry query: ") and text in lines[0], \
            (fn.__name__, r.stderr)


def test_silent_tracker_times_out():
    def silent(c):
        c.recv(4)
        time.sleep(3)

    port = fake_tracker(silent)
    t0 = time.monotonic()
    r = q(port, "--timeout", "0.5")
    assert r.returncode == 1 and "timed out" in r.stderr
    assert time.monotonic() - t0 < 2.5


def test_busybox_names(tracker, tmp_path):
    for name in ("rpc_tracker", "query_rpc_tracker"):
        os.symlink(FERRY, str(tmp_path / name))
    trk = subprocess.Popen([str(tmp_path / "rpc_tracker"), "--port", "0"],
                           stderr=subprocess.PIPE, text=True)
    try:
        line = trk.stderr.readline()
        assert "listening on 127.0.0.1:" in line
        port = int(line.rsplit(":", 1)[1])
        r = subprocess.run([str(tmp_path / "query_rpc_tracker"), "--port", str(port)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.startswith("Tracker address 127.0.0.1:%d\n" % port)
    finally:
        trk.terminate()
        assert trk.wait(10) == 0


def test_device_keys_with_colons_and_no_colon(tracker):
    """TVM split "server:127.0.0.1:5555" at every ':' (counting it under
    "127.0.0.1") and crashed on a key without ':'; ferry takes everything
    after the first ':' and skips entries that name no device."""
    trk = tracker()
    a = TrackerConn(trk.port)
    assert a.call([5, {"key": "server:127.0.0.1:5555", "addr": [None, 5555]}]) == 0
    assert a.call([3, "127.0.0.1:5555", [5555, "127.0.0.1:5555:0.1"], None]) == 0
    b = TrackerConn(trk.port)
    assert b.call([5, {"key": "serverX", "addr": [None, 1]}]) == 0
    r = q(trk.port)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "127.0.0.1:5555           server:127.0.0.1:5555" in lines
    assert "127.0.0.1:1              serverX" in lines
    assert "127.0.0.1:5555   1      1     0      " in lines


def test_tracker_options(tracker):
    r = run_ferry("tracker", "--help")
    assert r.returncode == 0 and "--port-end" in r.stdout and "127.0.0.1" in r.stdout
    r = run_ferry("tracker", "--port", "70000")
    assert r.returncode == 2 and "port out of range" in r.stderr
    r = run_ferry("query", "--help")
    assert r.returncode == 0 and "--json" in r.stdout


def test_summary_past_one_mebibyte_still_shows_the_table(tracker):
    """Any peer can make the summary large through UPDATE_INFO: past the
    1 MiB of a request, `ferry query` still prints the table (long keys
    and addresses cut, not the whole table dropped) and `--json` the raw
    summary."""
    trk = tracker()
    cpu = TrackerConn(trk.port)
    assert cpu.call([5, {"key": "server:cpu", "addr": ["192.168.1.10", 9090]}]) == 0
    assert cpu.call([3, "cpu", [9090, "cpu:0.1"], "192.168.1.10"]) == 0
    long_key = "L" * 3000
    peers = []
    for i in range(24):  # ~1.4 MB of info
        p = TrackerConn(trk.port)
        assert p.call([5, {"key": "server:pad%d" % i, "addr": ["a" * 200, 9000 + i],
                           "pad": "x" * 60000}]) == 0
        peers.append(p)
    assert peers[0].call([5, {"key": "server:" + long_key, "addr": [None, 9000]}]) == 0
    assert peers[0].call([3, long_key, [9000, long_key + ":1"], None]) == 0
    raw = TrackerConn(trk.port)
    raw.send([6])
    n = struct.unpack("<i", raw.sock.recv(4, socket.MSG_WAITALL))[0]
    assert n > (1 << 20), n
    raw.close()

    r = q(trk.port)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(l.startswith("192.168.1.10") and l.endswith("server:cpu") for l in lines), r.stdout
    assert any(l.startswith("cpu ") for l in lines), r.stdout
    assert max(len(l) for l in lines) < 200, max(len(l) for l in lines)
    cut = "L" * 61 + "..."
    assert any(l.startswith(cut + " ") for l in lines), r.stdout  # the queue row
    assert any(l.endswith("server:" + "L" * 54 + "...") for l in lines), r.stdout

    r = q(trk.port, "--json")
    assert r.returncode == 0, r.stderr
    status, s = json.loads(r.stdout)
    assert status == 0
    assert any(v["key"] == "server:cpu" for v in s["server_info"])
    assert s["queue_info"][long_key]["free"] == 1
    for p in peers:
        p.close()
    cpu.close()
