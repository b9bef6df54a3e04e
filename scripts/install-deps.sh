#!/bin/sh
# Installs the Debian packages ferry needs to build and test, if missing.
# Safe to run again: it does nothing when everything is present.
set -eu

PACKAGES="build-essential cmake pkg-config libuv1-dev libjansson-dev \
libcmocka-dev libdlpack-dev clang libclang-rt-14-dev python3 python3-pytest \
python3-numpy procps"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "ferry: installing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "ferry: run as root, or install them: apt-get install$missing" >&2
    exit 1
  fi
else
  SUDO=""
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
