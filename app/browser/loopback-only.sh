#!/bin/sh
# Runs a command in a network namespace of its own that has only the loopback
# interface, so nothing the browser tests start (Chromium's WebRTC, the streamer's
# UDP port) can reach or announce this machine's other addresses:
#
#   ./loopback-only.sh node --test --test-concurrency=1
#
# Uses an unprivileged user namespace (unshare -r), so it works as root and, where the
# kernel allows user namespaces, as anyone else.
set -eu
if [ "$#" -eq 0 ]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
fi
exec unshare --map-root-user --net sh -c 'ip link set lo up && exec "$@"' loopback-only "$@"
