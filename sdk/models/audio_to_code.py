"""The audio-to-code model: every network that turns speech into semantic codes, in one module to save and load.

    log_mel          samples (B, N) -> (B, 80, M)                     `sdk.audio.features.LogMel`
    expression       mel segment, utterance's speech mean -> (B, L, E) expression deltas
                                                                     offline window (242.5 ms lookahead)
    expression_live  mel segment -> (B, L, E)                        live window (42.5 ms lookahead)
    motion_space     pose clips <-> motion features <-> bases         `audio_motion_space.MotionSpace`
    motion           mel of a clip + start state -> log-weights (B, S)  `audio_motion.AudioMotionNet`

The sampling of head motion from these (radius epsilon, seeds, chaining, motion scale) lives in
`sdk.audio.driver.AudioDriver`, the wrapper with one method per stage.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..audio.features import LogMel, MelConfig
from .audio_expression import LIVE_WINDOW, AudioExpressionConfig, AudioExpressionNet
from .audio_motion import AudioMotionConfig, AudioMotionNet
from .audio_motion_space import MotionSpace, MotionSpaceConfig


@dataclass(frozen=True)
class AudioModelConfig:
    """The five parts' configs; `expression_dims` must match the face prior the codes are of."""

    mel: MelConfig = field(default_factory=MelConfig)
    expression: AudioExpressionConfig = field(default_factory=lambda: AudioExpressionConfig(utterance_norm=True))
    expression_live: AudioExpressionConfig = field(default_factory=lambda: AudioExpressionConfig(window=LIVE_WINDOW))
    motion_space: MotionSpaceConfig = field(default_factory=MotionSpaceConfig)
    motion: AudioMotionConfig = field(default_factory=AudioMotionConfig)

    def __post_init__(self) -> None:
        if self.expression.expression_dims != self.expression_live.expression_dims:
            raise ValueError("the offline and live expression nets must predict the same number of coefficients")
        if self.motion.bases != self.motion_space.bases:
            raise ValueError(f"the motion net predicts {self.motion.bases} weights, the space has "
                             f"{self.motion_space.bases} bases")
        for part in (self.expression.encoder, self.expression_live.encoder, self.motion.encoder):
            if part.bins != self.mel.bins:
                raise ValueError(f"a frame encoder takes {part.bins} mel bins, the front end makes {self.mel.bins}")

    @property
    def expression_dims(self) -> int:
        return self.expression.expression_dims

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioModelConfig:
        """Inverse of `to_dict`; ValueError naming unknown fields."""
        return _build(cls, data, "audio model config")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {item.name for item in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown fields {unknown}")
    values = {name: _build(hints[name], value, f"{where}.{name}") if dataclasses.is_dataclass(hints[name])
              else value for name, value in data.items()}
    return cls(**values)


class AudioToCodeModel(nn.Module):
    """The networks of `AudioModelConfig` (see the module docstring for what each maps)."""

    def __init__(self, config: AudioModelConfig = AudioModelConfig()):
        super().__init__()
        self.config = config
        self.log_mel = LogMel(config.mel)
        self.expression = AudioExpressionNet(config.expression)
        self.expression_live = AudioExpressionNet(config.expression_live)
        self.motion_space = MotionSpace(config.motion_space)
        self.motion = AudioMotionNet(config.motion)
