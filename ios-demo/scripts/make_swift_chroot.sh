#!/usr/bin/env bash
# Make (or check) the Debian trixie tree in which this machine runs Swift (issue 15): Debian 12 has
# no Swift toolchain, trixie's `swiftlang` 6.0.3 runs `swift build` / `swift test` for the
# platform-neutral package in ios-demo/. Idempotent: a tree whose stamp names this script's package
# list is left as it is; a half-made one is made again. About 4 minutes and 3.2 GB.
#
#   ios-demo/scripts/make_swift_chroot.sh [TREE]     TREE: $THK_SWIFT_TREE, else /opt/swift-trixie
#
# Needs root and debootstrap (apt-get install debootstrap). Exit 0: the tree is ready.
set -euo pipefail

tree="${1:-${THK_SWIFT_TREE:-/opt/swift-trixie}}"
mirror="${THK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# swiftlang: the toolchain (swift, swiftc, XCTest, Foundation, its clang for C targets);
# libsodium-dev: the native core's transport; python3 is not needed inside (the SDK runs outside).
packages="swiftlang libsodium-dev"
stamp="$tree/etc/thk-swift-tree"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$packages" ] && [ -x "$tree/usr/libexec/swift/bin/swift" ]; then
    echo "swift tree ready: $tree"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then echo "error: making the swift tree needs root" >&2; exit 2; fi
if ! command -v debootstrap >/dev/null; then echo "error: debootstrap is not installed" >&2; exit 2; fi

# A tree without a finished base system (debootstrap stopped part way) is made again from scratch.
if [ -d "$tree" ] && [ ! -x "$tree/usr/bin/apt-get" ]; then
    if mountpoint -q "$tree/proc"; then umount "$tree/proc"; fi
    rm -rf --one-file-system "$tree"
fi
if [ ! -x "$tree/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase trixie "$tree" "$mirror"
fi

mounted=0
if ! mountpoint -q "$tree/proc"; then mount -t proc proc "$tree/proc"; mounted=1; fi
cleanup() { if [ "$mounted" = 1 ]; then umount "$tree/proc"; fi; }
trap cleanup EXIT

cp /etc/resolv.conf "$tree/etc/resolv.conf"
chroot "$tree" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
chroot "$tree" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages
chroot "$tree" apt-get clean
chroot "$tree" swift --version
echo "$packages" > "$stamp"
echo "swift tree ready: $tree"
