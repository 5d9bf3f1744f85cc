#!/usr/bin/env bash
# libsodium for the app's ABIs with the NDK (ANDROID_NDK_HOME), using libsodium's own Android build
# scripts, into libsodium-android/<abi>/{include,lib}. Run once before the Gradle build (the
# workflow does). Not run on this project's Linux machines: they have no NDK.
set -euo pipefail
VERSION=1.0.20
SHA256=ebb65ef6ca439333c2bb41a0c1990587288da07f6c7fd07cb3a18cc18d30ce19
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the NDK}"
work="$(mktemp -d)"
curl -fsSL -o "$work/libsodium.tar.gz" "https://download.libsodium.org/libsodium/releases/libsodium-$VERSION.tar.gz"
echo "$SHA256  $work/libsodium.tar.gz" | sha256sum -c -
tar -xzf "$work/libsodium.tar.gz" -C "$work"
cd "$work/libsodium-$VERSION"
for pair in "arm64-v8a android-armv8-a.sh armv8-a+crypto" "x86_64 android-x86_64.sh westmere"; do
    set -- $pair
    LIBSODIUM_FULL_BUILD=1 NDK_PLATFORM=android-24 ./dist-build/"$2" >/dev/null
    mkdir -p "$HERE/libsodium-android/$1"
    cp -R "libsodium-android-$3/include" "libsodium-android-$3/lib" "$HERE/libsodium-android/$1/"
done
echo "$HERE/libsodium-android"
