# Cross build for 32-bit ARM Linux (armhf: Raspberry Pi OS 32-bit, older
# boards).  Debian: gcc-arm-linux-gnueabihf, libuv1-dev:armhf,
# libjansson-dev:armhf.  Prefix and sysroot overridable as for aarch64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(FERRY_CROSS_TRIPLE arm-linux-gnueabihf)
include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
