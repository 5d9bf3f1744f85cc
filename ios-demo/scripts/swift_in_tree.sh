#!/usr/bin/env bash
# Run `swift ARGS...` on this package inside the trixie tree (made by make_swift_chroot.sh).
# The package and what it reads from the repository (native/src, native/include, tests/golden) are
# copied into the tree at $THK_SWIFT_WORK (default /var/tmp/thk-swift/<checkout> inside it), keeping
# their layout and times so that the build in .build there is incremental. /proc is mounted for the
# run; runs on one tree take turns (a lock), so one never unmounts /proc under another.
# Variables named THK_* are passed through (paths in them are the tree's, not the host's).
#
#   ios-demo/scripts/swift_in_tree.sh test --disable-swift-testing
#   ios-demo/scripts/swift_in_tree.sh run -c release ThkBench
set -euo pipefail

tree="${THK_SWIFT_TREE:-/opt/swift-trixie}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${THK_SWIFT_WORK:-/var/tmp/thk-swift/$(printf %s "$repo" | md5sum | cut -c1-8)}"
if [ ! -x "$tree/usr/libexec/swift/bin/swift" ]; then
    echo "error: no swift tree at $tree (make it with ios-demo/scripts/make_swift_chroot.sh)" >&2
    exit 2
fi

mkdir -p "$tree/var/lock"
exec 9>"$tree/var/lock/thk-swift.lock"
flock 9

copy="$tree$work/repo"
mkdir -p "$copy"
for part in ios-demo native/src native/include tests/golden; do
    # replace the sources but keep the build folder (.build) of the previous run
    find "$copy/$part" -mindepth 1 -maxdepth 1 ! -name .build -exec rm -rf {} + 2>/dev/null || true
    mkdir -p "$copy/$part"
    (cd "$repo/$part" && tar --exclude=./.build --exclude=./.swiftpm -cf - .) | (cd "$copy/$part" && tar -xpf -)
done

# clang's module cache does not notice a header added to an umbrella directory (native/include)
headers="$(ls "$repo/native/include")"
if [ "$(cat "$copy/.headers" 2>/dev/null)" != "$headers" ]; then
    find "$copy/ios-demo/.build" -maxdepth 3 -name ModuleCache -type d -exec rm -rf {} + 2>/dev/null || true
    printf '%s' "$headers" > "$copy/.headers"
fi

mounted=0
if ! mountpoint -q "$tree/proc"; then mount -t proc proc "$tree/proc"; mounted=1; fi
cleanup() { if [ "$mounted" = 1 ]; then umount "$tree/proc" || true; fi; }
trap cleanup EXIT

passed=()
while IFS='=' read -r name value; do passed+=("$name=$value"); done < <(env | grep '^THK_' || true)
status=0
chroot "$tree" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "${passed[@]}" \
    sh -c 'cd "$0" && exec swift "$@"' "$work/repo/ios-demo" "$@" || status=$?
exit "$status"
