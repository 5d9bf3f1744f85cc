"""The inference model: depth net (dagan variants), keypoint detector and generator together.

Sender: `encode(frame)` -> Keypoints (depth then keypoints), the per-frame code, at the internal
resolution R. Receiver: `prepare_source(portrait)` once, at the output size S (a multiple of R
with the composite head; R without it), then `render(state, kp_driving)` per frame -> frames at S.
Relative motion (`sdk.models.motion.relative_keypoints`) is applied by the caller between the two.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from .config import ModelConfig
from .depth_net import DepthNet
from .blocks import downsample
from .generator import Generator, GeneratorOutput, SourceFeatures
from .keypoint_detector import KeypointDetector
from .motion import Keypoints


@dataclass(frozen=True)
class SourceState:
    """Everything per avatar: image (N, 3, R, R) at the internal resolution, depth (N, 1, R, R) |
    None, keypoints, features, and the portrait (N, 3, S, S) at the output size the composite warps."""
    image: Tensor
    depth: Tensor | None
    keypoints: Keypoints
    features: SourceFeatures
    portrait: Tensor

    @property
    def output_size(self) -> int:
        return self.portrait.shape[-1]


def to_internal(image: Tensor, resolution: int) -> Tensor:
    """(N, 3, S, S) with S = m·R -> (N, 3, R, R) by m×m averaging (anti-aliased, as cv2.INTER_AREA)."""
    side = image.shape[-1]
    if side == resolution:
        return image
    if side % resolution:
        raise ValueError(f"image side {side} is not a multiple of the internal resolution {resolution}")
    return downsample(image, side // resolution)


class TalkingHeadModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.depth_net = DepthNet(cfg) if cfg.uses_depth else None
        self.kp_detector = KeypointDetector(cfg)
        self.generator = Generator(cfg)
        # Free-form provenance (training steps, data, ...) filled in by `sdk.checkpoint.load_model`.
        self.metadata: dict[str, Any] = {}

    def estimate_depth(self, image: Tensor) -> Tensor | None:
        """image (N, 3, H, W) -> normalised depth (N, 1, H, W), or None for fomm."""
        return None if self.depth_net is None else self.depth_net.depth(image)

    def encode(self, image: Tensor) -> Keypoints:
        """The sender's keypoint encoder: image (N, 3, H, W) -> Keypoints (N, K, 2), (N, K, 2, 2)."""
        return self.kp_detector(image, self.estimate_depth(image))

    def prepare_source(self, portrait: Tensor) -> SourceState:
        """Once per avatar: portrait (N, 3, S, S) at the output size -> SourceState.

        S must pass `cfg.check_output_size`; the encoders see the portrait averaged down to R.
        """
        try:
            self.cfg.check_output_size(portrait.shape[-1])
        except ValueError as exc:
            raise ValueError(f"portrait of {portrait.shape[-1]}²: {exc}") from None
        image = to_internal(portrait, self.cfg.resolution)
        depth = self.estimate_depth(image)
        keypoints = self.kp_detector(image, depth)
        return SourceState(image, depth, keypoints, self.generator.encode_source(image, depth), portrait)

    def render(self, state: SourceState, kp_driving: Keypoints) -> GeneratorOutput:
        """Per frame: the avatar moved to `kp_driving` (already made relative if wanted), at the state's output size."""
        return self.generator.render(state.features, state.keypoints, kp_driving, state.image, state.portrait)
