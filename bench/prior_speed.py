"""Sender cost of the semantic face prior (issue 12): tracked mesh -> SemanticCode per frame, against
the learned keypoint encoder it replaces, on this CPU in the same run.

    python bench/prior_speed.py [--data cache/prepared] [--model default] [--prior default]
        [--keypoints 15] [--rounds 5] [--runs 200] [--threads 1] [--json out/prior_speed.json]

Rows (median ms per frame; each round times every row with `sdk.timing.median_ms` over
consecutive real meshes of the test split, the median over rounds is reported, so load that
comes and goes affects the rows alike):
- `prior encode` — the sender beyond tracking: `SemanticEncoder.encode` (Procrustes + code);
- `prior drive` — the receiver's keypoints: `relative_motion` + `AvatarRig.drive` (K keypoints,
  Jacobians), which replaces nothing on the sender;
- `learned encode` (baseline) — `TalkingHeadModel.encode` of the model on one frame at its
  internal resolution (torch, `--threads` threads, inference mode): what the sender runs today
  after tracking.
The machine's load average is recorded with the figures: on a shared machine, say so.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from sdk.timing import median_ms
from sdk.checkpoint import load_model
from sdk.data.datasets import load_frame, load_landmarks, read_prepared_manifest
from sdk.media import resize_image, to_tensor
from sdk.prior import AvatarRig, RigConfig, SemanticEncoder, load_prior, relative_motion


def test_meshes(data: Path, limit: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Up to `limit` finite test-split meshes at 256² and one test frame (RGB uint8)."""
    clips = read_prepared_manifest(data, "test")
    meshes = []
    for clip in clips:
        points = load_landmarks(clip, 256)
        meshes.append(points[np.isfinite(points).all(axis=(1, 2))])
    return np.concatenate(meshes)[:limit].astype(np.float64), load_frame(clips[0].frame_path(0), 256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("cache/prepared"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--prior", default="default")
    parser.add_argument("--keypoints", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200, help="frames per prior timing (learned: runs / 10)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("out/prior_speed.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    meshes, frame = test_meshes(args.data)
    prior = load_prior(args.prior)
    model = load_model(args.model)
    image = to_tensor(resize_image(frame, model.cfg.resolution, model.cfg.resolution))

    encoder = SemanticEncoder(prior)
    rig = AvatarRig(prior, meshes[0], 256, RigConfig(num_keypoints=args.keypoints))
    anchor = encoder.encode(meshes[0]).code
    sender_frames = itertools.cycle(meshes)
    codes = itertools.cycle([encoder.encode(mesh).code for mesh in meshes[:500]])

    def learned() -> None:
        with torch.inference_mode():
            model.encode(image)

    rows = {"prior encode": (lambda: encoder.encode(next(sender_frames)), args.runs),
            "prior drive": (lambda: rig.drive(relative_motion(next(codes), anchor)), args.runs),
            "learned encode": (learned, max(5, args.runs // 10))}
    load_before = os.getloadavg()
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.rounds):
        for name, (call, runs) in rows.items():
            samples[name].append(median_ms(call, runs))
    load_after = os.getloadavg()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["learned encode"]

    print(f"sender cost per frame, {args.rounds} rounds, torch threads {args.threads}, load average "
          f"{load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} CPUs; model {model.cfg.name} at "
          f"{model.cfg.resolution}², prior E = {prior.components}, K = {args.keypoints}")
    print("| stage | ms / frame | vs learned encode |\n| --- | --- | --- |")
    for name, value in medians.items():
        print(f"| {name} | {value:.3f} | {value / baseline:.4f}x |")
    result = {"ms_per_frame": medians, "rounds_ms": samples, "ratio_to_learned_encode":
              {name: value / baseline for name, value in medians.items()},
              "target_ms": 2.0, "meets_target": medians["prior encode"] <= 2.0,
              "load_average": {"before": load_before, "after": load_after}, "cpus": os.cpu_count(),
              "threads": args.threads, "model": model.cfg.name, "prior_sha256": prior.sha256,
              "components": prior.components, "keypoints": args.keypoints, "meshes": len(meshes)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
