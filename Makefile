# streamer: live H.264 from a Raspberry Pi camera to many browsers.
#
#   make run     serve the live test pattern at http://localhost:8000
#   make test    every check: format, lints, unit/integration tests, browser tests
#   make bench   fan-out load benchmark (see docs/benchmarks.md)
#   make fuzz    run each cargo-fuzz target for FUZZ_SECONDS (needs nightly + cargo-fuzz)
#   make web     fetch the player's npm dependencies (jMuxer) into the web root
#   make deps    install what a fresh Debian machine lacks (as root), or list it
#   make cross   release binaries for the Pi (aarch64, armv7; ARMv6 compile check)
#   make cross-test  run the Pi binaries under qemu-user with a real viewer
#
# Everything third-party comes from the registries, pinned: Cargo.lock for crates,
# app/browser/package-lock.json for npm packages.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
WEB_ROOT := $(CURDIR)/overlay/usr/share/streamer/www
BROWSER_DIR := app/browser
NODE_STAMP := $(BROWSER_DIR)/node_modules/.installed
VENDOR_STAMP := $(WEB_ROOT)/vendor/.installed
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := split access_units sps websocket driver_answers
# Debian packages the tests use, as command:package. ffmpeg/ffprobe judge the video,
# Chromium runs the browser tests, shellcheck checks the shell scripts, Node runs the
# browser tests and npm fetches jMuxer and playwright-core.
DEBIAN_NEEDS := ffmpeg:ffmpeg ffprobe:ffmpeg chromium:chromium shellcheck:shellcheck node:nodejs npm:npm

.PHONY: cross cross-deps cross-test help run test lint fmt check-msrv shellcheck test-rust test-browser bench fuzz web deps clean

help:
	@sed -n '3,11p' Makefile | sed 's/^# \{0,1\}//'

## Run the streamer on this machine with the test pattern and the repo's player.
run: web
	STREAMER_CAMERA__SOURCE=test \
	STREAMER_SERVER__WEB_ROOT="$(WEB_ROOT)" \
	$(CARGO) run --release --bin streamer -- --config "$(CURDIR)/board/common/streamer.toml"

## Every check, as CI runs it.
test: deps lint web test-rust test-browser

lint: fmt check-msrv shellcheck
	$(CARGO) clippy --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all --check

# Buildroot 2026.02 ships Rust 1.88: no dependency may need a newer compiler.
check-msrv:
	$(CARGO) metadata --format-version 1 --locked | .ci/check-msrv

shellcheck:
	shellcheck -x -P SCRIPTDIR .ci/run $(wildcard $(BROWSER_DIR)/*.sh) $(wildcard app/tests/fixtures/fake-*)

test-rust:
	$(CARGO) test --workspace --locked

test-browser: web
	$(CARGO) build --locked --bin streamer
	cd $(BROWSER_DIR) && STREAMER_BIN="$(CURDIR)/target/debug/streamer" node --test --test-concurrency=1

## The player's npm dependencies, from package-lock.json (integrity-checked).
web: $(VENDOR_STAMP)

$(NODE_STAMP): $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: sudo apt-get install nodejs npm (or: make deps as root)"; exit 1; }
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund
	touch $@

$(VENDOR_STAMP): $(NODE_STAMP)
	$(BROWSER_DIR)/install-vendor.sh "$(WEB_ROOT)/vendor"
	touch $@

bench:
	$(CARGO) bench --locked --bench fanout
	$(CARGO) bench --locked --bench raw_copy

fuzz:
	@rustup toolchain list | grep -q '^nightly' || { echo "make fuzz needs the nightly toolchain: rustup toolchain install nightly"; exit 1; }
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd app/fuzz && for target in $(FUZZ_TARGETS); do \
		$(CARGO) +nightly fuzz run "$$target" -- -max_total_time=$(FUZZ_SECONDS); \
	done

# Raspberry Pi targets: 64-bit (Zero 2 W, 3, 4, 5) and 32-bit ARMv7 (2, 3) are built
# and tested under qemu; ARMv6 (Zero W, Pi 1) is compiled when its standard library
# is installed (`rustup target add arm-unknown-linux-gnueabihf`), else reported.
CROSS_TARGETS := aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
ARMV6_TARGET := arm-unknown-linux-gnueabihf
# ARMv6 (ARM1176, VFPv2) in ARM mode: Debian's arm-linux-gnueabihf-gcc defaults to
# Thumb, and Thumb-1 cannot use the hard-float ABI. OpenH264's NEON assembly declares
# armv7-a/neon itself and runs only where /proc/cpuinfo lists neon.
ARMV6_CFLAGS := -march=armv6 -marm -mfpu=vfp -mfloat-abi=hard
CROSS_NEEDS := aarch64-linux-gnu-g++:g++-aarch64-linux-gnu arm-linux-gnueabihf-g++:g++-arm-linux-gnueabihf \
	qemu-aarch64-static:qemu-user-static

## Cross compilers (openh264 is C++) and qemu-user, from Debian.
cross-deps:
	@$(MAKE) --no-print-directory deps DEBIAN_NEEDS="$(CROSS_NEEDS)"
	rustup target add $(CROSS_TARGETS)

cross: cross-deps
	for target in $(CROSS_TARGETS); do \
		$(CARGO) build --release --locked --target "$$target" --bin streamer; \
	done
	@if rustup target list --installed | grep -qx '$(ARMV6_TARGET)'; then \
		CFLAGS_arm_unknown_linux_gnueabihf='$(ARMV6_CFLAGS)' \
		CXXFLAGS_arm_unknown_linux_gnueabihf='$(ARMV6_CFLAGS)' \
		$(CARGO) build --release --locked --target $(ARMV6_TARGET) --bin streamer; \
	else \
		echo "ARMv6 ($(ARMV6_TARGET)): its standard library is not installed"; \
		echo "  (on a networked machine: rustup target add $(ARMV6_TARGET)), so only a"; \
		echo "  check: C/C++ for ARMv6, Rust for the ARM1176 CPU, against the ARMv7 std"; \
		CARGO_TARGET_DIR=target/armv6-check RUSTFLAGS='-C target-cpu=arm1176jzf-s' \
		CFLAGS_armv7_unknown_linux_gnueabihf='$(ARMV6_CFLAGS)' \
		CXXFLAGS_armv7_unknown_linux_gnueabihf='$(ARMV6_CFLAGS)' \
		$(CARGO) check --locked --target armv7-unknown-linux-gnueabihf --bin streamer; \
	fi
	@echo "stripped sizes:"; for target in $(CROSS_TARGETS) $(ARMV6_TARGET); do \
		binary=target/$$target/release/streamer; \
		if [ -f "$$binary" ]; then printf '  %-32s %s bytes\n' "$$target" "$$(stat -c %s "$$binary")"; fi; \
	done

cross-test: cross
	STREAMER_CROSS_TARGETS="$$(echo $(CROSS_TARGETS) | tr ' ' ,)" \
		$(CARGO) test --locked --test cross_qemu -- --ignored --nocapture

## Installs missing Debian packages when root; otherwise names them and stops.
deps:
	@missing=""; for need in $(DEBIAN_NEEDS); do \
		command -v "$${need%%:*}" >/dev/null || missing="$$missing $${need#*:}"; \
	done; \
	missing="$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' ')"; \
	if [ -z "$${missing// /}" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "missing Debian packages: $$missing"; \
		echo "install them with: sudo apt-get install $$missing"; exit 1; \
	fi

clean:
	$(CARGO) clean
	rm -rf $(BROWSER_DIR)/node_modules $(WEB_ROOT)/vendor
