"""packaging/wireshark/ferry.lua under Debian's tshark: on captures written
from every golden recording (both dialects, tracker, proxy), every message
is dissected, in the order and with the codes that `ferry dump` shows for
the same bytes (tests/unit/dump_expected/), and nothing is malformed."""
import glob
import os
import shutil
import subprocess

import pytest

from conftest import GOLDEN, ROOT
from pcap_util import golden_links, write_pcap

LUA = os.path.join(ROOT, "packaging", "wireshark", "ferry.lua")
EXPECTED = os.path.join(ROOT, "tests", "unit", "dump_expected")
LINKS = sorted(glob.glob(os.path.join(GOLDEN, "*", "*", "*.jsonl")))
CODES = {"kNone": 0, "kShutdown": 1, "kInitServer": 2, "kCallFunc": 3, "kReturn": 4,
         "kException": 5, "kCopyFromRemote": 6, "kCopyToRemote": 7, "kCopyAck": 8,
         "kGetGlobalFunc": 9, "kFreeHandle": 10, "kDevSetDevice": 11, "kDevGetAttr": 12,
         "kDevAllocData": 13, "kDevFreeData": 14, "kDevStreamSync": 15,
         "kCopyAmongRemote": 16, "kDevAllocDataWithScope": 17, "kDevCreateStream": 18,
         "kDevFreeStream": 19, "kDevSetStream": 20, "kDevGetCurrentStream": 21}

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark (Debian package tshark) is not installed")


def tshark(cap, *args):
    r = subprocess.run(["tshark", "-r", cap, "-X", "lua_script:" + LUA,
                        "-o", "ferry_tracker.ports:9190", "-o", "ferry_rpc.ports:9090"]
                       + list(args), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Lua: Error" not in r.stderr, r.stderr
    return r.stdout


def expected_tokens(link):
    """Per connection, the messages of the checked-in decoding as tokens:
    'hs' for a session handshake, 'magic' and 'frame' for a tracker link,
    the code number of each RPC packet."""
    rel = os.path.relpath(link, GOLDEN)[:-len(".jsonl")].replace(os.sep, "_")
    per = {}
    with open(os.path.join(EXPECTED, rel + ".txt")) as f:
        for line in f:
            parts = line.split(None, 4)
            if len(parts) < 5:
                continue
            conn, layer, text = parts[1], parts[3], parts[4]
            if layer == "handshake":
                tok = "magic" if text.startswith("tracker magic") else "hs"
            elif layer == "tracker":
                tok = "frame"
            elif layer == "rpc":
                tok = CODES[text.split()[0]]
            else:
                continue
            per.setdefault(conn, []).append(tok)
    return sorted(per.values(), key=str)


def dissected_tokens(cap):
    out = tshark(cap, "-T", "fields", "-E", "separator=/t", "-e", "tcp.stream",
                 "-e", "ferry_rpc.hs_word", "-e", "ferry_rpc.code",
                 "-e", "ferry_tracker.magic", "-e", "ferry_tracker.len")
    per = {}
    for line in out.splitlines():
        cols = line.split("\t")
        stream, hs, codes, magic, frames = (cols + [""] * 5)[:5]
        toks = per.setdefault(stream, [])
        # Inside one TCP segment a handshake precedes packets, a magic frames.
        toks += ["hs"] * len([x for x in hs.split(",") if x])
        toks += [int(x) for x in codes.split(",") if x]
        toks += ["magic"] * len([x for x in magic.split(",") if x])
        toks += ["frame"] * len([x for x in frames.split(",") if x])
    return sorted([t for t in per.values() if t], key=str)


@pytest.mark.parametrize("link", LINKS, ids=lambda p: os.path.relpath(p, GOLDEN))
def test_every_message_dissected(tmp_path, link):
    cap = str(tmp_path / "cap.pcap")
    port = 9190 if os.path.basename(link) in ("tracker.jsonl", "proxy-tracker.jsonl") else 9090
    write_pcap(cap, golden_links(link), server_port=port)
    assert dissected_tokens(cap) == expected_tokens(link)
    bad = tshark(cap, "-Y", "_ws.malformed || ferry_rpc.bad || ferry_tracker.bad "
                 "|| _ws.expert.severity >= 8388608")
    assert bad.strip() == ""


def test_malformed_packet_is_flagged(tmp_path):
    """A session whose packet carries arguments of no dialect is marked, so
    the check above would see a broken dissector."""
    import struct
    hello = struct.pack("<ii", 0xFF271, 7) + b"client:"
    bad = struct.pack("<Qii", 8, 9, 5000)  # kGetGlobalFunc with 5000 arguments
    cap = str(tmp_path / "bad.pcap")
    write_pcap(cap, [[("c2s", 0.0, hello), ("c2s", 0.1, bad)]])
    out = tshark(cap, "-Y", "ferry_rpc.bad")
    assert out.strip() != ""


def test_package_carries_the_dissector(tmp_path):
    """scripts/package.sh puts wireshark/ferry.lua in the tarball (run here
    on the native build; the aarch64 package test covers the rest)."""
    import tarfile
    from conftest import BUILD
    p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "package.sh"), BUILD,
                        os.uname().machine, str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0 and "besides glibc" in p.stderr:
        pytest.skip("this build links more than glibc: " + p.stderr.strip())
    assert p.returncode == 0, p.stderr
    tarball = [f for f in os.listdir(tmp_path) if f.endswith(".tar.gz")][0]
    with tarfile.open(tmp_path / tarball) as tf:
        names = {m.name.split("/", 1)[1]: m for m in tf.getmembers() if "/" in m.name}
        lua = tf.extractfile(names["wireshark/ferry.lua"]).read()
    with open(LUA, "rb") as f:
        assert lua == f.read()
