#!/usr/bin/env bash
# What of the Android demo builds on a Linux machine without the Android SDK (android-demo/README.md,
# "Built here"). Each step writes into OUT and prints what it made; tests/test_android_jvm.py and
# tests/test_interop.py call it. Exit status 3: a tool is missing (the message says which and how to
# get it; .ci/run installs them), so a test skips with that reason instead of failing.
#
#   build-here.sh jvm OUT         libthkjni.so (gcc, libsodium) + thk-core.jar, thk-tests.jar (tests and tools)
#   build-here.sh test OUT        jvm, then the JUnit tests (JUnit 4 from Debian's junit4); junit: the tests only
#   build-here.sh run OUT CLASS   run a class of the JVM build in OUT (tools: ConformanceDriver, ReceiveTool, SendTool, JvmBench)
#   build-here.sh android-so OUT  android-arm64/libthkjni.so: codec + motion + JNI, clang freestanding, no NDK
#   build-here.sh apk OUT         android-so, then thk-demo-debug.apk: the platform-only app (android.jar API 23)
#                                 through aapt2, kotlinc, dx, zipalign and apksigner, signed with a debug key
#
# Tools, each overridable by its variable: KOTLINC (kotlinc 1.9.25, npm package kotlin-compiler),
# JUNIT_JARS, ANDROID_JAR and DX_JAR (Debian bullseye's libandroid-23-java and dalvik-exchange,
# unpacked into /opt/android-bullseye), CLANG (clang-14 + lld), aapt2, zipalign, apksigner, keytool.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
STEP="${1:-}"
OUT="${2:-}"
[ -n "$STEP" ] && [ -n "$OUT" ] || { sed -n '2,20p' "$0"; exit 2; }
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# 1.9.25: its standard library has no invokedynamic outside kotlin.streams and one comparator helper, which
# dx (the only dexer Debian has; D8 lives in Google's Maven) cannot translate below API 26
KOTLIN_VERSION=1.9.25
KOTLINC="${KOTLINC:-$(command -v kotlinc || echo /opt/kotlin-compiler-$KOTLIN_VERSION/node_modules/kotlin-compiler/bin/kotlinc)}"
JUNIT_JARS="${JUNIT_JARS:-/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar}"
BULLSEYE=/opt/android-bullseye
ANDROID_JAR="${ANDROID_JAR:-$BULLSEYE/usr/lib/android-sdk/platforms/android-23/android.jar}"
DX_JAR="${DX_JAR:-$BULLSEYE/usr/share/java/com.android.dx.jar}"
CLANG="${CLANG:-clang-14}"

missing() { echo "missing: $*" >&2; exit 3; }
need_cmd() { command -v "$1" >/dev/null || missing "$1 ($2)"; }
need_file() { [ -e "$1" ] || missing "$1 ($2)"; }

kotlin_stdlib() { echo "$(dirname "$(dirname "$(readlink -f "$KOTLINC")")")/lib/kotlin-stdlib.jar"; }

build_jvm() {
    need_cmd javac "a JDK: apt-get install openjdk-17-jdk-headless"
    need_cmd make "apt-get install make"
    [ -e /usr/include/sodium.h ] || missing "libsodium's headers (apt-get install libsodium-dev)"
    need_file "$KOTLINC" "kotlinc $KOTLIN_VERSION: npm install --prefix /opt/kotlin-compiler-$KOTLIN_VERSION kotlin-compiler@$KOTLIN_VERSION"
    for jar in ${JUNIT_JARS//:/ }; do need_file "$jar" "JUnit 4: apt-get install junit4"; done
    make -s -C "$ROOT/native" BUILD="$OUT/native" jni
    cp "$OUT/native/libthkjni.so" "$OUT/libthkjni.so"
    local core="$HERE/core/src"
    # jvm-target 1.8: the same classes go through dx into the APK
    "$KOTLINC" -jvm-target 1.8 -nowarn -d "$OUT/thk-core.jar" "$core/main/kotlin" 2>&1 | grep -v '^warning' || true
    [ -e "$OUT/thk-core.jar" ] || { echo "kotlinc failed: thk-core.jar" >&2; exit 1; }
    # the conformance tools, the app's platform-neutral logic and the JUnit tests in one compiler run
    "$KOTLINC" -jvm-target 1.8 -nowarn -Xfriend-paths="$OUT/thk-core.jar" -cp "$OUT/thk-core.jar:$JUNIT_JARS" \
        -d "$OUT/thk-tests.jar" "$core/tools/kotlin" "$core/test/kotlin" "$HERE/app/src/main/kotlin/org/talkinghead/demo/logic" \
        "$HERE/app/src/test/kotlin"
    echo "$OUT/libthkjni.so $OUT/thk-core.jar $OUT/thk-tests.jar"
}

# The classpath and flags to run the JVM binding (tools, tests) against the host .so.
jvm_run() {
    java ${JVM_FLAGS:-} -Djava.library.path="$OUT" -cp "$OUT/thk-core.jar:$OUT/thk-tests.jar:$(kotlin_stdlib):$JUNIT_JARS" "$@"
}

run_tests() {
    local classes
    classes=$(for tests in "$HERE/core/src/test/kotlin" "$HERE/app/src/test/kotlin"; do
        (cd "$tests" && find . -name '*Test.kt' | sed 's|^\./||; s|\.kt$||; s|/|.|g')
    done | sort)
    # the JUnit tests read tests/golden/ (THK_GOLDEN)
    # -Xcheck:jni: the JVM checks every JNI call of the binding (the tests fail on its warnings)
    THK_GOLDEN="$ROOT/tests/golden" JVM_FLAGS=-Xcheck:jni jvm_run org.junit.runner.JUnitCore $classes
}

build_android_so() {
    need_cmd "$CLANG" "clang 14: apt-get install clang-14 lld-14"
    [ -x "$(dirname "$(readlink -f "$(command -v "$CLANG")")")/ld.lld" ] || missing "lld for $CLANG (apt-get install lld-14)"
    need_cmd javac "a JDK (its jni.h): apt-get install openjdk-17-jdk-headless"
    make -s -C "$ROOT/native" BUILD="$OUT/native" CLANG="$CLANG" android-so
    mkdir -p "$OUT/android-arm64"
    cp "$OUT/native/android-arm64/libthkjni.so" "$OUT/android-arm64/libthkjni.so"
    echo "$OUT/android-arm64/libthkjni.so"
}

build_apk() {
    need_file "$ANDROID_JAR" "android.jar API 23: Debian bullseye's libandroid-23-java, unpacked into $BULLSEYE (.ci/run)"
    need_file "$DX_JAR" "dx: Debian bullseye's dalvik-exchange, unpacked into $BULLSEYE (.ci/run)"
    need_file "$KOTLINC" "kotlinc $KOTLIN_VERSION (see jvm)"
    for tool in aapt2 zipalign apksigner keytool; do need_cmd "$tool" "apt-get install aapt zipalign apksigner"; done
    build_android_so >/dev/null
    local app="$HERE/app/src/main" work="$OUT/apk-work"
    rm -rf "$work" && mkdir -p "$work/res" "$work/classes" "$work/gen" "$work/lib/arm64-v8a" "$work/assets"
    # assets: the golden streams for the on-device self-test (SelfTest.kt); no model bundle here
    cp "$ROOT/tests/golden/codec_learned_v1.json" "$work/assets/"
    # resources: compile, then link against android.jar with the manifest
    aapt2 compile --dir "$app/res" -o "$work/res/compiled.zip"
    aapt2 link -o "$work/base.apk" -I "$ANDROID_JAR" --manifest "$app/AndroidManifest.xml" \
        --min-sdk-version 23 --target-sdk-version 23 --version-code 1 --version-name 0.1 \
        --java "$work/gen" "$work/res/compiled.zip" -A "$work/assets"
    # code: R.java + the platform-only app + the core's Kotlin, against android.jar (no JDK), for dx
    javac --release 8 -nowarn -classpath "$ANDROID_JAR" -d "$work/classes" $(find "$work/gen" -name '*.java') 2>/dev/null \
        || javac -source 8 -target 8 -bootclasspath "$ANDROID_JAR" -nowarn -d "$work/classes" $(find "$work/gen" -name '*.java')
    "$KOTLINC" -no-jdk -no-reflect -jvm-target 1.8 -nowarn -Xlambdas=class -Xsam-conversions=class \
        -cp "$ANDROID_JAR:$work/classes" -d "$work/classes" "$app/kotlin" "$HERE/core/src/main/kotlin"
    # the Kotlin standard library goes in with the app, without what uses invokedynamic (java.util.stream
    # adapters, kotlin.comparisons' compareBy): nothing of ours may reference those packages
    if (cd "$work/classes" && grep -rlE 'kotlin/(streams|comparisons)/' . >/dev/null); then
        echo "the app references kotlin.streams or kotlin.comparisons, which the APK leaves out" >&2; exit 1
    fi
    mkdir -p "$work/stdlib" && (cd "$work/stdlib" && unzip -qo "$(kotlin_stdlib)" -x 'META-INF/*' 'kotlin/streams/*' \
        'kotlin/comparisons/*')
    java -jar "$DX_JAR" --dex --min-sdk-version=23 --output="$work/classes.dex" "$work/classes" "$work/stdlib" \
        2> >(grep -v '^warning' >&2)
    cp "$OUT/android-arm64/libthkjni.so" "$work/lib/arm64-v8a/"
    cp "$work/base.apk" "$work/unaligned.apk"
    (cd "$work" && zip -q -j "$work/unaligned.apk" classes.dex && zip -q -0 unaligned.apk lib/arm64-v8a/libthkjni.so)
    zipalign -f -p 4 "$work/unaligned.apk" "$work/aligned.apk"
    local keystore="$OUT/debug.keystore"
    [ -e "$keystore" ] || keytool -genkeypair -keystore "$keystore" -storepass android -keypass android \
        -alias androiddebugkey -keyalg RSA -keysize 2048 -validity 10000 -dname "CN=Android Debug,O=Android,C=US" \
        >/dev/null 2>&1
    apksigner sign --ks "$keystore" --ks-pass pass:android --key-pass pass:android --out "$OUT/thk-demo-debug.apk" \
        "$work/aligned.apk"
    echo "$OUT/thk-demo-debug.apk"
}

case "$STEP" in
    jvm) build_jvm ;;
    test) build_jvm >/dev/null && run_tests ;;
    junit) run_tests ;;
    run) shift 2; jvm_run "$@" ;;
    android-so) build_android_so ;;
    apk) build_apk ;;
    *) echo "unknown step $STEP" >&2; exit 2 ;;
esac
