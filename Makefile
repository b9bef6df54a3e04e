# Thin wrapper over CMake.  The two commands a new user needs:
#   make demo    install what is missing, build, start a local tracker (and
#                the other parts) on 127.0.0.1 and show the query table
#   make check   install, build with -Werror (also for ARM64), run every
#                test, then all of them again under AddressSanitizer +
#                UndefinedBehaviorSanitizer, then a short run of every fuzzer
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
BUILD ?= build
PREFIX ?= /usr/local

.PHONY: all deps build build-asan check test test-asan demo install fuzz bench cross package clean

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS) -- --no-print-directory

build-asan: deps
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFERRY_WERROR=ON -DFERRY_SANITIZE=ON >/dev/null
	@$(CMAKE) --build build-asan -j $(JOBS)

test: build
	@sh scripts/run-tests.sh $(BUILD)

test-asan: build-asan
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  sh scripts/run-tests.sh build-asan

fuzz: deps
	@CC=clang $(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DFERRY_FUZZ=ON \
	  -DFERRY_TESTS=OFF -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
	@$(CMAKE) --build build-fuzz -j $(JOBS)
	@sh scripts/run-fuzz.sh build-fuzz $${FUZZ_SECONDS:-10}

# The ARM64 build comes first: the end-to-end test runs it under qemu-user.
check:
	@$(MAKE) --no-print-directory cross ARCH=aarch64
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-5}
	@echo "ferry: make check passed"

bench: build
	@sh scripts/run-bench.sh $(BUILD)

demo: build
	@sh scripts/demo.sh $(BUILD)

install: build
	@$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

# Cross build for a device: make cross ARCH=aarch64 (or ARCH=armhf).
ARCH ?= aarch64
CROSS_TOOLCHAIN_aarch64 = cmake/toolchains/aarch64-linux-gnu.cmake
CROSS_TOOLCHAIN_armhf = cmake/toolchains/arm-linux-gnueabihf.cmake
cross:
	@sh scripts/install-deps.sh --cross $(ARCH)
	@$(CMAKE) -S . -B build-$(ARCH) -DCMAKE_TOOLCHAIN_FILE=$(CROSS_TOOLCHAIN_$(ARCH)) \
	  -DFERRY_TESTS=OFF -DFERRY_MODELS=ON -DFERRY_WERROR=ON >/dev/null
	@$(CMAKE) --build build-$(ARCH) -j $(JOBS)
	@echo "ferry: built build-$(ARCH)/ferry"

# make package ARCH=aarch64 -> ferry-<version>-aarch64.tar.gz (see packaging/).
package: cross
	@sh scripts/package.sh build-$(ARCH) $(ARCH)

clean:
	rm -rf build build-asan build-fuzz build-aarch64 build-armhf
