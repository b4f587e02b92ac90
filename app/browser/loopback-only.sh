#!/bin/sh
# Runs a command in a network namespace of its own that has only the loopback
# interface, so nothing the browser tests start (Chromium's WebRTC, the streamer's
# UDP port) can reach or announce this machine's other addresses:
#
#   ./loopback-only.sh node --test --test-concurrency=1
#
# As real root (CI) it makes only the network namespace (unshare --net): the
# command stays real root, so the update test's `rauc service` can use loop
# devices and mount bundles, which a user namespace forbids. As anyone else it
# makes an unprivileged user namespace too (unshare --map-root-user), which works
# where the kernel allows user namespaces.
set -eu
if [ "$#" -eq 0 ]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
	exec unshare --net sh -c 'ip link set lo up && exec "$@"' loopback-only "$@"
fi
exec unshare --map-root-user --net sh -c 'ip link set lo up && exec "$@"' loopback-only "$@"
