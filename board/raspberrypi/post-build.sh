#!/bin/sh
# Buildroot post-build script of the streamer image (runs after the rootfs
# overlay was copied, before the file systems are made). Buildroot sets
# TARGET_DIR and BINARIES_DIR (the kernel, device trees and firmware are
# there by now) and passes TARGET_DIR and BR2_ROOTFS_POST_SCRIPT_ARGS (the
# board's name, set in its defconfig) as arguments.
#
# Environment from `make image` (.ci/buildroot):
#   STREAMER_SIGNING_CERT   the certificate whose key signs this image's update
#                           bundles: the image's RAUC keyring
#   STREAMER_IMAGE_VERSION  the version (git describe), in /etc/os-release
set -eu

: "${TARGET_DIR:?TARGET_DIR must be set (Buildroot sets it)}"
: "${BINARIES_DIR:?BINARIES_DIR must be set (Buildroot sets it)}"
board=${2:?usage: post-build.sh TARGET_DIR BOARD (BR2_ROOTFS_POST_SCRIPT_ARGS names the board)}
: "${STREAMER_SIGNING_CERT:?STREAMER_SIGNING_CERT must name the update signing certificate (make image sets it)}"
board_dir=$(cd "$(dirname "$0")" && pwd)

# The boot partition is mounted read-only here (see /etc/fstab).
mkdir -p "$TARGET_DIR/boot"

# An empty machine-id: on the read-only root, systemd makes a new one in RAM at
# every boot instead of running first-boot setup.
: > "$TARGET_DIR/etc/machine-id"

# A local `make web` leaves its stamp file in the overlay's vendor folder; the
# image's jMuxer comes from the streamer-www package.
rm -f "$TARGET_DIR/usr/share/streamer/www/vendor/.installed"

# This slot's boot files travel inside it, so that an update bundle carries its
# own kernel: the update backend copies them to /boot/slot-a/ or slot-b/
# (docs/updates.md).
boot_files=$TARGET_DIR/usr/lib/streamer/boot
rm -rf "$boot_files"
mkdir -p "$boot_files"
for path in "$BINARIES_DIR"/zImage "$BINARIES_DIR"/Image "$BINARIES_DIR"/initrd.img "$BINARIES_DIR"/*.dtb \
    "$BINARIES_DIR/rpi-firmware/cmdline.txt"; do
    [ -e "$path" ] && cp "$path" "$boot_files/"
done
[ ! -d "$BINARIES_DIR/rpi-firmware/overlays" ] || cp -r "$BINARIES_DIR/rpi-firmware/overlays" "$boot_files/"
if [ ! -e "$boot_files/Image" ] && [ ! -e "$boot_files/zImage" ]; then
    echo "post-build.sh: no kernel (Image or zImage) in $BINARIES_DIR" >&2
    exit 1
fi
[ -e "$boot_files/cmdline.txt" ] || { echo "post-build.sh: no rpi-firmware/cmdline.txt in $BINARIES_DIR" >&2; exit 1; }

# RAUC: the slots, this board's compatible, the keyring.
mkdir -p "$TARGET_DIR/etc/rauc"
sed "s|@COMPATIBLE@|streamer-$board|" "$board_dir/rauc/system.conf.in" > "$TARGET_DIR/etc/rauc/system.conf"
openssl x509 -in "$STREAMER_SIGNING_CERT" -noout 2> /dev/null ||
    { echo "post-build.sh: $STREAMER_SIGNING_CERT is not a PEM certificate" >&2; exit 1; }
install -m 0644 "$STREAMER_SIGNING_CERT" "$TARGET_DIR/etc/rauc/keyring.pem"

# The image's version, shown by /api/status and written into update bundles.
version=${STREAMER_IMAGE_VERSION:-unknown}
sed -i '/^IMAGE_VERSION=/d' "$TARGET_DIR/usr/lib/os-release"
echo "IMAGE_VERSION=$version" >> "$TARGET_DIR/usr/lib/os-release"
