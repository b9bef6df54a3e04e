# Shared by the cross toolchain files: they set FERRY_CROSS_TRIPLE first.
set(FERRY_CROSS_PREFIX "${FERRY_CROSS_TRIPLE}-" CACHE STRING
    "compiler prefix, e.g. /opt/linaro/bin/${FERRY_CROSS_TRIPLE}-")
set(FERRY_SYSROOT "" CACHE PATH "target sysroot (empty: Debian multiarch)")
set(CMAKE_C_COMPILER ${FERRY_CROSS_PREFIX}gcc)
set(CMAKE_STRIP ${FERRY_CROSS_PREFIX}strip CACHE FILEPATH "strip")
if(FERRY_SYSROOT)
  set(CMAKE_SYSROOT ${FERRY_SYSROOT})
  set(CMAKE_FIND_ROOT_PATH ${FERRY_SYSROOT})
else()
  # Debian multiarch: target libraries live in /usr/lib/<triple>, headers in
  # /usr/include (shared) and /usr/include/<triple>.
  set(CMAKE_LIBRARY_ARCHITECTURE ${FERRY_CROSS_TRIPLE})
  set(CMAKE_FIND_ROOT_PATH /usr/${FERRY_CROSS_TRIPLE} /)
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Without a sysroot, look only in the target's multiarch folder so that a
# host (x86-64) archive can never be picked up by mistake.
if(NOT FERRY_SYSROOT)
  set(CMAKE_LIBRARY_PATH /usr/lib/${FERRY_CROSS_TRIPLE})
endif()
