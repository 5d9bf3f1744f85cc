"""The inference model: depth net (dagan variants), keypoint detector and generator together.

Sender: `encode(frame)` -> Keypoints (depth then keypoints), the per-frame code.
Receiver: `prepare_source(portrait)` once, then `render(state, kp_driving)` per frame. Relative
motion (`sdk.models.motion.relative_keypoints`) is applied by the caller between the two.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from .config import ModelConfig
from .depth_net import DepthNet
from .generator import Generator, GeneratorOutput, SourceFeatures
from .keypoint_detector import KeypointDetector
from .motion import Keypoints


@dataclass(frozen=True)
class SourceState:
    """Everything per avatar: image (N, 3, H, W), depth (N, 1, H, W) | None, keypoints, features."""
    image: Tensor
    depth: Tensor | None
    keypoints: Keypoints
    features: SourceFeatures


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

    def prepare_source(self, image: Tensor) -> SourceState:
        """Once per avatar: image (N, 3, H, W) -> SourceState."""
        depth = self.estimate_depth(image)
        keypoints = self.kp_detector(image, depth)
        return SourceState(image, depth, keypoints, self.generator.encode_source(image, depth))

    def render(self, state: SourceState, kp_driving: Keypoints) -> GeneratorOutput:
        """Per frame: the avatar moved to `kp_driving` (already made relative if wanted)."""
        return self.generator.render(state.features, state.keypoints, kp_driving, state.image)
