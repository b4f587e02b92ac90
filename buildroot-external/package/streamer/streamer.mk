################################################################################
#
# streamer
#
################################################################################

# The source is this repository: the Cargo workspace at its root (Cargo.toml,
# Cargo.lock) with the crate in app/.
STREAMER_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(BR2_EXTERNAL_STREAMER_PATH)/../app/Cargo.toml | head -n 1)
STREAMER_SITE = $(realpath $(BR2_EXTERNAL_STREAMER_PATH)/..)
STREAMER_SITE_METHOD = local
STREAMER_LICENSE = MIT or Apache-2.0
STREAMER_SUBDIR = app

# Only what cargo needs: the workspace manifest, the lock file and the crate.
# Build trees (target/, node_modules/, Buildroot's output/) stay out; so does
# rust-toolchain.toml (the development toolchain; Buildroot brings its own
# Rust 1.88).
STREAMER_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=target/ \
	--exclude=node_modules/ \
	--exclude=/app/fuzz/ \
	--exclude=/app/browser/ \
	--include=/Cargo.toml \
	--include=/Cargo.lock \
	--include=/app/*** \
	--exclude=*

# A local package skips Buildroot's download step, and with it the cargo
# vendoring that step does for cargo packages. Vendor here instead: the
# crates of Cargo.lock are kept as a tarball in the download directory
# (keyed by Cargo.lock's checksum), made once with the network, and unpacked
# into the build directory on every later (offline) build. host-rustc is
# built by then, as configure comes after the package's dependencies.
define STREAMER_VENDOR_CRATES
	$(TARGET_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
		$(BR2_EXTERNAL_STREAMER_PATH)/package/streamer/vendor-crates.sh \
		$(@D) $(STREAMER_DL_DIR)
endef
STREAMER_PRE_CONFIGURE_HOOKS += STREAMER_VENDOR_CRATES

# The workspace's release profile (LTO, one codegen unit) makes the smallest
# binary; Buildroot's cargo environment would override it.
STREAMER_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

# The unprivileged user streamer.service runs as, made at build time (the
# root filesystem is read-only at run time): video for the cameras and the
# codecs, render for libcamera's buffers.
define STREAMER_USERS
	streamer -1 streamer -1 * - - video,render,gpio Live video streamer
endef

$(eval $(cargo-package))
