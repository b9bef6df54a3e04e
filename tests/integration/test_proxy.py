"""ferry proxy (tracker-proxy-server.md §3.2, §3.3, §6, §11.2, §11.3).

Real `ferry proxy` processes on 127.0.0.1.  Peers are raw sockets speaking
the handshakes (so every byte is under the test's control), a WebSocket
client written here with the standard library only, and, where they are
built, the real `ferry server --through-proxy`, `ferry run --proxy` and
`ferry tracker`.  The tracker leg is checked against a small recording
tracker written here (it answers like TVM's tracker and keeps every frame
the proxy sends) and, when `ferry tracker` exists, against the real one.
"""
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import threading
import time

import pytest

from conftest import (FERRY, GOLDEN, RPC_MAGIC, RPC_TRACKER_MAGIC,
                      TrackerConn, is_closed, load_link, recv_exact, run_ferry,
                      split_tracker_frames)

CODE_SUCCESS = 0xFF271
CODE_DUPLICATE = 0xFF272
CODE_MISMATCH = 0xFF273


# ---- helpers ---------------------------------------------------------------

STARTED = []


def start_proxy(spawn, *extra):
    px = spawn("proxy", "--port", "0", "--handshake-timeout", "1", *extra)
    STARTED.append(px)
    return px


@pytest.fixture(autouse=True)
def proxies_exit_cleanly():
    """Every proxy a test started must stop on SIGTERM with status 0 and
    nothing from the sanitizers (leaks included) in its log."""
    del STARTED[:]
    yield
    for px in STARTED:
        rc = px.stop()
        log = px.log()
        assert rc == 0, "proxy exited with %r:\n%s" % (rc, log[-3000:])
        assert "Sanitizer" not in log and "runtime error" not in log, log[-3000:]
    del STARTED[:]


def dial(port, key, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    k = key.encode()
    s.sendall(struct.pack("<ii", RPC_MAGIC, len(k)) + k)
    return s


def read_reply(sock):
    """W(code) [S(key) after SUCCESS] -> (code, key or None)."""
    code = struct.unpack("<i", recv_exact(sock, 4))[0]
    if code != CODE_SUCCESS:
        return code, None
    n = struct.unpack("<i", recv_exact(sock, 4))[0]
    return code, recv_exact(sock, n).decode()


def no_reply_within(sock, seconds):
    sock.settimeout(seconds)
    try:
        sock.recv(1)
    except socket.timeout:
        return True
    finally:
        sock.settimeout(10.0)
    return False  # an answer, or a close


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for %d" % (field, pid))


def tracker_built():
    r = run_ferry("tracker", "--help", timeout=10)
    return r.returncode == 0


DIALECTS = ["classic", "ffi"]  # tracker and proxy traffic is the same in both


def leg(name, folder="proxy", dialect="classic"):
    return load_link(os.path.join(GOLDEN, dialect, folder, name))


def session_parts(conn, key_len_client, key_len_server):
    """Splits a golden server->proxy connection into its handshake and the
    session bytes: (c2s after S(server key), s2c after W S(client key))."""
    return (conn["c2s"][8 + key_len_server:], conn["s2c"][8 + key_len_client:])


# ---- WebSocket client (standard library only) ------------------------------

class WsClient:
    def __init__(self, port, path="/ws", origin=None, host_header=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        host = host_header or "127.0.0.1:%d" % port
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n" % (path, host, key))
        if origin:
            req += "Origin: %s\r\n" % origin
        self.sock.sendall((req + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        self.status = int(head.split(b" ")[1]) if head else 0
        self.head = head.decode("latin-1")
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            assert "Sec-WebSocket-Accept: %s" % want in self.head

    def send_frame(self, payload, opcode=2, fin=True, length=None):
        mask = os.urandom(4)
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            hdr = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + masked)

    def recv_frame(self):
        """-> (opcode, payload); server frames are unmasked."""
        b0, b1 = recv_exact(self.sock, 2)
        assert not b1 & 0x80
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", recv_exact(self.sock, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", recv_exact(self.sock, 8))[0]
        return b0 & 0x0F, recv_exact(self.sock, n) if n else b""

    def recv_binary(self):
        op, data = self.recv_frame()
        assert op == 2, (op, data)
        return data

    def recv_bytes(self, n):
        out = b""
        while len(out) < n:
            out += self.recv_binary()
        return out


# ---- a tracker that records what the proxy sends ---------------------------

class RecordingTracker:
    """Speaks the tracker protocol like TVM's: echo the magic, answer PUT and
    UPDATE_INFO with 0 and [7] with the keys PUT and not handed out.
    refuse[code] = n answers the next n requests of that code with FAIL
    (-1), as ferry's tracker does past its per-peer limits."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.frames = []          # (connection number, JSON value)
        self.free = []            # match keys offered
        self.connections = 0
        self.refuse = {}
        self.socks = []
        self.cv = threading.Condition()
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.cv:
                self.connections += 1
                self.socks.append(c)
                num = self.connections
                self.free = []    # a new link: the old offers are withdrawn
                self.cv.notify_all()
            threading.Thread(target=self._conn, args=(c, num), daemon=True).start()

    def _conn(self, c, num):
        try:
            magic = struct.unpack("<i", recv_exact(c, 4))[0]
            assert magic == RPC_TRACKER_MAGIC
            c.sendall(struct.pack("<i", RPC_TRACKER_MAGIC))
            while True:
                n = struct.unpack("<i", recv_exact(c, 4))[0]
                msg = json.loads(recv_exact(c, n).decode())
                with self.cv:
                    self.frames.append((num, msg))
                    if self.refuse.get(msg[0], 0) > 0:
                        self.refuse[msg[0]] -= 1
                        reply = -1
                    else:
                        if msg[0] == 3:
                            self.free.append(msg[2][1])
                        reply = sorted(self.free) if msg[0] == 7 else 0
                    self.cv.notify_all()
                body = json.dumps(reply).encode()
                c.sendall(struct.pack("<i", len(body)) + body)
        except (ConnectionError, OSError, AssertionError):
            pass
        finally:
            c.close()

    def hand_out(self, device):
        """Takes the oldest free key of a device, as a REQUEST would."""
        with self.cv:
            for k in self.free:
                if k.rsplit(":", 1)[0] == device:
                    self.free.remove(k)
                    return k
        raise AssertionError("no free key for %s in %s" % (device, self.free))

    def wait(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not pred():
                left = deadline - time.monotonic()
                assert left > 0, "tracker never saw it; frames: %r" % self.frames
                self.cv.wait(left)

    def puts(self, device=None):
        with self.cv:
            return [m for _, m in self.frames
                    if m[0] == 3 and (device is None or m[1] == device)]

    def close(self):
        self.stop = True
        self.lsock.close()
        for c in self.socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def rtracker():
    t = RecordingTracker()
    yield t
    t.close()


def normalise(msg):
    """Replaces what varies between runs (§ golden README): match-key
    suffixes, the proxy's port, and the order inside server:proxy[...]."""
    if msg[0] == 3:
        return [3, msg[1], ["PORT", msg[2][1].rsplit(":", 1)[0] + ":*"], msg[3]]
    if msg[0] == 5:
        info = dict(msg[1])
        key = info["key"]
        if key.startswith("server:proxy["):
            keys = sorted(key[len("server:proxy["):-1].split(","))
            info["key"] = "server:proxy[%s]" % ",".join(keys)
        info["addr"] = [info["addr"][0], "PORT"]
        return [5, info]
    return msg


# ---- proxy mode (no tracker): golden replay --------------------------------

@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_replay_without_tracker(spawn, dialect):
    srv_leg = leg("server-proxy.jsonl", "proxy-notracker", dialect)
    cli_leg = leg("client-proxy.jsonl", "proxy-notracker", dialect)
    s_conn, c_conn = srv_leg[2], cli_leg[2]
    server_key, client_key = "server:K0", "client:K0 -timeout=30"
    # The recorded handshakes are what our peers send.
    assert s_conn["c2s"][:8 + len(server_key)] == struct.pack("<ii", RPC_MAGIC, 9) + b"server:K0"
    assert c_conn["c2s"][:8 + len(client_key)].endswith(client_key.encode())
    px = start_proxy(spawn)
    srv = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    srv.sendall(s_conn["c2s"][:8 + len(server_key)])
    assert no_reply_within(srv, 0.3)  # parked, nothing said yet
    cli = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    cli.sendall(c_conn["c2s"][:8 + len(client_key)])
    # Each side gets W(SUCCESS) S(partner's full key), byte for byte.
    want_srv = s_conn["s2c"][:8 + len(client_key)]
    want_cli = c_conn["s2c"][:8 + len(server_key)]
    assert recv_exact(srv, len(want_srv)) == want_srv
    assert recv_exact(cli, len(want_cli)) == want_cli
    # The session bytes cross unchanged in both directions.
    cli_out = c_conn["c2s"][8 + len(client_key):]
    srv_out = s_conn["c2s"][8 + len(server_key):]
    assert cli_out == s_conn["s2c"][8 + len(client_key):]
    assert srv_out == c_conn["s2c"][8 + len(server_key):]
    cli.sendall(cli_out)
    assert recv_exact(srv, len(cli_out)) == cli_out
    srv.sendall(srv_out)
    assert recv_exact(cli, len(srv_out)) == srv_out
    # The client leaves: the server's link is closed too (§6.5).
    cli.close()
    assert is_closed(srv, 5)
    # As in the recording, the server dials again and is parked again.
    again = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    again.sendall(srv_leg[3]["c2s"])
    assert no_reply_within(again, 0.3)
    px.wait_for(r"paired .*server:K0.* and .*client:K0")


def test_pairs_in_either_order_and_duplicates(spawn):
    px = start_proxy(spawn)
    cli = dial(px.port, "client:K5")
    time.sleep(0.1)
    cli2 = dial(px.port, "client:K5")
    assert read_reply(cli2) == (CODE_DUPLICATE, None)
    assert is_closed(cli2)
    srv = dial(px.port, "server:K5")
    assert read_reply(srv) == (CODE_SUCCESS, "client:K5")
    assert read_reply(cli) == (CODE_SUCCESS, "server:K5")
    srv2 = dial(px.port, "server:K6")
    time.sleep(0.1)
    srv3 = dial(px.port, "server:K6")
    assert read_reply(srv3) == (CODE_DUPLICATE, None)
    assert is_closed(srv3)
    px.wait_for("duplicate connection with same key=K6")
    srv2.close()
    # The first K6 left: the key is free again.
    time.sleep(0.2)
    srv4 = dial(px.port, "server:K6")
    assert no_reply_within(srv4, 0.3)


def test_waiting_too_long_gets_mismatch(spawn):
    px = start_proxy(spawn, "--timeout", "1")
    cli = dial(px.port, "client:nobody")
    t0 = time.monotonic()
    assert read_reply(cli) == (CODE_MISMATCH, None)
    assert 0.8 < time.monotonic() - t0 < 5
    assert is_closed(cli)
    px.wait_for("timeout, no partner")


# ---- bad input ---------------------------------------------------------------

def test_bad_input_is_closed_and_others_unaffected(spawn):
    px = start_proxy(spawn)
    # A pair that keeps working throughout.
    srv = dial(px.port, "server:ok")
    cli = dial(px.port, "client:ok")
    assert read_reply(srv)[0] == CODE_SUCCESS
    assert read_reply(cli)[0] == CODE_SUCCESS
    rss0 = vm_kib(px.proc.pid, "VmRSS")

    # A 1 GiB key length: refused before anything is allocated.
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    s.sendall(struct.pack("<ii", RPC_MAGIC, 1 << 30) + b"server:")
    assert is_closed(s)
    px.wait_for(r"bad handshake key length 1073741824")
    # Negative length.
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    s.sendall(struct.pack("<ii", RPC_MAGIC, -5))
    assert is_closed(s)
    # Wrong magic.
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    s.sendall(struct.pack("<ii", 0x12345, 4) + b"abcd")
    assert is_closed(s)
    px.wait_for("invalid RPC magic")
    # An empty match key (hung TVM's proxy).
    s = dial(px.port, "server:")
    assert read_reply(s) == (CODE_MISMATCH, None)
    assert is_closed(s)
    # Bytes beyond the key before pairing.
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    s.sendall(struct.pack("<ii", RPC_MAGIC, 9) + b"server:K9" + b"junk")
    assert is_closed(s)
    px.wait_for("too many bytes before pairing")
    # A handshake that never completes: closed at the deadline (1 s here).
    s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    s.sendall(struct.pack("<i", RPC_MAGIC)[:3])
    t0 = time.monotonic()
    assert is_closed(s, 5)
    assert 0.5 < time.monotonic() - t0 < 4
    px.wait_for("no complete handshake within 1000 ms")

    # Control characters in a key never reach the log as they are.
    s = dial(px.port, "server:evil\x1b[2J\x07")
    px.wait_for(r"server:evil\?\[2J\?\] waits")
    s.close()

    # The pair is unaffected, memory is flat.
    cli.sendall(b"ping")
    assert recv_exact(srv, 4) == b"ping"
    srv.sendall(b"pong")
    assert recv_exact(cli, 4) == b"pong"
    assert vm_kib(px.proc.pid, "VmRSS") - rss0 < 8 * 1024


def test_side_closing_mid_transfer_closes_its_partner_only(spawn):
    px = start_proxy(spawn)
    a_srv, a_cli = dial(px.port, "server:A"), dial(px.port, "client:A")
    b_srv, b_cli = dial(px.port, "server:B"), dial(px.port, "client:B")
    for s in (a_srv, a_cli, b_srv, b_cli):
        assert read_reply(s)[0] == CODE_SUCCESS
    a_cli.sendall(b"x" * 100000)
    recv_exact(a_srv, 1000)
    # The server vanishes with unread data (a reset, not a clean close).
    a_srv.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    a_srv.close()
    assert is_closed(a_cli, 5)
    b_cli.sendall(b"still here")
    assert recv_exact(b_srv, 10) == b"still here"


# ---- tracker mode --------------------------------------------------------------

@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_tracker_leg_and_session(spawn, rtracker, dialect):
    """Replays §11.2 / the `proxy` recording: three servers dial in, the
    proxy offers each at the tracker, a client with one server's match key
    is paired, and the server that dials again is offered anew."""
    rec = leg("proxy-tracker.jsonl", dialect=dialect)[2]
    _, recorded = split_tracker_frames(rec["c2s"])
    srv_leg = leg("server-proxy.jsonl", dialect=dialect)
    dialled = [(num, c["c2s"][8:17].decode()[7:]) for num, c in sorted(srv_leg.items())
               if c["c2s"][:4] == struct.pack("<i", RPC_MAGIC)]
    first3, (again_num, again_dev) = dialled[:3], dialled[-1]
    used_num, used_dev = [(n, d) for n, d in first3 if srv_leg[n]["s2c"]][0]
    assert again_dev == used_dev
    px = start_proxy(spawn, "--tracker", "127.0.0.1:%d" % rtracker.port)
    servers = {}
    for num, dev in first3:
        s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        s.sendall(srv_leg[num]["c2s"][:17])  # W(magic) S("server:Kn")
        servers[dev] = s
        rtracker.wait(lambda d=dev: len(rtracker.puts(d)) == 1)
        rtracker.wait(lambda d=dev: any(m[0] == 5 and d in m[1]["key"]
                                        for _, m in rtracker.frames))
    rtracker.wait(lambda: any(m == [7] for _, m in rtracker.frames), timeout=5)
    got = [normalise(m) for _, m in rtracker.frames if m != [7]]
    want = [normalise(m) for m in recorded if m != [7]]
    # Recorded: PUT, INFO [a], PUT, INFO [a,b], PUT, INFO [a,b,c], [7], PUT.
    assert got == want[:6]
    # Every match key is <device>:<suffix> with no further ':' (B1 fixed).
    for m in rtracker.puts():
        dev, suffix = m[2][1].rsplit(":", 1)
        assert dev == m[1] and suffix and " " not in suffix
        assert m[2][0] == px.port and m[3] is None
    # A client that got the key from the tracker is paired with its server.
    mk = rtracker.hand_out(used_dev)
    client_key = "client:%s -timeout=30" % mk
    cli = dial(px.port, client_key)
    assert read_reply(servers[used_dev]) == (CODE_SUCCESS, client_key)
    assert read_reply(cli) == (CODE_SUCCESS, "server:" + used_dev)
    # Relay the recorded session of that server.
    conn = srv_leg[used_num]
    recorded_client_key = conn["s2c"][8:8 + struct.unpack("<i", conn["s2c"][4:8])[0]]
    srv_bytes, cli_bytes = session_parts(conn, len(recorded_client_key), 9)
    cli.sendall(cli_bytes)
    assert recv_exact(servers[used_dev], len(cli_bytes)) == cli_bytes
    servers[used_dev].sendall(srv_bytes)
    assert recv_exact(cli, len(srv_bytes)) == srv_bytes
    servers[used_dev].close()
    assert is_closed(cli)
    # The server dials again: a new PUT with a fresh key, no new INFO.
    again = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    again.sendall(srv_leg[again_num]["c2s"])
    rtracker.wait(lambda: len(rtracker.puts(used_dev)) == 2)
    second = rtracker.puts(used_dev)[1]
    assert normalise(second) == want[6]
    assert second[2][1] != mk
    # The used key is gone: a second client with it is refused.
    late = dial(px.port, "client:%s" % mk)
    assert read_reply(late) == (CODE_MISMATCH, None)
    assert is_closed(late)


def test_tracker_mode_unknown_client_key_is_mismatch(spawn, rtracker):
    px = start_proxy(spawn, "--tracker", "127.0.0.1:%d" % rtracker.port)
    cli = dial(px.port, "client:K0")  # a device key is not a match key
    assert read_reply(cli) == (CODE_MISMATCH, None)
    assert is_closed(cli)
    px.wait_for("no server waits with match key=K0")


def test_handed_out_key_unused_is_regenerated(spawn, rtracker):
    px = start_proxy(spawn, "--tracker", "127.0.0.1:%d" % rtracker.port)
    srv = dial(px.port, "server:dev:with:colon")
    rtracker.wait(lambda: len(rtracker.puts()) == 1)
    first = rtracker.hand_out("dev:with:colon")  # nobody comes with it
    rtracker.wait(lambda: len(rtracker.puts()) == 2, timeout=15)
    m = rtracker.puts()[1]
    assert m[1] == "dev:with:colon"            # B1: the queue name is intact
    assert m[2][1].rsplit(":", 1)[0] == "dev:with:colon"
    assert m[2][1] != first
    px.wait_for("no incoming connection on 1 handed-out key")
    info = [msg for _, msg in rtracker.frames if msg[0] == 5]
    assert [i[1]["key"] for i in info] == ["server:proxy[dev:with:colon]"]
    srv.close()


def test_tracker_loss_reoffers_with_fresh_keys_and_info(spawn, rtracker):
    px = start_proxy(spawn, "--tracker", "127.0.0.1:%d" % rtracker.port)
    srv = dial(px.port, "server:K0")
    rtracker.wait(lambda: len(rtracker.puts()) == 1)
    # The server leaves while offered: the proxy re-registers (new link) so
    # that the tracker withdraws the stale offer (B6).
    srv.close()
    rtracker.wait(lambda: rtracker.connections == 2, timeout=5)
    px.wait_for("an offered server left")
    srv2 = dial(px.port, "server:K1")
    srv3 = dial(px.port, "server:K0")
    rtracker.wait(lambda: sum(1 for n, m in rtracker.frames if n == 2 and m[0] == 5) == 2)
    second = [m for n, m in rtracker.frames if n == 2]
    # On the new link: only live servers, and UPDATE_INFO again (B5).
    assert [m[1] for m in second if m[0] == 3] == ["K1", "K0"]
    assert second[-1][1]["key"] == "server:proxy[K1,K0]"
    # The tracker goes away: the proxy notices, keeps serving, and a key the
    # tracker handed out just before still reaches its server (grace).
    k1 = [m for m in second if m[0] == 3 and m[1] == "K1"][0][2][1]
    rtracker.close()
    px.wait_for("lost tracker connection")
    cli = dial(px.port, "client:" + k1)
    assert read_reply(cli) == (CODE_SUCCESS, "server:K1")
    assert read_reply(srv2) == (CODE_SUCCESS, "client:" + k1)
    srv3.close()


# ---- the web side ----------------------------------------------------------------

def test_websocket_server_serves_a_session(spawn):
    px = start_proxy(spawn, "--web-port", "0")
    m = px.wait_for(r"web listening on 127\.0\.0\.1:(\d+)")
    web_port = int(m.group(1))
    ws = WsClient(web_port)
    assert ws.status == 101
    # As TVM's browser server: three binary messages.
    ws.send_frame(struct.pack("<i", RPC_MAGIC))
    ws.send_frame(struct.pack("<i", 9))
    ws.send_frame(b"server:K0")
    time.sleep(0.2)
    client_key = "client:K0 -timeout=30"
    cli = dial(px.port, client_key)
    # The pairing reply arrives as three messages: code, length, key.
    assert ws.recv_binary() == struct.pack("<i", CODE_SUCCESS)
    assert ws.recv_binary() == struct.pack("<i", len(client_key))
    assert ws.recv_binary() == client_key.encode()
    assert read_reply(cli) == (CODE_SUCCESS, "server:K0")
    # Serve the recorded session: requests arrive as binary messages, the
    # replies (sent as 4 KiB messages like the browser does) as TCP bytes.
    conn = leg("server-proxy.jsonl", "proxy-notracker")[2]
    srv_bytes, cli_bytes = session_parts(conn, len(client_key), 9)
    cli.sendall(cli_bytes)
    assert ws.recv_bytes(len(cli_bytes)) == cli_bytes
    for i in range(0, len(srv_bytes), 4096):
        ws.send_frame(srv_bytes[i:i + 4096])
    assert recv_exact(cli, len(srv_bytes)) == srv_bytes
    # Ping is answered, fragmented messages are joined.
    ws.send_frame(b"hi", opcode=9)
    assert ws.recv_frame() == (10, b"hi")
    ws.send_frame(b"ab", opcode=2, fin=False)
    ws.send_frame(b"cd", opcode=0, fin=True)
    assert recv_exact(cli, 4) == b"abcd"
    # The client leaves: the WebSocket gets a close frame.
    cli.close()
    op, _ = ws.recv_frame()
    assert op == 8


def test_websocket_bad_input(spawn):
    px = start_proxy(spawn, "--web-port", "0")
    web_port = int(px.wait_for(r"web listening on 127\.0\.0\.1:(\d+)").group(1))
    # Cross-origin handshakes are refused, as tornado refuses them.
    ws = WsClient(web_port, origin="http://evil.example")
    assert ws.status == 403
    ok = WsClient(web_port, origin="http://127.0.0.1:%d" % web_port)
    assert ok.status == 101
    # Unknown path, plain GET of /ws.
    assert WsClient(web_port, path="/nothing").status == 404
    s = socket.create_connection(("127.0.0.1", web_port), timeout=5)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    # A frame over the 10 MiB bound: close 1009, connection closed.
    big = WsClient(web_port)
    big.sock.sendall(struct.pack("!BBQ", 0x82, 0x80 | 127, 11 << 20) + os.urandom(4))
    op, payload = big.recv_frame()
    assert op == 8 and payload[:2] == struct.pack("!H", 1009)
    assert is_closed(big.sock)
    px.wait_for("message over the size bound")
    # A text message: only binary is valid.
    txt = WsClient(web_port)
    txt.send_frame(b"hello", opcode=1)
    op, payload = txt.recv_frame()
    assert op == 8 and payload[:2] == struct.pack("!H", 1003)
    # An unmasked client frame.
    raw = WsClient(web_port)
    raw.sock.sendall(b"\x82\x02ab")
    assert raw.recv_frame()[0] == 8
    # A head that never ends is bounded.
    s = socket.create_connection(("127.0.0.1", web_port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000)
    except OSError:
        pass
    assert is_closed(s)
    # The TCP side still works.
    srv, cli = dial(px.port, "server:Z"), dial(px.port, "client:Z")
    assert read_reply(cli)[0] == CODE_SUCCESS
    assert read_reply(srv)[0] == CODE_SUCCESS


def test_web_port_is_off_unless_given_and_bound_to_host(spawn):
    px = start_proxy(spawn)
    time.sleep(0.2)
    assert "web listening" not in px.log()
    px2 = start_proxy(spawn, "--web-port", "0")
    m = px2.wait_for(r"web listening on (\S+):(\d+)")
    assert m.group(1) == "127.0.0.1"


def test_example_rpc_is_a_flag_and_serves_files(spawn, tmp_path):
    root = tmp_path / "tvm"
    (root / "web/apps/browser").mkdir(parents=True)
    (root / "web/dist/wasm").mkdir(parents=True)
    (root / "web/dist/www/sub").mkdir(parents=True)
    (root / "web/apps/browser/rpc_server.html").write_text(
        "<script>connect('ws://localhost:9190/ws')</script>")
    (root / "web/dist/tvmjs.bundle.js").write_text("var tvmjs = 1;")
    (root / "web/dist/wasm/tvmjs_runtime.wasi.js").write_text("var w = 2;")
    (root / "web/dist/www/sub/data.json").write_text('{"a": 1}')
    # Missing files: a clear error, not a traceback.
    r = run_ferry("proxy", "--port", "0", "--web-port", "0", "--example-rpc",
                  "--web-root", str(tmp_path / "missing"), timeout=10)
    assert r.returncode == 1 and "Cannot find" in r.stderr
    px = start_proxy(spawn, "--web-port", "0", "--example-rpc", "--web-root", str(root))
    web_port = int(px.wait_for(r"web listening on 127\.0\.0\.1:(\d+)").group(1))

    def get(path):
        s = socket.create_connection(("127.0.0.1", web_port), timeout=5)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head.decode(), body

    head, body = get("/")
    assert " 200 " in head and ("ws://localhost:%d/ws" % web_port).encode() in body
    head, body = get("/tvmjs.bundle.js")
    assert "text/javascript" in head and body == b"var tvmjs = 1;"
    head, body = get("/sub/data.json")
    assert "application/json" in head and body == b'{"a": 1}'
    assert " 404 " in get("/../etc/passwd")[0]


# ---- volume: wire speed, bounded memory -------------------------------------------

def pattern(n):
    block = hashlib.sha256(b"ferry").digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


@pytest.mark.parametrize("relay", ["portable", "splice"])
def test_large_transfer_is_byte_exact_with_bounded_memory(spawn, relay):
    """Through the portable relay and the kernel one (--splice, Linux)."""
    px = start_proxy(spawn, *(["--splice"] if relay == "splice" else []))
    total = 512 << 20
    srv = dial(px.port, "server:big")
    cli = dial(px.port, "client:big")
    assert read_reply(srv)[0] == CODE_SUCCESS
    assert read_reply(cli)[0] == CODE_SUCCESS
    hwm0 = vm_kib(px.proc.pid, "VmHWM")
    block = pattern(1 << 20)
    want = hashlib.sha256()
    for _ in range(total // len(block)):
        want.update(block)

    def send():
        for _ in range(total // len(block)):
            srv.sendall(block)
    t = threading.Thread(target=send)
    t.start()
    got = hashlib.sha256()
    buf = bytearray(1 << 20)
    n = 0
    cli.settimeout(30)
    stalled = False
    while n < total:
        if not stalled and n > total // 4:
            time.sleep(1.0)  # a slow reader: the proxy must stop reading
            stalled = True
        k = cli.recv_into(buf)
        assert k > 0
        got.update(memoryview(buf)[:k])
        n += k
    t.join()
    assert n == total and got.digest() == want.digest()
    grown = vm_kib(px.proc.pid, "VmHWM") - hwm0
    assert grown < 64 * 1024, "proxy peak RSS grew by %d KiB" % grown


# ---- end to end with the real tracker, server and client -----------------------

MODELS = os.path.join(os.path.dirname(FERRY), "tests", "models")
TESTLIB = os.path.join(MODELS, "testlib.so")


def through_proxy(spawn, port, key, tmp_path):
    return spawn("server", "--through-proxy", "--host", "127.0.0.1", "--port", str(port),
                 "--key", key, "--work-dir", str(tmp_path / ("w-" + key)), wait_listen=False)


def tensor_copy(args, tmp_path, n, timeout=60):
    np = pytest.importorskip("numpy")
    a = (np.arange(n, dtype=np.uint32) % 9973).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    p = run_ferry("run", *args, "--timeout", str(timeout), TESTLIB, "addone",
                  "--input", str(tmp_path / "a.npy"), "--output", str(tmp_path / "b.npy"),
                  timeout=2 * timeout)
    assert p.returncode == 0, p.stderr
    b = np.load(tmp_path / "b.npy")
    assert b.tobytes() == (a + 1).tobytes()


def test_real_server_and_client_without_tracker(spawn, tmp_path):
    if not os.path.exists(TESTLIB):
        pytest.skip("test models not built")
    px = start_proxy(spawn)
    through_proxy(spawn, px.port, "K0", tmp_path)
    px.wait_for(r"server:K0\] waits")
    hwm0 = vm_kib(px.proc.pid, "VmHWM")
    # A 512 MiB tensor each way through the proxy (upload, addone on the
    # device, download), byte-exact, while the proxy's peak memory stays
    # within a small bound: the relay applies back-pressure instead of
    # buffering a transfer.
    tensor_copy(["--proxy", "127.0.0.1:%d" % px.port, "--key", "K0"], tmp_path, 128 << 20,
                timeout=300)
    assert vm_kib(px.proc.pid, "VmHWM") - hwm0 < 32 * 1024
    # The server is back after the session; a second run works too.
    tensor_copy(["--proxy", "127.0.0.1:%d" % px.port, "--key", "K0"], tmp_path, 1000)


def test_how_to_scenario_with_real_tracker(spawn, tmp_path):
    """The TVM how-to's architecture: a tracker, a proxy registered at it,
    three servers K0, K1, K2 behind the proxy and one direct server."""
    if not tracker_built() or not os.path.exists(TESTLIB):
        pytest.skip("ferry tracker or test models not built")
    tr = spawn("tracker", "--port", "0")
    px = start_proxy(spawn, "--tracker", "127.0.0.1:%d" % tr.port)
    for k in ("K0", "K1", "K2"):
        through_proxy(spawn, px.port, k, tmp_path)
    spawn("server", "--port", "0", "--tracker", "127.0.0.1:%d" % tr.port, "--key", "cpu",
          "--work-dir", str(tmp_path / "w-cpu"))
    q = TrackerConn(tr.port)
    deadline = time.monotonic() + 15
    while True:
        code, summary = q.call([6])
        qi = summary["queue_info"]
        if all(qi.get(k, {}).get("free") == 1 for k in ("K0", "K1", "K2", "cpu")):
            break
        assert time.monotonic() < deadline, summary
        time.sleep(0.2)
    keys = [i["key"] for i in summary["server_info"]]
    proxied = [k for k in keys if k.startswith("server:proxy[")]
    assert len(proxied) == 1, keys
    assert sorted(proxied[0][len("server:proxy["):-1].split(",")) == ["K0", "K1", "K2"]
    addr = [i["addr"] for i in summary["server_info"] if i["key"] == proxied[0]][0]
    assert addr == ["127.0.0.1", px.port]
    # A client asks the tracker for K1 and runs through the proxy.
    tensor_copy(["--tracker", "127.0.0.1:%d" % tr.port, "--key", "K1"], tmp_path, 1 << 20)
    # The query tool counts the proxied keys.
    r = run_ferry("query", "--port", str(tr.port), timeout=20)
    assert r.returncode == 0, r.stderr
    assert "proxy[" in r.stdout and "K1" in r.stdout
    q.close()


def test_departed_server_offer_is_withdrawn_at_real_tracker(spawn, tmp_path):
    if not tracker_built():
        pytest.skip("ferry tracker not built")
    tr = spawn("tracker", "--port", "0")
    px = start_proxy(spawn, "--tracker", "127.0.0.1:%d" % tr.port)
    k0 = dial(px.port, "server:K0")
    k1 = dial(px.port, "server:K1")
    q = TrackerConn(tr.port)

    def free():
        return {k: v["free"] for k, v in q.call([6])[1]["queue_info"].items()}
    deadline = time.monotonic() + 10
    while free() != {"K0": 1, "K1": 1}:
        assert time.monotonic() < deadline, free()
        time.sleep(0.1)
    k0.close()
    deadline = time.monotonic() + 10
    while free().get("K0") != 0 or free().get("K1") != 1:
        assert time.monotonic() < deadline, free()
        time.sleep(0.1)
    # REQUEST K1 from the real tracker and pair with its key.
    q.send([4, "K1", "", 1])
    code, (host, port, mk) = q.recv()
    assert (code, host, port) == (0, "127.0.0.1", px.port)
    cli = dial(px.port, "client:" + mk)
    assert read_reply(cli) == (CODE_SUCCESS, "server:K1")
    assert read_reply(k1) == (CODE_SUCCESS, "client:" + mk)
    q.close()


def test_sigint_stops_cleanly_with_everything_open(spawn):
    """Pairs mid-transfer, parked servers, a WebSocket and a half-done
    handshake: SIGINT still frees everything (the fixture checks the exit
    status and the sanitizers' silence)."""
    px = start_proxy(spawn, "--web-port", "0")
    web_port = int(px.wait_for(r"web listening on 127\.0\.0\.1:(\d+)").group(1))
    srv, cli = dial(px.port, "server:S"), dial(px.port, "client:S")
    assert read_reply(srv)[0] == CODE_SUCCESS and read_reply(cli)[0] == CODE_SUCCESS
    srv.sendall(b"y" * (4 << 20))  # unread by the client: queued in the proxy
    parked = dial(px.port, "server:P")
    half = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    half.sendall(b"\x71\xf2")
    ws = WsClient(web_port)
    ws.send_frame(struct.pack("<ii", RPC_MAGIC, 8) + b"server:W")  # one message
    px.wait_for(r"server:W\] waits")
    px.wait_for(r"server:P\] waits")
    assert px.stop(signal.SIGINT) == 0
    px.wait_for("stopped")
    for s in (srv, cli, parked, half, ws.sock):
        s.close()
