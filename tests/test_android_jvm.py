"""The Android demo's JNI + Kotlin/JVM binding (android-demo/core) and what builds of the app here.

- Its JUnit tests (golden vectors of tests/golden/, the bad-input list, both ends of the session);
- random property cases generated here in Python and fed alike to the C core and the JVM binding
  (their line drivers, native/tests/vectors.c and ConformanceDriver.kt): the same lines, equal to
  what the Python SDK expects; receiver-side motion cases against sdk.models.motion;
- the freestanding Android arm64 .so (no libc, no NDK): its ELF, and the same property lines through
  it under qemu;
- the platform-only debug APK: `aapt dump badging` and `apksigner verify`.

Everything is built by android-demo/build-here.sh, which exits 3 naming a missing tool: those tests
skip with that reason (.ci/run installs the tools).

    THK_PROPERTY_CASES=100000 python -m pytest -q tests/test_android_jvm.py   # more random cases
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from test_native_core import motion_cases, vector_script

ROOT = Path(__file__).resolve().parent.parent
BUILD_HERE = ROOT / "android-demo" / "build-here.sh"
PROPERTY_CASES = int(os.environ.get("THK_PROPERTY_CASES", "10000"))
MISSING = 3  # build-here.sh's exit status for a missing tool

_builds: dict[str, Path | str] = {}


def android_build(step: str, tmp_path_factory) -> Path:
    """`build-here.sh STEP` once per test session (test_interop.py shares it); skips, with the
    script's reason, where a tool is missing."""
    if step not in _builds:
        out = tmp_path_factory.getbasetemp() / "android-build"
        result = subprocess.run(["bash", str(BUILD_HERE), step, str(out)], capture_output=True, text=True)
        if result.returncode == MISSING:
            _builds[step] = result.stderr.strip().splitlines()[-1]
        else:
            assert result.returncode == 0, f"build-here.sh {step} failed:\n{result.stdout}\n{result.stderr}"
            _builds[step] = out
    built = _builds[step]
    if isinstance(built, str):
        pytest.skip(f"build-here.sh {step}: {built}")
    return built


def jvm_command(out: Path, main_class: str) -> list[str]:
    """How to run a class of the JVM binding built into `out` (build-here.sh's classpath)."""
    return ["bash", str(BUILD_HERE), "run", str(out), main_class]


@pytest.fixture(scope="module")
def jvm(tmp_path_factory) -> Path:
    return android_build("jvm", tmp_path_factory)


@pytest.fixture(scope="module")
def c_vectors(tmp_path_factory) -> Path:
    """native/tests/vectors.c for this machine (the C side of the property cases)."""
    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.skip("no make or C compiler here")
    build = tmp_path_factory.mktemp("native-vectors")
    subprocess.run(["make", "-s", "-C", str(ROOT / "native"), f"BUILD={build}", "codec"], check=True,
                   capture_output=True)
    return build / "vectors"


@pytest.fixture(scope="module")
def script() -> tuple[str, list[str]]:
    """Random streams of the three kinds (encode, then decode with impairments) until PROPERTY_CASES cases."""
    streams = max(10, PROPERTY_CASES // 16)  # ~16 encode + decode cases per random stream
    return vector_script(streams)


def check_lines(output: str, expected: list[str]) -> None:
    """The driver's lines against the Python's: packet hex per encode, the status per decode."""
    lines = output.splitlines()
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected):
        assert (line.split()[0] == want) if len(want) <= 3 else (line == want), (line[:80], want[:80])


def test_junit_tests_pass(jvm):
    result = subprocess.run(["bash", str(BUILD_HERE), "junit", str(jvm)], capture_output=True, text=True)
    assert result.returncode == 0 and "OK (" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert "WARNING" not in result.stdout + result.stderr  # -Xcheck:jni: no JNI misuse


def test_property_cases_alike_in_python_c_and_jvm(jvm, c_vectors, script):
    commands, expected = script
    cases = sum(line[0] in "ED" for line in commands.splitlines())
    assert cases >= PROPERTY_CASES
    c = subprocess.run([str(c_vectors)], input=commands, capture_output=True, text=True, check=True)
    kotlin = subprocess.run(jvm_command(jvm, "org.talkinghead.core.tools.ConformanceDriver"), input=commands,
                            capture_output=True, text=True, check=True)
    assert kotlin.stdout == c.stdout  # byte for byte: packets, statuses, decoded levels
    check_lines(kotlin.stdout, expected)
    print(f"{cases} property cases (encode + decode) equal in Python, C and the JVM binding")


def test_motion_cases_match_python(jvm):
    """Random relative-motion cases of sdk.models.motion through the JVM binding: hull areas equal
    after rounding to float32, values and Jacobians within docs/motion.md's tolerance."""
    cases = motion_cases(300, 7)
    lines = []
    for case in cases:
        arrays = [np.ravel(case[name]) for name in ("driving", "driving_jacobian", "anchor", "anchor_jacobian",
                                                    "source", "source_jacobian")]
        lines.append(f"M {case['k']} {int(case['use_jacobian'])} {int(case['adapt_movement_scale'])} " +
                     " ".join(repr(float(v)) for v in np.concatenate(arrays)))
    result = subprocess.run(jvm_command(jvm, "org.talkinghead.core.tools.ConformanceDriver"),
                            input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)

    def floats(text: str) -> np.ndarray:
        return np.array([int(v, 16) for v in text.split(",")], np.uint32).view(np.float32)

    worst = 0.0
    for case, line in zip(cases, result.stdout.splitlines(), strict=True):
        status, areas, value, jacobian = line.split()
        assert status == "0"
        assert (floats(areas) == np.float32([case["source_area"], case["anchor_area"]])).all()
        for got, want in ((floats(value), np.ravel(case["value"])), (floats(jacobian), np.ravel(case["jacobian"]))):
            np.testing.assert_allclose(got, np.float32(want), rtol=5e-7, atol=1e-6)
            worst = max(worst, float(np.abs(got - np.float32(want)).max()))
    print(f"{len(cases)} motion cases; largest difference from the Python {worst:.3g}")


# -- the Android arm64 .so, freestanding --------------------------------------------------------------------

def elf_dynamic(path: Path) -> tuple[int, list[int], int]:
    """(e_machine, the DT_NEEDED offsets, undefined dynamic symbols) of a 64-bit little-endian ELF."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    machine = struct.unpack_from("<H", data, 18)[0]
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    needed, undefined = [], 0
    for index in range(shnum):  # Elf64_Shdr: name, type, flags, addr, offset, size, link, info, align, entsize
        _, section, _, _, offset, size, _, _, _, entsize = struct.unpack_from("<IIQQQQIIQQ", data,
                                                                              shoff + index * shentsize)
        if section == 6:  # SHT_DYNAMIC: (tag, value) pairs; DT_NEEDED = 1
            for at in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, at)
                if tag == 1:
                    needed.append(value)
        elif section == 11:  # SHT_DYNSYM: a symbol of section index 0 (after the null one) is undefined
            for at in range(offset + entsize, offset + size, entsize):
                shndx = struct.unpack_from("<H", data, at + 6)[0]
                undefined += shndx == 0
    return machine, needed, undefined


def test_android_so_is_freestanding_and_decodes_alike(tmp_path_factory, script, tmp_path):
    """The .so has no DT_NEEDED entry (no libc) and no undefined symbol, is AArch64, and under qemu,
    loaded by glibc's loader into vectors.c, gives the property lines of the C core on x86-64."""
    out = android_build("android-so", tmp_path_factory)
    library = out / "android-arm64" / "libthkjni.so"
    machine, needed, undefined = elf_dynamic(library)
    assert machine == 183 and needed == [] and undefined == 0  # EM_AARCH64
    cross, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if cross is None or qemu is None:
        pytest.skip("no arm64 cross compiler or qemu-user (Debian: gcc-aarch64-linux-gnu, qemu-user) to run it")
    shutil.copy(library, tmp_path / "libthkjni.so")
    driver = tmp_path / "vectors"
    subprocess.run([cross, "-std=c11", "-O2", f"-I{ROOT / 'native' / 'include'}", "-o", str(driver),
                    str(ROOT / "native" / "tests" / "vectors.c"), str(tmp_path / "libthkjni.so"),
                    "-Wl,-rpath,$ORIGIN"], check=True, capture_output=True)
    commands, expected = script
    arm = subprocess.run([qemu, "-L", "/usr/aarch64-linux-gnu", str(driver)], input=commands, capture_output=True,
                         text=True, check=True)
    check_lines(arm.stdout, expected)
    print(f"android arm64 .so: {library.stat().st_size} bytes, no libc")


# -- the platform-only debug APK ------------------------------------------------------------------------------

def test_debug_apk_is_signed_and_declares_the_app(tmp_path_factory):
    out = android_build("apk", tmp_path_factory)
    apk = out / "thk-demo-debug.apk"
    badging = subprocess.run(["aapt", "dump", "badging", str(apk)], capture_output=True, text=True, check=True).stdout
    assert "package: name='org.talkinghead.demo'" in badging
    assert "sdkVersion:'23'" in badging and "native-code: 'arm64-v8a'" in badging
    assert "launchable-activity: name='org.talkinghead.demo.MainActivity'" in badging
    assert "uses-permission: name='android.permission.INTERNET'" in badging
    verify = subprocess.run(["apksigner", "verify", "--verbose", str(apk)], capture_output=True, text=True)
    assert verify.returncode == 0 and "Verified using v2 scheme (APK Signature Scheme v2): true" in verify.stdout, \
        verify.stdout + verify.stderr
    with zipfile.ZipFile(apk) as archive:
        names = set(archive.namelist())
        assert {"classes.dex", "lib/arm64-v8a/libthkjni.so", "AndroidManifest.xml"} <= names
        # the .so stored uncompressed (and page-aligned by zipalign -p) so Android maps it in place
        assert archive.getinfo("lib/arm64-v8a/libthkjni.so").compress_type == zipfile.ZIP_STORED
    print(f"debug APK: {apk.stat().st_size} bytes")
