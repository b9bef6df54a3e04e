"""A small classic-dialect RPC client for the OpenCL tests: enough of
TVM's protocol (rpc-session.md) to upload a library, put tensors on a
device, call a function and read the result, built on the packet codecs of
test_session_replay.py.  Not a mock of ferry: it talks to a real server."""
import socket
import struct

from conftest import RPC_MAGIC, recv_exact
import test_session_replay as sr

F32 = (2, 32, 1)


class Client:
    def __init__(self, port, key=b"client:"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(struct.pack("<iI", RPC_MAGIC, len(key)) + key)
        magic, klen = struct.unpack("<iI", recv_exact(self.sock, 8))
        assert magic == RPC_MAGIC
        recv_exact(self.sock, klen)
        self.send(2, struct.pack("<Q", 5) + b"0.8.0" + struct.pack("<i", 0))
        assert self.recv()[0] == 4

    def send(self, code, body):
        self.sock.sendall(struct.pack("<Qi", 4 + len(body), code) + body)

    def recv(self):
        (n,) = struct.unpack("<Q", recv_exact(self.sock, 8))
        pkt = recv_exact(self.sock, n)
        return struct.unpack_from("<i", pkt)[0], pkt[4:]

    def reply(self):
        code, body = self.recv()
        if code == 5:
            raise RuntimeError(sr.decode_seq(body)[0][0][1].decode())
        assert code == 4, code
        return sr.decode_seq(body)[0]

    def global_func(self, name):
        self.send(9, sr.encode_seq([(11, name.encode())]))
        return self.reply()[0][1]

    def call(self, handle, *vals):
        self.send(3, struct.pack("<Q", handle) + sr.encode_seq(list(vals)))
        v = self.reply()
        return v[1][1] if len(v) > 1 else None

    def upload_and_load(self, name, data):
        self.call(self.global_func("tvm.rpc.server.upload"), (11, name.encode()), (12, data))
        return self.call(self.global_func("tvm.rpc.server.load_module"), (11, name.encode()))

    def get_function(self, mod, name, query_imports=0):
        return self.call(self.global_func("tvm.rpc.server.ModuleGetFunction"), (9, mod),
                         (11, name.encode()), (0, query_imports))

    def alloc(self, dev, nbytes):
        self.send(13, sr.encode_seq([(6, struct.pack("<ii", *dev)), (0, nbytes), (0, 64),
                                     (5, struct.pack("<BBHI", *F32, 0))]))
        return self.reply()[0][1]

    def free(self, dev, ptr):
        self.send(14, sr.encode_seq([(6, struct.pack("<ii", *dev)), (3, ptr)]))
        self.reply()

    def attr(self, dev, kind):
        self.send(12, sr.encode_seq([(6, struct.pack("<ii", *dev)), (0, kind)]))
        return self.reply()[0][1]

    def sync(self, dev):
        self.send(15, sr.encode_seq([(6, struct.pack("<ii", *dev)), (3, 0)]))
        self.reply()

    @staticmethod
    def tensor(ptr, dev, shape, dtype=F32, byte_offset=0):
        return {"data": ptr, "dev": dev, "dtype": dtype, "shape": list(shape),
                "byte_offset": byte_offset}

    def copy_to(self, t, data):
        self.send(7, sr.encode_tensor(t) + struct.pack("<Q", len(data)) + data)
        self.reply()

    def copy_from(self, t, nbytes):
        self.send(6, sr.encode_tensor(t) + struct.pack("<Q", nbytes))
        code, body = self.recv()
        if code == 5:
            raise RuntimeError(sr.decode_seq(body)[0][0][1].decode())
        assert code == 8, code
        return body

    def close(self):
        self.sock.close()
