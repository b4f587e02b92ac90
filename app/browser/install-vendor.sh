#!/bin/sh
# Copies jMuxer's browser build from node_modules (installed by `npm ci`) into the
# player's web root: overlay/usr/share/streamer/www/vendor/jmuxer.min.js (and its LICENSE).
# Usage: app/browser/install-vendor.sh [web-root]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
web_root=${1:-"$here/../../overlay/usr/share/streamer/www"}
source_file="$here/node_modules/jmuxer/dist/jmuxer.min.js"

if [ ! -f "$source_file" ]; then
    echo "install-vendor.sh: $source_file is missing; run 'npm ci' in $here first" >&2
    exit 1
fi

mkdir -p "$web_root/vendor"
cp "$source_file" "$web_root/vendor/jmuxer.min.js"
# Its licence travels with it.
cp "$here/node_modules/jmuxer/LICENSE" "$web_root/vendor/jmuxer.LICENSE"
echo "installed $web_root/vendor/jmuxer.min.js"
