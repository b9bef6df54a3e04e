"""ferry proxy under hostile load: what one peer may hold, and what it
cannot take from the others (docs/security.md, Proxy).

- A flood of servers parked at a proxy that is offered at a tracker does
  not hide the devices behind it: the proxy keeps within the tracker's
  per-peer limits itself (1024 offers, 64 KiB info), so the link is never
  dropped, and the device parked first stays offered.
- One address can hold at most --max-per-address unpaired connections;
  another address still pairs.
- Stalled pairs hold at most --max-buffer bytes of relay memory in all.
- --allow closes connections from other addresses at accept.

Other source addresses are 127.0.0.2 and up (all of 127.0.0.0/8 is
loopback on Linux): a client socket bound to ("127.0.0.2", 0) before it
connects.
"""
import os
import re
import socket
import struct
import time

import pytest

from conftest import BUILD, RPC_MAGIC, TrackerConn, recv_exact, run_ferry
from test_proxy import (CODE_SUCCESS, STARTED, is_closed, proxies_exit_cleanly,
                        read_reply, rtracker, start_proxy, tracker_built, vm_kib)

assert proxies_exit_cleanly and rtracker  # fixtures: exit checks, recording tracker

ASAN = "asan" in os.path.basename(BUILD)


def dial_from(src, port, key, timeout=10.0):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    k = key.encode()
    s.sendall(struct.pack("<ii", RPC_MAGIC, len(k)) + k)
    return s


def through_proxy(spawn, port, key, tmp_path):
    return spawn("server", "--through-proxy", "--host", "127.0.0.1", "--port", str(port),
                 "--key", key, "--work-dir", str(tmp_path / ("w-" + key)), wait_listen=False)


def free_of(tr_port, key):
    q = TrackerConn(tr_port)
    try:
        return q.call([6])[1]["queue_info"].get(key, {}).get("free", 0)
    finally:
        q.close()


def sessions_keep_working(tr_port, key, tmp_path, seconds=4.0):
    """Sessions on `key`, got from the tracker, back to back for `seconds`:
    every one must work."""
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline or n < 2:
        r = run_ferry("ls", "--tracker", "127.0.0.1:%d" % tr_port, "--key", key,
                      "--timeout", "20", timeout=60)
        assert r.returncode == 0, "session %d on %s: %s" % (n, key, r.stderr)
        n += 1
    return n


# ---- item 4: a flood of parked servers behind a tracker-registered proxy --------

def flood_and_check(spawn, tmp_path, keys):
    if not tracker_built():
        pytest.skip("ferry tracker not built")
    tr = spawn("tracker", "--port", "0")
    px = start_proxy(spawn, "--tracker", "127.0.0.1:%d" % tr.port,
                     "--max-per-address", "4096")
    through_proxy(spawn, px.port, "REAL", tmp_path)
    px.wait_for(r"offering REAL:")
    deadline = time.monotonic() + 20
    while free_of(tr.port, "REAL") != 1:
        assert time.monotonic() < deadline, "REAL never offered"
        time.sleep(0.1)
    fakes = [dial_from("127.0.0.1", px.port, "server:" + k) for k in keys]
    px.wait_for(r"\[server:%s[^\]]*\] waits" % re.escape(keys[-1][:30]), timeout=60)
    n = sessions_keep_working(tr.port, "REAL", tmp_path)
    log = px.log()
    assert "lost tracker connection" not in log, log[-3000:]
    assert "refused" not in tr.log(), tr.log()[-3000:]
    px.wait_for(r"not offered at the tracker yet: .*(FERRY_PAIRING_MAX_\w+)")
    # The fakes are still parked (nothing closed them).
    assert not is_closed(fakes[0], timeout=0.2)
    for f in fakes:
        f.close()
    return n, px


def test_flood_of_parked_servers_does_not_hide_the_real_device(spawn, tmp_path):
    """1,100 servers with distinct keys park after the real one: past 1024
    offers (the tracker's per-peer limit) the rest wait, the link stays,
    and the real device is offered after each of its sessions."""
    n, px = flood_and_check(spawn, tmp_path, ["FAKE%d" % i for i in range(1100)])
    assert "FERRY_PAIRING_MAX_OFFERS" in px.log() or "FERRY_PAIRING_MAX_KEYSET" in px.log()


def test_long_device_keys_keep_the_info_key_under_its_limit(spawn, tmp_path):
    """Device keys of 3,000 quotes each (6,000 bytes once JSON-escaped in
    the tracker's info object): past 64 KiB of server:proxy[...] the proxy
    holds the servers back instead of sending an info object the tracker
    refuses."""
    keys = ["L%02d" % i + '"' * 3000 for i in range(40)]
    n, px = flood_and_check(spawn, tmp_path, keys)
    assert "FERRY_PAIRING_MAX_INFO_KEY" in px.log()


def test_fail_answers_keep_the_link(spawn, rtracker):
    """A tracker that answers FAIL (-1) to a PUT and to an UPDATE_INFO, as
    ferry's does past its limits: the link stays, the refused server is
    offered again after a pause, and the other offers stand."""
    rtracker.refuse = {3: 1, 5: 1}
    px = start_proxy(spawn, "--tracker", "127.0.0.1:%d" % rtracker.port)
    a = dial_from("127.0.0.1", px.port, "server:A")
    rtracker.wait(lambda: len(rtracker.puts("A")) == 2, timeout=15)
    px.wait_for(r"the tracker refused the offer of A:\S+ \(FAIL")
    px.wait_for(r"the tracker refused UPDATE_INFO")
    b = dial_from("127.0.0.1", px.port, "server:B")
    rtracker.wait(lambda: len(rtracker.puts("B")) == 1)
    # A new key set after B: the UPDATE_INFO goes again, and is taken.
    rtracker.wait(lambda: any(m[0] == 5 and "B" in m[1]["key"] for _, m in rtracker.frames))
    assert rtracker.connections == 1
    assert "lost tracker connection" not in px.log()
    mk = rtracker.hand_out("A")
    cli = dial_from("127.0.0.1", px.port, "client:" + mk)
    assert read_reply(cli) == (CODE_SUCCESS, "server:A")
    for s in (a, b, cli):
        s.close()


# ---- item 9: what one address may hold, and relay memory in all -----------------

def test_one_address_past_its_limit_is_refused_another_still_pairs(spawn):
    px = start_proxy(spawn, "--max-per-address", "4", "--handshake-timeout", "10")
    parked = [dial_from("127.0.0.1", px.port, "server:P%d" % i) for i in range(4)]
    for i in range(4):
        px.wait_for(r"server:P%d\] waits" % i)
    extra = dial_from("127.0.0.1", px.port, "server:P4")
    assert is_closed(extra)
    px.wait_for(r"refused: 4 connections from 127\.0\.0\.1 wait or handshake already "
                r"\(--max-per-address 4\)")
    # A second address pairs as usual.
    srv = dial_from("127.0.0.2", px.port, "server:Q")
    cli = dial_from("127.0.0.2", px.port, "client:Q")
    assert read_reply(srv) == (CODE_SUCCESS, "client:Q")
    assert read_reply(cli) == (CODE_SUCCESS, "server:Q")
    srv.sendall(b"ping")
    assert recv_exact(cli, 4) == b"ping"
    # Paired connections no longer count: a parked server that pairs frees
    # its address's slot.
    cli0 = dial_from("127.0.0.2", px.port, "client:P0")
    assert read_reply(cli0)[0] == CODE_SUCCESS
    assert read_reply(parked[0])[0] == CODE_SUCCESS
    again = dial_from("127.0.0.1", px.port, "server:P5")
    px.wait_for(r"server:P5\] waits")
    for s in parked + [extra, srv, cli, cli0, again]:
        s.close()


@pytest.mark.parametrize("relay", ["portable", "splice"])
def test_stalled_pairs_hold_bounded_memory(spawn, relay):
    """300 pairs whose clients never read: the proxy's queues stay within
    --max-buffer (64 MiB by default) in all, not 300 x --high-water.  With
    --splice the bytes wait in pipes (kernel), not in the proxy."""
    env = None
    if ASAN:
        # Freed chunks sit in ASan's quarantine (256 MiB by default).
        env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"}
    px = spawn("proxy", "--port", "0", *(["--splice"] if relay == "splice" else []),
               env=env)
    STARTED.append(px)
    rss0 = vm_kib(px.proc.pid, "VmRSS")
    pairs = []
    for i in range(300):
        srv = dial_from("127.0.0.1", px.port, "server:S%d" % i)
        cli = socket.socket()
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        cli.settimeout(10)
        cli.connect(("127.0.0.1", px.port))
        k = ("client:S%d" % i).encode()
        cli.sendall(struct.pack("<ii", RPC_MAGIC, len(k)) + k)
        assert read_reply(srv)[0] == CODE_SUCCESS
        assert read_reply(cli)[0] == CODE_SUCCESS
        srv.setblocking(False)
        pairs.append((srv, cli))
    block = b"z" * (256 << 10)
    sent = [0] * len(pairs)
    idle_rounds = 0
    while idle_rounds < 3 and sum(sent) < (2 << 30):
        progress = 0
        for i, (srv, _) in enumerate(pairs):
            if sent[i] >= (8 << 20):
                continue
            try:
                k = srv.send(block)
            except BlockingIOError:
                k = 0
            sent[i] += k
            progress += k
        if progress == 0:
            idle_rounds += 1
            time.sleep(0.3)
        else:
            idle_rounds = 0
    rss = vm_kib(px.proc.pid, "VmHWM")
    bound_kib = (64 + 32 + (64 if ASAN else 0)) * 1024
    assert sum(sent) > (200 << 20), "the proxy took only %d bytes" % sum(sent)
    assert rss - rss0 < bound_kib, "proxy RSS grew by %d KiB" % (rss - rss0)
    # The relay still works: one client reads everything its server sent.
    srv, cli = pairs[0]
    cli.settimeout(30)
    got = 0
    while got < sent[0]:
        k = len(cli.recv(1 << 20))
        assert k > 0
        got += k
    assert got == sent[0]
    for srv, cli in pairs:
        srv.close()
        cli.close()


# ---- item 12: --allow -------------------------------------------------------------

def test_allow_closes_other_addresses_at_accept(spawn):
    px = start_proxy(spawn, "--allow", "127.0.0.1/32", "--web-port", "0")
    web_port = int(px.wait_for(r"web listening on 127\.0\.0\.1:(\d+)").group(1))
    px.wait_for(r"accepting connections only from 127\.0\.0\.1/32 \(--allow\)")
    for port in (px.port, web_port):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        assert is_closed(s)
        s.close()
    px.wait_for(r"tcp 127\.0\.0\.2:\d+ refused: not in --allow 127\.0\.0\.1/32")
    px.wait_for(r"web 127\.0\.0\.2:\d+ refused: not in --allow 127\.0\.0\.1/32")
    # Allowed peers pair as usual.
    srv = dial_from("127.0.0.1", px.port, "server:A")
    cli = dial_from("127.0.0.1", px.port, "client:A")
    assert read_reply(srv)[0] == CODE_SUCCESS and read_reply(cli)[0] == CODE_SUCCESS
    srv.close()
    cli.close()
    r = run_ferry("proxy", "--allow", "10.0.0.1/8", timeout=10)
    assert r.returncode == 2 and "--allow" in r.stderr
    r = run_ferry("proxy", "--max-per-address", "0", timeout=10)
    assert r.returncode == 2 and "--max-per-address" in r.stderr
