# Cross build for 32-bit ARM Linux (armhf: Raspberry Pi OS 32-bit, older
# boards).  Debian: gcc-arm-linux-gnueabihf, libuv1-dev:armhf,
# libjansson-dev:armhf.  Prefix and sysroot overridable as for aarch64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(FERRY_CROSS_TRIPLE arm-linux-gnueabihf)
include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
# 32-bit glibc: 64-bit file offsets and inode numbers, otherwise readdir()
# fails with EOVERFLOW on large file systems and on 64-bit kernels that hand
# out 64-bit directory hashes (qemu-arm on an x86-64 host always does), and
# the server cannot clean its session folders.  (Takes effect in a new build
# folder: CMake caches the flags.)
string(APPEND CMAKE_C_FLAGS_INIT " -D_FILE_OFFSET_BITS=64")
