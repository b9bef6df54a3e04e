"""Writes pcap captures of recorded TCP connections (Ethernet, IPv4, TCP
with a SYN handshake, each recorded chunk one segment in the recorded
order, FIN at the end), for the `ferry dump --read` and Wireshark
dissector tests."""
import json
import struct


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _frame(src, dst, sport, dport, seq, ack, flags, payload):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      5 << 4, flags, 65535, 0, 0) + payload
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
    return eth + ip + tcp


def write_pcap(path, links, server_port=9090, max_seg=1400, retransmit=False):
    """links: list of lists of (dir, t, bytes) events (dir c2s/s2c), one list
    per TCP connection.  Each connection gets its own client port.  With
    retransmit, every data segment is captured twice (same sequence number)."""
    cli, srv = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2])
    recs = []
    for i, events in enumerate(links):
        cport = 40000 + i
        seq = {"c2s": 1000, "s2c": 5000}
        t0 = events[0][1] if events else 0.0
        recs.append((t0, _frame(cli, srv, cport, server_port, seq["c2s"] - 1, 0, 0x02, b"")))
        recs.append((t0, _frame(srv, cli, server_port, cport, seq["s2c"] - 1, seq["c2s"],
                                0x12, b"")))
        for d, t, data in events:
            for off in range(0, len(data), max_seg):
                part = data[off:off + max_seg]
                for _ in range(2 if retransmit else 1):
                    if d == "c2s":
                        recs.append((t, _frame(cli, srv, cport, server_port, seq["c2s"],
                                               seq["s2c"], 0x18, part)))
                    else:
                        recs.append((t, _frame(srv, cli, server_port, cport, seq["s2c"],
                                               seq["c2s"], 0x18, part)))
                seq[d] += len(part)
        t1 = events[-1][1] if events else 0.0
        recs.append((t1, _frame(cli, srv, cport, server_port, seq["c2s"], seq["s2c"], 0x11, b"")))
        recs.append((t1, _frame(srv, cli, server_port, cport, seq["s2c"], seq["c2s"] + 1,
                                0x11, b"")))
    recs.sort(key=lambda r: r[0])  # stable: order inside one time is kept
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for t, fr in recs:
            sec = int(t)
            usec = int(round((t - sec) * 1e6))
            f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)) + fr)


def golden_links(path):
    """The connections of a golden .jsonl link with data, as event lists."""
    conns = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if rec["dir"] in ("c2s", "s2c"):
                conns.setdefault(rec["conn"], []).append(
                    (rec["dir"], rec["t"], bytes.fromhex(rec["hex"])))
    return [conns[k] for k in sorted(conns)]
