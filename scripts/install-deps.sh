#!/bin/sh
# Installs the Debian packages ferry needs to build and test, if missing.
# Safe to run again: it does nothing when everything is present.
set -eu

# `install-deps.sh --cross ARCH` (aarch64 or armhf) also installs the cross
# compiler, the target's multiarch -dev packages and qemu-user.
CROSS_ARCH=""
if [ "${1:-}" = "--cross" ]; then
  case "${2:-}" in
    aarch64 | arm64) CROSS_ARCH=arm64 CROSS_TRIPLE=aarch64-linux-gnu ;;
    armhf | arm) CROSS_ARCH=armhf CROSS_TRIPLE=arm-linux-gnueabihf ;;
    *) echo "ferry: --cross takes aarch64 or armhf" >&2; exit 2 ;;
  esac
fi

# tshark (with wireshark-common's editcap) and tcpdump: the tests of
# `ferry dump` and of packaging/wireshark/ferry.lua.  ferry reads captures
# itself, so no libpcap is linked.
PACKAGES="build-essential cmake pkg-config libuv1-dev libjansson-dev \
libcmocka-dev libdlpack-dev clang libclang-rt-14-dev python3 python3-pytest \
python3-numpy procps tshark tcpdump pocl-opencl-icd ocl-icd-libopencl1 \
libmicrohttpd-dev chromium chromium-driver nettle-dev"
# pocl-opencl-icd + ocl-icd-libopencl1: a CPU OpenCL device (PoCL) for the
# OpenCL tests.  ferry itself needs neither to build or run: it loads
# libOpenCL.so.1 at run time; a board serves its GPU with the ICD loader
# and its vendor's OpenCL driver (ICD) instead of PoCL.
# libmicrohttpd-dev: the tracker's --http-port (loaded with dlopen, only
# then); chromium + chromium-driver: the dashboard's headless test;
# nettle-dev: SHA-1 of the proxy's WebSocket handshake (linked statically).

if [ -n "$CROSS_ARCH" ]; then
  PACKAGES="$PACKAGES gcc-$CROSS_TRIPLE libc6-dev-$CROSS_ARCH-cross \
binutils-$CROSS_TRIPLE qemu-user libuv1-dev:$CROSS_ARCH libjansson-dev:$CROSS_ARCH \
nettle-dev:$CROSS_ARCH"
  if ! dpkg --print-foreign-architectures | grep -qx "$CROSS_ARCH"; then
    if [ "$(id -u)" != 0 ]; then
      echo "ferry: as root: dpkg --add-architecture $CROSS_ARCH" >&2
      exit 1
    fi
    dpkg --add-architecture "$CROSS_ARCH"
  fi
fi

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
