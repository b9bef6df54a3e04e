"""The Relax VM fixtures (issue 11, tests/models/relax/fx_*.rvm, built by
relax_fixture into libraries of both generations with testlib's C kernels)
run on a real `ferry server` through `ferry run`, in both session dialects;
every output is checked against numpy computed here (the MLP's weights
recomputed from relax_fixture's formula).  No TVM needed."""
import os

import numpy as np
import pytest

from conftest import BUILD, run_ferry
from test_graph_replay import no_sanitizer_reports

FIXTURES = os.path.join(BUILD, "tests", "models", "relax")

X4 = np.array([0.5, -1.0, 2.0, 3.25], dtype=np.float32)
X7 = np.arange(7, dtype=np.float32) * 0.5 - 1.0


def weight(rows, cols):
    """relax_fixture's weights: w[i][j] = ((7 i + 3 j) % 11 - 5) / 8."""
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return (((7 * i + 3 * j) % 11 - 5) / 8.0).astype(np.float32)


XM = (np.arange(16, dtype=np.float32).reshape(1, 16) - 7.5) / 4.0
MLP = np.maximum(XM.astype(np.float64) @ weight(16, 8), 0) @ weight(8, 4)


XC = ((np.arange(192, dtype=np.float32) % 13 - 6) / 4.0).reshape(1, 3, 8, 8)


def cnn_reference(x):
    """conv2d 3x3 same (weights wc reshaped) + relu, 2x2 max pool, dense."""
    w = weight(4, 27).reshape(4, 3, 3, 3).astype(np.float64)
    xp = np.pad(x[0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    y = np.zeros((4, 8, 8))
    for r in range(8):
        for q in range(8):
            y[:, r, q] = np.tensordot(w, xp[:, r:r + 3, q:q + 3], axes=3)
    y = np.maximum(y, 0)
    p = y.reshape(4, 4, 2, 4, 2).max(axis=(2, 4))
    return (p.reshape(1, 64) @ weight(64, 10)).astype(np.float32)


def helper(y):
    """fx_call.rvm's helper: (y + 1) * 2."""
    return (y + 1) * 2


# name, inputs, expected outputs (tuples flattened, as ferry run writes them)
CASES = [
    ("if_true", "fx_if", [np.array(True), X4], [X4 + 1]),
    ("if_false", "fx_if", [np.array(False), X4], [X4 * 2]),
    ("call", "fx_call", [X4], [helper(X4), helper(helper(X4))]),
    ("tuple", "fx_tuple", [X4], [X4 + 1, X4 * 2, X4 + 1]),
    ("dyn_7", "fx_dyn", [X7], [X7 + 1]),
    ("dyn_1", "fx_dyn", [X7[:1]], [X7[:1] + 1]),
    ("mlp", "fx_mlp", [XM], [MLP.astype(np.float32)]),
    ("cnn", "fx_cnn", [XC], [cnn_reference(XC)]),
]


@pytest.fixture(scope="module")
def libs():
    if not os.path.exists(os.path.join(FIXTURES, "fx_if_v020.so")):
        pytest.skip("relax fixtures not built")
    return FIXTURES


@pytest.mark.parametrize("gen", ["v020", "v026"])
@pytest.mark.parametrize("dialect", ["classic", "ffi"])
def test_fixtures_over_the_wire(spawn, libs, tmp_path, dialect, gen):
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    for name, lib, inputs, want in CASES:
        args = []
        for i, a in enumerate(inputs):
            p = tmp_path / ("%s_in%d.npy" % (name, i))
            np.save(p, a)
            args += ["--input", str(p)]
        outs = [tmp_path / ("%s_%s_out%d.npy" % (name, dialect, i)) for i in range(len(want))]
        for o in outs:
            args += ["--output", str(o)]
        p = run_ferry("run", "--port", str(server.port), "--dialect", dialect,
                      os.path.join(libs, "%s_%s.so" % (lib, gen)), *args)
        assert p.returncode == 0, (name, p.stdout, p.stderr)
        for o, w in zip(outs, want):
            got = np.load(o)
            assert got.dtype == np.float32 and got.shape == w.shape, (name, got)
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5, err_msg=name)
    no_sanitizer_reports(server)


def test_fixture_shape_check(spawn, libs, tmp_path):
    """A static fixture given the wrong shape: TVM's match_shape error, the
    server goes on."""
    server = spawn("server", "--host", "127.0.0.1", "--port", "0")
    p_in = tmp_path / "x7.npy"
    np.save(p_in, X7)
    p = run_ferry("run", "--port", str(server.port), os.path.join(libs, "fx_tuple_v020.so"),
                  "--input", str(p_in), "--output", str(tmp_path / "o.npy"))
    assert p.returncode != 0
    assert "match_cast error" in p.stderr or "mismatch" in p.stderr, p.stderr
    p_in4 = tmp_path / "x4.npy"
    np.save(p_in4, X4)
    outs = [tmp_path / ("t%d.npy" % i) for i in range(3)]
    p = run_ferry("run", "--port", str(server.port), os.path.join(libs, "fx_tuple_v020.so"),
                  "--input", str(p_in4), *sum([["--output", str(o)] for o in outs], []))
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(outs[1]), X4 * 2)
    no_sanitizer_reports(server)
