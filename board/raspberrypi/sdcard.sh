#!/bin/sh
# Lays out the SD card (docs/updates.md): stages the boot partition's files
# from BINARIES_DIR (the firmware folder's contents, config.txt and cmdline.txt
# among them, the device trees, the kernel, streamer.toml), puts slot A's boot
# files in slot-a/ (the same code the update backend runs on the device:
# overlay/usr/libexec/streamer/boot-slots.sh), writes tryboot.txt (config.txt:
# no trial pending), writes genimage.cfg from genimage.cfg.in and builds
# BINARIES_DIR/sdcard.img with the root file system image as slot A (partition
# 2) and an empty slot B of the same size (partition 3). Run by post-image.sh,
# and by the emulated boot (.ci/test-boot/assemble) so that both use one layout.
#
# Needs BINARIES_DIR and BUILD_DIR (Buildroot sets both). Optional: ROOT_IMAGE
# (default rootfs.squashfs, in BINARIES_DIR), SLOT_SIZE (default 512M: the
# root image plus room for later versions).
set -eu

board_dir=$(cd "$(dirname "$0")" && pwd)
: "${BINARIES_DIR:?BINARIES_DIR must be set (Buildroot sets it)}"
: "${BUILD_DIR:?BUILD_DIR must be set (Buildroot sets it)}"
root_image=${ROOT_IMAGE:-rootfs.squashfs}
slot_size=${SLOT_SIZE:-512M}
# shellcheck source=overlay/usr/libexec/streamer/boot-slots.sh
. "$board_dir/../../overlay/usr/libexec/streamer/boot-slots.sh"

firmware=$BINARIES_DIR/rpi-firmware
[ -f "$firmware/config.txt" ] || { echo "sdcard.sh: no config.txt in $firmware" >&2; exit 1; }
[ -f "$firmware/cmdline.txt" ] || { echo "sdcard.sh: no cmdline.txt in $firmware" >&2; exit 1; }
[ -f "$BINARIES_DIR/$root_image" ] || { echo "sdcard.sh: no root file system image $BINARIES_DIR/$root_image" >&2; exit 1; }
if [ ! -e "$BINARIES_DIR/zImage" ] && [ ! -e "$BINARIES_DIR/Image" ]; then
    echo "sdcard.sh: no kernel (zImage or Image) in $BINARIES_DIR" >&2
    exit 1
fi

# The boot partition's tree, staged (genimage takes files from BINARIES_DIR).
stage=$BINARIES_DIR/sdcard-boot
rm -rf "$stage"
mkdir -p "$stage/files"
for path in "$firmware"/*; do
    case ${path##*/} in
        overlays | cmdline.txt) ;;  # slot A's, below
        *) cp -r "$path" "$stage/files/" ;;
    esac
done
[ ! -f "$BINARIES_DIR/streamer.toml" ] || cp "$BINARIES_DIR/streamer.toml" "$stage/files/"
# Slot A's boot files, as a slot's root file system carries them.
slot_src=$stage/slot-src
mkdir -p "$slot_src"
for path in "$BINARIES_DIR"/zImage "$BINARIES_DIR"/Image "$BINARIES_DIR"/initrd.img "$BINARIES_DIR"/*.dtb "$firmware/cmdline.txt"; do
    [ -e "$path" ] && cp "$path" "$slot_src/"
done
[ ! -d "$firmware/overlays" ] || cp -r "$firmware/overlays" "$slot_src/"
install_boot_files "$slot_src" A "$stage/files/$(slot_dir A)"
# config.txt boots slot A; tryboot.txt is its copy (no trial pending).
BOOT_DIR=$stage/files
[ "$(committed_slot)" = A ] || { echo "sdcard.sh: config.txt's os_prefix must name slot-a/" >&2; exit 1; }
point_at config.txt tryboot.txt A

list=""
for path in "$stage/files"/*; do
    list="$list\t\t\t\"${path#"$BINARIES_DIR"/}\",\n"
done

config="$BINARIES_DIR/genimage.cfg"
awk -v files="$list" -v root="$root_image" -v size="$slot_size" '
    /^#BOOT_FILES#$/ { printf "%s", files; next }
    { gsub(/#ROOT_IMAGE#/, root); gsub(/#SLOT_SIZE#/, size); print }' \
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
