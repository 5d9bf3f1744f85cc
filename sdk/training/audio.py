"""`python -m sdk train audio`: the audio-to-code model on the audio cache (`sdk.training.audio_data`).

    python -m sdk train audio --data cache/audio --out runs/audio [--steps N] [--time-limit MIN]

One optimiser over every network of `AudioToCodeModel`; each step sums
- expression, for the offline and the live net alike (OSM-Net eq. 7-9): the squared error of the E
  coefficients plus the landmark loss, the squared distance of the pose-normalised mesh offsets
  the predicted coefficients reconstruct (through the face prior's basis) from the real ones over
  all 478 points, the lips weighted `mouth_weight` (20) times, and (our addition) the squared
  error of the inner-lip gap alone, the mouth opening the evaluation measures; each term divided
  by its targets' mean energy on the training data so they count alike; with `corr_weight`, also
  1 - Pearson r of the predicted and real inner-lip gap over each segment (the evaluation's
  figure; segments without a moving mouth, e.g. silence, are left out of it);
- motion (§III-A): L1 of the motion feature against its basis reconstruction, L1 of the poses
  decoded from both against the real clip, and KL(w_visual || w_audio) of the audio net.
Batches: `batch_size` segments of `segment_frames` frames (a start anywhere in the clip, frames
past its ends masked, audio past them silence), `silence_share` of them pure silence with zero
targets (a silent speaker closes the mouth), each with a random gain and noise floor, its mel
axis stretched by a random factor within 1 +- `mel_warp` (a vocal-tract-length perturbation:
another speaker's formants), up to `freq_mask` masked mel bins and `time_masks` spans of up to
`time_mask` masked mel frames; `motion_batch` pose clips of the motion space's T frames with a good
mesh throughout, mirrored half the time (yaw, roll and x negated).
With `ema_decay`, an exponential moving average of the weights (`WeightAverage`) is what is
validated and exported. Held out for validation (model selection, never the test split): the train identities whose
sorted position is a multiple of `val_every_identity`. The best validation score so far
(`validate`: mouth-opening correlation of both expression nets and the motion losses) is
exported to RUN/model (`sdk.audio.model_file`, fp16) with the motion space's sampling radius
measured on the training clips. RUN/checkpoint.pt (atomic, resumed automatically) holds the
model, optimiser, step, RNG states and the best loss; RUN/log.jsonl one line per validation.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..audio.features import WindowSpec, slice_mel, speech_mean
from ..errors import SdkError
from ..face.regions import MESH_REGIONS
from ..models.audio_to_code import AudioModelConfig, AudioToCodeModel
from ..prior import load_prior
from ..prior.features import LOWER_INNER_LIP, UPPER_INNER_LIP
from ..runtime import torch_threads
from .audio_data import AudioClipData, load_audio_clips
from .state import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint, seed_everything

log = logging.getLogger(__name__)

DATA_NOTE = ("trained on the train split of the shared talking-head data, whose clips carry their own licenses "
             "(several non-commercial or research-only): for evaluating and developing this project only")


@dataclass(frozen=True)
class AudioTrainConfig:
    """See the module docstring; steps/lr follow a warm-up + cosine schedule, time_limit_minutes
    stops early (checkpointed and exported)."""

    data: Path = Path("cache/audio")
    out: Path = Path("runs/audio")
    prior: str = "default"
    steps: int = 1600
    batch_size: int = 32
    segment_frames: int = 16
    motion_batch: int = 64
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    mouth_weight: float = 20.0
    landmark_weight: float = 1.0
    gap_weight: float = 1.0
    basis_weight: float = 1.0
    kl_weight: float = 1.0
    silence_share: float = 0.05
    gain_db: float = 10.0
    freq_mask: int = 8
    time_mask: int = 0
    time_masks: int = 2
    mel_warp: float = 0.0
    corr_weight: float = 0.0
    ema_decay: float = 0.0
    val_every_identity: int = 10
    val_interval: int = 250
    checkpoint_interval: int = 500
    log_interval: int = 50
    time_limit_minutes: float | None = None
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.segment_frames < 1 or self.motion_batch < 2:
            raise ValueError("steps, batch_size, segment_frames must be >= 1 and motion_batch >= 2")
        if not 0.0 <= self.silence_share < 1.0:
            raise ValueError(f"silence_share must be in [0, 1), got {self.silence_share}")
        if not 0.0 <= self.mel_warp < 0.5 or self.time_mask < 0 or self.time_masks < 0 or self.corr_weight < 0:
            raise ValueError("mel_warp must be in [0, 0.5); time_mask, time_masks and corr_weight must be >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.corr_weight > 0 and self.segment_frames < 8:
            raise ValueError(f"a correlation over {self.segment_frames} frames means little: use segment_frames >= 8")

    def to_dict(self) -> dict:
        return {key: str(value) if isinstance(value, Path) else value for key, value in dataclasses.asdict(self).items()}


@dataclass
class AudioTrainResult:
    run_dir: Path
    step: int
    best: float | None
    losses: dict[str, float]


class TrainingClips:
    """The cache's clips as tensors, with where segments and motion clips can start."""

    def __init__(self, clips: list[AudioClipData], motion_frames: int):
        self.clips = clips
        self.mel = [torch.from_numpy(clip.mel.astype(np.float32)) for clip in clips]
        self.expression = [torch.from_numpy(clip.expression) for clip in clips]
        self.offsets = [torch.from_numpy(clip.offsets.astype(np.float32)).flatten(1) for clip in clips]
        self.valid = [torch.from_numpy(clip.valid) for clip in clips]
        self.pose = [torch.from_numpy(clip.pose) for clip in clips]
        self.weights = np.array([clip.frames for clip in clips], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.motion_starts = []
        for clip_index, clip in enumerate(clips):
            good = np.convolve(clip.valid.astype(int), np.ones(motion_frames + 1, int), "valid") == motion_frames + 1
            self.motion_starts += [(clip_index, start + 1) for start in np.flatnonzero(good)]
        if not self.motion_starts:
            raise SdkError(f"no run of {motion_frames + 1} frames with good meshes: nothing to learn head motion from")


def split_identities(clips: list[AudioClipData], every: int) -> tuple[list[AudioClipData], list[AudioClipData]]:
    """(training clips, validation clips): identities at sorted positions 0, every, 2 every, ... validate."""
    identities = sorted({clip.identity for clip in clips})
    held = {name for index, name in enumerate(identities) if every > 0 and index % every == 0}
    if len(held) == len(identities):
        held = set()
    return [c for c in clips if c.identity not in held], [c for c in clips if c.identity in held]


class AudioObjective:
    """The losses of one batch (module docstring), on a model and the face prior's basis."""

    def __init__(self, model: AudioToCodeModel, basis: np.ndarray, config: AudioTrainConfig):
        """basis (E, 478, 3): the face prior's first E components. Energies are 1 until `of_data`."""
        self.model = model
        self.config = config
        self.basis = torch.from_numpy(basis.reshape(len(basis), -1).astype(np.float32))  # (E, 478 * 3)
        weights = torch.ones(basis.shape[1])
        weights[torch.from_numpy(MESH_REGIONS["lips"])] = config.mouth_weight
        self.point_weights = weights / weights.sum()
        self.lip_rows = torch.from_numpy((basis[:, LOWER_INNER_LIP, 1] - basis[:, UPPER_INNER_LIP, 1]).astype(np.float32))
        self.lip_columns = (3 * UPPER_INNER_LIP + 1, 3 * LOWER_INNER_LIP + 1)  # their y in flattened offsets
        self.expression_energy = self.offset_energy = self.gap_energy = 1.0

    @classmethod
    def of_data(cls, model: AudioToCodeModel, basis: np.ndarray, config: AudioTrainConfig,
                data: TrainingClips) -> AudioObjective:
        """The objective with each term's normaliser, its targets' mean energy on `data`."""
        objective = cls(model, basis, config)
        valid = torch.cat(data.valid)
        offsets = torch.cat(data.offsets)[valid]
        objective.expression_energy = float((torch.cat(data.expression)[valid][:, :len(basis)] ** 2).sum(-1).mean())
        objective.offset_energy = float(((offsets ** 2).unflatten(-1, (-1, 3)).sum(-1) @ objective.point_weights).mean())
        gaps = offsets[:, objective.lip_columns[1]] - offsets[:, objective.lip_columns[0]]
        objective.gap_energy = float((gaps ** 2).mean())
        return objective

    def expression(self, net: torch.nn.Module, mel: torch.Tensor, target: torch.Tensor, offsets: torch.Tensor,
                   mask: torch.Tensor, speech: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The expression terms of `net` on a batch; speech (B, bins): each segment's utterance
        speech mean, for a net with `utterance_norm`."""
        prediction = net(mel, speech)
        count = mask.sum().clamp_min(1.0)
        code = ((prediction - target) ** 2).sum(-1)
        points = ((prediction @ self.basis - offsets) ** 2).unflatten(-1, (-1, 3)).sum(-1) @ self.point_weights
        predicted_gap = prediction @ self.lip_rows
        real_gap = offsets[..., self.lip_columns[1]] - offsets[..., self.lip_columns[0]]
        gap = (predicted_gap - real_gap) ** 2
        return {"code": (code * mask).sum() / count / self.expression_energy,
                "landmark": (points * mask).sum() / count / self.offset_energy,
                "gap": (gap * mask).sum() / count / self.gap_energy,
                "corr": self.decorrelation(predicted_gap, real_gap, mask)}

    def decorrelation(self, predicted: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over segments of 1 - Pearson r of predicted and real gaps (B, L) on the masked frames;
        segments with fewer than 8 frames or a still real mouth (std < 2% of the data's) count 0."""
        count = mask.sum(-1, keepdim=True)
        centred = [(x - (x * mask).sum(-1, keepdim=True) / count.clamp_min(1.0)) * mask for x in (predicted, real)]
        variances = [(x ** 2).sum(-1) / count[:, 0].clamp_min(1.0) for x in centred]
        r = (centred[0] * centred[1]).sum(-1) / count[:, 0].clamp_min(1.0) / (variances[0] * variances[1] + 1e-12).sqrt()
        used = ((count[:, 0] >= 8) & (variances[1] > 4e-4 * self.gap_energy)).float()
        return ((1 - r) * used).sum() / used.sum().clamp_min(1.0)

    def motion(self, clip: torch.Tensor, mel: torch.Tensor, state: torch.Tensor) -> dict[str, torch.Tensor]:
        space = self.model.motion_space
        feature = space.encode(clip)
        weights = space.weights(feature)
        rebuilt = space.reconstruct(weights)
        log_audio = self.model.motion(mel, state)
        kl = (weights.detach() * (weights.detach().clamp_min(1e-8).log() - log_audio)).sum(-1).mean()
        return {"basis": F.l1_loss(rebuilt, feature),
                "pose": F.l1_loss(space.decode(feature), clip) + F.l1_loss(space.decode(rebuilt), clip),
                "kl": kl}

    def total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        c = self.config
        return (losses["code"] + c.landmark_weight * losses["landmark"] + c.gap_weight * losses["gap"]
                + losses["live_code"] + c.landmark_weight * losses["live_landmark"] + c.gap_weight * losses["live_gap"]
                + c.corr_weight * (losses["corr"] + losses["live_corr"])
                + losses["pose"] + c.basis_weight * losses["basis"] + c.kl_weight * losses["kl"])


class BatchMaker:
    """Random (or fixed, for validation) batches of expression segments and motion clips."""

    def __init__(self, data: TrainingClips, model: AudioToCodeModel, config: AudioTrainConfig):
        self.data = data
        self.model = model
        self.config = config
        self.floor = model.config.mel.log_floor
        self.raw_silence = torch.full((model.config.mel.bins,), self.floor)
        self.motion_frames = model.config.motion_space.clip_frames
        # Of the clean clip (augmentation varies a segment, never its utterance's statistic).
        self.speech = clip_speech_means(model, data)

    def _mel(self, clip: int, spec: WindowSpec, start: int, frames: int) -> torch.Tensor:
        lo, hi = spec.mel_range(start, frames, self.model.config.mel)
        return slice_mel(self.data.mel[clip][None], lo, hi, self.raw_silence)[0]

    def _augment(self, raw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """raw (B, bins, M) log-mel -> normalised, with gain, noise floor, warped mel axis, masked
        bins and frames (training only)."""
        if generator is not None:
            batch, bins, frames = raw.shape
            gain = (torch.rand(batch, 1, 1, generator=generator) * 2 - 1) * self.config.gain_db * math.log(10) / 10
            noise = self.floor + torch.rand(batch, 1, 1, generator=generator) * 4.0
            raw = torch.logaddexp(torch.maximum(raw + gain, torch.tensor(self.floor)), noise)
            if self.config.mel_warp > 0:
                raw = self._warp(raw, 1 + (torch.rand(batch, generator=generator) * 2 - 1) * self.config.mel_warp)
            normalised = self.model.log_mel.normalise(raw)
            mask = self._spans(batch, bins, self.config.freq_mask, 1, generator)[:, :, None]
            if self.config.time_mask > 0:
                mask = mask | self._spans(batch, frames, self.config.time_mask, self.config.time_masks, generator)[:, None]
            return normalised.masked_fill(mask, 0.0)
        return self.model.log_mel.normalise(raw)

    @staticmethod
    def _warp(raw: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """raw (B, bins, M) with bin k taking the value at k / factor (B,), linearly interpolated."""
        bins = raw.shape[1]
        position = (torch.arange(bins, dtype=raw.dtype)[None] / factor[:, None]).clamp(0, bins - 1)  # (B, bins)
        lower = position.floor().long()
        upper = (lower + 1).clamp(max=bins - 1)
        weight = (position - lower)[:, :, None]
        pick = lambda index: raw.gather(1, index[:, :, None].expand(-1, -1, raw.shape[2]))  # noqa: E731
        return pick(lower) * (1 - weight) + pick(upper) * weight

    @staticmethod
    def _spans(batch: int, length: int, widest: int, count: int, generator: torch.Generator) -> torch.Tensor:
        """(B, length) bool: `count` random spans of 0..`widest` positions each per row."""
        position = torch.arange(length)[None]
        mask = torch.zeros(batch, length, dtype=torch.bool)
        for _ in range(count):
            width = torch.randint(0, min(widest, length) + 1, (batch,), generator=generator)
            first = (torch.rand(batch, generator=generator) * (length - width)).long()
            mask |= (position >= first[:, None]) & (position < (first + width)[:, None])
        return mask

    def expression(self, picks: list[tuple[int, int]], silent: list[bool],
                   generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        frames = self.config.segment_frames
        cfg = self.model.config
        mels, live, targets, offsets, masks, speech = [], [], [], [], [], []
        for (clip, start), quiet in zip(picks, silent):
            total = len(self.data.expression[clip])
            index = torch.arange(start, start + frames)
            inside = (index >= 0) & (index < total)
            safe = index.clamp(0, total - 1)
            if quiet:
                mels.append(self.raw_silence[:, None].expand(-1, cfg.expression.window.mel_frames(frames)))
                live.append(self.raw_silence[:, None].expand(-1, cfg.expression_live.window.mel_frames(frames)))
                targets.append(torch.zeros(frames, cfg.expression_dims))
                offsets.append(torch.zeros(frames, self.data.offsets[clip].shape[1]))
                masks.append(torch.ones(frames))
                speech.append(self.model.log_mel.silence)
                continue
            mels.append(self._mel(clip, cfg.expression.window, start, frames))
            live.append(self._mel(clip, cfg.expression_live.window, start, frames))
            targets.append(self.data.expression[clip][safe, :cfg.expression_dims])
            offsets.append(self.data.offsets[clip][safe])
            masks.append((inside & self.data.valid[clip][safe]).float())
            speech.append(self.speech[clip])
        return {"mel": self._augment(torch.stack(mels), generator), "live": self._augment(torch.stack(live), generator),
                "target": torch.stack(targets), "offsets": torch.stack(offsets), "mask": torch.stack(masks),
                "speech": torch.stack(speech)}

    def motion(self, picks: list[tuple[int, int]], mirror: list[bool],
               generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        std = self.model.motion_space.pose_std
        flip = torch.tensor([-1.0, 1.0, -1.0, -1.0, 1.0, 1.0])
        clips, states, mels = [], [], []
        for (clip, start), mirrored in zip(picks, mirror):
            pose = self.data.pose[clip]
            state = pose[start - 1]
            delta = pose[start:start + self.motion_frames] - state
            if mirrored:
                state, delta = state * flip, delta * flip
            states.append(state / std)
            clips.append((delta / std).T)
            mels.append(self._mel(clip, self.model.config.motion.window, start, self.motion_frames))
        return {"clip": torch.stack(clips), "state": torch.stack(states),
                "mel": self._augment(torch.stack(mels), generator)}

    def random(self, generator: torch.Generator, rng: np.random.Generator) -> tuple[dict, dict]:
        c = self.config
        clips = rng.choice(len(self.data.clips), size=c.batch_size, p=self.data.weights)
        picks = [(int(i), int(rng.integers(-(c.segment_frames // 2), len(self.data.expression[i]) - c.segment_frames // 2)))
                 for i in clips]
        silent = list(rng.random(c.batch_size) < c.silence_share)
        motion = [self.data.motion_starts[int(i)] for i in rng.integers(0, len(self.data.motion_starts), c.motion_batch)]
        return (self.expression(picks, silent, generator),
                self.motion(motion, list(rng.random(c.motion_batch) < 0.5), generator))

    def fixed(self) -> list[tuple[dict, dict]]:
        """Validation: every clip cut into consecutive segments and motion clips, in batches."""
        c = self.config
        segments = [(i, start) for i, expression in enumerate(self.data.expression)
                    for start in range(0, len(expression), c.segment_frames)]
        motion = self.data.motion_starts[::self.motion_frames]
        batches = []
        for first in range(0, max(len(segments), len(motion)), c.batch_size):
            picks = segments[first:first + c.batch_size] or segments[:1]
            clips = motion[first:first + c.batch_size] or motion[:2]
            batches.append((self.expression(picks, [False] * len(picks), None),
                            self.motion(clips, [False] * len(clips), None)))
        return batches


def run_losses(objective: AudioObjective, expression: dict, motion: dict) -> dict[str, torch.Tensor]:
    model = objective.model
    offline = objective.expression(model.expression, expression["mel"], expression["target"], expression["offsets"],
                                   expression["mask"], expression["speech"])
    live = objective.expression(model.expression_live, expression["live"], expression["target"],
                                expression["offsets"], expression["mask"])
    return {**offline, "live_code": live["code"], "live_landmark": live["landmark"], "live_gap": live["gap"],
            "live_corr": live["corr"],
            **objective.motion(motion["clip"], motion["mel"], motion["state"])}


def clip_speech_means(model: AudioToCodeModel, data: TrainingClips) -> list[torch.Tensor]:
    """Each clip's `speech_mean` (bins,) of its normalised log-mel."""
    return [speech_mean(model.log_mel.normalise(mel[None]))[0] for mel in data.mel]


def fit_statistics(model: AudioToCodeModel, data: TrainingClips) -> None:
    """Normalisation buffers from the training clips: mel mean/std, the utterance reference (the
    clips' mean speech mean), expression scale, pose std."""
    mel = torch.cat(data.mel, -1)
    model.log_mel.set_normalisation(mel.mean(-1), mel.std(-1))
    for net in (model.expression, model.expression_live):
        if net.config.utterance_norm:
            net.utterance_reference.copy_(torch.stack(clip_speech_means(model, data)).mean(0))
    valid = torch.cat(data.valid)
    dims = model.config.expression_dims
    expression = torch.cat(data.expression)[valid][:, :dims]
    for net in (model.expression, model.expression_live):
        net.scale.copy_(expression.std(0).clamp_min(1e-4))
    model.motion_space.pose_std.copy_(torch.cat(data.pose)[valid].std(0).clamp_min(1e-4))


@torch.no_grad()
def measure_radius(model: AudioToCodeModel, batches: BatchMaker) -> float:
    """RMS distance between real clips' motion features and the audio net's centres (training clips)."""
    was_training = model.training
    model.eval()
    starts = batches.data.motion_starts[::max(1, batches.motion_frames // 2)]
    total, count = 0.0, 0
    for first in range(0, len(starts), 256):
        motion = batches.motion(starts[first:first + 256], [False] * len(starts[first:first + 256]), None)
        feature = model.motion_space.encode(motion["clip"])
        centre = model.motion_space.reconstruct(model.motion(motion["mel"], motion["state"]).exp())
        total += float(((feature - centre) ** 2).sum(-1).sum())
        count += len(feature)
    model.train(was_training)
    return math.sqrt(total / max(count, 1))


def learning_rate(config: AudioTrainConfig, step: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def mouth_correlation(model: AudioToCodeModel, net: torch.nn.Module, data: TrainingClips,
                      lip_rows: torch.Tensor) -> float:
    """Mean over clips of the best-lag (±3 frames) Pearson r of the predicted and real lip gap."""
    from ..eval.audio import best_lag_correlation

    scores = []
    for mel, expression, valid in zip(data.mel, data.expression, data.valid):
        frames = len(expression)
        start, stop = net.config.window.mel_range(0, frames, model.config.mel)
        normalised = model.log_mel.normalise(mel[None])
        speech = speech_mean(normalised) if net.config.utterance_norm else None
        predicted = net(slice_mel(normalised, start, stop, model.log_mel.silence), speech)[0]
        dims = predicted.shape[-1]
        gap = lambda coefficients: (coefficients @ lip_rows[:dims]).numpy()  # noqa: E731
        scores.append(best_lag_correlation(gap(predicted)[valid.numpy()], gap(expression[:, :dims])[valid.numpy()], 3)[0])
    return float(np.mean(scores))


@torch.no_grad()
def validate(objective: AudioObjective, batches: list[tuple[dict, dict]], data: TrainingClips) -> dict[str, float]:
    """Mean losses over the validation batches, the mouth-opening correlations of both expression
    nets on the whole validation clips, and `selection`: (1 - r) of both plus the motion losses
    (lower is better; the coefficient losses are dominated by what speech does not decide, blinks
    and brows, so the mouth's correlation picks the model)."""
    model = objective.model
    model.eval()
    sums: dict[str, float] = {}
    for expression, motion in batches:
        for name, value in run_losses(objective, expression, motion).items():
            sums[name] = sums.get(name, 0.0) + float(value)
    means = {name: value / len(batches) for name, value in sums.items()}
    means["total"] = float(objective.total({k: torch.tensor(v) for k, v in means.items()}))
    means["mouth_r"] = mouth_correlation(model, model.expression, data, objective.lip_rows)
    means["live_mouth_r"] = mouth_correlation(model, model.expression_live, data, objective.lip_rows)
    means["selection"] = (2 - means["mouth_r"] - means["live_mouth_r"] + means["pose"] + means["basis"]
                          + means["kl"])
    model.train()
    return means


def export_model(model: AudioToCodeModel, batches: BatchMaker, directory: Path, metadata: dict) -> None:
    from ..audio.model_file import save_audio_model

    model.motion_space.radius.fill_(measure_radius(model, batches))
    save_audio_model(model, directory, half=True, metadata=metadata)


class WeightAverage:
    """An exponential moving average of a model's parameters (buffers, e.g. BatchNorm's running
    statistics, are copied as they are): validated and exported in place of the last step's
    weights, which on 51 training voices jump between steps more than they improve."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = model
        self.decay = decay
        self.state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        self.parameter_names = {name for name, _ in model.named_parameters()}

    @torch.no_grad()
    def update(self) -> None:
        for name, value in self.model.state_dict().items():
            if name in self.parameter_names:
                self.state[name].lerp_(value, 1.0 - self.decay)
            else:
                self.state[name].copy_(value)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The block runs with the averaged weights in the model; the trained ones come back after."""
        trained = {name: value.detach().clone() for name, value in self.model.state_dict().items()}
        self.model.load_state_dict(self.state)
        try:
            yield
        finally:
            self.model.load_state_dict(trained)


def train_audio(config: AudioTrainConfig, model_config: AudioModelConfig = AudioModelConfig()) -> AudioTrainResult:
    """Train (or resume) the audio-to-code model; see the module docstring."""
    with torch_threads(config.threads):
        return _train(config, model_config)


def _train(config: AudioTrainConfig, model_config: AudioModelConfig) -> AudioTrainResult:
    started = time.monotonic()
    run = Path(config.out)
    run.mkdir(parents=True, exist_ok=True)
    manifest, clips = load_audio_clips(config.data, "train")
    prior = load_prior(config.prior)
    if manifest.get("prior_sha256") != prior.sha256:
        raise SdkError(f"{config.data}: coded with face prior {str(manifest.get('prior_sha256'))[:12]}, not "
                       f"{str(prior.sha256)[:12]}; re-run `python -m sdk audio prepare` with this prior")
    if model_config.expression_dims > prior.components:
        raise SdkError(f"the model predicts {model_config.expression_dims} coefficients, the prior has {prior.components}")
    train_clips, val_clips = split_identities(clips, config.val_every_identity)
    motion_frames = model_config.motion_space.clip_frames
    train_data = TrainingClips(train_clips, motion_frames)
    seed_everything(config.seed)
    model = AudioToCodeModel(model_config)
    fit_statistics(model, train_data)
    dims = model_config.expression_dims
    objective = AudioObjective.of_data(model, prior.basis.components[:dims], config, train_data)
    batches = BatchMaker(train_data, model, config)
    val_data = TrainingClips(val_clips, motion_frames) if val_clips else None
    val_batches = BatchMaker(val_data, model, config).fixed() if val_data else []
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, best, losses = 0, None, {}
    checkpoint_path = run / "checkpoint.pt"
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    average = WeightAverage(model, config.ema_decay) if config.ema_decay > 0 else None
    if checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path)
        if state.get("model_config") != json.dumps(model_config.to_dict(), sort_keys=True):
            raise SdkError(f"{checkpoint_path}: a run of another model config; use another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, best = int(state["step"]), state.get("best")
        restore_rng_state(state["rng"])
        generator.set_state(state["generator"])
        rng = np.random.default_rng([config.seed, step])
        if average is not None:
            average.state = state.get("average") or average.state
        log.info("resumed %s at step %d", run, step)
    (run / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    metadata = {"prior_sha256": prior.sha256, "expression_dims": dims, "data": manifest.get("data"),
                "train_clips": len(train_clips), "train_identities": len({c.identity for c in train_clips}),
                "val_identities": sorted({c.identity for c in val_clips}), "note": DATA_NOTE,
                "lookahead_ms": {"expression": model_config.expression.window.lookahead_ms(model_config.mel),
                                 "expression_live": model_config.expression_live.window.lookahead_ms(model_config.mel)}}

    def save(step_done: int) -> None:
        save_checkpoint(checkpoint_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                          "step": step_done, "best": best, "rng": capture_rng_state(),
                                          "generator": generator.get_state(),
                                          "average": None if average is None else average.state,
                                          "model_config": json.dumps(model_config.to_dict(), sort_keys=True)})

    model.train()
    deadline = None if config.time_limit_minutes is None else started + 60 * config.time_limit_minutes
    running: dict[str, float] = {}
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        expression, motion = batches.random(generator, rng)
        terms = run_losses(objective, expression, motion)
        loss = objective.total(terms)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if average is not None:
            average.update()
        step += 1
        for name, value in terms.items():
            running[name] = running.get(name, 0.0) + float(value.detach())
        if step % config.log_interval == 0:
            losses = {name: value / config.log_interval for name, value in running.items()}
            running = {}
            log.info("step %d lr %.2e %s", step, learning_rate(config, step),
                     " ".join(f"{k} {v:.4f}" for k, v in losses.items()))
        out_of_time = deadline is not None and time.monotonic() > deadline
        if step % config.val_interval == 0 or step == config.steps or out_of_time:
            with average.applied() if average is not None else nullcontext():
                scores = validate(objective, val_batches, val_data) if val_data else {"selection": float(loss.detach())}
                improved = best is None or scores["selection"] < best
                if improved:
                    best = scores["selection"]
                    export_model(model, batches, run / "model",
                                 {**metadata, "steps": step, "validation": scores,
                                  "train_minutes": (time.monotonic() - started) / 60})
            with (run / "log.jsonl").open("a") as handle:
                handle.write(json.dumps({"step": step, "train": losses, "validation": scores, "best": improved,
                                         "minutes": (time.monotonic() - started) / 60}) + "\n")
            log.info("step %d validation %s%s", step, " ".join(f"{k} {v:.4f}" for k, v in scores.items()),
                     " (best, exported)" if improved else "")
        if step % config.checkpoint_interval == 0 or step == config.steps or out_of_time:
            save(step)
        if out_of_time:
            log.info("time limit reached at step %d", step)
            break
    return AudioTrainResult(run, step, best, losses)
