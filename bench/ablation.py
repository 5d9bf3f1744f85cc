"""Ablation at an equal training budget: fomm vs dagan vs dagan++, and the depth net's effect alone.

    OMP_WAIT_POLICY=PASSIVE python bench/ablation.py --data cache/prepared --depth runs/depth-mobile \\
        --steps 400 --stride 12 --cross-stride 40 --out runs/ablation --json out/ablation.json
    # another seed of the depth comparison alone (the first arm given is the baseline)
    python bench/ablation.py ... --seed 1 --arms "dagan++" "dagan++ flat depth" --out runs/ablation-seed1

Arms, all at the mobile size with the same data, seed, batch, steps and objective (the GAN terms
stay off: their warm-up is the whole budget, so no arm gets an extra loss):

- ``fomm``: RGB keypoints, FOMM generator, no depth, no attention (the baseline);
- ``dagan``: RGB+D keypoints, cross-modal depth attention at the bottleneck;
- ``dagan++``: attention at every scale with skip connections;
- ``dagan++ flat depth``: the dagan++ network with its depth net replaced by a constant map, so the
  depth carries no information: the difference to ``dagan++`` is the depth net's effect alone.

Each arm trains with `python -m sdk train generator` (resumable: re-running continues); once all
have trained, each is evaluated (cached per run) with the papers' protocol on the test split (`sdk.eval.evaluate`) at its last step: no
checkpoint is picked on the test split. Prints a table, writes JSON; the baseline is the first arm (``fomm``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sdk.checkpoint import load_depth, load_model, save_depth
from sdk.eval.reenactment import evaluate
from sdk.pipeline import TalkingHeadPipeline
from sdk.training.trainer import resolve_depth_export


@dataclass(frozen=True)
class Arm:
    name: str
    config: str
    depth: str | None  # "trained", "flat" or None (no depth net)


ARMS = (Arm("fomm", "fomm-mobile", None), Arm("dagan", "dagan-mobile", "trained"),
        Arm("dagan++", "dagan++-mobile", "trained"), Arm("dagan++ flat depth", "dagan++-mobile", "flat"))


def write_flat_depth(trained: Path, out: Path) -> Path:
    """The trained depth stage with zeroed disparity heads: sigmoid(0) everywhere, so the
    normalised depth the keypoint detector and generator see is 1.0 at every pixel."""
    if (out / "config.json").is_file():
        return out
    stage = load_depth(resolve_depth_export(trained))
    with torch.no_grad():
        for head in stage.depth_net.disparity_heads:
            head.weight.zero_()
            head.bias.zero_()
    save_depth(stage.depth_net, stage.pose_net, stage.config, out,
               extra_metadata={"ablation": "flat depth: disparity heads zeroed"})
    return out


def train(arm: Arm, run: Path, depth: Path | None, args: argparse.Namespace) -> None:
    command = [sys.executable, "-m", "sdk", "train", "generator", "--config", arm.config, "--data", str(args.data),
               "--out", str(run), "--steps", str(args.steps), "--gan-warmup", str(args.steps),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--num-workers", "1",
               "--val-every", str(args.val_every), "--sample-every", str(args.steps),
               "--checkpoint-every", "100"]
    if depth is not None and not (run / "checkpoint.pt").is_file():
        command += ["--depth", str(depth)]
    subprocess.run(command, check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


def evaluate_arm(arm: Arm, run: Path, args: argparse.Namespace) -> dict:
    """The arm's row, evaluated once per protocol and cached in RUN/ablation_eval.json."""
    cache = run / "ablation_eval.json"
    protocol = {"stride": args.stride, "cross_stride": args.cross_stride}
    if cache.is_file() and (row := json.loads(cache.read_text())).get("protocol") == protocol:
        return row
    model = load_model(run / "model")
    torch.set_grad_enabled(False)
    report = evaluate(TalkingHeadPipeline(model), args.data, "test", args.stride, args.cross_stride)
    row = {"arm": arm.name, "config": arm.config, "depth": arm.depth, "steps": model.metadata["step"],
           "protocol": protocol, "eval": asdict(report)}
    cache.write_text(json.dumps(row, indent=1))
    print(f"{arm.name}: evaluated", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("cache/prepared"))
    parser.add_argument("--depth", type=Path, default=Path("runs/depth-mobile"), help="trained depth run (mobile)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--val-every", type=int, default=200)
    parser.add_argument("--stride", type=int, default=6, help="every N-th frame in self-reenactment")
    parser.add_argument("--cross-stride", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="training seed of every arm")
    parser.add_argument("--arms", nargs="+", choices=[arm.name for arm in ARMS], default=[arm.name for arm in ARMS],
                        help="which arms, in this order; the first is the baseline")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--json", type=Path, default=Path("out/ablation.json"))
    args = parser.parse_args()

    flat = write_flat_depth(args.depth, args.out / "depth-flat")
    runs = {arm: args.out / arm.name.replace(" ", "-") for name in args.arms for arm in ARMS if arm.name == name}
    for arm, run in runs.items():  # every arm trains before any is evaluated: training is the long pole
        train(arm, run, {"trained": args.depth, "flat": flat, None: None}[arm.depth], args)
    rows = [evaluate_arm(arm, run, args) for arm, run in runs.items()]

    base = rows[0]["eval"]["self_reenactment"]["model"]
    print(f"\nequal budget: {args.steps} steps × batch {args.batch_size}, test split, every {args.stride}. frame")
    print(f"arm                  PSNR   ΔPSNR    SSIM    AKD  AKD×base  ID-dist  cross AKD  cross ID   (base: {rows[0]['arm']})")
    for row in rows:
        self_row = row["eval"]["self_reenactment"]["model"]
        cross_row = row["eval"]["cross_identity"]["model"]
        row["psnr_minus_baseline"] = self_row["psnr"] - base["psnr"]
        row["akd_ratio_vs_baseline"] = self_row["akd"] / base["akd"]
        identity = "—" if self_row["identity"] is None else f"{self_row['identity']:.3f}"
        cross_id = "—" if cross_row["identity"] is None else f"{cross_row['identity']:.3f}"
        print(f"{row['arm']:<20} {self_row['psnr']:6.2f} {row['psnr_minus_baseline']:+7.2f} {self_row['ssim']:7.3f} "
              f"{self_row['akd']:6.2f} {row['akd_ratio_vs_baseline']:9.2f} {identity:>8} {cross_row['akd']:10.2f} "
              f"{cross_id:>9}")
    still = rows[0]["eval"]["self_reenactment"]["still_frame"]
    print(f"{'still frame':<20} {still['psnr']:6.2f} {still['psnr'] - base['psnr']:+7.2f} {still['ssim']:7.3f} "
          f"{still['akd']:6.2f} {still['akd'] / base['akd']:9.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"baseline": rows[0]["arm"], "seed": args.seed, "steps": args.steps,
                                     "batch_size": args.batch_size, "stride": args.stride, "arms": rows}, indent=1))


if __name__ == "__main__":
    main()
