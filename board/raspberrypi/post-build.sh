#!/bin/sh
# Buildroot post-build script of the streamer image (runs after the rootfs
# overlay was copied, before the file systems are made). TARGET_DIR is set by
# Buildroot.
set -eu

: "${TARGET_DIR:?TARGET_DIR must be set (Buildroot sets it)}"

# The boot partition is mounted read-only here (see /etc/fstab).
mkdir -p "$TARGET_DIR/boot"

# An empty machine-id: on the read-only root, systemd makes a new one in RAM at
# every boot instead of running first-boot setup.
: > "$TARGET_DIR/etc/machine-id"

# A local `make web` leaves its stamp file in the overlay's vendor folder; the
# image's jMuxer comes from the streamer-www package.
rm -f "$TARGET_DIR/usr/share/streamer/www/vendor/.installed"
