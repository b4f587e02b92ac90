#!/bin/sh
# Copies jMuxer's browser build (installed by `npm ci` from package-lock.json) into
# the player's vendor folder, with its licence.
# Usage: app/browser/install-vendor.sh [vendor-dir]
#   default vendor-dir: overlay/usr/share/streamer/www/vendor
set -eu

here=$(cd "$(dirname "$0")" && pwd)
vendor=${1:-"$here/../../overlay/usr/share/streamer/www/vendor"}
package="$here/node_modules/jmuxer"

if [ ! -f "$package/dist/jmuxer.min.js" ]; then
    echo "install-vendor.sh: $package/dist/jmuxer.min.js is missing; run 'npm ci' in $here first" >&2
    exit 1
fi

mkdir -p "$vendor"
cp "$package/dist/jmuxer.min.js" "$vendor/jmuxer.min.js"
cp "$package/LICENSE" "$vendor/jmuxer.LICENSE"
echo "installed $vendor/jmuxer.min.js"
