"""load_module of a damaged library over the wire, against a real `ferry
server`: a truncated copy of testlib.so (every segment's file bytes are
checked before dlopen, which used to die of SIGBUS and leave the client a
closed connection) is answered with an exception that names the problem,
and the good library then loads and runs in the same session."""
import struct

from test_graph_replay import call_global, no_sanitizer_reports, returned
from test_session_replay import build_testlib, encode_seq, exception_text, open_session


def dynamic_offset(elf):
    """p_offset of the PT_DYNAMIC segment of a 64-bit little-endian ELF."""
    assert elf[4] == 2 and elf[5] == 1
    phoff, = struct.unpack_from("<Q", elf, 32)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    for i in range(phnum):
        ptype, _, off = struct.unpack_from("<IIQ", elf, phoff + i * phentsize)
        if ptype == 2:
            return off
    raise AssertionError("no PT_DYNAMIC")


def test_truncated_elf_is_an_error_and_the_session_goes_on(spawn):
    testlib = build_testlib()
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = open_session(server.port)
    cut = dynamic_offset(testlib) + 16  # inside the segments dlopen reads
    cases = [
        (b"cut.so", testlib[:cut], "truncated ELF: segment"),
        (b"half.so", testlib[:len(testlib) // 2], "truncated ELF: "),
        (b"header.so", testlib[:64], "truncated ELF: program header table"),
        (b"empty.so", b"", "not a shared library (no ELF header)"),
    ]
    for name, data, want in cases:
        returned(call_global(r, "tvm.rpc.server.upload", [(11, name), (12, data)]))
        text = exception_text(call_global(r, "tvm.rpc.server.load_module", [(11, name)]))
        assert "cannot load %s: %s" % (name.decode(), want) in text, text
        assert "file has %d bytes" % len(data) in text or not data, text
    returned(call_global(r, "tvm.rpc.server.upload", [(11, b"testlib.so"), (12, testlib)]))
    (_, kind), (_, lib) = returned(call_global(r, "tvm.rpc.server.load_module",
                                               [(11, b"testlib.so")]))
    assert kind == 9
    # The loaded library is usable: its kernel is found.
    r.send(9, encode_seq([(11, b"tvm.rpc.server.ModuleGetFunction")]))
    (_, mgf), = returned(r.recv())
    r.send(3, struct.pack("<Q", mgf) + encode_seq([(9, lib), (11, b"addone"), (0, 1)]))
    (_, kind), (_, addone) = returned(r.recv())
    assert kind == 10 and addone != 0
    r.sock.close()
    no_sanitizer_reports(server)
