"""The one interface every runtime backend implements, and the errors they raise.

A backend runs the three graphs of `sdk.runtime.graphs` on float tensors (RGB in [0, 1], NCHW,
batch 1): driving frames at the model's internal resolution R, portraits and rendered frames at the
backend's `output_size` S (a multiple of R with the composite head, R without);
`sdk.pipeline.TalkingHeadPipeline` sits on top of it (numpy crops, relative motion). The source
state is opaque to callers except for `.keypoints`, which relative motion needs.

Face-prior models (`cfg.semantic` set, issue 12): `prepare_source` also takes the avatar's mesh
and its state carries `.rigs` (one `sdk.prior.AvatarRig` per avatar; hybrid models also
`.learned`, the avatar's learned keypoints), `render` also takes the expression (1, E), and
`prior()` gives the face prior the model was trained with; the keypoints they render at come from
`sdk.models.semantic_inputs.driven_keypoints` (numpy, outside the graphs).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ..errors import SdkError
from ..models import Keypoints, ModelConfig
from ..prior import FacePrior


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
    output_size: the side S of portraits and rendered frames.
    """
    name: str
    cfg: ModelConfig
    device: torch.device
    output_size: int

    def encode(self, image: torch.Tensor) -> Keypoints:
        """image (1, 3, R, R) float in [0, 1] -> Keypoints ((1, K, 2), (1, K, 2, 2))."""
        ...

    def prepare_source(self, image: torch.Tensor, avatar_mesh: np.ndarray | None = None) -> SourceHandle:
        """portrait (1, 3, S, S) float in [0, 1] at `output_size` -> the avatar's state (once per
        avatar); face-prior models: with the portrait's mesh (478, 3) in its S² pixels."""
        ...

    def render(self, state: SourceHandle, kp_driving: Keypoints, expression: torch.Tensor | None = None
               ) -> torch.Tensor:
        """The avatar at `kp_driving` (already relative if wanted) -> (1, 3, S, S) float in [0, 1];
        face-prior models: K = cfg.motion_keypoints and the expression (1, E)."""
        ...

    def prior(self) -> FacePrior:
        """Face-prior models: the face prior the model was trained with (checked); others: ValueError."""
        ...


def check_image(image: torch.Tensor, cfg: ModelConfig, side: int | None = None) -> None:
    """Raise BackendError unless `image` is (1, 3, side, side) floating point (default side: the
    model's internal resolution)."""
    side = cfg.resolution if side is None else side
    expected = (1, 3, side, side)
    if tuple(image.shape) != expected or not image.is_floating_point():
        raise BackendError(f"{cfg.name}: expected a float image of shape {expected}, "
                           f"got {image.dtype} {tuple(image.shape)}")


def check_output_size(cfg: ModelConfig, output_size: int | None) -> int:
    """`output_size` (None: the model's default) if the model can render at it, else BackendError."""
    try:
        return cfg.check_output_size(cfg.default_output_size if output_size is None else output_size)
    except ValueError as exc:
        raise BackendError(str(exc)) from None
