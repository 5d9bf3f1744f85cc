"""Front-end ablation: our log-mel + frame encoder against openWakeWord's frozen speech embedding.

    python -m sdk.training.audio_ablation --data cache/audio --prepared cache/prepared \
        [--openwakeword DIR] [--steps 500] [--json out/audio_frontend.json]

Two offline expression nets (`AudioExpressionNet`, the same smoother and head, the same window of
2k+1 = 9 frames) trained alike for `steps` steps on the same batches with the expression losses of
`sdk.training.audio` (coefficients, lips-weighted landmarks, lip gap), one thread:
- "mel": our log-mel front end and `MelFrameEncoder`, trained;
- "openwakeword": per frame the frozen 96-d embedding of the 760 ms around it
  (`sdk.audio.openwakeword`, CC BY-NC-SA 4.0 models, read from the installed package or DIR).
Then the mouth-opening correlation (best lag within ±3 frames) on the held-out validation
identities and on the test clips. Embeddings are cached in DATA/openwakeword/<clip>.npy.
Only the offline net is compared: the frozen embedding needs 380 ms of lookahead per frame, so
it cannot serve the live path anyway.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..audio.features import WindowSpec
from ..data.datasets import read_wav
from ..files import atomic_file
from ..models.audio_expression import AudioExpressionConfig, AudioExpressionNet
from ..models.audio_to_code import AudioModelConfig, AudioToCodeModel
from ..prior import load_prior
from ..runtime import torch_threads
from .audio import AudioObjective, AudioTrainConfig, BatchMaker, TrainingClips, fit_statistics, learning_rate
from .audio import mouth_correlation, split_identities
from .audio_data import load_audio_clips

log = logging.getLogger(__name__)


def cached_embeddings(data: Path, prepared: Path, clip_id: str, frames: int, front_end) -> np.ndarray:
    path = data / "openwakeword" / f"{clip_id}.npy"
    if path.is_file():
        return np.load(path)
    samples, _ = read_wav(prepared / "clips" / clip_id / "audio.wav")
    embeddings = front_end.frame_embeddings(samples, frames).astype(np.float32)
    with atomic_file(path) as partial:
        with partial.open("wb") as handle:
            np.save(handle, embeddings)
    return embeddings


def embedding_segment(embeddings: torch.Tensor, silence: torch.Tensor, spec: WindowSpec, start: int,
                      frames: int) -> torch.Tensor:
    """(D, frames + context) per-frame embeddings for outputs [start, start + frames), silence outside."""
    index = torch.arange(start - spec.frames_before, start + frames + spec.frames_after)
    inside = (index >= 0) & (index < len(embeddings))
    picked = embeddings[index.clamp(0, len(embeddings) - 1)]
    return torch.where(inside[:, None], picked, silence[None]).T


@torch.no_grad()
def embedding_correlation(net: AudioExpressionNet, embeddings: list[torch.Tensor], data: TrainingClips,
                          silence: torch.Tensor, lip_rows: torch.Tensor) -> float:
    from ..eval.audio import best_lag_correlation

    net.eval()
    scores = []
    for clip_embeddings, expression, valid in zip(embeddings, data.expression, data.valid):
        segment = embedding_segment(clip_embeddings, silence, net.config.window, 0, len(expression))
        predicted = net(segment[None])[0]
        dims = predicted.shape[-1]
        mask = valid.numpy()
        scores.append(best_lag_correlation((predicted @ lip_rows[:dims]).numpy()[mask],
                                           (expression[:, :dims] @ lip_rows[:dims]).numpy()[mask], 3)[0])
    net.train()
    return float(np.mean(scores))


def run_ablation(data: Path, prepared: Path, openwakeword: Path | None, steps: int, seed: int = 0) -> dict:
    from ..audio.openwakeword import LICENSE_NOTE, OpenWakeWordFeatures

    config = AudioTrainConfig(data=data, steps=steps, warmup_steps=min(100, steps // 5 + 1))
    prior = load_prior(config.prior)
    _, clips = load_audio_clips(data, "train")
    _, test_clips = load_audio_clips(data, "test")
    train_clips, val_clips = split_identities(clips, config.val_every_identity)
    front_end = OpenWakeWordFeatures(openwakeword)
    silence = torch.from_numpy(front_end.frame_embeddings(np.zeros(16_000, np.float32), 1)[0])
    embeddings = {clip.id: torch.from_numpy(cached_embeddings(data, prepared, clip.id, clip.frames, front_end))
                  for clip in clips + test_clips}

    torch.manual_seed(seed)
    model = AudioToCodeModel(AudioModelConfig())
    train = TrainingClips(train_clips, model.config.motion_space.clip_frames)
    fit_statistics(model, train)
    objective = AudioObjective.of_data(model, prior.basis.components[:model.config.expression_dims], config, train)
    embedding_net = AudioExpressionNet(AudioExpressionConfig(front_end="embedding"))
    embedding_net.scale.copy_(model.expression.scale)
    nets = {"mel": model.expression, "openwakeword": embedding_net}
    optimizers = {name: torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
                  for name, net in nets.items()}
    batches = BatchMaker(train, model, config)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_embeddings = [embeddings[clip.id] for clip in train_clips]
    seconds = {name: 0.0 for name in nets}
    for step in range(steps):
        picks = [(int(i), int(rng.integers(-(config.segment_frames // 2),
                                            len(train.expression[i]) - config.segment_frames // 2)))
                 for i in rng.choice(len(train.clips), size=config.batch_size, p=train.weights)]
        batch = batches.expression(picks, [False] * len(picks), generator)
        inputs = {"mel": batch["mel"],
                  "openwakeword": torch.stack([embedding_segment(train_embeddings[clip], silence, embedding_net.config.window,
                                                                 start, config.segment_frames) for clip, start in picks])}
        for name, net in nets.items():
            for group in optimizers[name].param_groups:
                group["lr"] = learning_rate(config, step)
            started = time.perf_counter()
            terms = objective.expression(net, inputs[name], batch["target"], batch["offsets"], batch["mask"],
                                         batch["speech"] if name == "mel" else None)
            loss = terms["code"] + config.landmark_weight * terms["landmark"] + config.gap_weight * terms["gap"]
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            seconds[name] += time.perf_counter() - started
        if (step + 1) % 50 == 0:
            log.info("ablation step %d/%d", step + 1, steps)
    model.eval()
    results = {"steps": steps, "train_clips": len(train_clips), "note": LICENSE_NOTE, "arms": {}}
    for split, chosen in (("validation", val_clips), ("test", test_clips)):
        split_data = TrainingClips(chosen, model.config.motion_space.clip_frames)
        results["arms"].setdefault("mel", {})[split] = mouth_correlation(model, model.expression, split_data,
                                                                         objective.lip_rows)
        results["arms"].setdefault("openwakeword", {})[split] = embedding_correlation(
            embedding_net, [embeddings[clip.id] for clip in chosen], split_data, silence, objective.lip_rows)
    for name, net in nets.items():
        results["arms"][name].update(trained_parameters=sum(p.numel() for p in net.parameters()),
                                     ms_per_step=1000 * seconds[name] / steps)
    return results


def format_ablation(results: dict) -> str:
    lines = [f"front-end ablation, offline expression net, {results['steps']} steps each, same batches, 1 thread",
             "", "| front end | mouth-opening r validation | test | trained parameters | ms / step |",
             "| --- | --- | --- | --- | --- |"]
    for name, arm in results["arms"].items():
        lines.append(f"| {name} | {arm['validation']:.3f} | {arm['test']:.3f} | {arm['trained_parameters']:,} | "
                     f"{arm['ms_per_step']:.0f} |")
    lines.append(f"\n{results['note']}: ablation only, never shipped")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..cli import run_command

    parser = argparse.ArgumentParser(prog="python -m sdk.training.audio_ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("cache/audio"))
    parser.add_argument("--prepared", type=Path, default=Path("cache/prepared"))
    parser.add_argument("--openwakeword", type=Path, help="folder with the two .onnx (default: the installed package)")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    def run() -> int:
        with torch_threads(1):
            results = run_ablation(args.data, args.prepared, args.openwakeword, args.steps)
        print(format_ablation(results))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        return 0

    return run_command(run, False)


if __name__ == "__main__":
    raise SystemExit(main())
