#!/bin/sh
# Runs every test against one build folder: the cmocka unit tests through
# ctest, then the integration tests (real processes on 127.0.0.1) with
# Debian's python3 and pytest.
set -eu
build=${1:?usage: run-tests.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)

echo "== unit tests ($build)"
ctest --test-dir "$build" --output-on-failure -j2

echo "== integration tests ($build)"
export FERRY_BUILD="$build"
set +e
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/integration"
rc=$?
set -e
# pytest's 5 means "no tests collected": not a failure of the code.
[ $rc -eq 5 ] && rc=0
exit $rc
