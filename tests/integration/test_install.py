"""`make install` (cmake --install) lays out what the README promises: the
ferry binary with its TVM-style names beside it, the client archive and
pkg-config file; the names dispatch to the right tool."""
import os
import subprocess

from conftest import BUILD


def test_install_puts_tool_names_beside_the_binary(tmp_path):
    prefix = tmp_path / "prefix"
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    bindir = prefix / "bin"
    assert (bindir / "ferry").is_file()
    for name in ("rpc_tracker", "rpc_proxy", "rpc_server", "query_rpc_tracker"):
        link = bindir / name
        assert link.is_symlink() and os.readlink(link) == "ferry", name
    assert (prefix / "lib" / "libferry.a").is_file()
    assert (prefix / "lib" / "pkgconfig" / "ferry.pc").is_file()
    # Run under its TVM name, the binary acts as that tool.
    out = subprocess.run([str(bindir / "query_rpc_tracker"), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "usage: ferry query" in out.stdout
    out = subprocess.run([str(bindir / "rpc_server"), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "usage: ferry server" in out.stdout
