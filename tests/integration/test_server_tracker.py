"""ferry server with a real `ferry tracker`: registration, match keys,
rotation, reconnects, and being back in the free list quickly after every
kind of session end (tracker-proxy-server.md §5.1.3-5.1.9, §11.1).
"""
import os
import signal
import socket
import struct
import time

import pytest

from conftest import TrackerConn, is_closed, run_ferry
from test_server import (CODE_MISMATCH, CODE_SUCCESS, handshake, read_all,
                         timeout_message, timeout_packet, wait_child,
                         wait_until)


def _tracker_built():
    try:
        r = run_ferry("tracker", "--help", timeout=10)
    except Exception:
        return False
    return r.returncode == 0


needs_tracker = pytest.mark.skipif(
    not _tracker_built(),
    reason="`ferry tracker` is not built yet (the tracker engineer's part)")
pytestmark = needs_tracker


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def summary(tport):
    t = TrackerConn(tport)
    try:
        reply = t.call([6])
    finally:
        t.close()
    assert reply[0] == 0
    return reply[1]


def free_count(tport, key):
    return summary(tport)["queue_info"].get(key, {}).get("free", 0)


def request(tport, key):
    """REQUEST through the tracker; returns (conn, [addr, port, matchkey])."""
    t = TrackerConn(tport)
    reply = t.call([4, key, "", 1])
    assert reply[0] == 0
    return t, reply[1]


@pytest.fixture
def tracker(spawn):
    return spawn("tracker", "--host", "127.0.0.1", "--port", "0")


def start_server(spawn, tmp_path, tport, *extra, key="cpu"):
    srv = spawn("server", "--port", "0", "--key", key, "--tracker",
                "127.0.0.1:%d" % tport, "--work-dir", str(tmp_path / "work"),
                *extra)
    assert wait_until(lambda: free_count(tport, key) == 1, 10.0), srv.log()
    return srv


def test_registration_visible_in_summary(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port)
    info = summary(tracker.port)
    assert info["queue_info"]["cpu"] == {"free": 1, "pending": 0}
    # ferry's servers add the devices they serve (issue 12); TVM's tracker
    # keeps the extra field, ferry's too.
    mine = [x for x in info["server_info"] if x["key"] == "server:cpu"]
    assert mine and mine[0]["addr"] == ["127.0.0.1", srv.port], info
    assert mine[0]["devices"].startswith("cpu"), mine
    srv.wait_for(r"registered at tracker 127\.0\.0\.1:%d" % tracker.port)
    q = run_ferry("query", "--host", "127.0.0.1", "--port", str(tracker.port),
                  timeout=20)
    if q.returncode == 0:  # the query tool is another engineer's part
        assert "cpu" in q.stdout


def test_request_session_then_free_again_with_new_key(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port)
    t, (addr, port, mk) = request(tracker.port, "cpu")
    assert addr == "127.0.0.1" and port == srv.port
    assert mk.startswith("cpu:") and len(mk) > len("cpu:") + 16
    assert free_count(tracker.port, "cpu") == 0
    # The device key alone is not enough once a tracker is in use.
    s0, code, _ = handshake(port, "client:cpu")
    assert code == CODE_MISMATCH
    s, code, skey = handshake(port, "client:" + mk)
    assert code == CODE_SUCCESS and skey == "server:cpu"
    wait_child(srv)
    s.close()
    t0 = time.monotonic()
    assert wait_until(lambda: free_count(tracker.port, "cpu") == 1, 2.0)
    took = time.monotonic() - t0
    t2, (_, _, mk2) = request(tracker.port, "cpu")
    assert mk2 != mk
    # A spent key is refused.
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_MISMATCH
    s, code, _ = handshake(port, "client:" + mk2)
    assert code == CODE_SUCCESS
    print("back in the free list after %.3f s" % took)


def test_mismatch_does_not_disturb_registration(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port)
    for bad in ("client:cpu:0.123", "client:gpu", "server:cpu"):
        s, code, _ = handshake(srv.port, bad)
        assert code == CODE_MISMATCH
        assert is_closed(s)
    garbage = socket.create_connection(("127.0.0.1", srv.port))
    garbage.sendall(b"\xff" * 64)
    assert is_closed(garbage)
    info = summary(tracker.port)
    assert info["queue_info"]["cpu"]["free"] == 1
    assert any(x["key"] == "server:cpu" for x in info["server_info"])
    t, (_, port, mk) = request(tracker.port, "cpu")
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_SUCCESS


def test_tracker_started_after_the_server(spawn, tmp_path):
    tport = free_port()
    srv = spawn("server", "--port", "0", "--key", "late", "--tracker",
                "127.0.0.1:%d" % tport, "--work-dir", str(tmp_path / "w"))
    srv.wait_for("cannot register at tracker")
    # The server serves nobody meanwhile, but stays alive.
    time.sleep(0.5)
    assert srv.proc.poll() is None
    spawn("tracker", "--host", "127.0.0.1", "--port", str(tport))
    assert wait_until(lambda: free_count(tport, "late") == 1, 10.0), srv.log()


def test_tracker_restart_reregisters(spawn, tmp_path):
    tport = free_port()
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", str(tport))
    srv = start_server(spawn, tmp_path, tport, key="rs")
    tr.stop()
    srv.wait_for("lost the tracker")
    spawn("tracker", "--host", "127.0.0.1", "--port", str(tport))
    assert wait_until(lambda: free_count(tport, "rs") == 1, 10.0), srv.log()
    t, (_, port, mk) = request(tport, "rs")
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_SUCCESS


def test_free_within_2s_after_crash(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port)
    t, (_, port, mk) = request(tracker.port, "cpu")
    s, code, _ = handshake(port, "client:" + mk)
    kid = wait_child(srv)
    t0 = time.monotonic()
    os.kill(kid, signal.SIGSEGV)
    assert wait_until(lambda: free_count(tracker.port, "cpu") == 1, 2.0), srv.log()
    print("re-registered %.3f s after the crash" % (time.monotonic() - t0))
    # (an ASan build reports the SEGV and exits 1 instead)
    srv.wait_for(r"session 1 from \S+ ended: (crashed|failed)")
    t2, (_, _, mk2) = request(tracker.port, "cpu")
    assert mk2 != mk


def test_free_within_2s_after_session_timeout(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port)
    t, (_, port, mk) = request(tracker.port, "cpu")
    s, code, _ = handshake(port, "client:%s -timeout=1" % mk)
    assert code == CODE_SUCCESS
    data = read_all(s)
    t0 = time.monotonic()
    assert data == timeout_packet(timeout_message("1.0"))
    assert wait_until(lambda: free_count(tracker.port, "cpu") == 1, 2.0), srv.log()
    print("re-registered %.3f s after the timeout" % (time.monotonic() - t0))


def test_free_within_2s_after_client_vanishes_mid_copy(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port)
    t, (_, port, mk) = request(tracker.port, "cpu")
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_SUCCESS
    wait_child(srv)
    s.sendall(struct.pack("<Q", 1 << 20) + b"\x00" * 1000)
    s.close()
    t0 = time.monotonic()
    assert wait_until(lambda: free_count(tracker.port, "cpu") == 1, 2.0), srv.log()
    print("re-registered %.3f s after the client left" % (time.monotonic() - t0))


def test_unused_key_is_rotated(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port)
    t, (_, port, mk) = request(tracker.port, "cpu")
    assert free_count(tracker.port, "cpu") == 0
    # Nobody connects: after 4 idle polls (~8-10 s) a new key is offered.
    assert wait_until(lambda: free_count(tracker.port, "cpu") == 1, 16.0), srv.log()
    srv.wait_for("offering a new key")
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_MISMATCH


def test_custom_addr_is_advertised(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port, "--custom-addr",
                       "10.1.2.3")
    info = summary(tracker.port)
    assert ["10.1.2.3", srv.port] in [x["addr"] for x in info["server_info"]
                                      if x["key"] == "server:cpu"], info
    t, (addr, port, mk) = request(tracker.port, "cpu")
    assert addr == "10.1.2.3" and port == srv.port


def test_sigterm_withdraws_the_offer(spawn, tmp_path, tracker):
    srv = start_server(spawn, tmp_path, tracker.port)
    assert srv.stop(signal.SIGTERM) == 0
    assert wait_until(lambda: free_count(tracker.port, "cpu") == 0, 5.0)
