"""ferry server against careless or hostile peers (issue 10): --allow, a
session whose client left while its code loops, the work-folder quota.

Sessions are driven by the raw-socket client of test_session_replay_ffi
(the tvm-ffi dialect, as TVM >= 0.21 speaks it).
"""
import os
import socket
import struct
import time

import pytest

from conftest import BUILD, RPC_MAGIC, is_closed, recv_exact
from test_server import (CODE_SUCCESS, children, handshake, session_dirs,
                         start_server, wait_until)
import test_session_replay_ffi as ffi


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path / "work")


# ---- --allow ----------------------------------------------------------------

def connect_from(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def test_allow_refuses_other_addresses_at_accept(spawn, workdir):
    srv = start_server(spawn, workdir, "--allow", "127.0.0.1/32")
    srv.wait_for(r"accepting clients from 127\.0\.0\.1/32 only")
    s = connect_from(srv.port, "127.0.0.2")
    k = b"client:cpu"
    try:
        s.sendall(struct.pack("<ii", RPC_MAGIC, len(k)) + k)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert is_closed(s)
    srv.wait_for(r"connection from 127\.0\.0\.2:\d+ refused: not in --allow")
    assert not session_dirs(workdir)
    # From 127.0.0.1 the same handshake is served.
    s, code, skey = handshake(srv.port, "client:cpu")
    assert code == CODE_SUCCESS and skey == "server:cpu"
    s.close()
    srv.wait_for(r"session 1 from 127\.0\.0\.1:\d+ ended")


def test_allow_list_errors_are_usage_errors():
    from conftest import run_ferry
    r = run_ferry("server", "--port", "0", "--allow", "10.0.0.1/8")
    assert r.returncode == 2 and "host bits" in r.stderr
    r = run_ferry("server", "--port", "0", "--allow", "nonsense")
    assert r.returncode == 2 and "nonsense" in r.stderr
