"""Ablation at an equal training budget: fomm vs dagan vs dagan++ vs the composite head, the depth net's effect alone, and where the keypoints come from (learned vs the face prior).

    python bench/ablation.py --data cache/prepared --depth runs/depth-mobile \\
        --steps 400 --stride 12 --cross-stride 40 --out runs/ablation --json out/ablation.json
    # another seed of the depth comparison alone (the first arm given is the baseline)
    python bench/ablation.py ... --seed 1 --arms "dagan++" "dagan++ flat depth" --out runs/ablation-seed1
    # what would train, and how, without training anything
    python bench/ablation.py --dry-run

Arms, all at the mobile size (internal resolution 128²) with the same data, seed, batch, steps and
objective (the GAN terms stay off: their warm-up is the whole budget, so no arm gets an extra loss):

- ``fomm``: RGB keypoints, FOMM generator, no depth, no attention (the baseline);
- ``dagan``: RGB+D keypoints, cross-modal depth attention at the bottleneck;
- ``dagan++``: attention at every scale with skip connections;
- ``dagan++ flat depth``: the dagan++ network with its depth net replaced by a constant map, so the
  depth carries no information: the difference to ``dagan++`` is the depth net's effect alone;
- ``composite``: the dagan++ network with the composite head (issue 11), trained on the frames at
  256² (the networks see them averaged down to 128²) and evaluated at 256², and at 128² beside
  the other arms;
- face prior (issue 12), each the ``composite`` arm's network and budget with other keypoints:
  ``prior keypoints`` (15 keypoints from the tracked mesh, no expression code in the decoder),
  ``prior + expression`` (the same plus the 32-dim expression code modulating the decoder: the
  ``dagan++-mobile-prior`` config), ``hybrid`` (10 mesh keypoints + 5 learned, with the code).
  Their cross-identity AKD against the driver's transferred expression (`sdk.eval`) is the
  column that decides between them; the code streams' bytes per frame are `bench codec`'s.
  Run twice with ``--seed 0`` and ``--seed 1`` for the two seeds.

The first four are the named configs without the composite head (`composite=None`): the decoded
image is the frame, at 128², as before the head existed. Each arm trains with
`sdk.training.train_generator` (resumable: re-running continues); once all have trained, each is
evaluated (cached per run and size) with the papers' protocol on the test split
(`sdk.eval.evaluate`) at its last step: no checkpoint is picked on the test split. Prints a table,
writes JSON; the baseline is the first arm (``fomm``). PSNR and SSIM compare like with like only
at one size: ``composite @128`` is the composite arm's like-for-like row.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its threads: no spinning on a shared CPU

import torch  # noqa: E402

from sdk.checkpoint import load_depth, load_model, save_depth  # noqa: E402
from sdk.eval.reenactment import evaluate  # noqa: E402
from sdk.models import ModelConfig, get_config  # noqa: E402
from sdk.pipeline import TalkingHeadPipeline  # noqa: E402
from sdk.training import trainer  # noqa: E402
from sdk.training.config import GeneratorTrainConfig  # noqa: E402
from sdk.training.run import CHECKPOINT_FILE  # noqa: E402
from sdk.training.stages import resolve_depth_export  # noqa: E402


@dataclass(frozen=True)
class Arm:
    name: str
    config: str  # a named model config
    depth: str | None  # "trained", "flat" or None (no depth net)
    composite: bool = False  # False: the config without the composite head
    output_size: int | None = None  # the frames' size in training (None: the model's default, 128² without the head)
    eval_sizes: tuple[int | None, ...] = (None,)  # evaluated at these output sizes (None: the model's default)
    expression_code: bool = True  # face-prior configs: False turns the decoder's modulation off

    def model_config(self) -> ModelConfig:
        cfg = get_config(self.config)
        if cfg.semantic is not None and not self.expression_code:
            cfg = dataclasses.replace(cfg, semantic=dataclasses.replace(cfg.semantic, modulated_stages=0))
        return cfg if self.composite else dataclasses.replace(cfg, composite=None)


ARMS = (Arm("fomm", "fomm-mobile", None), Arm("dagan", "dagan-mobile", "trained"),
        Arm("dagan++", "dagan++-mobile", "trained"), Arm("dagan++ flat depth", "dagan++-mobile", "flat"),
        Arm("composite", "dagan++-mobile", "trained", composite=True, output_size=256, eval_sizes=(256, 128)),
        Arm("prior keypoints", "dagan++-mobile-prior", "trained", composite=True, output_size=256, eval_sizes=(256,),
            expression_code=False),
        Arm("prior + expression", "dagan++-mobile-prior", "trained", composite=True, output_size=256, eval_sizes=(256,)),
        Arm("hybrid", "dagan++-mobile-hybrid", "trained", composite=True, output_size=256, eval_sizes=(256,)))


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


def training_config(arm: Arm, run: Path, depth: Path | None, args: argparse.Namespace) -> GeneratorTrainConfig:
    resuming = (run / CHECKPOINT_FILE).is_file()  # the depth net then comes from the checkpoint
    return GeneratorTrainConfig(model=arm.config, data=args.data, out=run, steps=args.steps,
                                gan_warmup_steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                num_workers=1, val_interval=args.val_every, sample_interval=args.steps,
                                checkpoint_interval=100, depth=None if resuming else depth,
                                output_size=arm.output_size)


def train(arm: Arm, cfg: GeneratorTrainConfig) -> None:
    """Train `arm.model_config()` (the named config, or it without the composite head)."""
    trainer.train_generator(cfg, arm.model_config())


def evaluate_arm(arm: Arm, run: Path, size: int | None, args: argparse.Namespace) -> dict:
    """The arm's row at output `size`, evaluated once per protocol and cached in RUN/ablation_eval-SIZE.json."""
    model = load_model(run / "model")
    size = size or model.cfg.default_output_size
    cache = run / f"ablation_eval-{size}.json"
    protocol = {"stride": args.stride, "cross_stride": args.cross_stride, "size": size}
    if cache.is_file() and (row := json.loads(cache.read_text())).get("protocol") == protocol:
        return row
    with torch.no_grad():
        report = evaluate(TalkingHeadPipeline(model, output_size=size), args.data, "test", args.stride,
                          args.cross_stride)
    name = arm.name if size == (arm.output_size or model.cfg.default_output_size) else f"{arm.name} @{size}"
    row = {"arm": name, "config": arm.config, "composite": arm.composite, "depth": arm.depth,
           "steps": model.metadata["step"], "protocol": protocol, "eval": asdict(report)}
    cache.write_text(json.dumps(row, indent=1))
    print(f"{name}: evaluated", flush=True)
    return row


def print_plan(runs: dict[Arm, Path], args: argparse.Namespace) -> None:
    flat = args.out / "depth-flat"
    print("arm                  config           head  train size  eval sizes  depth                      run")
    for arm, run in runs.items():
        cfg = arm.model_config()
        train_cfg = training_config(arm, run, {"trained": args.depth, "flat": flat, None: None}[arm.depth], args)
        sizes = ", ".join(str(size or cfg.default_output_size) for size in arm.eval_sizes)
        print(f"{arm.name:<20} {arm.config:<16} {'yes' if cfg.composite else 'no':>4} "
              f"{train_cfg.output_size or cfg.default_output_size:>10}  {sizes:>10}  "
              f"{str(train_cfg.depth or '—'):<26} {run}")


def main(argv: list[str] | None = None) -> None:
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
    parser.add_argument("--dry-run", action="store_true", help="print each arm's model and training setup, train nothing")
    args = parser.parse_args(argv)

    runs = {arm: args.out / arm.name.replace(" ", "-") for name in args.arms for arm in ARMS if arm.name == name}
    if args.dry_run:
        print_plan(runs, args)
        return
    depths = {"trained": args.depth, None: None}
    if any(arm.depth == "flat" for arm in runs):
        depths["flat"] = write_flat_depth(args.depth, args.out / "depth-flat")
    for arm, run in runs.items():  # every arm trains before any is evaluated: training is the long pole
        train(arm, training_config(arm, run, depths[arm.depth], args))
    rows = [evaluate_arm(arm, run, size, args) for arm, run in runs.items() for size in arm.eval_sizes]

    base = rows[0]["eval"]["self_reenactment"]["model"]

    def cell(value: float | None, width: int, digits: int) -> str:
        return f"{'—':>{width}}" if value is None else f"{value:{width}.{digits}f}"

    print(f"\nequal budget: {args.steps} steps × batch {args.batch_size}, test split, every {args.stride}. frame")
    print(f"arm                  size   PSNR   ΔPSNR    SSIM  sharp    AKD  AKD×base  mouth    eye  ID-dist  "
          f"cross AKD  →transf  cross ID  SSIM>still   (base: {rows[0]['arm']})")
    for row in rows:
        report = row["eval"]
        self_row, cross_row = report["self_reenactment"]["model"], report["cross_identity"]["model"]
        transferred = report["cross_identity"].get("model_vs_transferred", {}).get("akd")
        versus = report["versus_still"]
        row["psnr_minus_baseline"] = self_row["psnr"] - base["psnr"]
        row["akd_ratio_vs_baseline"] = self_row["akd"] / base["akd"]
        print(f"{row['arm']:<20} {report['output_size']:>4} {self_row['psnr']:6.2f} {row['psnr_minus_baseline']:+7.2f} "
              f"{self_row['ssim']:7.3f} {cell(self_row['sharpness'], 6, 2)} {self_row['akd']:6.2f} "
              f"{row['akd_ratio_vs_baseline']:9.2f} {cell(self_row['mouth_lmd'], 6, 2)} {cell(self_row['eye_lmd'], 6, 2)} "
              f"{cell(self_row['identity'], 8, 3)} {cell(cross_row['akd'], 10, 2)} {cell(transferred, 8, 2)} "
              f"{cell(cross_row['identity'], 9, 3)} "
              f"{versus['ssim_above_still_clips']:>6}/{versus['scored_clips']}")
    still = rows[0]["eval"]["self_reenactment"]["still_frame"]
    print(f"{'still frame':<20} {rows[0]['eval']['output_size']:>4} {still['psnr']:6.2f} {still['psnr'] - base['psnr']:+7.2f} "
          f"{still['ssim']:7.3f} {cell(still['sharpness'], 6, 2)} {still['akd']:6.2f} {still['akd'] / base['akd']:9.2f} "
          f"{cell(still['mouth_lmd'], 6, 2)} {cell(still['eye_lmd'], 6, 2)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"baseline": rows[0]["arm"], "seed": args.seed, "steps": args.steps,
                                     "batch_size": args.batch_size, "stride": args.stride, "arms": rows}, indent=1))


if __name__ == "__main__":
    main()
