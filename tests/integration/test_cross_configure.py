"""The README's cross build command configures without the target's test
libraries (issue 10, item 15): `cmake -S . -B build-aarch64
-DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake`, bare, as
a vendor-toolchain user types it (make cross adds -DFERRY_TESTS=OFF; this
does not).  Skipped when the cross compiler is not installed."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

TOOLCHAIN = os.path.join(ROOT, "cmake", "toolchains", "aarch64-linux-gnu.cmake")


def configure(build, *extra):
    return subprocess.run(["cmake", "-S", ROOT, "-B", str(build),
                           "-DCMAKE_TOOLCHAIN_FILE=" + TOOLCHAIN] + list(extra),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def cross_gcc():
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc not installed (sh scripts/install-deps.sh --cross "
                    "aarch64)")


def cache(build, name):
    with open(os.path.join(str(build), "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    return None


def test_bare_cross_configure(cross_gcc, tmp_path):
    p = configure(tmp_path / "build-aarch64")
    assert p.returncode == 0, p.stdout + p.stderr
    assert cache(tmp_path / "build-aarch64", "FERRY_TESTS") == "OFF"


def test_cross_with_tests_asked_for(cross_gcc, tmp_path):
    # Asked for explicitly without the target's cmocka: configured anyway,
    # with a message saying the unit tests are left out.
    have = os.path.exists("/usr/lib/aarch64-linux-gnu/libcmocka.so")
    p = configure(tmp_path / "b", "-DFERRY_TESTS=ON")
    assert p.returncode == 0, p.stdout + p.stderr
    if not have:
        assert "unit tests are not built" in p.stderr, p.stderr
