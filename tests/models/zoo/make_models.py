#!/usr/bin/env python3
"""Writes ferry's model zoo: for each network a graph JSON in TVM's graph
executor format (spec runtime-abi.md 8.1), its parameters as a TVM
parameter dict (spec 10.2, what relay.save_param_dict writes) and an
example input, all deterministic (fixed numpy seeds).

    make_models.py OUTDIR [mlp|cnn ...]
      -> OUTDIR/<name>.json, <name>.params, <name>_input.npy

The operators are the kernels of zoo_kernels.c; `ferry pack` links them
with a graph and its parameters into one library.  The tests compute the
reference outputs with numpy on their own (test_models.py)."""
import json
import os
import struct
import sys

import numpy as np

NDARRAY_MAGIC = 0xDD5E40F096B4A13F
PARAMS_MAGIC = 0xF7E58D4F05049CB7


def save_param_dict(params):
    """TVM's parameter dict of float32 arrays, in insertion order."""
    out = [struct.pack("<QQQ", PARAMS_MAGIC, 0, len(params))]
    for name in params:
        b = name.encode()
        out.append(struct.pack("<Q", len(b)) + b)
    out.append(struct.pack("<Q", len(params)))
    for arr in params.values():
        arr = np.ascontiguousarray(arr, dtype="<f4")
        out.append(struct.pack("<QQiii", NDARRAY_MAGIC, 0, 1, 0, arr.ndim))
        out.append(struct.pack("<BBH", 2, 32, 1))
        out.append(struct.pack("<%dq" % arr.ndim, *arr.shape))
        out.append(struct.pack("<q", arr.nbytes) + arr.tobytes())
    return b"".join(out)


class Graph:
    """Builds a graph JSON; every value is float32."""

    def __init__(self):
        self.nodes, self.shapes, self.arg_nodes, self.params = [], [], [], {}

    def _node(self, node, shape):
        self.nodes.append(node)
        self.shapes.append(list(shape))
        return len(self.nodes) - 1

    def input(self, name, shape):
        nid = self._node({"op": "null", "name": name, "inputs": []}, shape)
        self.arg_nodes.append(nid)
        return nid

    def param(self, name, value):
        self.params[name] = value.astype(np.float32)
        return self.input(name, value.shape)

    def op(self, func, inputs, shape, name=None):
        attrs = {"func_name": func, "num_inputs": str(len(inputs)), "num_outputs": "1",
                 "flatten_data": "0"}
        return self._node({"op": "tvm_op", "name": name or "%s_%d" % (func, len(self.nodes)),
                           "attrs": attrs, "inputs": [[i, 0, 0] for i in inputs]}, shape)

    def storage(self, heads):
        """Storage ids as a compiler's planner gives them: inputs and
        parameters their own; an operator output reuses the storage of an
        earlier output of the same size once nothing reads it any more."""
        last_use = {}
        for nid, node in enumerate(self.nodes):
            for i, _, _ in node["inputs"]:
                last_use[i] = nid
        for h in heads:
            last_use[h] = len(self.nodes)
        sid, free, nxt = [], [], 0
        for nid, node in enumerate(self.nodes):
            size = int(np.prod(self.shapes[nid]))
            pick = None
            if node["op"] == "tvm_op":
                for k, (s, fsize) in enumerate(free):
                    if fsize == size:
                        pick = free.pop(k)[0]
                        break
            if pick is None:
                pick, nxt = nxt, nxt + 1
            sid.append(pick)
            if node["op"] == "tvm_op":
                for i, _, _ in node["inputs"]:
                    if last_use.get(i) == nid and self.nodes[i]["op"] == "tvm_op":
                        free.append((sid[i], int(np.prod(self.shapes[i]))))
        return sid

    def json(self, heads):
        n = len(self.nodes)
        return json.dumps({
            "nodes": self.nodes,
            "arg_nodes": self.arg_nodes,
            "heads": [[h, 0, 0] for h in heads],
            "attrs": {
                "dltype": ["list_str", ["float32"] * n],
                "storage_id": ["list_int", self.storage(heads)],
                "shape": ["list_shape", self.shapes],
            },
            "node_row_ptr": list(range(n + 1)),
        }, indent=1)


def mlp():
    """data[1,64] -> dense 32 -> +bias -> relu -> dense 10 (+bias) -> softmax."""
    rng = np.random.RandomState(5)
    g = Graph()
    x = g.input("data", (1, 64))
    w1 = g.param("dense1_weight", rng.randn(32, 64) * 0.2)
    b1 = g.param("dense1_bias", rng.randn(32) * 0.1)
    w2 = g.param("dense2_weight", rng.randn(10, 32) * 0.3)
    b2 = g.param("dense2_bias", rng.randn(10) * 0.1)
    h = g.op("zoo_dense", [x, w1], (1, 32))
    h = g.op("zoo_add", [h, b1], (1, 32))
    h = g.op("zoo_relu", [h], (1, 32))
    h = g.op("zoo_dense_bias", [h, w2, b2], (1, 10))
    out = g.op("zoo_softmax", [h], (1, 10), name="softmax")
    return g, [out], rng.randn(1, 64).astype(np.float32)


def cnn():
    """data[1,3,16,16] -> conv 8x3x3 (same, +bias, relu) -> max pool 2
    -> conv 8x3x3 (same, +bias) -> relu -> avg pool 2 -> flatten [1,128]
    -> dense 10 + bias -> softmax."""
    rng = np.random.RandomState(7)
    g = Graph()
    x = g.input("data", (1, 3, 16, 16))
    k1 = g.param("conv1_weight", rng.randn(8, 3, 3, 3) * 0.3)
    c1 = g.param("conv1_bias", rng.randn(8) * 0.1)
    k2 = g.param("conv2_weight", rng.randn(8, 8, 3, 3) * 0.2)
    c2 = g.param("conv2_bias", rng.randn(8) * 0.1)
    w = g.param("dense_weight", rng.randn(10, 128) * 0.2)
    b = g.param("dense_bias", rng.randn(10) * 0.1)
    h = g.op("zoo_conv2d_bias_relu", [x, k1, c1], (1, 8, 16, 16))
    h = g.op("zoo_max_pool2d", [h], (1, 8, 8, 8))
    h = g.op("zoo_conv2d_bias", [h, k2, c2], (1, 8, 8, 8))
    h = g.op("zoo_relu", [h], (1, 8, 8, 8))
    h = g.op("zoo_avg_pool2d", [h], (1, 8, 4, 4))
    h = g.op("zoo_reshape", [h], (1, 128))
    h = g.op("zoo_dense_bias", [h, w, b], (1, 10))
    out = g.op("zoo_softmax", [h], (1, 10), name="softmax")
    return g, [out], rng.rand(1, 3, 16, 16).astype(np.float32)


MODELS = {"mlp": mlp, "cnn": cnn}


def write(outdir, name):
    g, heads, x = MODELS[name]()
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        f.write(g.json(heads))
    with open(os.path.join(outdir, name + ".params"), "wb") as f:
        f.write(save_param_dict(g.params))
    np.save(os.path.join(outdir, name + "_input.npy"), x)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    os.makedirs(argv[1], exist_ok=True)
    for name in argv[2:] or sorted(MODELS):
        write(argv[1], name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
