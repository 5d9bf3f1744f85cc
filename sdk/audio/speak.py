"""`python -m sdk speak`: a portrait animated by speech, written to an MP4 with the speech muxed in.

One frame per 40 ms of audio (25 fps; the last, partial 40 ms gets a frame too). The audio model
(`sdk.audio.driver.AudioDriver`) predicts expression deltas (one-to-one) and samples head motion
(one-to-many: `seed`, `epsilon`, `motion_scale`); they become `SemanticCode`s on the avatar's own
pose, anchored on its neutral code (its pose, expression zeros), so the renderer's relative motion
gives back exactly the predicted deltas, through the same path a camera-driven code takes.
`samples` N > 1 writes N videos (seeds seed .. seed + N - 1) as OUT_0.mp4 ... OUT_{N-1}.mp4.
The renderer is a face-prior model (a `-prior` config); audio shorter than the model's window is
padded with silence (it still gets its frames), an empty or unreadable file is an error naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import SdkError
from ..media import write_video
from .features import FRAME_RATE


@dataclass(frozen=True)
class SpeakConfig:
    """seed: the first head-motion sample; motion_scale: amplitude (0: still head); samples:
    videos to write; epsilon: the sampling radius; live_window: use the live expression net."""

    seed: int = 0
    motion_scale: float = 1.0
    samples: int = 1
    epsilon: float = 0.5
    live_window: bool = False

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.motion_scale < 0 or self.epsilon < 0:
            raise ValueError("motion_scale and epsilon must be >= 0")


def sample_paths(out: Path, samples: int) -> list[Path]:
    """OUT itself for one sample, else OUT_0.mp4 ... beside it."""
    out = Path(out)
    if samples == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{index}{out.suffix or '.mp4'}") for index in range(samples)]


def speak(portrait: str | Path, audio: str | Path, out: str | Path, config: SpeakConfig = SpeakConfig(),
          renderer="default", audio_model="default", show_progress: bool = True) -> list[Path]:
    """Write the videos (module docstring); `renderer`: a model name/folder or a
    `TalkingHeadPipeline`; `audio_model`: a name/folder or an `AudioToCodeModel`. Returns their paths."""
    from ..checkpoint import load_model
    from ..live.avatars import load_avatar
    from ..models.audio_to_code import AudioToCodeModel
    from ..pipeline import TalkingHeadPipeline
    from .codes import neutral_code
    from .driver import AudioDriver, MotionSampling
    from .model_file import check_prior, load_audio_model
    from .source import load_audio

    clip = load_audio(audio)  # before any model loads: bad input fails fast
    pipeline = renderer if isinstance(renderer, TalkingHeadPipeline) else TalkingHeadPipeline(load_model(renderer))
    if not pipeline.is_semantic or pipeline.cfg.num_kp:
        raise SdkError(f"{pipeline.cfg.name}: speak needs a face-prior renderer (a -prior model such as "
                       "dagan++-mobile-prior): audio drives the semantic code, not learned keypoints")
    model = audio_model if isinstance(audio_model, AudioToCodeModel) else load_audio_model(audio_model)
    check_prior(model, pipeline.backend.prior().sha256)
    driver = AudioDriver(model)
    avatar = load_avatar(portrait, pipeline.output_size)
    state = pipeline.prepare_source(avatar.crop)
    pose = state.rigs[0].code.pose
    mel = driver.features(clip.samples)
    frames = driver.frames_of(clip.samples)
    expression = driver.expression(mel, frames, live=config.live_window)
    paths = sample_paths(Path(out), config.samples)
    for index, path in enumerate(paths):
        sampling = MotionSampling(seed=config.seed + index, epsilon=config.epsilon, motion_scale=config.motion_scale)
        codes = driver.codes(pose, expression, driver.motion(mel, frames, sampling))
        pipeline.set_anchor(neutral_code(pose, model.config.expression_dims))
        label = f"speak {index + 1}/{len(paths)}" if len(paths) > 1 else "speak"
        rendered = (pipeline.render(state, code) for code in tqdm(codes, desc=label, unit="frame",
                                                                  disable=not show_progress))
        write_video(path, rendered, FRAME_RATE, audio=clip.samples)
    return paths
