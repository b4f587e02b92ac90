#!/bin/sh
# Lays out the SD card: writes genimage.cfg from genimage.cfg.in with the boot
# files found in BINARIES_DIR (the firmware folder's contents, the device
# trees, the kernel, streamer.toml) and builds BINARIES_DIR/sdcard.img with
# rootfs.ext4 as partition 2. Run by post-image.sh, and by the emulated boot
# (.ci/test-boot/assemble) so that both use one layout.
#
# Needs BINARIES_DIR and BUILD_DIR (Buildroot sets both).
set -eu

board_dir=$(cd "$(dirname "$0")" && pwd)
: "${BINARIES_DIR:?BINARIES_DIR must be set (Buildroot sets it)}"
: "${BUILD_DIR:?BUILD_DIR must be set (Buildroot sets it)}"

# Boot files: the firmware folder's contents (start*.elf, fixup*.dat,
# config.txt, cmdline.txt, overlays/), the device trees, the kernel.
list=""
for path in "$BINARIES_DIR"/rpi-firmware/* "$BINARIES_DIR"/*.dtb \
    "$BINARIES_DIR/zImage" "$BINARIES_DIR/Image" "$BINARIES_DIR/streamer.toml"; do
    [ -e "$path" ] || continue
    list="$list\t\t\t\"${path#"$BINARIES_DIR"/}\",\n"
done
if [ -z "$list" ]; then
    echo "sdcard.sh: no boot files in $BINARIES_DIR" >&2
    exit 1
fi
if [ ! -e "$BINARIES_DIR/zImage" ] && [ ! -e "$BINARIES_DIR/Image" ]; then
    echo "sdcard.sh: no kernel (zImage or Image) in $BINARIES_DIR" >&2
    exit 1
fi

config="$BINARIES_DIR/genimage.cfg"
awk -v files="$list" '/^#BOOT_FILES#$/ { printf "%s", files; next } { print }' \
    "$board_dir/genimage.cfg.in" > "$config"

# genimage copies its root path; the root file system image is already made,
# so give it an empty one.
rootpath=$(mktemp -d)
trap 'rm -rf "$rootpath"' EXIT
rm -rf "$BUILD_DIR/genimage.tmp"
genimage \
    --rootpath "$rootpath" \
    --tmppath "$BUILD_DIR/genimage.tmp" \
    --inputpath "$BINARIES_DIR" \
    --outputpath "$BINARIES_DIR" \
    --config "$config"
