"""The tracker's HTTP side (--http-port) with real processes: /api/status
and /metrics follow a real session; bad HTTP input is refused while the
tracker keeps granting; the dashboard in headless Chromium shows a device
taken by a real session, then free again."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import TrackerConn
from test_server import CODE_SUCCESS, handshake, wait_child, wait_until
from test_server_tracker import free_count

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def start(spawn, tmp_path):
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", "0", "--http-port", "0")
    m = tr.wait_for(r"http on 127\.0\.0\.1:(\d+)")
    hport = int(m.group(1))
    srv = spawn("server", "--port", "0", "--key", "cpu", "--tracker",
                "127.0.0.1:%d" % tr.port, "--work-dir", str(tmp_path / "work"))
    assert wait_until(lambda: free_count(tr.port, "cpu") == 1, 10.0), srv.log()
    return tr, srv, hport


def get(hport, path, method="GET", body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", hport, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), data


def status(hport):
    code, ctype, body = get(hport, "/api/status")
    assert code == 200 and ctype == "application/json"
    return json.loads(body)


def cpu(hport):
    d = [x for x in status(hport)["devices"] if x["key"] == "cpu"]
    return d[0] if d else None


def take(tr, srv):
    """A real session on the server, through the tracker, as user alice@lab."""
    t = TrackerConn(tr.port)
    reply = t.call([4, "cpu", "alice@lab", 1])
    assert reply[0] == 0
    s, code, _ = handshake(reply[1][1], "client:" + reply[1][2])
    assert code == CODE_SUCCESS
    wait_child(srv)
    return t, s


def test_status_and_metrics_follow_a_session(spawn, tmp_path):
    tr, srv, hport = start(spawn, tmp_path)
    assert wait_until(lambda: cpu(hport) and cpu(hport)["state"] == "free", 5.0)
    t, s = take(tr, srv)
    assert wait_until(lambda: cpu(hport)["session"] == 1 if cpu(hport).get("session") else False,
                      5.0)
    d = cpu(hport)
    assert d["state"] == "in use" and d["user"] == "alice@lab" and d["for"] >= 0
    s.close()
    assert wait_until(lambda: cpu(hport)["state"] == "free", 5.0)
    assert wait_until(lambda: len(status(hport)["history"]) == 1, 5.0)
    code, ctype, body = get(hport, "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'ferry_tracker_grants_total{key="cpu"} 1' in text
    assert 'ferry_tracker_sessions_total{key="cpu"} 1' in text
    assert re.search(r'ferry_tracker_session_seconds_count\{key="cpu"\} 1', text)
    assert 'ferry_tracker_wait_seconds_bucket{key="cpu",le="+Inf"} 1' in text
    t.close()


def test_bad_http_input_is_refused_and_granting_goes_on(spawn, tmp_path):
    tr, srv, hport = start(spawn, tmp_path)
    assert get(hport, "/api/status", "POST", body=b"x" * 100)[0] == 405
    assert get(hport, "/nothing")[0] == 404
    # Oversized headers: refused by libmicrohttpd's memory limit.
    code = get(hport, "/", headers={"X-Big": "a" * 40000})[0]
    assert code in (413, 431), code
    # A flood: past the rate limit the tracker answers 429.
    codes = []
    for _ in range(300):
        codes.append(get(hport, "/api/status")[0])
        if codes[-1] == 429:
            break
    assert 429 in codes
    # Logged (at most a line a second) and counted in the metrics.
    tr.wait_for(r"http: refused a request \(405: only GET")
    time.sleep(1.2)  # past the rate limit's refill and one snapshot

    def refused():
        text = get(hport, "/metrics")[2].decode()
        m = re.search(r"^ferry_tracker_http_refused_total (\d+)$", text, re.M)
        return m and int(m.group(1)) >= 2  # the 405 and the 429
    assert wait_until(refused, 5.0)
    # A stream of garbage that is not HTTP at all.
    g = socket.create_connection(("127.0.0.1", hport))
    g.sendall(b"\x00\xff" * 5000)
    g.close()
    # The tracker still grants.
    t = TrackerConn(tr.port)
    assert t.call([4, "cpu", "", 0])[0] == 0
    t.close()


def dump_dom(url, profile):
    r = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--user-data-dir=" + profile, "--virtual-time-budget=3000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=60)
    return r.stdout


@pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (scripts/install-deps.sh)")
def test_allow_covers_the_http_side(spawn):
    """--allow closes HTTP connections from other addresses at accept too
    (the tracker binds 0.0.0.0 here so that 127.0.0.2 can reach it)."""
    tr = spawn("tracker", "--host", "0.0.0.0", "--port", "0", "--http-port", "0",
               "--allow", "127.0.0.1/32")
    hport = int(tr.wait_for(r"http on 0\.0\.0\.0:(\d+)").group(1))
    # 503 "starting" until the tracker publishes its first snapshot.
    assert wait_until(lambda: get(hport, "/api/status")[0] == 200, 10.0)
    stranger = socket.socket()
    stranger.settimeout(10)
    stranger.bind(("127.0.0.2", 0))
    stranger.connect(("127.0.0.1", hport))
    stranger.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = stranger.recv(4096)
    except ConnectionResetError:
        data = b""
    stranger.close()
    assert data == b"", data
    tr.wait_for(r"http: refused a connection from 127\.0\.0\.2: not in --allow")
    # Everyone else goes on being served.
    assert get(hport, "/metrics")[0] == 200


def test_dashboard_in_headless_chromium(spawn, tmp_path):
    tr, srv, hport = start(spawn, tmp_path)
    url = "http://127.0.0.1:%d/" % hport
    profile = tempfile.mkdtemp(prefix="ferry-chromium-")
    try:
        # Rows carry data-key and data-state; the holder cell its text.
        free_row = re.compile(r'<tr data-key="cpu" data-state="free">')
        used_row = re.compile(r'<tr data-key="cpu" data-state="in use">.*?'
                              r'alice@lab \(session 1\)', re.S)
        dom = ""
        for _ in range(10):
            dom = dump_dom(url, profile)
            if free_row.search(dom):
                break
        assert free_row.search(dom), dom[-3000:]
        assert "ferry farm" in dom
        t, s = take(tr, srv)
        assert wait_until(lambda: cpu(hport).get("session") == 1, 5.0)
        for _ in range(10):
            dom = dump_dom(url, profile)
            if used_row.search(dom):
                break
        assert used_row.search(dom), dom[-3000:]
        s.close()
        assert wait_until(lambda: cpu(hport)["state"] == "free", 5.0)
        for _ in range(10):
            dom = dump_dom(url, profile)
            if free_row.search(dom) and "ok" in dom:
                break
        assert free_row.search(dom), dom[-3000:]
        # The ended session is in the recent sessions table.
        assert re.search(r"<td>alice@lab</td><td>1</td>", dom), dom[-3000:]
        t.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
