"""The bitrate knob of the code stream: quantization steps, Jacobians on/off, keyframe interval.

Steps are in the units of the values they quantize (keypoints in [-1, 1] image coordinates,
Jacobians as plain 2×2 matrices) and must be multiples of 2^-16, because the stream header
carries them as 16-bit integers in units of 2^-16 (see docs/bitstream.md).

`SemanticCodecConfig` is the same knob for the semantic-code kind (head pose + expression
coefficients of `sdk.prior`): one step per pose number and one for the expression coefficients,
carried as 32-bit integers in units of 2^-16 (docs/bitstream.md §11).

`HybridCodecConfig` is the knob of the hybrid kind (docs/bitstream.md §13): a semantic setting
(which also holds the prediction shared by the whole packet: keyframe interval, reference,
hysteresis) plus the learned keypoints' steps and Jacobians on/off of `CodecConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Literal

from .errors import CodecError

STEP_UNIT = 1.0 / 65536  # the header's unit for quantization steps


@dataclass(frozen=True)
class CodecConfig:
    """How a code is quantized and predicted.

    keypoint_step: quantization step of keypoint coordinates ([-1, 1] units; 1/128 is a quarter
        pixel at 128², the error is at most half a step).
    jacobians: send the (K, 2, 2) Jacobians; without them the receiver uses identity matrices.
    jacobian_step: quantization step of the Jacobian entries.
    extra_step: quantization step of the extra code dims (reserved for audio codes).
    keyframe_interval: a keyframe every this many frames (1..127): the longest a lost
        reference can keep later frames from decoding.
    reference: what delta frames are predicted from. "previous": the previous frame (about
        half the bits; a lost packet stops decoding until the next keyframe, which is why the
        transport repeats each packet in the next datagram). "keyframe": the last keyframe (a
        lost delta packet costs only its own frame, for transports without that redundancy).
    hysteresis: the encoder keeps a value's reference level while the new value stays within
        (0.5 + hysteresis) steps of it, so detector jitter costs no bits (measured on the test
        clips: 0.25 saves ~35 % of the delta bits for ~20 % more RMS error). The largest error is
        (0.5 + hysteresis) steps. Encoder-only; the header carries it in 1/256 of a step.
    """

    keypoint_step: float = 1 / 64
    jacobians: bool = True
    jacobian_step: float = 1 / 32
    extra_step: float = 1 / 64
    keyframe_interval: int = 25
    reference: Literal["previous", "keyframe"] = "previous"
    hysteresis: float = 0.25

    def __post_init__(self) -> None:
        for name in ("keypoint_step", "jacobian_step", "extra_step"):
            value = getattr(self, name)
            units = value / STEP_UNIT
            if not (1 <= units <= 0xFFFF) or units != int(units):
                raise CodecError(f"CodecConfig.{name}={value!r}: must be a multiple of 2^-16 "
                                 f"between 2^-16 and 65535·2^-16")
        _check_prediction(self)

    @classmethod
    def preset(cls, name: str) -> CodecConfig:
        """A named setting: see `PRESETS` (e.g. "default", "low", "high", "no-jacobians")."""
        try:
            return PRESETS[name]
        except KeyError:
            raise CodecError(f"unknown codec preset {name!r} (known: {', '.join(PRESETS)})") from None

    def step_units(self) -> dict[str, int]:
        """The steps as the header stores them (integers in units of 2^-16)."""
        return {f.name: round(getattr(self, f.name) / STEP_UNIT) for f in fields(self) if f.name.endswith("_step")}


def _check_prediction(config: CodecConfig | SemanticCodecConfig) -> None:
    """The fields both kinds share: keyframe interval, reference, hysteresis."""
    name = type(config).__name__
    if not 1 <= config.keyframe_interval <= 127:
        raise CodecError(f"{name}.keyframe_interval={config.keyframe_interval!r}: must be 1..127")
    if not 0 <= config.hysteresis * 256 <= 255 or config.hysteresis * 256 != int(config.hysteresis * 256):
        raise CodecError(f"{name}.hysteresis={config.hysteresis!r}: must be a multiple of 1/256 in [0, 255/256]")
    if config.reference not in ("previous", "keyframe"):
        raise CodecError(f"{name}.reference={config.reference!r}: must be 'previous' or 'keyframe'")


PRESETS: dict[str, CodecConfig] = {
    "default": CodecConfig(),
    # ~3/4 of the default's bits: coarser Jacobians, keyframes every 2 s (test split: 1.6 kbit/s, -0.13 dB)
    "low": CodecConfig(jacobian_step=1 / 16, keyframe_interval=50),
    # ~1.8x the default's bits: finer steps, no hysteresis (test split: 3.9 kbit/s, +0.12 dB)
    "high": CodecConfig(keypoint_step=1 / 128, jacobian_step=1 / 64, hysteresis=0.0),
    # deltas from the keyframe: a lost packet costs one frame even without transport redundancy (4.1 kbit/s)
    "robust": CodecConfig(reference="keyframe"),
    # keypoints only (an ablation: the shipped model needs its Jacobians: -4.2 dB PSNR, AKD x2)
    "no-jacobians": CodecConfig(jacobians=False),
}


# Largest magnitude of each value of the semantic code (pose in `POSE_NAMES` order, then every
# expression coefficient): degrees, keypoint units ([-1, 1] is the crop), natural log, basis units.
POSE_LIMITS: tuple[int, ...] = (180, 180, 180, 4, 4, 4)
EXPRESSION_LIMIT = 16


@dataclass(frozen=True)
class SemanticCodecConfig:
    """How a semantic code (pose (6,) + E expression coefficients) is quantized and predicted.

    pose_steps: quantization steps of yaw, pitch, roll (degrees), tx, ty (keypoint units, 1/256
        is half a pixel at 256²) and log_scale, in that order. Chosen so that one step of each
        moves the mesh by about the same number of pixels (yaw and pitch move it ~0.23 px per
        degree, roll ~0.8, tx / ty 127.5 px per unit at 256², log_scale ~46 px per unit).
    expression_step: quantization step of every expression coefficient (one unit of a
        coefficient moves the mesh ~2.5 px RMS at 256²: the basis is orthonormal).
    keyframe_interval, reference, hysteresis: as in `CodecConfig`.
    expression_dims: the most expression coefficients to send (E, the other bitrate knob; None:
        all the prior has). A header made by `SemanticStreamHeader.for_prior` sends the first
        min(this, the prior's E); the header carries the E it sends (`expression_dims`), its
        config holds that E, and the receiver zero-fills the rest. Encoder-side, like the
        hysteresis: not a format change.
    """

    pose_steps: tuple[float, ...] = (1.25, 1.25, 0.5, 1 / 256, 1 / 256, 5 / 512)
    expression_step: float = 5 / 32
    keyframe_interval: int = 50
    reference: Literal["previous", "keyframe"] = "previous"
    hysteresis: float = 0.375
    expression_dims: int | None = 16

    def __post_init__(self) -> None:
        if self.expression_dims is not None and not 0 <= self.expression_dims <= 255:
            raise CodecError(f"SemanticCodecConfig.expression_dims={self.expression_dims!r}: must be 0..255 or None")
        steps = tuple(self.pose_steps)
        object.__setattr__(self, "pose_steps", steps)
        if len(steps) != len(POSE_LIMITS):
            raise CodecError(f"SemanticCodecConfig.pose_steps: {len(steps)} steps, expected {len(POSE_LIMITS)} "
                             "(yaw, pitch, roll, tx, ty, log_scale)")
        for name, value, limit in [*zip([f"pose_steps[{i}]" for i in range(6)], steps, POSE_LIMITS),
                                   ("expression_step", self.expression_step, EXPRESSION_LIMIT)]:
            units = value / STEP_UNIT
            if not (1 <= units <= limit / STEP_UNIT) or units != int(units):
                raise CodecError(f"SemanticCodecConfig.{name}={value!r}: must be a multiple of 2^-16 between "
                                 f"2^-16 and the value's limit {limit}")
        _check_prediction(self)

    @classmethod
    def preset(cls, name: str) -> SemanticCodecConfig:
        """A named setting: see `SEMANTIC_PRESETS` ("default", "fine", "low", "high", "robust")."""
        try:
            return SEMANTIC_PRESETS[name]
        except KeyError:
            raise CodecError(f"unknown semantic codec preset {name!r} (known: {', '.join(SEMANTIC_PRESETS)})") from None

    def step_units(self) -> tuple[int, ...]:
        """The 7 steps as the header stores them (integers in units of 2^-16): pose, then expression."""
        return tuple(round(step / STEP_UNIT) for step in (*self.pose_steps, self.expression_step))


# Measured on the 14 test clips (bench/semantic_codec.py, 25 fps; "code px": what the stream loses of
# the sender's whole code, truncation to E and quantization together, mean per mesh point at 256²;
# the learned-keypoint stream's default loses 0.89 px per keypoint at 2.2 kbit/s). docs/bitstream.md §11.6.
FINE = SemanticCodecConfig((0.625, 0.625, 0.25, 1 / 512, 1 / 512, 5 / 1024), 5 / 64, 25, "previous", 1 / 4, None)
SEMANTIC_PRESETS: dict[str, SemanticCodecConfig] = {
    # E = 16 of 32, steps twice the fine ones, keyframes every 2 s: 1.17 kbit/s, code px 0.86
    "default": SemanticCodecConfig(),
    # the default until the expression-dropout models (all 32 coefficients: 1.92 kbit/s; E = 16: 1.65)
    "fine": FINE,
    # 1.20 kbit/s at E = 16, for tight links (quantization 0.62 px)
    "low": SemanticCodecConfig((1.25, 1.25, 5 / 16, 1 / 256, 1 / 256, 1 / 128), 7 / 32, 50, "previous", 1 / 8, None),
    # 2.04 kbit/s at E = 16, quantization 0.18 px
    "high": SemanticCodecConfig((0.5, 0.5, 0.125, 1 / 512, 1 / 512, 1 / 256), 3 / 64, 25, "previous", 1 / 8, None),
    # as fine, deltas from the keyframe: a lost packet costs one frame even without transport redundancy
    "robust": replace(FINE, reference="keyframe"),
}


@dataclass(frozen=True)
class HybridCodecConfig:
    """How a hybrid code (pose + expression, then the learned keypoints) is quantized and predicted.

    semantic: the pose and expression steps, E, and the prediction of the whole packet
        (keyframe interval, reference, hysteresis), as in `SemanticCodecConfig`.
    keypoint_step, jacobians, jacobian_step: the learned keypoints' steps as in `CodecConfig`;
        `jacobians` is what the setting asks for: a stream carries Jacobians only when the model
        has them too (`sdk.live.stream.stream_header`).
    """

    semantic: SemanticCodecConfig = field(default_factory=SemanticCodecConfig)
    keypoint_step: float = 1 / 64
    jacobians: bool = True
    jacobian_step: float = 1 / 32

    def __post_init__(self) -> None:
        if not isinstance(self.semantic, SemanticCodecConfig):
            raise CodecError(f"HybridCodecConfig.semantic must be a SemanticCodecConfig, got "
                             f"{type(self.semantic).__name__}")
        self.keypoints()  # checks the steps

    # The fields the packet framing reads of any kind's config.
    @property
    def keyframe_interval(self) -> int:
        return self.semantic.keyframe_interval

    @property
    def reference(self) -> str:
        return self.semantic.reference

    @property
    def hysteresis(self) -> float:
        return self.semantic.hysteresis

    @property
    def expression_dims(self) -> int | None:
        return self.semantic.expression_dims

    def keypoints(self) -> CodecConfig:
        """The learned keypoints' part as a `CodecConfig` (the packet's shared prediction fields)."""
        semantic = self.semantic
        return CodecConfig(keypoint_step=self.keypoint_step, jacobians=self.jacobians, jacobian_step=self.jacobian_step,
                           keyframe_interval=semantic.keyframe_interval, reference=semantic.reference,
                           hysteresis=semantic.hysteresis)

    @classmethod
    def preset(cls, name: str) -> HybridCodecConfig:
        """A named setting: see `HYBRID_PRESETS` (the semantic presets' names)."""
        try:
            return HYBRID_PRESETS[name]
        except KeyError:
            raise CodecError(f"unknown hybrid codec preset {name!r} (known: {', '.join(HYBRID_PRESETS)})") from None


def _hybrid(name: str) -> HybridCodecConfig:
    """The semantic preset `name` with the learned keypoints' steps of the keypoint preset of that
    name (the default's where there is none)."""
    keypoints = PRESETS.get(name, PRESETS["default"])
    return HybridCodecConfig(SEMANTIC_PRESETS[name], keypoints.keypoint_step, keypoints.jacobians,
                             keypoints.jacobian_step)


HYBRID_PRESETS: dict[str, HybridCodecConfig] = {name: _hybrid(name) for name in SEMANTIC_PRESETS}
