#!/bin/sh
# Puts the crates of a Cargo.lock, vendored, into a cargo source tree that has
# no network at build time.
#
# Usage: vendor-crates.sh [--fetch] SRC_DIR DL_DIR
#   SRC_DIR  the cargo workspace (Cargo.toml and Cargo.lock at its top)
#   DL_DIR   where the tarball of vendored crates is kept
#   --fetch  only make the tarball (`make image-source`, before an offline
#            build), leave SRC_DIR as it is
#
# The tarball DL_DIR/streamer-crates-<first 16 hex of Cargo.lock's sha256>.tar.gz
# is made with `cargo vendor --locked` (the network, once) when missing, then
# unpacked into SRC_DIR/VENDOR, and SRC_DIR/.cargo/config.toml points cargo at
# it. A changed Cargo.lock names another tarball, so a stale one is never used.
# CARGO_HOME is cargo's cache (Buildroot's dl/br-cargo-home).
set -eu

fetch_only=false
if [ "${1:-}" = --fetch ]; then
    fetch_only=true
    shift
fi
if [ "$#" -ne 2 ]; then
    echo "usage: $0 [--fetch] SRC_DIR DL_DIR" >&2
    exit 2
fi
src=$1
dl=$2

if [ ! -f "$src/Cargo.lock" ]; then
    echo "vendor-crates.sh: $src/Cargo.lock is missing" >&2
    exit 1
fi

key=$(sha256sum "$src/Cargo.lock" | cut -c1-16)
tarball="$dl/streamer-crates-$key.tar.gz"

if [ ! -f "$tarball" ]; then
    echo "vendor-crates.sh: vendoring the crates of Cargo.lock into $tarball"
    mkdir -p "$dl"
    work=$(mktemp -d "$dl/.streamer-crates.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    # cargo vendor reads the workspace; VENDOR is created next to it.
    cargo vendor --quiet --locked --manifest-path "$src/Cargo.toml" "$work/VENDOR" >/dev/null
    # Reproducible: sorted names, fixed owner and time.
    tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime=@0 -czf "$work/crates.tar.gz" VENDOR
    mv "$work/crates.tar.gz" "$tarball"
fi
if [ "$fetch_only" = true ]; then
    echo "vendor-crates.sh: $tarball"
    exit 0
fi

rm -rf "$src/VENDOR"
tar -C "$src" -xzf "$tarball"
mkdir -p "$src/.cargo"
cat > "$src/.cargo/config.toml" <<'CONFIG'
# Written by buildroot-external/package/streamer/vendor-crates.sh
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "VENDOR"
CONFIG
echo "vendor-crates.sh: crates from $tarball"
