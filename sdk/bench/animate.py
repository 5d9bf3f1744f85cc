"""`python -m sdk bench animate`: `python -m sdk animate` on a quiet and on a busy machine.

Runs the README's main command on the first `--frames` frames of the bundled driving clip, each
run a fresh `python -m sdk animate` process, with and without `sdk.bench.SYNTHETIC_LOAD` (one
process spinning on one core), for each OpenMP wait policy asked for: PASSIVE (what `import sdk`
sets) and ACTIVE (idle threads spin; left unset, libgomp spins for a while too). The figure is
the ratio busy / quiet of animate's frame-loop seconds per policy (goal: at most 2x with the
default). With one thread there is no thread team to spin, so the policies differ only at
`--threads` 2 or more. Encoder and render ms per frame are reported too. Runs alternate quiet
and busy, so load that comes and goes affects both alike; "quiet" means no synthetic load, not
an idle machine: the JSON records the load average around the run.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SdkError
from . import SYNTHETIC_LOAD, busy_core

POLICIES = ("PASSIVE", "ACTIVE")
LOADS = ("quiet", "busy")
GOAL_RATIO = 2.0


@dataclass
class AnimateRun:
    policy: str
    load: str
    seconds: float       # animate's frame loop (as its stats report it)
    process_seconds: float  # the whole process: imports, model load, face front end
    encoder_ms: float
    render_ms: float


@dataclass
class AnimateBenchReport:
    model: str
    frames: int
    runs_per_cell: int
    cpus: int
    omp_num_threads: str | None
    synthetic_load: dict
    load_average_before: tuple[float, float, float]
    load_average_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    runs: list[AnimateRun] = field(default_factory=list)
    medians: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # policy -> load -> metric
    ratios: dict[str, float] = field(default_factory=dict)  # policy -> busy / quiet seconds
    goal_ratio: float = GOAL_RATIO
    seconds: float = 0.0


def short_clip(source: Path, frames: int, out: Path) -> Path:
    """The first `frames` frames of `source` written to `out`."""
    from ..media import iter_video, probe_video, write_video

    info = probe_video(source)
    write_video(out, itertools.islice(iter_video(source), frames), info.fps)
    return out


def run_animate(model: str, driving: Path, out: Path, policy: str, threads: int | None = None) -> AnimateRun:
    """One `python -m sdk animate` process with OMP_WAIT_POLICY=`policy` (and OMP_NUM_THREADS=`threads`
    unless None: inherited); its stats."""
    environment = {**os.environ, "OMP_WAIT_POLICY": policy}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "sdk", "animate", "--model", model, "--driving", str(driving),
                             "--out", str(out)], capture_output=True, text=True, env=environment)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SdkError(f"animate failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}")
    stats = json.loads(result.stdout[result.stdout.index("{"):])
    return AnimateRun(policy, "", stats["seconds"], elapsed, stats["encoder_ms"], stats["render_ms"])


def run_animate_bench(model: str = "default", frames: int = 50, runs: int = 3,
                      policies: tuple[str, ...] = POLICIES, threads: int | None = None) -> AnimateBenchReport:
    from ..animate import DEFAULT_DRIVING

    unknown = [policy for policy in policies if policy not in POLICIES]
    if unknown or not policies:
        raise SdkError(f"unknown OpenMP wait policy {unknown or policies}; choose from {', '.join(POLICIES)}")
    if min(runs, frames, threads or 1) < 1:
        raise SdkError(f"--runs, --frames and --threads must be >= 1, got {runs}, {frames} and {threads}")
    started = time.perf_counter()
    report = AnimateBenchReport(model, frames, runs, os.cpu_count() or 1,
                                os.environ.get("OMP_NUM_THREADS") if threads is None else str(threads),
                                SYNTHETIC_LOAD, os.getloadavg())
    with tempfile.TemporaryDirectory() as folder:
        driving = short_clip(DEFAULT_DRIVING, frames, Path(folder) / "driving.mp4")
        for _, policy, load in itertools.product(range(runs), policies, LOADS):
            out = Path(folder) / f"{policy}-{load}.mp4"
            if load == "busy":
                with busy_core():
                    run = run_animate(model, driving, out, policy, threads)
            else:
                run = run_animate(model, driving, out, policy, threads)
            run.load = load
            report.runs.append(run)
    for policy in policies:
        cells = {}
        for load in LOADS:
            chosen = [run for run in report.runs if run.policy == policy and run.load == load]
            cells[load] = {metric: statistics.median(getattr(run, metric) for run in chosen)
                           for metric in ("seconds", "process_seconds", "encoder_ms", "render_ms")}
        report.medians[policy] = cells
        report.ratios[policy] = cells["busy"]["seconds"] / cells["quiet"]["seconds"]
    report.load_average_after = os.getloadavg()
    report.seconds = time.perf_counter() - started
    return report


def format_report(report: AnimateBenchReport) -> str:
    lines = [f"animate bench: model {report.model}, {report.frames} frames, median of {report.runs_per_cell} runs "
             f"per cell; {report.cpus} CPUs, OMP_NUM_THREADS={report.omp_num_threads or 'unset'}; busy = "
             f"{report.synthetic_load['processes']} {report.synthetic_load['kind']} on one core; load average "
             f"{report.load_average_before[0]:.2f} before, {report.load_average_after[0]:.2f} after", "",
             f"{'OMP_WAIT_POLICY':<16} {'load':<6} {'animate s':>9} {'process s':>9} {'encoder ms':>10} "
             f"{'render ms':>9} {'busy/quiet':>10}"]
    for policy, cells in report.medians.items():
        for load, cell in cells.items():
            ratio = f"{report.ratios[policy]:.2f}x" if load == "busy" else ""
            lines.append(f"{policy:<16} {load:<6} {cell['seconds']:>9.2f} {cell['process_seconds']:>9.2f} "
                         f"{cell['encoder_ms']:>10.1f} {cell['render_ms']:>9.1f} {ratio:>10}")
    ratios = ", ".join(f"{policy} {ratio:.2f}x" for policy, ratio in report.ratios.items())
    lines += ["", f"busy / quiet (animate s): {ratios}"
              + f" (goal: <= {report.goal_ratio:.0f}x with the default, PASSIVE)", f"({report.seconds:.0f} s)"]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    policies = tuple(part.strip().upper() for part in args.policies.split(",") if part.strip())
    report = run_animate_bench(args.model, args.frames, args.runs, policies, args.threads)
    print(format_report(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(asdict(report), indent=1) + "\n")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("animate", help="animate on a quiet vs a busy machine, per OpenMP wait policy",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--frames", type=int, default=50, help="frames of the bundled driving clip (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="runs per policy and load (median; default 3)")
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated: {','.join(POLICIES)}")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for animate (default: as in this shell; "
                                                  "unset, torch uses one thread per core)")
    parser.add_argument("--json", help="also write the report as JSON")
    parser.set_defaults(run=_run)
