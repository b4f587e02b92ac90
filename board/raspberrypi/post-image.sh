#!/bin/sh
# Buildroot post-image script of the streamer image: puts streamer.toml next to
# the firmware, lays out sdcard.img (sdcard.sh) and compresses it to
# sdcard.img.xz.
#
# Buildroot sets BINARIES_DIR and BUILD_DIR; `make check-image` runs this same
# script on dummy files to check the layout.
set -eu

board_dir=$(cd "$(dirname "$0")" && pwd)
: "${BINARIES_DIR:?BINARIES_DIR must be set (Buildroot sets it)}"

# The default configuration, fully commented, on the boot partition.
install -m 0644 "$board_dir/../common/streamer.toml" "$BINARIES_DIR/streamer.toml"

"$board_dir/sdcard.sh"

# The copy to download and flash (Raspberry Pi Imager and balenaEtcher read .xz).
xz -T0 -9 -k -f "$BINARIES_DIR/sdcard.img"
echo "post-image.sh: $BINARIES_DIR/sdcard.img and sdcard.img.xz"
