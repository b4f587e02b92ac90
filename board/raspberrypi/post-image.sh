#!/bin/sh
# Buildroot post-image script of the streamer image: puts streamer.toml next to
# the firmware, writes genimage.cfg from genimage.cfg.in with the boot files
# found in BINARIES_DIR, builds sdcard.img and a compressed sdcard.img.xz.
#
# Buildroot sets BINARIES_DIR and BUILD_DIR; `make check-image` runs this same
# script on dummy files to check the layout.
set -eu

board_dir=$(cd "$(dirname "$0")" && pwd)
: "${BINARIES_DIR:?BINARIES_DIR must be set (Buildroot sets it)}"
: "${BUILD_DIR:?BUILD_DIR must be set (Buildroot sets it)}"

# The default configuration, fully commented, on the boot partition.
install -m 0644 "$board_dir/../common/streamer.toml" "$BINARIES_DIR/streamer.toml"

# Boot files: the firmware folder's contents (start*.elf, fixup*.dat,
# config.txt, cmdline.txt, overlays/), the device trees, the kernel.
list=""
for path in "$BINARIES_DIR"/rpi-firmware/* "$BINARIES_DIR"/*.dtb \
    "$BINARIES_DIR/zImage" "$BINARIES_DIR/Image" "$BINARIES_DIR/streamer.toml"; do
    [ -e "$path" ] || continue
    list="$list\t\t\t\"${path#"$BINARIES_DIR"/}\",\n"
done
if [ -z "$list" ]; then
    echo "post-image.sh: no boot files in $BINARIES_DIR" >&2
    exit 1
fi
if [ ! -e "$BINARIES_DIR/zImage" ] && [ ! -e "$BINARIES_DIR/Image" ]; then
    echo "post-image.sh: no kernel (zImage or Image) in $BINARIES_DIR" >&2
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

# The copy to download and flash (Raspberry Pi Imager and balenaEtcher read .xz).
xz -T0 -9 -k -f "$BINARIES_DIR/sdcard.img"
echo "post-image.sh: $BINARIES_DIR/sdcard.img and sdcard.img.xz"
