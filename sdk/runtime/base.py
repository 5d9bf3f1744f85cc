"""The one interface every runtime backend implements, and the errors they raise.

A backend runs the three graphs of `sdk.runtime.graphs` on float tensors at the model's
resolution (RGB in [0, 1], NCHW, batch 1); `sdk.pipeline.TalkingHeadPipeline` sits on top of it
(numpy crops, relative motion). The source state is opaque to callers except for `.keypoints`,
which relative motion needs.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..errors import SdkError
from ..models import Keypoints, ModelConfig


class BackendError(SdkError):
    """A backend cannot be created or run: missing runtime, missing or mismatched graph files, bad kind."""


@runtime_checkable
class SourceHandle(Protocol):
    """What `prepare_source` returns: per-avatar tensors; callers only read `keypoints`."""
    keypoints: Keypoints


@runtime_checkable
class Backend(Protocol):
    """Runs the keypoint encoder, the source encoder and the generator.

    name: what runs, e.g. "torch-cpu", "onnx-cpu", "onnx-int8-cpu" (for stats and logs).
    cfg: the model configuration (resolution, K).
    device: where input tensors must live (the pipeline moves them there).
    """
    name: str
    cfg: ModelConfig
    device: torch.device

    def encode(self, image: torch.Tensor) -> Keypoints:
        """image (1, 3, R, R) float in [0, 1] -> Keypoints ((1, K, 2), (1, K, 2, 2))."""
        ...

    def prepare_source(self, image: torch.Tensor) -> SourceHandle:
        """image (1, 3, R, R) float in [0, 1] -> the avatar's state (once per avatar)."""
        ...

    def render(self, state: SourceHandle, kp_driving: Keypoints) -> torch.Tensor:
        """The avatar at `kp_driving` (already relative if wanted) -> (1, 3, R, R) float in [0, 1]."""
        ...


def check_image(image: torch.Tensor, cfg: ModelConfig) -> None:
    """Raise BackendError unless `image` is (1, 3, R, R) floating point at the model's resolution."""
    expected = (1, 3, cfg.resolution, cfg.resolution)
    if tuple(image.shape) != expected or not image.is_floating_point():
        raise BackendError(f"{cfg.name}: expected a float image of shape {expected}, "
                           f"got {image.dtype} {tuple(image.shape)}")
