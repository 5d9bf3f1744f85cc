"""`python -m sdk eval --audio`: the audio-to-code model on the test clips with audio, at the code and mesh level.

Each test clip is driven by its own speech. Its real per-frame codes and meshes come from its
prepared landmarks exactly as the training targets do (`sdk.training.audio_data.encode_clip`,
25 fps). Per clip, then averaged over clips:

- mouth opening: the inner-lip gap (canonical units, i.e. over the eye-corner distance) of the
  pose-normalised mesh the predicted code reconstructs (the clip's neutral + basis x code) against
  the real mesh's: Pearson correlation at the best lag within +-`max_lag` frames, and that lag
  (positive: the real mouth moves after the predicted one);
- mouth LMD: mean x-y distance of the 40 lip points between the reconstructed and the real
  pose-normalised meshes, in pixels at 256² (canonical units x the face's size in the crop);
- head motion: std over time of yaw, pitch and roll (degrees, mean of the three) of the
  predicted motion for `seeds` seeds, against the real clip's; and the spread between seeds
  (std across seeds per frame and angle, averaged).

Baselines in the same table: "still" (the neutral face throughout: constant opening, so no
correlation; its LMD is the reference) and "loudness" (the mouth_open control proportional to
the frame's loudness, normalised per clip between its 10th and 95th percentile, the gain fitted
by least squares on the train split's coefficients). Rendering metrics (SSIM, sharpness,
identity distance) need the face-prior renderer and are not measured here; LSE-C / LSE-D need a
SyncNet, whose weights nothing here ships.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..data.datasets import read_prepared_manifest, read_wav
from ..errors import SdkError
from ..audio.features import FRAME_RATE
from ..face.regions import MESH_REGIONS
from ..media import AUDIO_SAMPLE_RATE
from ..prior.features import LOWER_INNER_LIP, UPPER_INNER_LIP

LIPS = MESH_REGIONS["lips"]


@dataclass(frozen=True)
class AudioEvalConfig:
    """max_lag: frames searched each way for the best correlation; seeds: head motions per clip;
    epsilon: the motion sampling radius."""

    max_lag: int = 3
    seeds: int = 5
    epsilon: float = 0.5

    def __post_init__(self) -> None:
        if self.max_lag < 0 or self.seeds < 1:
            raise ValueError("max_lag must be >= 0 and seeds >= 1")


@dataclass
class MethodScores:
    """Means over clips (None where a method has no such figure)."""

    mouth_correlation: float | None = None
    lag_frames: float | None = None
    mouth_lmd_px: float | None = None
    lmd_vs_still: float | None = None


@dataclass
class AudioEvalReport:
    clips: int = 0
    frames: int = 0
    methods: dict[str, MethodScores] = field(default_factory=dict)
    motion: dict[str, float] = field(default_factory=dict)
    per_clip: list[dict] = field(default_factory=list)
    lookahead_ms: dict[str, float] = field(default_factory=dict)
    loudness_gain: float = 0.0
    note: str = ""


def best_lag_correlation(predicted: np.ndarray, real: np.ndarray, max_lag: int) -> tuple[float, int]:
    """(Pearson r, lag) maximising r of predicted[t] against real[t + lag], |lag| <= max_lag;
    (0, 0) when either side is constant."""
    best = (-np.inf, 0)
    for lag in range(-max_lag, max_lag + 1):
        a = predicted[max(0, -lag):len(predicted) - max(0, lag)]
        b = real[max(0, lag):len(real) - max(0, -lag)]
        if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if r > best[0]:
            best = (r, lag)
    return (0.0, 0) if best[0] == -np.inf else best


def frame_loudness(samples: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) RMS level in dB of each 40 ms frame's audio."""
    per_frame = AUDIO_SAMPLE_RATE // FRAME_RATE
    padded = np.pad(samples, (0, max(0, frames * per_frame - len(samples))))[:frames * per_frame]
    rms = np.sqrt((padded.reshape(frames, per_frame) ** 2).mean(-1) + 1e-10)
    return 20 * np.log10(rms)


def normalised_loudness(samples: np.ndarray, frames: int) -> np.ndarray:
    level = frame_loudness(samples, frames)
    low, high = np.percentile(level, 10), np.percentile(level, 95)
    return np.clip((level - low) / max(high - low, 1e-6), 0.0, 1.0)


def lip_gap(offsets: np.ndarray) -> np.ndarray:
    """(J,) inner-lip gap change from the neutral of (J, 478, 3) pose-normalised offsets."""
    return offsets[:, LOWER_INNER_LIP, 1] - offsets[:, UPPER_INNER_LIP, 1]


def mouth_lmd(predicted: np.ndarray, real: np.ndarray, face_px: np.ndarray) -> float:
    """Mean x-y distance of the lip points, pixels at 256² (offsets (J, 478, 3), face_px (J,))."""
    distance = np.linalg.norm(predicted[:, LIPS, :2] - real[:, LIPS, :2], axis=-1).mean(-1)
    return float((distance * face_px).mean())


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate_audio(data: str | Path, model: str | Path = "default", prior: str | Path = "default",
                   split: str = "test", config: AudioEvalConfig = AudioEvalConfig()) -> AudioEvalReport:
    """The report of the module docstring for `data`'s (a prepared folder) `split` clips with audio."""
    from ..audio.driver import AudioDriver, MotionSampling
    from ..audio.features import LogMel
    from ..audio.model_file import check_prior, load_audio_model
    from ..prior import load_prior
    from ..training.audio_data import encode_clip

    face_prior = load_prior(prior)
    audio_model = load_audio_model(model)
    check_prior(audio_model, face_prior.sha256)
    driver = AudioDriver(audio_model)
    dims = audio_model.config.expression_dims
    log_mel = LogMel(audio_model.config.mel)
    mouth_open = face_prior.apply_controls(np.zeros(dims), {"mouth_open": 1.0})
    mouth_offsets = face_prior.basis.decode(mouth_open)

    def clips_of(which: str):
        for clip in read_prepared_manifest(data, which):
            if not clip.has_audio:
                continue
            encoded = encode_clip(clip, face_prior, log_mel)
            if encoded is not None:
                yield clip, encoded, read_wav(clip.directory / "audio.wav")[0]

    # The loudness baseline's gain: least squares of the real coefficients on loudness x mouth_open.
    numerator = denominator = 0.0
    for _, encoded, samples in clips_of("train"):
        loud = normalised_loudness(samples, encoded.frames)[encoded.valid]
        numerator += float(loud @ (encoded.expression[encoded.valid][:, :dims] @ mouth_open))
        denominator += float((loud ** 2).sum() * (mouth_open @ mouth_open))
    gain = numerator / max(denominator, 1e-12)

    report = AudioEvalReport(loudness_gain=gain, lookahead_ms={
        "model": audio_model.config.expression.window.lookahead_ms(audio_model.config.mel),
        "model (live)": audio_model.config.expression_live.window.lookahead_ms(audio_model.config.mel)})
    scores: dict[str, dict[str, list[float]]] = {name: {"r": [], "lag": [], "lmd": []}
                                                 for name in ("model", "model (live)", "loudness", "still")}
    motion: dict[str, list[float]] = {"real_std_deg": [], "predicted_std_deg": [], "seed_spread_deg": []}
    for clip, encoded, samples in clips_of(split):
        valid = encoded.valid
        frames = encoded.frames
        real = encoded.offsets.astype(np.float64)[valid]
        real_gap = lip_gap(real)
        mel = driver.features(samples)
        loud = normalised_loudness(samples, frames)
        predictions = {"model": face_prior.basis.decode(driver.expression(mel, frames)),
                       "model (live)": face_prior.basis.decode(driver.expression(mel, frames, live=True)),
                       "loudness": gain * loud[:, None, None] * mouth_offsets[None],
                       "still": np.zeros((frames, *mouth_offsets.shape))}
        row = {"clip": clip.id, "frames": frames}
        for name, predicted in predictions.items():
            predicted = predicted[valid]
            r, lag = best_lag_correlation(lip_gap(predicted), real_gap, config.max_lag)
            lmd = mouth_lmd(predicted, real, encoded.face_px[valid])
            if name != "still":
                scores[name]["r"].append(r)
                scores[name]["lag"].append(lag)
            scores[name]["lmd"].append(lmd)
            row[name] = {"r": r, "lag": lag, "lmd": lmd}
        angles = [driver.motion(mel, frames, MotionSampling(seed=seed, epsilon=config.epsilon))[:, :3]
                  for seed in range(config.seeds)]
        stacked = np.stack(angles)  # (seeds, J, 3)
        real_std = float(encoded.pose[valid][:, :3].std(0).mean())
        predicted_std = float(stacked.std(1).mean())
        spread = float(stacked.std(0).mean()) if config.seeds > 1 else 0.0
        motion["real_std_deg"].append(real_std)
        motion["predicted_std_deg"].append(predicted_std)
        motion["seed_spread_deg"].append(spread)
        row["motion"] = {"real_std_deg": real_std, "predicted_std_deg": predicted_std, "seed_spread_deg": spread}
        report.per_clip.append(row)
        report.clips += 1
        report.frames += int(valid.sum())
    if not report.clips:
        raise SdkError(f"{data}: no {split} clip with audio and a face mesh to evaluate")
    still_lmd = _mean(scores["still"]["lmd"])
    for name, values in scores.items():
        lmd = _mean(values["lmd"])
        report.methods[name] = MethodScores(_mean(values["r"]), _mean(values["lag"]), lmd,
                                            lmd / still_lmd if lmd is not None and still_lmd else None)
    report.motion = {key: float(np.mean(values)) for key, values in motion.items()}
    report.motion["ratio_to_real"] = report.motion["predicted_std_deg"] / max(report.motion["real_std_deg"], 1e-9)
    report.note = ("code/mesh level (no renderer); SSIM, sharpness and identity need the face-prior renderer; "
                   "LSE-C/LSE-D need SyncNet weights, which nothing here ships")
    return report


def format_audio_report(report: AudioEvalReport) -> str:
    def cell(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [f"audio-driven, {report.clips} clips, {report.frames} frames at 25 fps (each clip driven by its own speech)",
             "", "| method | mouth-opening r (best lag ±3) | lag (frames) | mouth LMD px @256 | LMD / still |",
             "| --- | --- | --- | --- | --- |"]
    for name, scores in report.methods.items():
        label = f"{name} ({report.lookahead_ms[name]:.1f} ms lookahead)" if name in report.lookahead_ms else name
        lines.append(f"| {label} | {cell(scores.mouth_correlation, 3)} | {cell(scores.lag_frames, 2)} | "
                     f"{cell(scores.mouth_lmd_px, 3)} | {cell(scores.lmd_vs_still, 3)} |")
    m = report.motion
    lines += ["", "| head motion | yaw/pitch/roll std over time (deg) |", "| --- | --- |",
              f"| real videos | {m['real_std_deg']:.2f} |",
              f"| predicted (mean of seeds) | {m['predicted_std_deg']:.2f} ({m['ratio_to_real']:.2f}x real) |",
              f"| spread between seeds | {m['seed_spread_deg']:.2f} |",
              "", f"loudness baseline gain {report.loudness_gain:.3f} x mouth_open; {report.note}"]
    return "\n".join(lines)


def run_audio_eval(data: str | Path, model: str | Path = "default", split: str = "test",
                   json_path: str | Path | None = None) -> int:
    """What `python -m sdk eval --audio` runs: print the table, optionally write JSON."""
    report = evaluate_audio(data, model, split=split)
    print(format_audio_report(report))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(asdict(report), indent=1))
    return 0
