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
#   make bundle BOARD=<board>      output/<board>/streamer-<board>-<version>.raucb: the
#                                  signed update bundle of that build (docs/updates.md)
#   make menuconfig BOARD=...      Buildroot's menuconfig on output/<board>
#   make image-clean [BOARD=...]   remove output/<board> (all boards without BOARD)
#   make list-boards               the boards
#   make defconfigs                rewrite buildroot-external/configs/*_defconfig
#                                  from the fragments (after editing one)
#   make lint-image                check-package + every defconfig loads with nothing
#                                  dropped (needs BUILDROOT_DIR: a 2026.02.x tree)
#   make check-image               offline: the defconfigs in step with their
#                                  fragments, shellcheck, genimage on dummy files,
#                                  the streamer package's source copy and vendoring,
#                                  the checksum check of the Buildroot download

.PHONY: image bundle image-source menuconfig image-clean list-boards defconfigs lint-image check-image image-deps buildroot-tree

# Buildroot's long-term release, pinned: the tarball is checked against
# buildroot-external/buildroot.sha256.
BUILDROOT_VERSION := 2026.02.3
BUILDROOT_TARBALL := buildroot-$(BUILDROOT_VERSION).tar.xz
BUILDROOT_URL := https://buildroot.org/downloads/$(BUILDROOT_TARBALL)
BUILDROOT_SHA256 := $(CURDIR)/buildroot-external/buildroot.sha256
BR_EXTERNAL := $(CURDIR)/buildroot-external
BR_CONFIGS := $(BR_EXTERNAL)/configs
# The tarball, its unpacked tree and Buildroot's download dir (kept between
# builds and by CI). BUILDROOT_DIR, when set, is used instead of the tarball.
IMAGE_CACHE ?= $(CURDIR)/output/.cache
export BR2_DL_DIR ?= $(IMAGE_CACHE)/dl
BUILDROOT_DIR ?=
BR_TREE := $(if $(BUILDROOT_DIR),$(abspath $(BUILDROOT_DIR)),$(IMAGE_CACHE)/buildroot-$(BUILDROOT_VERSION))
# The boards, from the one list of them (.ci/list-boards); read only when used.
BOARDS = $(shell .ci/list-boards --names)
BOARD ?=
IMAGE_OUT := $(CURDIR)/output/$(BOARD)
# genimage and its helpers for check-image (mkfs.vfat is in /usr/sbin).
IMAGE_NEEDS := genimage:genimage mcopy:mtools mkfs.vfat:dosfstools xz:xz-utils rsync:rsync sfdisk:fdisk
DEBIAN_NEEDS += $(IMAGE_NEEDS)
export PATH := $(PATH):/usr/sbin:/sbin

# What .ci/buildroot-tree and .ci/buildroot read: these variables, same names.
BUILDROOT_ENV = BR_TREE="$(BR_TREE)" BUILDROOT_DIR="$(BUILDROOT_DIR)" IMAGE_CACHE="$(IMAGE_CACHE)" \
	BUILDROOT_TARBALL="$(BUILDROOT_TARBALL)" BUILDROOT_URL="$(BUILDROOT_URL)" BUILDROOT_SHA256="$(BUILDROOT_SHA256)"

list-boards:
	@.ci/list-boards

# Each board's complete defconfig (what Buildroot lists and loads alone), from
# configs/streamer_<board>.fragment and configs/streamer_common.fragment.
defconfigs:
	@.ci/defconfigs

# BUILDROOT_DIR checked, or the pinned Buildroot downloaded once, checksum
# verified and unpacked (.ci/check-buildroot-download checks this offline).
buildroot-tree:
	@$(BUILDROOT_ENV) .ci/buildroot-tree

# .ci/buildroot BOARD [TARGET]: BOARD checked, the defconfigs in step with the
# fragments, the Buildroot tree, the board's defconfig loaded (again only when
# it changes, so `make menuconfig` changes last until then), then Buildroot's
# make TARGET in output/<board>.
image:
	@$(BUILDROOT_ENV) .ci/buildroot "$(BOARD)"
	ln -f $(IMAGE_OUT)/images/sdcard.img $(IMAGE_OUT)/images/sdcard.img.xz $(IMAGE_OUT)/
	@echo "image: $(IMAGE_OUT)/sdcard.img (flash it) and $(IMAGE_OUT)/sdcard.img.xz"

# The update bundle of the last `make image BOARD=...` (.ci/board-bundle): signed
# with the key that image trusts (.ci/signing-key).
bundle:
	@.ci/board-bundle "$(BOARD)"

# Everything the build downloads, crates included (vendored with this machine's
# cargo), so that `make image` then works offline.
image-source:
	@$(BUILDROOT_ENV) .ci/buildroot "$(BOARD)" source
	$(BR_EXTERNAL)/package/streamer/vendor-crates.sh --fetch $(CURDIR) $(BR2_DL_DIR)/streamer

menuconfig:
	@$(BUILDROOT_ENV) .ci/buildroot "$(BOARD)" menuconfig
	@echo "saved in $(IMAGE_OUT)/.config; to keep it, copy the options into $(BR_CONFIGS)/streamer_$(BOARD).fragment (or streamer_common.fragment), then make defconfigs"

image-clean:
	rm -rf $(if $(BOARD),$(IMAGE_OUT),$(addprefix $(CURDIR)/output/,$(BOARDS)))

# Needs BUILDROOT_DIR (a Buildroot tree of the pinned release, outside this
# repository): Buildroot's own lint on the external tree, the defconfigs
# Buildroot lists are the boards', then each loaded alone in a scratch output
# dir and compared with what was asked for. Kconfig silently drops an option
# whose dependencies are unmet.
LINT_OUT := $(or $(TMPDIR),/tmp)/streamer-lint-image
lint-image:
	@test -n "$(BUILDROOT_DIR)" || { echo "lint-image needs BUILDROOT_DIR=<a Buildroot $(BUILDROOT_VERSION) tree>"; exit 1; }
	.ci/lint-image "$(BR_TREE)" $(BUILDROOT_VERSION) "$(LINT_OUT)"

# Offline checks of the image's board files, part of `make test`.
CHECK_IMAGE_DIR := $(CURDIR)/target/check-image
image-deps:
	@.ci/deps $(IMAGE_NEEDS)

check-image: image-deps
	@# The defconfigs are what make defconfigs writes (and the check of that
	@# fails on a scratch copy put out of step).
	.ci/check-defconfigs $(CURDIR)/target/check-defconfigs
	@# shellcheck on the board scripts, config.txt commented, cmdline.txt one line,
	@# the partition layout through the real post-image.sh for a 32- and a 64-bit board.
	.ci/check-board-files $(CHECK_IMAGE_DIR)
	@# The streamer package's source copy and offline crate vendoring.
	.ci/check-streamer-package $(CURDIR)/target/check-streamer-package
	@# make image's download step: checksum verified, a mismatch refused.
	.ci/check-buildroot-download $(CURDIR)/target/check-buildroot-download
	@if [ -n "$(BUILDROOT_DIR)" ]; then $(MAKE) --no-print-directory lint-image; \
	else echo "lint-image not run: set BUILDROOT_DIR"; fi
