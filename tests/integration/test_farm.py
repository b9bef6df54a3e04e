"""The farm (issue 13, docs/internals/farm.md): real ferry tracker and
server processes on 127.0.0.1.  A session's holder appears in the
tracker's device table and in `ferry query --long` and vanishes when the
device is offered again; a lease ends a session; a queued request's
deadline gives a clear error; bad session reports are refused while the
tracker keeps granting; a server that sends no reports (TVM's) shows
"in use (unknown holder)"."""
import re
import time

from conftest import TrackerConn, run_ferry
from test_server import CODE_SUCCESS, handshake, wait_child, wait_until
from test_server_tracker import free_count, request


def farm(tport):
    t = TrackerConn(tport)
    try:
        return t.call([100])
    finally:
        t.close()


def device(tport, key):
    devs = [d for d in farm(tport)["devices"] if d["key"] == key]
    return devs[0] if devs else None


def start(spawn, tmp_path, *tracker_args, key="cpu"):
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", "0", *tracker_args)
    srv = spawn("server", "--port", "0", "--key", key, "--tracker",
                "127.0.0.1:%d" % tr.port, "--work-dir", str(tmp_path / "work"))
    assert wait_until(lambda: free_count(tr.port, key) == 1, 10.0), srv.log()
    return tr, srv


def test_holder_appears_and_vanishes(spawn, tmp_path):
    tr, srv = start(spawn, tmp_path)
    assert device(tr.port, "cpu")["state"] == "free"
    t = TrackerConn(tr.port)
    reply = t.call([4, "cpu", "alice@lab", 1])
    assert reply[0] == 0
    mk = reply[1][2]
    # Granted, before the session: in use by the requester.
    d = device(tr.port, "cpu")
    assert d["state"] == "in use" and d["user"] == "alice@lab" and d["session"] == 0
    s, code, _ = handshake(reply[1][1], "client:" + mk)
    assert code == CODE_SUCCESS
    wait_child(srv)
    assert wait_until(lambda: device(tr.port, "cpu")["session"] == 1, 5.0)
    d = device(tr.port, "cpu")
    assert d["state"] == "in use" and d["user"] == "alice@lab" and d["host"] == "127.0.0.1"
    q = run_ferry("query", "--host", "127.0.0.1", "--port", str(tr.port), "--long",
                  timeout=20)
    assert q.returncode == 0, q.stderr
    assert re.search(r"cpu\s+in use by alice@lab since \d\d:\d\d:\d\d \(session 1\)",
                     q.stdout), q.stdout
    # The plain table is TVM's layout, unchanged.
    plain = run_ferry("query", "--host", "127.0.0.1", "--port", str(tr.port), timeout=20)
    assert "Device Status" not in plain.stdout and "Queue Status" in plain.stdout
    s.close()
    assert wait_until(lambda: device(tr.port, "cpu")["state"] == "free", 5.0)
    st = farm(tr.port)
    assert "user" not in st["devices"][0]
    assert [(h["user"], h["session"]) for h in st["history"]] == [("alice@lab", 1)]
    assert st["sessions_started"] == 1 and st["sessions_ended"] == 1
    q = run_ferry("query", "--host", "127.0.0.1", "--port", str(tr.port), "--long",
                  timeout=20)
    assert re.search(r"cpu\s+free", q.stdout), q.stdout
    t.close()


def test_lease_ends_the_session(spawn, tmp_path):
    tr, srv = start(spawn, tmp_path, "--max-session", "cpu=1,*=1000")
    t, (_, port, mk) = request(tr.port, "cpu")
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_SUCCESS
    assert wait_until(lambda: device(tr.port, "cpu")["session"] == 1, 5.0)
    assert 0 < device(tr.port, "cpu")["lease_left"] <= 1
    # The server ends it at the lease and offers the device again.
    assert wait_until(lambda: device(tr.port, "cpu")["state"] == "free", 10.0), srv.log()
    hist = farm(tr.port)["history"]
    assert len(hist) == 1 and hist[0]["outcome"] != "ok", hist
    s.close()
    t.close()


def test_request_deadline(spawn, tmp_path):
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", "0")
    t = TrackerConn(tr.port)
    t.send([4, "nothing", "bob", 0, {"deadline": 1}])
    other = TrackerConn(tr.port)
    other.send([4, "nothing", "carol", 0])
    assert wait_until(lambda: len(farm(tr.port)["waiting"]) == 2, 5.0)
    w = farm(tr.port)["waiting"]
    assert [(x["user"], x["position"]) for x in w] == [("bob", 1), ("carol", 2)]
    reply = t.recv()
    assert reply[0] == -1 and "deadline" in reply[1] and "nothing" in reply[1]
    assert [x["user"] for x in farm(tr.port)["waiting"]] == ["carol"]
    # Malformed options are malformed input: that peer is closed.
    bad = TrackerConn(tr.port)
    bad.send([4, "k", "u", 0, {"deadline": -3}])
    assert bad.sock.recv(1) == b""
    tr.wait_for(r"REQUEST options")
    t.close()
    other.close()


def test_tvm_style_server_and_bad_reports(spawn, tmp_path):
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", "0")
    # A server that sends what TVM's does, and no reports.
    srv = TrackerConn(tr.port)
    assert srv.call([5, {"key": "server:tvm", "addr": [None, 9091]}]) == 0
    assert device(tr.port, "tvm")["state"] == "starting"
    assert srv.call([3, "tvm", [9091, "tvm:abc"], None]) == 0
    assert device(tr.port, "tvm")["state"] == "free"
    c = TrackerConn(tr.port)
    assert c.call([4, "tvm", "", 0])[0] == 0
    q = run_ferry("query", "--host", "127.0.0.1", "--port", str(tr.port), "--long",
                  timeout=20)
    assert re.search(r"tvm\s+in use \(unknown holder\)", q.stdout), q.stdout
    # Bad reports: refused (FAIL), logged, the server keeps its link.
    assert srv.call([5, {"ferry_session": {"event": "bogus", "n": 1, "matchkey": "x"}}]) == -1
    tr.wait_for(r"session report from .* refused: ferry_session\.event")
    assert srv.call([5, {"ferry_session": {"event": "start", "n": 1,
                                           "matchkey": "not-granted"}}]) == -1
    tr.wait_for(r"refused: session 1: no device of this server was granted")
    # Another peer cannot report on this server's device.
    other = TrackerConn(tr.port)
    assert other.call([5, {"ferry_session": {"event": "start", "n": 1,
                                             "matchkey": "tvm:abc"}}]) == -1
    # A forged user with control characters is shown as '?'.
    assert srv.call([3, "tvm", [9091, "tvm:def"], None]) == 0
    assert c.call([4, "tvm", "eve\x1b[2J", 0])[0] == 0
    assert device(tr.port, "tvm")["user"] == "?"
    tr.wait_for(r"its user is not printable")
    # The tracker keeps granting.
    assert srv.call([3, "tvm", [9091, "tvm:ghi"], None]) == 0
    assert c.call([4, "tvm", "", 0])[0] == 0
    for x in (srv, c, other):
        x.close()


def test_drain(spawn, tmp_path):
    tr, srv = start(spawn, tmp_path, "--stop-key", "s3cret")
    t = TrackerConn(tr.port)
    assert t.call([101, "cpu", "wrong", 0]) == -1
    assert t.call([101, "cpu", "s3cret", 0]) == 1
    assert device(tr.port, "cpu")["state"] == "drained"
    # A drained device is not handed out; undrained, it is.
    c = TrackerConn(tr.port)
    c.send([4, "cpu", "", 0])
    c.sock.settimeout(1.0)
    try:
        c.sock.recv(1)
        assert False, "a drained device was granted"
    except OSError:
        pass
    # The same through `ferry drain --undo`.
    r = run_ferry("drain", "--port", str(tr.port), "--stop-key", "wrong", "cpu", timeout=20)
    assert r.returncode == 1 and "refused" in r.stderr
    r = run_ferry("drain", "--port", str(tr.port), "--stop-key", "s3cret", "--undo", "cpu",
                  timeout=20)
    assert r.returncode == 0 and "undrained 1 device" in r.stdout, r.stderr
    c.sock.settimeout(5.0)
    assert c.recv()[0] == 0
    t.close()
    c.close()


def test_crashing_server_goes_offline_and_back(spawn, tmp_path):
    import os
    import signal
    flag = tmp_path / "healthy"
    flag.write_text("1")
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", "0")
    srv = spawn("server", "--port", "0", "--key", "cpu", "--tracker",
                "127.0.0.1:%d" % tr.port, "--work-dir", str(tmp_path / "work"),
                "--health-check", "test -f '%s'" % flag, "--health-failures", "2")
    assert wait_until(lambda: free_count(tr.port, "cpu") == 1, 10.0), srv.log()
    # The board breaks: its next session crashes and its self-test fails.
    flag.unlink()
    t, (_, port, mk) = request(tr.port, "cpu")
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_SUCCESS
    # SIGKILL: an ASan build would catch a SIGSEGV and exit 1 ("failed").
    os.kill(wait_child(srv), signal.SIGKILL)
    srv.wait_for(r"self-test failed \(1 of 2")
    assert wait_until(lambda: device(tr.port, "cpu")["state"] == "offline", 10.0), srv.log()
    d = device(tr.port, "cpu")
    assert "2 failed self-tests" in d["health"] and "--health-check exited" in d["health"]
    assert free_count(tr.port, "cpu") == 0  # not handed out
    q = run_ferry("query", "--host", "127.0.0.1", "--port", str(tr.port), "--long",
                  timeout=20)
    assert re.search(r"cpu\s+offline: 2 failed self-tests", q.stdout), q.stdout
    # Repaired: the next retry (backing off) passes and it is offered again.
    flag.write_text("1")
    assert wait_until(lambda: device(tr.port, "cpu")["state"] == "free", 15.0), srv.log()
    tr.wait_for(r"passed its self-test again")
    s.close()
    t.close()


def test_history_survives_a_tracker_restart(spawn, tmp_path):
    state = tmp_path / "state"
    tr, srv = start(spawn, tmp_path, "--state-dir", str(state))
    t, (_, port, mk) = request(tr.port, "cpu")
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_SUCCESS
    wait_child(srv)
    s.close()
    assert wait_until(lambda: len(farm(tr.port)["history"]) == 1, 5.0)
    t.close()
    assert tr.stop() == 0
    # A torn last line (a crash mid-write) is skipped, not fatal.
    with open(state / "history.jsonl", "a") as f:
        f.write('{"key": "cpu", "us')
    tr2 = spawn("tracker", "--host", "127.0.0.1", "--port", "0", "--state-dir", str(state))
    hist = farm(tr2.port)["history"]
    assert len(hist) == 1 and hist[0]["key"] == "cpu" and hist[0]["session"] == 1
    tr2.wait_for(r"history: 1 lines of .* skipped")
    # The live state is not kept: no device until a server registers.
    assert farm(tr2.port)["devices"] == []


def test_query_watch_redraws(spawn, tmp_path):
    import subprocess
    from conftest import FERRY
    tr, srv = start(spawn, tmp_path)
    p = subprocess.Popen([FERRY, "query", "--host", "127.0.0.1", "--port", str(tr.port),
                          "--long", "--watch", "0.2"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(1.5)
    p.terminate()
    out, _ = p.communicate(timeout=10)
    text = out.decode()
    assert text.count("\x1b[H\x1b[2J") >= 2, text
    assert text.count("Device Status") >= 2 and re.search(r"cpu\s+free", text)
    bad = run_ferry("query", "--watch", "0.01", timeout=20)
    assert bad.returncode == 2 and "--watch" in bad.stderr


def test_leases_from_a_file(spawn, tmp_path):
    f = tmp_path / "leases"
    f.write_text("# per-key leases\ncpu = 30\n*=600  # the rest\n".replace(" = ", "="))
    tr, srv = start(spawn, tmp_path, "--max-session", "@%s" % f)
    t, (_, port, mk) = request(tr.port, "cpu")
    s, code, _ = handshake(port, "client:" + mk)
    assert code == CODE_SUCCESS
    assert wait_until(lambda: device(tr.port, "cpu").get("session") == 1, 5.0)
    assert 25 < device(tr.port, "cpu")["lease_left"] <= 30
    s.close()
    t.close()
    bad = tmp_path / "bad"
    bad.write_text("cpu=1,gpu=2\n")
    r = run_ferry("tracker", "--port", "0", "--max-session", "@%s" % bad, timeout=20)
    assert r.returncode == 2 and "one KEY=SECONDS per line" in r.stderr
    r = run_ferry("tracker", "--port", "0", "--max-session", "cpu=abc", timeout=20)
    assert r.returncode != 0 and "--max-session" in r.stderr


def test_ferry_client_sends_its_user(spawn, tmp_path):
    import socket as _s
    tr, srv = start(spawn, tmp_path)
    addr = "127.0.0.1:%d" % tr.port
    r = run_ferry("ls", "--tracker", addr, "--key", "cpu", "--user", "bob@ci", timeout=60)
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: len(farm(tr.port)["history"]) == 1, 5.0)
    assert wait_until(lambda: free_count(tr.port, "cpu") == 1, 5.0)
    r = run_ferry("ls", "--tracker", addr, "--key", "cpu", timeout=60,
                  env={"FERRY_USER": "", "USER": "carol"})
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: len(farm(tr.port)["history"]) == 2, 5.0)
    users = [h["user"] for h in farm(tr.port)["history"]]
    assert users[0] == "bob@ci"
    assert users[1] == ("carol@" + _s.gethostname())[:64], users


def test_query_long_lists_the_devices_each_server_serves(spawn, tmp_path):
    """Issue 12: the registration carries the server's devices, and
    `ferry query --long` shows them; the plain table stays TVM's."""
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", "0")
    # One server without OpenCL: it serves the CPU alone.
    srv = spawn("server", "--port", "0", "--key", "cpu", "--tracker",
                "127.0.0.1:%d" % tr.port, "--work-dir", str(tmp_path / "work"),
                env={"FERRY_OPENCL_LIBRARY": "/nonexistent/libOpenCL.so.1"})
    # And one with PoCL's OpenCL device (installed by install-deps.sh).
    cl = spawn("server", "--port", "0", "--key", "cl", "--tracker",
               "127.0.0.1:%d" % tr.port, "--work-dir", str(tmp_path / "work2"))
    assert wait_until(lambda: free_count(tr.port, "cpu") == 1, 10.0), srv.log()
    assert wait_until(lambda: free_count(tr.port, "cl") == 1, 10.0), cl.log()
    q = run_ferry("query", "--host", "127.0.0.1", "--port", str(tr.port), "--long",
                  timeout=20)
    assert q.returncode == 0, q.stderr
    assert re.search(r"^\S+\s+server:cpu\s+cpu \(no opencl", q.stdout, re.M), q.stdout
    assert re.search(r"^\S+\s+server:cl\s+cpu, opencl:0 ", q.stdout, re.M), q.stdout
    plain = run_ferry("query", "--host", "127.0.0.1", "--port", str(tr.port), timeout=20)
    assert re.search(r"^\S+\s+server:cpu$", plain.stdout, re.M), plain.stdout
