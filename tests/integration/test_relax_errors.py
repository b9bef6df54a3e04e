"""Bad input to the Relax VM over the wire (issue 11, "Bad input"): a
lying executable inside a real TVM v0.20 library (an unknown opcode, a
length past the library), a device the server does not have, calls out of
order, a shape that fails its check, a tuple asked for as one output, a
direct call with a plain remote array (refused as TVM v0.20 refuses it),
an allocation past --max-memory, and the VM builtins asked for as RPC
globals.  Each is an exception to the client naming what and where, and
the session goes on (a last testing.echo call answers)."""
import os
import struct

from conftest import GOLDEN
from test_graph_replay import call_global, no_sanitizer_reports, returned
from test_session_replay import decode_seq, encode_seq, exception_text, open_session

V020 = os.path.join(GOLDEN, "relax", "v0.20")


def read(name):
    with open(os.path.join(V020, name), "rb") as f:
        return f.read()


def patched_library(model, patch):
    """The real library with its executable passed through patch(exec) ->
    (new exec bytes, new length word)."""
    so, ex = read(model + ".so"), read(model + ".exec")
    at = so.find(ex)
    assert at > 8 and struct.unpack_from("<Q", so, at - 8)[0] == len(ex)
    new, length = patch(bytearray(ex))
    assert len(new) == len(ex)
    return so[:at - 8] + struct.pack("<Q", length) + bytes(new) + so[at + len(ex):]


class Session:
    def __init__(self, port):
        self.r = open_session(port)
        self.r.send(9, encode_seq([(11, b"tvm.rpc.server.ModuleGetFunction")]))
        (_, self.mgf), = decode_seq(self.r.recv()[1])[0]

    def load(self, name, data):
        returned(call_global(self.r, "tvm.rpc.server.upload", [(11, name), (12, data)]))
        return call_global(self.r, "tvm.rpc.server.load_module", [(11, name)])

    def method(self, mod, name):
        self.r.send(3, struct.pack("<Q", self.mgf) + encode_seq([(9, mod), (11, name), (15, 1)]))
        return returned(self.r.recv())

    def call(self, f, args):
        self.r.send(3, struct.pack("<Q", f) + encode_seq(args))
        return self.r.recv()

    def tensor(self, shape):
        tmpl = {"data": 0, "dev": (1, 0), "dtype": (2, 32, 1), "shape": list(shape),
                "byte_offset": 0}
        self.r.send(17, encode_seq([(7, tmpl), (4, None)]))
        (_, ptr), = returned(self.r.recv())
        return dict(tmpl, data=ptr)

    def vm(self, model):
        (_, kind), (_, rexec) = returned(self.load(model.encode() + b".so",
                                                   read(model + ".so")))
        assert kind == 9
        (_, load) = self.method(rexec, b"vm_load_executable")[1]
        (_, kind), (_, vm) = returned(self.call(load, []))
        assert kind == 9
        return vm

    def alive(self):
        text = returned(call_global(self.r, "testing.echo", [(0, 42)]))
        assert text == [(0, 0), (0, 42)], text


def test_lying_executables_are_refused_at_load(spawn):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    s = Session(server.port)

    def bad_opcode(ex):
        # The last instruction of mlp's main is `ret %8`: [2, 8].
        assert struct.unpack_from("<qq", ex, len(ex) - 16) == (2, 8)
        struct.pack_into("<q", ex, len(ex) - 16, 9)
        return ex, len(ex)

    text = exception_text(s.load(b"bad_opcode.so", patched_library("mlp", bad_opcode)))
    assert "function 'main' (#0), instruction 22" in text, text
    assert "unknown opcode (opcode word 9)" in text, text

    def long_length(ex):
        return ex, 1 << 40

    text = exception_text(s.load(b"long.so", patched_library("mlp", long_length)))
    assert "relax.VMExecutable: length 1099511627776 is more than" in text, text

    def jump_out(ex):
        # ret %8 -> goto +100 (out of the function).
        struct.pack_into("<qq", ex, len(ex) - 16, 3, 100)
        return ex, len(ex)

    text = exception_text(s.load(b"jump.so", patched_library("mlp", jump_out)))
    assert "function 'main' (#0), instruction 22" in text, text
    s.alive()
    s.r.sock.close()
    no_sanitizer_reports(server)


def test_run_time_errors_keep_the_session(spawn):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    s = Session(server.port)
    vm = s.vm("two_outputs")
    (_, init) = s.method(vm, b"vm_initialization")[1]
    text = exception_text(s.call(init, [(0, 2), (0, 0), (0, 2)]))
    assert "device type 2 is not supported" in text, text
    (_, invoke) = s.method(vm, b"invoke_stateful")[1]
    text = exception_text(s.call(invoke, [(11, b"main")]))
    assert "not initialised" in text, text
    returned(s.call(init, [(0, 1), (0, 0), (0, 2)]))
    text = exception_text(s.call(invoke, [(11, b"main")]))
    assert "set_input first" in text, text
    (_, set_input) = s.method(vm, b"set_input")[1]
    (_, get_output) = s.method(vm, b"get_output")[1]
    text = exception_text(s.call(get_output, [(11, b"main")]))
    assert "invoke_stateful first" in text, text
    text = exception_text(s.call(set_input, [(11, b"nope"), (7, s.tensor((3, 4)))]))
    assert "no VM function 'nope'" in text, text
    # A shape the model does not take: TVM's words, naming the parameter.
    returned(s.call(set_input, [(11, b"main"), (7, s.tensor((4, 4)))]))
    text = exception_text(s.call(invoke, [(11, b"main")]))
    assert text.startswith("Check failed: input_shape[i] == reg (4 vs. 3) : "
                           "ErrorContext(fn=main, loc=param[0], param=x"), text
    # The right shape runs; the tuple must be indexed.
    returned(s.call(set_input, [(11, b"main"), (7, s.tensor((3, 4)))]))
    returned(s.call(invoke, [(11, b"main")]))
    text = exception_text(s.call(get_output, [(11, b"main")]))
    assert "tuple" in text, text
    text = exception_text(s.call(get_output, [(11, b"main"), (0, 7)]))
    assert "index 7" in text, text
    (_, kind), (_, t), (_, h) = returned(s.call(get_output, [(11, b"main"), (0, 1)]))
    assert kind == 13 and t["shape"] == [3, 4]
    # v0.20 refuses a plain remote array in a direct call, as TVM does.
    (_, main) = s.method(vm, b"main")[1]
    text = exception_text(s.call(main, [(7, s.tensor((3, 4)))]))
    assert "expected Object but got ArrayHandle" in text, text
    # The builtins take a VM pointer: they are not RPC globals.
    for name in (b"vm.builtin.alloc_storage", b"vm.builtin.invoke_closure"):
        s.r.send(9, encode_seq([(11, name)]))
        reply = s.r.recv()
        assert reply[0] == 5 or decode_seq(reply[1])[0] == [(3, 0)], reply
    s.alive()
    s.r.sock.close()
    no_sanitizer_reports(server)


def test_allocation_past_max_memory(spawn):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0", "--max-memory", "16K")
    s = Session(server.port)
    vm = s.vm("mlp")
    (_, init) = s.method(vm, b"vm_initialization")[1]
    returned(s.call(init, [(0, 1), (0, 0), (0, 2)]))
    (_, set_input) = s.method(vm, b"set_input")[1]
    (_, invoke) = s.method(vm, b"invoke_stateful")[1]
    returned(s.call(set_input, [(11, b"main"), (7, s.tensor((1, 64)))]))
    text = exception_text(s.call(invoke, [(11, b"main")]))
    assert "--max-memory" in text, text
    assert "relax VM: function 'main'" in text, text
    s.alive()
    s.r.sock.close()
    no_sanitizer_reports(server)


# ---- ferry run MODEL.so on the real TVM libraries ---------------------------

def test_ferry_run_relax_models(spawn, tmp_path):
    """`ferry run` detects the Relax executable, sets inputs in order or by
    parameter name, flattens a tuple result to one .npy per element, and
    prints the stage times; the outputs are TVM's, in both generations."""
    import numpy as np
    from conftest import run_ferry

    srv = spawn("server", "--port", "0")
    for gen in ("v0.20", "v0.26"):
        d = os.path.join(GOLDEN, "relax", gen)
        for name, n, spec in (("mlp", 1, "x="), ("two_outputs", 2, "")):
            outs = [str(tmp_path / ("%s_%s_%d.npy" % (gen, name, i))) for i in range(n)]
            args = ["run", "--port", str(srv.port), os.path.join(d, name + ".so"),
                    "--input", spec + os.path.join(d, name + "_in0.npy")]
            for o in outs:
                args += ["--output", o]
            p = run_ferry(*args, timeout=120)
            assert p.returncode == 0, p.stdout + p.stderr
            assert "Relax VM executable" in p.stdout
            for stage in ("upload", "load", "create", "set inputs", "first run", "run",
                          "get outputs"):
                assert "  " + stage + " " in p.stdout, p.stdout
            for i, o in enumerate(outs):
                want = np.load(os.path.join(d, "%s_out%d.npy" % (name, i)))
                got = np.load(o)
                assert got.shape == want.shape and got.dtype == want.dtype
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # A wrong input name, and a missing input: a clear message.
    d = os.path.join(GOLDEN, "relax", "v0.20")
    p = run_ferry("run", "--port", str(srv.port), os.path.join(d, "mlp.so"), "--input",
                  "nope=" + os.path.join(d, "mlp_in0.npy"), timeout=120)
    assert p.returncode != 0 and "'nope' names no input of main" in p.stderr, p.stderr
    p = run_ferry("run", "--port", str(srv.port), os.path.join(d, "mlp.so"), timeout=120)
    assert p.returncode != 0 and "main takes 1 inputs, 0 given" in p.stderr, p.stderr


def test_relax_models_through_tracker_and_proxy(spawn, tmp_path):
    """TVM's documented path for a TVM >= 0.20 model: a client asks the
    tracker for a key served by a device behind the proxy, and runs the
    model there with set_input / invoke_stateful / get_outputs and the
    time evaluator (what `ferry run` does), in both generations."""
    import numpy as np
    from conftest import run_ferry
    from test_models import wait_free

    tr = spawn("tracker", "--port", "0")
    px = spawn("proxy", "--port", "0", "--tracker", "127.0.0.1:%d" % tr.port)
    spawn("server", "--through-proxy", "--host", "127.0.0.1", "--port", str(px.port),
          "--key", "R0", "--work-dir", str(tmp_path / "w0"), wait_listen=False)
    wait_free(tr.port, ["R0"])
    for gen in ("v0.20", "v0.26"):
        d = os.path.join(GOLDEN, "relax", gen)
        out = str(tmp_path / ("%s.npy" % gen))
        p = run_ferry("run", "--tracker", "127.0.0.1:%d" % tr.port, "--key", "R0",
                      os.path.join(d, "mlp.so"), "--input", os.path.join(d, "mlp_in0.npy"),
                      "--output", out, "--repeat", "5", timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "mean of 5 runs" in p.stdout, p.stdout
        np.testing.assert_allclose(np.load(out), np.load(os.path.join(d, "mlp_out0.npy")),
                                   rtol=1e-5, atol=1e-6)
        wait_free(tr.port, ["R0"])
