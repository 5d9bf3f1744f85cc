"""The receiver's per-frame native path through the JVM binding (android-demo/core) against the C
core alone, in the same run: decode one packet + dequantize + relative motion (K = 15 with
Jacobians; native/tests/bench_core.c and android-demo/core/src/tools/.../JvmBench.kt). The JNI
crossing is the difference. Baseline: the C core (ratio 1.00). Table on stdout, JSON with --json.

    python bench/android_jvm.py --frames 20000 --json out/android_jvm_bench.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def last_json(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["make", "-s", "-C", str(ROOT / "native"), f"BUILD={work}/native", "bench"], check=True)
        built = subprocess.run(["bash", str(ROOT / "android-demo" / "build-here.sh"), "jvm", f"{work}/jvm"],
                               capture_output=True, text=True)
        if built.returncode != 0:
            print(f"error: android-demo/build-here.sh jvm: {built.stderr.strip().splitlines()[-1]}", file=sys.stderr)
            return 2
        c = last_json(subprocess.run([f"{work}/native/bench_core", str(args.frames)], capture_output=True, text=True,
                                     check=True).stdout)
        jvm = last_json(subprocess.run(["bash", str(ROOT / "android-demo" / "build-here.sh"), "run", f"{work}/jvm",
                                        "org.talkinghead.core.tools.JvmBench", str(args.frames)],
                                       capture_output=True, text=True, check=True).stdout)
    rows = [{"path": "C core (baseline)", **c}, {"path": "JVM binding (JNI)", **jvm}]
    print("| path | frames | mean µs | p50 µs | p99 µs | p50 × C |\n| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['path']} | {row['frames']} | {row['mean_us']:.2f} | {row['p50_us']:.2f} | {row['p99_us']:.2f} | "
              f"{row['p50_us'] / c['p50_us']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
