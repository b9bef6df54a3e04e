"""Remote objects (type code 8): a function that returns an object other
than a function, module or tensor hands the client an RPCObjectRef handle,
which the client passes back and frees.  runtime.ShapeTuple and the two
functions that read one are what TVM's test_rpc_return_remote_object uses
(on every server: they are TVM runtime functions, not --testing ones).

Raw classic-dialect client (test_session_replay), as TVM <= 0.20 sends."""
import struct

import test_session_replay as classic
from test_server_testing import classic_call, classic_lookup
from test_session_replay_ffi import no_sanitizer_reports


def test_shape_tuple_round_trip(spawn):
    srv = spawn("server", "--host", "127.0.0.1", "--port", "0")
    r = classic.open_session(srv.port)
    make = classic_lookup(r, b"runtime.ShapeTuple")
    elem = classic_lookup(r, b"runtime.GetShapeTupleElem")
    size = classic_lookup(r, b"runtime.GetShapeTupleSize")
    assert make and elem and size
    ret = classic_call(r, make, [(0, 2), (0, 3)])
    assert ret[0] == (0, 8), ret
    # Returned as (type int 8, the handle as code 3); passed back as code 8
    # with the RPC object reference's type index, 9.
    code, handle = ret[1]
    assert code == 3 and handle != 0
    shape = (8, (9, handle))
    assert classic_call(r, elem, [shape, (0, 0)]) == [(0, 0), (0, 2)]
    assert classic_call(r, elem, [shape, (0, 1)]) == [(0, 0), (0, 3)]
    assert classic_call(r, size, [shape]) == [(0, 0), (0, 2)]
    # Bad input: an error, and the session goes on.
    assert "IndexError" in classic_call(r, elem, [shape, (0, 2)])
    assert "IndexError" in classic_call(r, elem, [shape, (0, -1)])
    assert "TypeError" in classic_call(r, size, [(0, 5)])
    # An empty shape, then free the first one as the client's GC does.
    ret = classic_call(r, make, [])
    assert classic_call(r, size, [(8, (9, ret[1][1]))]) == [(0, 0), (0, 0)]
    r.send(10, classic.encode_seq([(3, handle), (0, 8)]))  # kFreeHandle
    assert r.recv()[0] == 4
    assert "released" in classic_call(r, size, [shape])
    r.send(1, b"")
    r.sock.close()
    srv.wait_for(r"session 1 from \S+ ended: ok")
    no_sanitizer_reports(srv)
