"""ferry tracker against peers that abuse what TVM's protocol lets anyone
do: never read their replies, exceed one peer's limits, connect from
addresses that are not allowed.

Every test starts a real `ferry tracker --port 0` on 127.0.0.1.  Waits are
bounded with generous timeouts; nothing here asserts a speed.
"""
import json
import socket
import struct
import time

import pytest

from conftest import RPC_TRACKER_MAGIC, TrackerConn, is_closed, recv_exact

MAGIC = struct.pack("<i", RPC_TRACKER_MAGIC)




def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack("<i", len(data)) + data


def summary(port, timeout=60.0):
    q = TrackerConn(port, timeout=timeout)
    try:
        return q.call([6])[1]
    finally:
        q.close()


def answered(conn, obj, timeout):
    """Sends obj and waits up to timeout for its reply; None if none came."""
    conn.send(obj)
    conn.sock.settimeout(timeout)
    try:
        return conn.recv()
    except socket.timeout:
        return None
    finally:
        conn.sock.settimeout(10)


# ---- item 1: a peer that does not read must not stall the others ----------

def test_peers_that_never_read_do_not_stall_the_tracker(tracker):
    """Peers inflate their info to make SUMMARY large, then pipeline
    SUMMARY requests and never read a reply, until all peers' queued output
    passes the tracker-wide ceiling (256 MiB).  A well-behaved client must
    still get its SUMMARY and a REQUEST granted; only the peers that do not
    read may be paused or dropped."""
    trk = tracker("--silent")
    good_server = TrackerConn(trk.port)
    assert good_server.call([5, {"key": "server:good", "addr": [None, 9090]}]) == 0
    assert good_server.call([3, "good", [9090, "good:1"], None]) == 0

    pad = "x" * 60000  # near the 64 KiB info limit of one peer
    hogs = []
    for i in range(72):
        h = TrackerConn(trk.port)
        assert h.call([5, {"key": "server:hog%d" % i, "addr": [None, 9000 + i],
                           "pad": pad}]) == 0
        hogs.append(h)
    # ~4.4 MB per summary; each hog would be sent 20 of them (~90 MB).
    # Each is paused at its own 4 MiB mark, but 72 of them together pass
    # the tracker-wide 256 MiB.
    for h in hogs:
        h.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        h.sock.sendall(frame([6]) * 20)

    client = TrackerConn(trk.port, timeout=60)  # even the magic stalled
    s = answered(client, [6], 60)
    assert s is not None, "SUMMARY not answered while peers do not read"
    assert s[0] == 0 and "good" in s[1]["queue_info"]
    grant = answered(client, [4, "good", "", 0], 60)
    assert grant is not None, "REQUEST not granted while peers do not read"
    assert grant[0] == 0 and grant[1][2] == "good:1", grant
    # The peers were dropped (or paused) for their unread output, and the
    # drop names the limit.
    trk.wait_for(r"unread output.*256 MiB", 30)
    for h in hogs:
        h.close()
    client.close()
    good_server.close()


# ---- item 4: one peer's limits refuse a request, not the peer -------------

def test_puts_past_the_offer_limit_are_refused_and_the_peer_stays(tracker):
    """A peer (a proxy with many devices behind it) PUTs 1,100 offers: the
    first 1,024 are offered, the rest answered FAIL (-1) with a log line
    naming the limit, and the connection and its offers stay."""
    trk = tracker()
    srv = TrackerConn(trk.port)
    assert srv.call([5, {"key": "server:proxy[many]", "addr": [None, 9090]}]) == 0
    batch = b"".join(frame([3, "many", [9090, "many:%d" % i], None]) for i in range(1100))
    srv.sock.sendall(batch)
    replies = [srv.recv() for _ in range(1100)]
    assert replies[:1024] == [0] * 1024
    assert replies[1024:] == [-1] * 76
    trk.wait_for(r"PUT many from .* refused: the per-peer limit of 1024 offers")
    assert srv.call([1]) == 0  # still connected
    q = summary(trk.port)
    assert q["queue_info"]["many"]["free"] == 1024
    client = TrackerConn(trk.port)
    grant = client.call([4, "many", "", 0])
    assert grant[0] == 0 and grant[1][2] == "many:0", grant
    # A grant freed one place: the next PUT is accepted again.
    assert srv.call([3, "many", [9090, "many:again"], None]) == 0
    assert srv.call([3, "many", [9090, "many:over"], None]) == -1
    client.close()
    srv.close()


def test_update_info_past_its_limit_is_refused_and_the_old_info_stays(tracker):
    trk = tracker()
    srv = TrackerConn(trk.port)
    assert srv.call([5, {"key": "server:big", "addr": [None, 9090], "pad": "a" * 1000}]) == 0
    assert srv.call([3, "big", [9090, "big:1"], None]) == 0
    # Over 64 KiB in one update, and over it by growing step by step.
    addr = [None, 9090]  # every UPDATE_INFO must carry "addr"
    assert srv.call([5, {"addr": addr, "pad": "b" * 70000}]) == -1
    assert srv.call([5, {"addr": addr, "more": "c" * 40000}]) == 0
    assert srv.call([5, {"addr": addr, "pad": "d" * 30000}]) == -1
    trk.wait_for(r"UPDATE_INFO from .* refused: .* per-peer limit of 65536 bytes")
    assert srv.call([1]) == 0
    infos = [s for s in summary(trk.port)["server_info"] if s["key"] == "server:big"]
    assert len(infos) == 1
    assert infos[0]["pad"] == "a" * 1000 and infos[0]["more"] == "c" * 40000
    assert infos[0]["addr"] == ["127.0.0.1", 9090]
    assert summary(trk.port)["queue_info"]["big"]["free"] == 1
    srv.close()


# ---- item 12: access lists -------------------------------------------------

def conn_from(port, source):
    """A raw socket to the tracker from a chosen loopback source address."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def tracker_from(port, source):
    s = conn_from(port, source)
    s.sendall(MAGIC)
    assert recv_exact(s, 4) == MAGIC
    c = TrackerConn.__new__(TrackerConn)
    c.sock = s
    return c


def test_allow_closes_other_addresses_at_accept(tracker):
    trk = tracker("--allow", "127.0.0.1/32")
    trk.wait_for(r"connections accepted only from 127\.0\.0\.1/32")
    stranger = conn_from(trk.port, "127.0.0.2")
    stranger.sendall(MAGIC)  # never answered
    assert is_closed(stranger)
    trk.wait_for(r"refused 127\.0\.0\.2:\d+: not in --allow 127\.0\.0\.1/32")
    friend = tracker_from(trk.port, "127.0.0.1")
    assert friend.call([1]) == 0
    friend.close()


def test_allow_servers_refuses_put_and_update_info_from_others(tracker):
    trk = tracker("--allow-servers", "127.0.0.1/32")
    client = tracker_from(trk.port, "127.0.0.2")
    assert client.call([5, {"key": "server:evil", "addr": ["10.6.6.6", 9090]}]) == -1
    assert client.call([3, "cpu", [9090, "cpu:evil"], "10.6.6.6"]) == -1
    trk.wait_for(r"from 127\.0\.0\.2:\d+ refused: not in --allow-servers")
    # The client stays connected and may still do what clients do.
    q = client.call([6])[1]
    assert q["server_info"] == [] and "cpu" not in q["queue_info"]
    server = tracker_from(trk.port, "127.0.0.1")
    assert server.call([5, {"key": "server:cpu", "addr": [None, 9090]}]) == 0
    assert server.call([3, "cpu", [9090, "cpu:good"], None]) == 0
    grant = client.call([4, "cpu", "", 0])
    assert grant[0] == 0 and grant[1] == ["127.0.0.1", 9090, "cpu:good"], grant
    client.close()
    server.close()


@pytest.mark.parametrize("flag", ["--allow", "--allow-servers"])
def test_bad_allow_lists_are_refused_at_start(flag):
    from conftest import run_ferry
    r = run_ferry("tracker", "--port", "0", flag, "127.0.0.1/33")
    assert r.returncode == 2 and flag in r.stderr and "127.0.0.1/33" in r.stderr, r.stderr
