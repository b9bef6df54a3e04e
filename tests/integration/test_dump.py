"""`ferry dump`: the relay between real ferry parts shows every message of a
session in both dialects and of a tracker link; it is transparent (the
golden recordings pass through it byte-identical, and what it prints for
them is the checked-in decoding); bad input is printed and relayed as is;
--raw recordings and pcap captures decode with --read."""
import os
import re
import socket
import struct
import threading
import time

import pytest

from conftest import GOLDEN, ROOT, load_link, run_ferry

EXPECTED = os.path.join(ROOT, "tests", "unit", "dump_expected")
SESSIONS = ["session-files", "session-tensor", "session-module", "session-errors"]


def wait_lines(d, pattern, count=1, timeout=15.0):
    """Waits until count stdout lines of daemon d match pattern."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        with d._cv:
            hits = [l for l in d.stdout_lines if rx.search(l)]
        if len(hits) >= count:
            return hits
        if time.monotonic() > deadline:
            raise AssertionError("no %d lines matching %r in:\n%s"
                                 % (count, pattern, "\n".join(d.stdout_lines[-60:])))
        time.sleep(0.05)


def body(line):
    """A dump line without its time, its connection number and the note of
    the dialect (on whichever packet decided it, which depends on how the
    two directions interleave)."""
    parts = line.split(None, 2)
    return re.sub(r"\[dialect \w+\] ", "", parts[2]) if len(parts) > 2 else ""


def relay(spawn, target_port, *extra):
    return spawn("dump", "--listen", "0", "--to", "127.0.0.1:%d" % target_port, *extra)


@pytest.mark.parametrize("dialect", ["classic", "ffi"])
def test_live_session_shows_every_message(spawn, tmp_path, dialect):
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--work-dir",
                str(tmp_path / "work"))
    raw = str(tmp_path / "raw.jsonl")
    d = relay(spawn, srv.port, "--raw", raw)
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello through the relay\n")
    r = run_ferry("upload", "--port", str(d.port), "--dialect", dialect, str(src), timeout=60)
    assert r.returncode == 0, r.stderr
    r = run_ferry("ls", "--port", str(d.port), "--dialect", dialect, timeout=60)
    assert r.returncode == 0, r.stderr
    wait_lines(d, r"kShutdown", 2)
    wait_lines(d, r"event +closed", 2)
    lines = list(d.stdout_lines)
    text = "\n".join(lines)
    assert re.search(r"c2s handshake RPC magic 0xff271 key \"client:", text)
    assert re.search(r"s2c handshake SUCCESS 0xff271 key \"server:", text)
    assert re.search(r"c2s rpc +kInitServer version \"0.8.0\"", text)
    assert "[dialect %s]" % dialect in text
    assert re.search(r'kGetGlobalFunc (\[dialect \w+\] )?\(str "tvm.rpc.server.upload"\)', text)
    assert re.search(r"kCallFunc func 0x[0-9a-f]+ tvm.rpc.server.upload "
                     r"\(str \"hello.txt\", bytes \(24\)\)", text)
    assert re.search(r"kCallFunc func 0x[0-9a-f]+ tvm.rpc.server.listdir \(str \"\"\)", text)
    assert " error " not in text and "MALFORMED" not in text
    # Every request got its reply line: as many kReturn/kException as
    # requests other than kShutdown.
    reqs = [l for l in lines if " c2s rpc " in l and "kShutdown" not in l]
    reps = [l for l in lines if " s2c rpc " in l and re.search(r"kReturn|kException", l)]
    assert len(reqs) == len(reps) > 6
    # The recording decodes later to the same messages.
    d.stop()
    r = run_ferry("dump", "--read", raw, timeout=60)
    assert r.returncode == 0, r.stderr
    live = [body(l) for l in lines if " rpc " in l or " handshake " in l]
    again = [body(l) for l in r.stdout.splitlines() if " rpc " in l or " handshake " in l]
    assert live == again


def test_json_lines(spawn, tmp_path):
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--work-dir",
                str(tmp_path / "work"))
    d = relay(spawn, srv.port, "--json")
    r = run_ferry("ls", "--port", str(d.port), "--dialect", "ffi", timeout=60)
    assert r.returncode == 0, r.stderr
    wait_lines(d, r"kShutdown")
    import json
    objs = [json.loads(l) for l in d.stdout_lines]
    layers = {o["layer"] for o in objs}
    assert {"handshake", "rpc", "event"} <= layers
    assert any(o["dir"] == "c2s" and o.get("code_name") == "kInitServer" and
               o.get("code") == 2 and o["text"].startswith("kInitServer") for o in objs)
    rpc = [o for o in objs if o.get("proto") == "rpc" and o["layer"] == "rpc"]
    # `ferry ls` looks up listdir, calls it with "" and gets the listing
    # (empty: a session starts in a fresh directory):
    # the call names its function and its argument, the reply its value.
    call = next(o for o in rpc if o["code_name"] == "kCallFunc")
    assert call["func"] == "tvm.rpc.server.listdir"
    assert call["dialect"] == "ffi"
    assert call["args"] == [{"type": "str", "value": "", "len": 0, "truncated": False}]
    lookup = next(o for o in rpc if o["code_name"] == "kGetGlobalFunc")
    assert lookup["func"] == "tvm.rpc.server.listdir"
    reply = rpc[rpc.index(call) + 1]
    assert reply["dir"] == "s2c" and reply["code_name"] == "kReturn"
    assert reply["value"] == {"type": "str", "value": "", "len": 0, "truncated": False}
    ret_handle = rpc[rpc.index(lookup) + 1]["args"][0]["value"]
    # Handles are unsigned numbers (ferry's server tags them in the top bits).
    assert call["handle"] == ret_handle and ret_handle > 0
    for o in objs:
        assert o["text"]


def test_server_and_tracker_through_the_relay(spawn, tmp_path):
    tr = spawn("tracker", "--host", "127.0.0.1", "--port", "0")
    d = relay(spawn, tr.port)
    spawn("server", "--port", "0", "--key", "relayed", "--tracker",
          "127.0.0.1:%d" % d.port, "--work-dir", str(tmp_path / "w"))
    wait_lines(d, r"c2s tracker +PUT \"\[3, \\\"relayed\\\"")
    wait_lines(d, r"c2s tracker +UPDATE_INFO")
    r = run_ferry("query", "--host", "127.0.0.1", "--port", str(d.port), timeout=30)
    assert r.returncode == 0, r.stderr
    assert "relayed" in r.stdout
    hits = wait_lines(d, r"s2c tracker +reply .*queue_info")
    assert "relayed" in hits[0]
    text = "\n".join(d.stdout_lines)
    assert "c2s handshake tracker magic 0x2f271" in text
    assert "s2c handshake tracker magic 0x2f271" in text
    assert "c2s tracker   SUMMARY" in text


class Player:
    """A target that plays the recorded s2c bytes of one connection and keeps
    what it receives."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.got = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        c, _ = self.sock.accept()
        w = threading.Thread(target=send_all, args=(c, self.chunks), daemon=True)
        w.start()
        self.got = recv_all(c)
        w.join(30)
        c.close()


def send_all(sock, chunks):
    for ch in chunks:
        sock.sendall(ch)
    sock.shutdown(socket.SHUT_WR)


def recv_all(sock):
    out = bytearray()
    while True:
        b = sock.recv(1 << 16)
        if not b:
            return bytes(out)
        out += b


def data_conn(link):
    conns = load_link(link)
    return max(conns.values(), key=lambda c: len(c["c2s"]) + len(c["s2c"]))


def recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        b = sock.recv(n - len(out))
        assert b, "connection ended %d bytes early" % (n - len(out))
        out += b
    return bytes(out)


@pytest.mark.parametrize("dialect,name", [(d, s) for d in ("classic", "ffi") for s in SESSIONS])
def test_golden_replay_is_byte_identical(spawn, dialect, name):
    """Each recorded chunk is sent in the recorded order, and the next one
    only once the relay delivered it, so the relay sees the session as it
    happened; each side receives exactly what the other sent."""
    link = os.path.join(GOLDEN, dialect, name, "client-server.jsonl")
    c = data_conn(link)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    d = relay(spawn, lsock.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", d.port))
    server, _ = lsock.accept()
    got = {"c2s": b"", "s2c": b""}
    for (dr, _, chunk) in c["events"]:
        if dr not in ("c2s", "s2c") or not chunk:
            continue
        src, dst = (client, server) if dr == "c2s" else (server, client)
        w = threading.Thread(target=src.sendall, args=(chunk,), daemon=True)
        w.start()
        got[dr] += recv_exact(dst, len(chunk))
        w.join(30)
    client.shutdown(socket.SHUT_WR)
    assert server.recv(1) == b""
    server.close()
    assert client.recv(1) == b""
    client.close()
    lsock.close()
    assert got["c2s"] == c["c2s"]
    assert got["s2c"] == c["s2c"]
    # What it printed is the checked-in decoding, line for line.
    wait_lines(d, r"event +closed")
    lines = [body(l) for l in d.stdout_lines if " rpc " in l or " handshake " in l]
    with open(os.path.join(EXPECTED, "%s_%s_client-server.txt" % (dialect, name))) as f:
        expected = [body(l.rstrip("\n")) for l in f if " rpc " in l or " handshake " in l]
    assert lines == expected


def test_garbage_is_relayed_unchanged_and_described(spawn):
    garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 300
    player = Player([b"\x00\x01\x02"])
    d = relay(spawn, player.port)
    s = socket.create_connection(("127.0.0.1", d.port))
    w = threading.Thread(target=send_all, args=(s, [garbage]), daemon=True)
    w.start()
    got = recv_all(s)
    w.join(30)
    s.close()
    player.thread.join(30)
    assert player.got == garbage
    assert got == b"\x00\x01\x02"
    hits = wait_lines(d, r"c2s error +at offset 0: first word 0x20544547")
    assert hits
    wait_lines(d, r"s2c error +truncated at offset 0: the stream ended 3 bytes into a 4-byte")
    wait_lines(d, r"c2s raw +offset 4, ")


def test_oversized_packet_passes_summarised(spawn):
    """A 20 MB packet passes whole while the decoder keeps only its header."""
    hello = struct.pack("<ii", 0xFF271, 7) + b"client:"
    big = 20 << 20
    pkt = struct.pack("<Qi", 4 + big, 7) + b"\x00" * big
    player = Player([struct.pack("<ii", 0xFF271, 7) + b"server:"])
    d = relay(spawn, player.port)
    s = socket.create_connection(("127.0.0.1", d.port))
    w = threading.Thread(target=send_all, args=(s, [hello, pkt]), daemon=True)
    w.start()
    recv_all(s)
    w.join(60)
    s.close()
    player.thread.join(60)
    assert len(player.got) == len(hello) + len(pkt)
    assert player.got[:len(hello)] == hello
    wait_lines(d, r"kCopyToRemote \(code 7\), %d bytes: over the 4194304-byte decode" % big)


def test_usage_errors():
    r = run_ferry("dump", timeout=10)
    assert r.returncode == 2 and "ferry dump:" in r.stderr
    r = run_ferry("dump", "--listen", "0", "--to", "nocolon", timeout=10)
    assert r.returncode == 2 and "not HOST:PORT" in r.stderr
    r = run_ferry("dump", "--read", "/nonexistent/file", timeout=10)
    assert r.returncode == 1 and "cannot open" in r.stderr


def test_read_reports_bad_records(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"conn": 1, "dir": "c2s", "t": 0, "hex": "71f20f"}\nnot json\n')
    r = run_ferry("dump", "--read", str(p), timeout=10)
    assert r.returncode == 1
    assert "bad.jsonl:2: record is not JSON" in r.stderr
    assert "truncated at offset 0: the stream ended 3 bytes into a 4-byte message" in r.stdout


# ---- captures ----------------------------------------------------------------

import glob
import shutil
import subprocess

from pcap_util import golden_links, write_pcap

ALL_LINKS = sorted(glob.glob(os.path.join(GOLDEN, "*", "*", "*.jsonl")))


def expected_for(link):
    rel = os.path.relpath(link, GOLDEN)[:-len(".jsonl")].replace(os.sep, "_")
    with open(os.path.join(EXPECTED, rel + ".txt")) as f:
        return [l.rstrip("\n") for l in f]


def conn_bodies(lines):
    """rpc/handshake/tracker lines grouped per connection number, in order."""
    per = {}
    for l in lines:
        parts = l.split(None, 3)
        if len(parts) > 3 and parts[3].split(None, 1)[0] in ("rpc", "handshake", "tracker"):
            per.setdefault(parts[1], []).append(body(l))
    return sorted(per.values())


@pytest.mark.parametrize("link", ALL_LINKS, ids=lambda p: os.path.relpath(p, GOLDEN))
def test_pcap_of_golden_decodes_as_the_recording(tmp_path, link):
    """A capture the test writes (Ethernet/IPv4/TCP, segments of 1400 bytes)
    decodes, after TCP reassembly, to the same messages as the recording."""
    cap = str(tmp_path / "cap.pcap")
    write_pcap(cap, golden_links(link))
    r = run_ferry("dump", "--read", cap, timeout=60)
    assert r.returncode == 0, r.stderr
    assert conn_bodies(r.stdout.splitlines()) == conn_bodies(expected_for(link))


def test_pcap_retransmission_and_port_filter(tmp_path):
    """Retransmitted segments are passed once; --port keeps only its streams."""
    link = os.path.join(GOLDEN, "classic", "session-files", "client-server.jsonl")
    cap = str(tmp_path / "re.pcap")
    write_pcap(cap, golden_links(link), retransmit=True)
    r = run_ferry("dump", "--read", cap, "--port", "9091", timeout=60)
    assert r.returncode == 0 and r.stdout == ""
    r = run_ferry("dump", "--read", cap, "--port", "9090", timeout=60)
    assert r.returncode == 0, r.stderr
    assert conn_bodies(r.stdout.splitlines()) == conn_bodies(expected_for(link))


def test_pcap_truncated_file(tmp_path):
    link = os.path.join(GOLDEN, "classic", "session-module", "client-server.jsonl")
    cap = str(tmp_path / "cap.pcap")
    write_pcap(cap, golden_links(link))
    data = open(cap, "rb").read()
    cut = str(tmp_path / "cut.pcap")
    open(cut, "wb").write(data[:len(data) // 2])
    r = run_ferry("dump", "--read", cut, timeout=60)
    assert r.returncode == 1
    assert "the file ends inside" in r.stderr
    assert "kInitServer" in r.stdout
    assert "truncated at offset" in r.stdout or "kCallFunc" in r.stdout


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (wireshark-common) absent")
def test_pcapng_of_golden(tmp_path):
    link = os.path.join(GOLDEN, "ffi", "session-module", "client-server.jsonl")
    cap = str(tmp_path / "cap.pcap")
    ng = str(tmp_path / "cap.pcapng")
    write_pcap(cap, golden_links(link))
    subprocess.run(["editcap", "-F", "pcapng", cap, ng], check=True, timeout=60)
    assert open(ng, "rb").read(4) == b"\x0a\x0d\x0d\x0a"
    r = run_ferry("dump", "--read", ng, timeout=60)
    assert r.returncode == 0, r.stderr
    assert conn_bodies(r.stdout.splitlines()) == conn_bodies(expected_for(link))


def can_capture_lo():
    return shutil.which("tcpdump") is not None and os.geteuid() == 0


@pytest.mark.skipif(not can_capture_lo(), reason="tcpdump on lo needs tcpdump and root")
def test_tcpdump_capture_of_a_live_session(spawn, tmp_path):
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0", "--work-dir",
                str(tmp_path / "work"))
    cap = str(tmp_path / "live.pcap")
    # -Z root: tcpdump would otherwise drop to a user that cannot write
    # into the test folder.
    td = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-Z", "root",
                           "-w", cap, "-s", "0",
                           "tcp port %d" % srv.port],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # tcpdump says "listening on lo" once it captures.
        line = td.stderr.readline().decode()
        assert "listening" in line, line
        # It may drop what comes right after that line: probe the port
        # until a probe shows up in the file (-U writes each packet).
        deadline = time.monotonic() + 20
        while os.path.getsize(cap) <= 24:
            assert time.monotonic() < deadline, "tcpdump captured nothing"
            socket.create_connection(("127.0.0.1", srv.port)).close()
            time.sleep(0.1)
        r = run_ferry("ls", "--port", str(srv.port), "--dialect", "ffi", timeout=60)
        assert r.returncode == 0, r.stderr
        # Once a later probe is in the file, so is the session before it.
        size = os.path.getsize(cap)
        socket.create_connection(("127.0.0.1", srv.port)).close()
        while os.path.getsize(cap) == size:
            assert time.monotonic() < deadline + 20, "tcpdump stopped writing"
            time.sleep(0.05)
    finally:
        td.terminate()
        td.wait(10)
    r = run_ferry("dump", "--read", cap, "--port", str(srv.port), timeout=60)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert re.search(r"c2s handshake RPC magic 0xff271", text), text
    assert "[dialect ffi]" in text
    assert re.search(r"kCallFunc func 0x[0-9a-f]+ tvm.rpc.server.listdir", text)
    assert re.search(r"c2s rpc +kShutdown", text)


def test_allow_and_max_conns(spawn):
    player = Player([b""])
    d = relay(spawn, player.port, "--allow", "10.0.0.0/8")
    s = socket.create_connection(("127.0.0.1", d.port))
    assert s.recv(1) == b""  # closed at accept
    s.close()
    d.wait_for(r"127\.0\.0\.1:\d+ is not in --allow; closed")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    d2 = relay(spawn, lsock.getsockname()[1], "--max-conns", "1")
    first = socket.create_connection(("127.0.0.1", d2.port))
    wait_lines(d2, r"#1 --- event +open from")
    second = socket.create_connection(("127.0.0.1", d2.port))
    assert second.recv(1) == b""
    d2.wait_for(r"1 connections relayed already \(--max-conns\); closed")
    first.close()
    second.close()
    lsock.close()


@pytest.mark.parametrize("dialect", ["classic", "ffi"])
def test_json_fields_of_a_module_session(dialect):
    """The golden module session as JSON: the call of addone names its
    function and its two tensor arguments, its reply is null, the module
    lookup returns a function named addone."""
    import json
    link = os.path.join(GOLDEN, dialect, "session-module", "client-server.jsonl")
    r = run_ferry("dump", "--json", "--read", link, timeout=60)
    assert r.returncode == 0, r.stderr
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    rpc = [o for o in objs if o.get("layer") == "rpc"]
    assert all(o["proto"] == "rpc" for o in rpc)
    assert {o["dialect"] for o in rpc if "dialect" in o} == {dialect}
    i, call = next((i, o) for i, o in enumerate(rpc)
                   if o["code_name"] == "kCallFunc" and o.get("func") == "addone")
    assert call["dir"] == "c2s" and call["code"] == 3
    assert [a["type"] for a in call["args"]] == ["tensor", "tensor"]
    for a in call["args"]:
        assert a["dtype"] == "float32" and a["shape"] == [3, 4]
        assert a["device"] == {"name": "cpu", "type": 1, "id": 0} and a["bytes"] == 48
    reply = rpc[i + 1]
    assert reply["dir"] == "s2c" and reply["code_name"] == "kReturn"
    assert reply["value"]["type"] == "null"
    got = [o for o in rpc if o["code_name"] == "kReturn" and
           o.get("value", {}).get("func") == "addone"]
    assert got and got[0]["value"]["type"] == "func"
    assert got[0]["value"]["value"] == call["handle"]
    hs = [o for o in objs if o["layer"] == "handshake"]
    assert hs[0]["role"] == "client" and hs[0]["word_name"] == "RPC magic"
