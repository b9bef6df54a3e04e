"""What the client subcommands say when they cannot get a session (issue
10, item 16): each thing once (the address, the reason), and what to try.
A port nobody listens on stands for a daemon that is not running."""
import os
import socket

import pytest

from conftest import BUILD, run_ferry

TESTLIB = os.path.join(BUILD, "tests", "models", "testlib.so")


@pytest.fixture
def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def one_line(p):
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = p.stderr.strip().split("\n")
    assert len(lines) == 1, p.stderr
    return lines[0]


COMMANDS = [
    ("run", [TESTLIB, "add_i64"]),
    ("time", [TESTLIB, "add_i64"]),
    ("upload", [TESTLIB]),
    ("download", ["x.txt", "--output", os.devnull]),
    ("ls", []),
    ("rm", ["x.txt"]),
]


@pytest.mark.parametrize("cmd,rest", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_server_refused(dead_port, cmd, rest):
    line = one_line(run_ferry(cmd, "--port", str(dead_port), *rest))
    addr = "127.0.0.1:%d" % dead_port
    assert line.startswith("ferry %s: " % cmd), line
    assert line.count(addr) == 1 and line.count("refused") == 1, line
    assert "cannot connect to %s: connection refused" % addr in line, line
    assert "is `ferry server` running there? check --host and --port" in line, line


def test_proxy_refused(dead_port):
    line = one_line(run_ferry("run", "--proxy", "127.0.0.1:%d" % dead_port, "--key", "k",
                              TESTLIB, "add_i64"))
    assert line.count("127.0.0.1:%d" % dead_port) == 1 and line.count("refused") == 1, line
    assert "check --proxy HOST:PORT" in line, line


def test_tracker_refused(dead_port):
    line = one_line(run_ferry("ls", "--tracker", "127.0.0.1:%d" % dead_port, "--key", "k",
                              "--tracker-retry", "0"))
    assert line.count("127.0.0.1:%d" % dead_port) == 1 and line.count("refused") == 1, line
    assert "cannot connect to tracker 127.0.0.1:%d: connection refused" % dead_port in line
    assert "is `ferry tracker` running there? check --tracker HOST:PORT" in line, line


def test_unknown_host():
    line = one_line(run_ferry("run", "--host", "no-such-host.invalid", TESTLIB, "add_i64"))
    assert line.count("no-such-host.invalid") == 1, line
    assert "does not resolve" in line and "check --host" in line, line


def test_query_refused(dead_port):
    # ferry query's own wording, over the client's tracker link: the
    # address and the reason once each.
    p = run_ferry("query", "--port", str(dead_port))
    line = one_line(p)
    assert line.count("127.0.0.1:%d" % dead_port) == 1 and line.count("refused") == 1, line


def test_wrong_key_and_reply_timeout(spawn):
    server = spawn("server", "--port", "0", "--key", "cpu")
    line = one_line(run_ferry("run", "--port", str(server.port), "--key", "gpu", TESTLIB,
                              "add_i64"))
    assert "cannot find server that matches key=client:gpu" in line and "check --key" in line
    crash = os.path.join(BUILD, "tests", "models", "crash.so")
    line = one_line(run_ferry("run", "--port", str(server.port), "--key", "cpu", "--timeout",
                              "1", crash, "crash", "--arg", "int:3", timeout=30))
    assert "no reply from" in line and line.count("within 1000 ms") == 1, line
    assert line.count("reply") == 1 and "--timeout" in line, line


def test_tracker_queue_timeout(spawn):
    tracker = spawn("tracker", "--port", "0")
    line = one_line(run_ferry("run", "--tracker", "127.0.0.1:%d" % tracker.port, "--key",
                              "nobody", "--timeout", "1", TESTLIB, "add_i64", timeout=30))
    assert line.count("127.0.0.1:%d" % tracker.port) == 1, line
    assert "no server of key 'nobody' became free" in line and "check --key" in line, line
