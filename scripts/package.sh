#!/bin/sh
# Packs a built ferry for a device:
#
#   sh scripts/package.sh [BUILD_DIR [ARCH [OUT_DIR]]]
#   (make package ARCH=aarch64 runs `make cross` first, then this)
#
# writes OUT_DIR/ferry-<version>-<arch>.tar.gz (default: the repository root)
# holding one folder ferry-<version>-<arch>/ with the stripped `ferry`
# binary, the busybox-style names (rpc_server, rpc_tracker, rpc_proxy,
# query_rpc_tracker -> ferry), the device README, the systemd units and
# their settings file, and the Wireshark dissector (wireshark/ferry.lua).  The version is the one of project() in
# CMakeLists.txt.  It refuses a binary that needs any shared library besides
# glibc's, since the promise is "copy one file".
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCH=${2:-aarch64}
BUILD=${1:-$ROOT/build-$ARCH}
OUT=${3:-$ROOT}

die() { echo "ferry package: $*" >&2; exit 1; }

[ -x "$BUILD/ferry" ] || die "no $BUILD/ferry: build it first (make cross ARCH=$ARCH)"
VERSION=$(sed -n 's/^project(ferry VERSION \([0-9][0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
[ -n "$VERSION" ] || die "no project(ferry VERSION x.y.z) in CMakeLists.txt"

# The strip of the toolchain that built the binary (a vendor prefix too),
# taken from the build's CMake cache; then <triple>-strip; then strip.
STRIP=""
if [ -f "$BUILD/CMakeCache.txt" ]; then
  STRIP=$(sed -n 's/^CMAKE_STRIP:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
fi
if [ -z "$STRIP" ] || ! command -v "$STRIP" >/dev/null 2>&1; then
  case "$ARCH" in
    aarch64 | arm64) STRIP=aarch64-linux-gnu-strip ;;
    armhf | arm) STRIP=arm-linux-gnueabihf-strip ;;
    *) STRIP=strip ;;
  esac
fi
command -v "$STRIP" >/dev/null 2>&1 || die "no $STRIP (install binutils for $ARCH)"
command -v readelf >/dev/null 2>&1 || die "no readelf (install binutils)"

NAME=ferry-$VERSION-$ARCH
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/ferry-package.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT INT TERM
DIR=$STAGE/$NAME
mkdir -p "$DIR/systemd"

"$STRIP" --strip-all -o "$DIR/ferry" "$BUILD/ferry"
chmod 0755 "$DIR/ferry"

# Only glibc's libraries may be needed: libc, libm, libdl, libpthread,
# librt and the dynamic loader.
needed=$(readelf -d "$DIR/ferry" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
  case "$lib" in
    libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | ld-linux*.so.*) ;;
    *) die "ferry needs $lib besides glibc; link it statically" ;;
  esac
done

for alias in rpc_server rpc_tracker rpc_proxy query_rpc_tracker; do
  ln -s ferry "$DIR/$alias"
done
cp "$ROOT/packaging/README.md" "$DIR/README.md"
cp "$ROOT/packaging/ferry-server.service" "$ROOT/packaging/ferry-tracker.service" \
   "$ROOT/packaging/ferry-proxy.service" "$DIR/systemd/"
# The settings file, with the device key defaulting to the architecture.
sed "s/@ARCH@/$ARCH/g" "$ROOT/packaging/ferry.env" > "$DIR/systemd/ferry.env"
# The Wireshark dissector, for the host that reads the device's captures.
mkdir -p "$DIR/wireshark"
cp "$ROOT/packaging/wireshark/ferry.lua" "$DIR/wireshark/ferry.lua"
chmod 0644 "$DIR/README.md" "$DIR"/systemd/* "$DIR/wireshark/ferry.lua"

# Reproducible: fixed owner, order and time (that of the last commit).
EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
mkdir -p "$OUT"
TARBALL=$(cd "$OUT" && pwd)/$NAME.tar.gz
tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$EPOCH" -cf - "$NAME" | gzip -9n > "$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"

size=$(wc -c < "$DIR/ferry" | tr -d ' ')
echo "ferry: packed $TARBALL (ferry $size bytes stripped; needs:$(echo " $needed" | tr '\n' ' '))"
