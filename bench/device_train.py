"""Train the generator on a lent GPU (the `device` tool) and bring the weights back.

A lent machine sees only the repository (at most 64 MiB travels, `../shared` does not) and has
its own PyTorch but no mediapipe or PyAV, so the data travels as a compact training pack: a
prepared folder (`python -m sdk data prepare` layout, what `FramePairDataset` reads) with every
k-th frame re-encoded at a lower JPEG quality, k chosen so the pack fits its budget.

Here, on the CPU machine (once per prepared cache; the pack lands in the git-ignored `cache/`):

    python bench/device_train.py pack --data cache/prepared --out cache/pack --budget-mib 40

There, in one `run` call carrying `cache/pack` (trains for the minutes given, with AMP, then
writes `$OUT/best_model-fp16/` and `$OUT/train_summary.json`):

    python3 bench/device_train.py train --pack cache/pack --init sdk/assets/models/default \\
        --minutes 8 --out "$OUT"

The run starts from `--init` (the committed weights) so nothing learnt is thrown away, and its
best fp16 export comes back ready to commit. The same command runs on a CPU with `--device cpu`
(the tests do, on a tiny model).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sdk.data.datasets import load_landmarks, read_prepared_manifest  # noqa: E402
from sdk.data.prepare import PREPARED_COLUMNS  # noqa: E402
from sdk.errors import SdkError  # noqa: E402
from sdk.media import resize_image  # noqa: E402

PACK_JPEG_QUALITY = 85
MIN_FRAMES_PER_CLIP = 8  # so every clip still gives varied (source, driving) pairs


def pack(data: Path, out: Path, budget_mib: float, size: int) -> dict:
    """Write the training pack of prepared folder `data` to `out`; returns its summary."""
    clips = read_prepared_manifest(data)
    total_frames = sum(clip.frames for clip in clips)
    sample = _encode(clips[0].frame_path(0), size)
    stride = max(1, math.ceil(total_frames * len(sample) / (budget_mib * 2 ** 20 * 0.9)))
    if out.exists():
        shutil.rmtree(out)
    rows, written = [], 0
    with (data / "manifest.csv").open(newline="") as handle:
        source_rows = {row["id"]: row for row in csv.DictReader(handle)}
    for clip in clips:
        indices = list(range(0, clip.frames, stride))
        if len(indices) < MIN_FRAMES_PER_CLIP:
            indices = sorted({round(i * (clip.frames - 1) / (MIN_FRAMES_PER_CLIP - 1))
                              for i in range(MIN_FRAMES_PER_CLIP)})
        frames_dir = out / "clips" / clip.id / "frames"
        frames_dir.mkdir(parents=True)
        for new_index, index in enumerate(indices):
            encoded = _encode(clip.frame_path(index), size)
            (frames_dir / f"{new_index:06d}.jpg").write_bytes(encoded)
            written += len(encoded)
        landmarks = load_landmarks(clip, size)
        if landmarks is not None:  # for the mouth-and-eyes loss and the prior configs
            np.save(out / "clips" / clip.id / "landmarks.npy", landmarks[indices].astype(np.float16))
        coverage = clip.directory / "coverage.png"
        if coverage.is_file():
            image = cv2.imread(str(coverage), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(out / "clips" / clip.id / "coverage.png"), resize_image(image, size, size))
        row = {column: source_rows[clip.id].get(column, "") for column in PREPARED_COLUMNS}
        row.update(frames=len(indices), face_frames=len(indices), size=size, has_audio="no",
                   fps=f"{clip.fps / stride:.3f}")
        rows.append(row)
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, PREPARED_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    summary = {"source": str(data), "clips": len(rows), "frames": sum(int(r["frames"]) for r in rows),
               "stride": stride, "size": size, "jpeg_quality": PACK_JPEG_QUALITY, "mib": round(written / 2 ** 20, 1)}
    (out / "pack.json").write_text(json.dumps(summary, indent=2) + "\n")
    if summary["mib"] > budget_mib:
        raise SdkError(f"{out}: the pack is {summary['mib']} MiB, over its budget of {budget_mib} MiB "
                       "(the per-clip minimum of frames); give a larger --budget-mib")
    return summary


def _encode(path: Path, size: int) -> bytes:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SdkError(f"{path}: missing or corrupt prepared frame")
    ok, buffer = cv2.imencode(".jpg", resize_image(image, size, size), [cv2.IMWRITE_JPEG_QUALITY, PACK_JPEG_QUALITY])
    if not ok:
        raise SdkError(f"{path}: JPEG encoding failed")
    return buffer.tobytes()


def train(args: argparse.Namespace) -> dict:
    """Train from `args.init` on the pack for `args.minutes`, then copy the best fp16 export to `args.out`."""
    import torch

    from sdk.training.config import GeneratorTrainConfig
    from sdk.training.trainer import train_generator

    run_dir = Path(args.run)
    config = GeneratorTrainConfig(model=args.config, data=args.pack, out=run_dir, init=args.init,
                                  steps=args.steps, batch_size=args.batch_size, num_workers=args.num_workers,
                                  device=args.device, amp=True, time_limit_minutes=args.minutes,
                                  gan_warmup_steps=args.gan_warmup, checkpoint_interval=args.checkpoint_every,
                                  val_interval=args.checkpoint_every, sample_interval=0, log_interval=10,
                                  output_size=args.size)
    started = time.perf_counter()
    result = train_generator(config)
    seconds = time.perf_counter() - started
    out = Path(args.out)
    best = run_dir / "best_model-fp16"
    if not best.is_dir():
        best = run_dir / "model-fp16"
    shutil.copytree(best, out / "best_model-fp16", dirs_exist_ok=True)
    summary = {"steps": result.step, "seconds": round(seconds, 1),
               "seconds_per_step": round(seconds / max(result.step, 1), 3), "best_validation_psnr": result.best,
               "batch_size": args.batch_size, "device": torch.cuda.get_device_name() if torch.cuda.is_available()
               and args.device != "cpu" else "cpu", "init": str(args.init), "losses": result.losses,
               "pack": json.loads((Path(args.pack) / "pack.json").read_text())}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    packer = verbs.add_parser("pack", help="write the compact training pack (here)")
    packer.add_argument("--data", type=Path, required=True, help="a prepared folder")
    packer.add_argument("--out", type=Path, required=True, help="the pack folder (keep it in the ignored cache/)")
    packer.add_argument("--budget-mib", type=float, default=40.0, help="size budget of the frames (default 40)")
    packer.add_argument("--size", type=int, default=256, help="frame side in the pack (default 256)")
    trainer = verbs.add_parser("train", help="train from the pack and write the weights to --out (there)")
    trainer.add_argument("--pack", type=Path, required=True)
    trainer.add_argument("--init", required=True, help="the weights to start from (a model directory or name)")
    trainer.add_argument("--out", type=Path, required=True, help="where the best fp16 weights go ($OUT)")
    trainer.add_argument("--minutes", type=float, required=True, help="training time (leave time to come back)")
    trainer.add_argument("--config", default="dagan++-mobile")
    trainer.add_argument("--size", type=int, default=None, help="output size (default: the model's)")
    trainer.add_argument("--run", default="/tmp/device-run", help="the run directory there")
    trainer.add_argument("--steps", type=int, default=1_000_000, help="upper bound; the time limit stops it")
    trainer.add_argument("--batch-size", type=int, default=32)
    trainer.add_argument("--num-workers", type=int, default=8)
    trainer.add_argument("--gan-warmup", type=int, default=0)
    trainer.add_argument("--checkpoint-every", type=int, default=250)
    trainer.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args(argv)
    try:
        summary = pack(args.data, args.out, args.budget_mib, args.size) if args.verb == "pack" else train(args)
    except SdkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
