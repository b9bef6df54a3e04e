#!/usr/bin/python3
"""Runs TVM's RPC test suite against ferry's tracker, proxy and server.

    FERRY_TVM_PYTHONPATH=/path/to/tvm/python [FERRY_TVM_LIBRARY_PATH=/path/to/tvm/build] \
        /usr/bin/python3 tests/tvm/run.py [pytest args...]

Without FERRY_TVM_PYTHONPATH it says so and exits 0 (skipped), so a
machine without TVM passes.  See tests/tvm/README.md.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The test files, relative to TVM's source tree (the folder above python/).
PYTEST_FILES = ["tests/python/runtime/test_runtime_rpc.py"]
SCRIPTS = ["tests/python/contrib/test_rpc_proxy.py", "tests/python/contrib/test_rpc_tracker.py"]


def tvm_env():
    pypath = os.environ.get("FERRY_TVM_PYTHONPATH")
    if not pypath:
        return None, None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE, pypath] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if os.environ.get("FERRY_TVM_LIBRARY_PATH"):
        env["TVM_LIBRARY_PATH"] = os.environ["FERRY_TVM_LIBRARY_PATH"]
    src = os.environ.get("FERRY_TVM_SOURCE") or os.path.dirname(os.path.abspath(pypath))
    return env, src


def main(argv):
    env, src = tvm_env()
    if env is None:
        print("tests/tvm: skipped: set FERRY_TVM_PYTHONPATH to a TVM build's python/ folder "
              "(and FERRY_TVM_LIBRARY_PATH to its build/ folder) to run TVM's RPC tests "
              "against ferry")
        return 0
    only_scripts = "--scripts" in argv
    only_pytest = "--pytest" in argv
    argv = [a for a in argv if a not in ("--scripts", "--pytest")]
    py = os.environ.get("FERRY_TVM_PYTHON", "/usr/bin/python3")
    rc = 0
    if not only_scripts:
        files = [os.path.join(src, f) for f in PYTEST_FILES]
        cmd = [py, "-m", "pytest", "-p", "ferry_tvm", "-p", "no:cacheprovider",
               "--rootdir", HERE, "-c", os.devnull] + files + argv
        print("tests/tvm: " + " ".join(cmd), flush=True)
        rc = subprocess.call(cmd, env=env, cwd=HERE) or rc
    if not only_pytest:
        for s in SCRIPTS:
            path = os.path.join(src, s)
            code = ("import ferry_tvm, runpy, sys; ferry_tvm.install(); sys.argv = [%r]; "
                    "runpy.run_path(%r, run_name='__main__')" % (path, path))
            print("tests/tvm: script %s" % s, flush=True)
            try:
                r = subprocess.call([py, "-c", code], env=env, cwd=HERE,
                                    timeout=float(os.environ.get("FERRY_TVM_SCRIPT_TIMEOUT", 300)))
            except subprocess.TimeoutExpired:
                r = 124
            print("tests/tvm: script %s: %s" % (s, "PASS" if r == 0 else "FAIL (rc %d)" % r),
                  flush=True)
            rc = rc or r
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
