# Cross build for 64-bit ARM Linux boards (rk3399, Jetson, Raspberry Pi 4 ...).
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#
# Default: Debian's gcc-aarch64-linux-gnu with arm64 multiarch -dev packages
# (dpkg --add-architecture arm64; apt-get install libuv1-dev:arm64
# libjansson-dev:arm64), so no sysroot is needed.  For a vendor toolchain
# such as Linaro's, set the prefix and sysroot:
#
#   -DFERRY_CROSS_PREFIX=/opt/gcc-linaro/bin/aarch64-linux-gnu-
#   -DFERRY_SYSROOT=/opt/sysroot-aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(FERRY_CROSS_TRIPLE aarch64-linux-gnu)
include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
