# The appliance image (Buildroot): its targets and variables, included by the
# top-level Makefile. See docs/building-image.md.
#
# Why here: the repository's top level is fixed (Cargo.toml, app/, the Buildroot
# files, Makefile, docs and .ci/), so this part of the Makefile lives in .ci/, beside
# the scripts its recipes call. make reads it as if it were written in the Makefile:
# paths are relative to the repository, and its variables (BOARD, BUILDROOT_DIR,
# IMAGE_CACHE, BR2_DL_DIR, ...) are set on make's command line as before.
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

.PHONY: image image-source menuconfig image-clean list-boards lint-image check-image image-deps buildroot-tree

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
