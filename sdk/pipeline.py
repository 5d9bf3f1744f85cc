"""The stage wrapper: one method per pipeline stage, whose boundaries are the export boundaries.

    sender:   encode(frame crop)            -> code (Keypoints)        [keypoint encoder]
    receiver: prepare_source(portrait crop) -> SourceState (once)      [source encoder]
              render(state, code)           -> frame                   [warp + decode]

Relative motion lives here, between the code and the renderer: the avatar moves as the driver
moved since an anchor code (the driver's neutral pose), so the avatar keeps its own face shape.
Images in and out are RGB uint8 crops of any square size: driving crops are resized to the
model's internal resolution, portraits to the backend's output size (`output_size`), and frames
come out at the output size.
The stages run on a runtime backend (`sdk.runtime`: torch, ONNX Runtime, ...); a
`TalkingHeadModel` given directly runs on the torch backend.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .media import resize_image, to_image, to_tensor
from .models import Keypoints, ModelConfig, TalkingHeadModel, keypoint_hull_area, relative_keypoints
from .runtime import Backend, SourceHandle, TorchBackend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MotionConfig:
    """How a driving code moves the avatar.

    mode: "relative" (FOMM's relative motion against the anchor code; the default for animating
        another person) or "absolute" (the driver's keypoints as they are; self-reenactment).
    use_jacobian: transfer the local affine motion (Jacobians) too, in relative mode.
    adapt_movement_scale: scale the motion by the ratio of the source's and the anchor's keypoint
        hull areas, so a face that fills less of its crop moves proportionally less.
    """

    mode: Literal["relative", "absolute"] = "relative"
    use_jacobian: bool = True
    adapt_movement_scale: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("relative", "absolute"):
            raise ValueError(f"motion mode must be 'relative' or 'absolute', got {self.mode!r}")


class TalkingHeadPipeline:
    """Stages of the talking-head model on numpy crops, with relative motion.

    `encode` is what the sender runs; `prepare_source` and `render` are what the receiver runs.
    The anchor for relative motion is the first code rendered after construction or
    `reset_anchor()`; `set_anchor(code)` re-anchors on purpose (e.g. a "neutral pose" key).

    `model_or_backend`: a `sdk.runtime.Backend` (e.g. from `sdk.runtime.create_backend`), or a
    `TalkingHeadModel`, which runs on a `TorchBackend` on `device` at `output_size` (None: the
    model's default); `device` and `output_size` are ignored for a backend, which has its own.
    """

    def __init__(self, model_or_backend: TalkingHeadModel | Backend, motion: MotionConfig = MotionConfig(),
                 device: str | torch.device = "cpu", output_size: int | None = None):
        if isinstance(model_or_backend, TalkingHeadModel):
            model_or_backend = TorchBackend(model_or_backend, device, output_size)
        self.backend: Backend = model_or_backend
        self.device = self.backend.device
        self.motion = motion
        self.anchor: Keypoints | None = None
        self._anchor_area: torch.Tensor | None = None
        self._source_area: tuple[SourceHandle, torch.Tensor] | None = None  # per avatar, not per frame

    @property
    def cfg(self) -> ModelConfig:
        return self.backend.cfg

    @property
    def model(self) -> TalkingHeadModel:
        """The torch model (torch backend only; use `cfg` for the configuration on any backend)."""
        model = getattr(self.backend, "model", None)
        if not isinstance(model, TalkingHeadModel):
            raise AttributeError(f"the {self.backend.name} backend has no torch model; use pipeline.cfg")
        return model

    @property
    def resolution(self) -> int:
        """The model's internal resolution R (what the keypoint encoder sees)."""
        return self.cfg.resolution

    @property
    def output_size(self) -> int:
        """The side S of rendered frames (and of the portrait the composite head warps)."""
        return self.backend.output_size

    def to_model_input(self, crop: np.ndarray, side: int | None = None) -> torch.Tensor:
        """RGB uint8 (n, n, 3) square crop -> float (1, 3, side, side) (default: the internal resolution)."""
        side = self.resolution if side is None else side
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 crop (S, S, 3), got {crop.dtype} {crop.shape}")
        if crop.shape[0] != crop.shape[1]:
            raise ValueError(f"expected a square crop, got {crop.shape[1]}x{crop.shape[0]}")
        return to_tensor(resize_image(crop, side, side)).to(self.device)

    @torch.inference_mode()
    def encode(self, frame_crop: np.ndarray) -> Keypoints:
        """Sender: a face crop -> its code (keypoints (1, K, 2) and Jacobians (1, K, 2, 2))."""
        return self.backend.encode(self.to_model_input(frame_crop))

    @torch.inference_mode()
    def prepare_source(self, portrait_crop: np.ndarray) -> SourceHandle:
        """Receiver, once per avatar: depth, keypoints and encoder features of the portrait.

        A crop smaller than the output size is upscaled (bilinear) with a warning: the frames can
        then be no sharper than the crop.
        """
        if portrait_crop.ndim == 3 and portrait_crop.shape[0] < self.output_size:
            log.warning("portrait crop of %d² is smaller than the output size %d²: upscaled, so the frames are "
                        "no sharper than the crop (use a larger portrait or a smaller --size)",
                        portrait_crop.shape[0], self.output_size)
        return self.backend.prepare_source(self.to_model_input(portrait_crop, self.output_size))

    def set_anchor(self, code: Keypoints) -> None:
        """Make `code` the driver's neutral pose for relative motion."""
        self.anchor = code
        self._anchor_area = None

    def reset_anchor(self) -> None:
        """The next rendered code becomes the anchor."""
        self.anchor = None
        self._anchor_area = None

    def driving_keypoints(self, state: SourceHandle, code: Keypoints) -> Keypoints:
        """The keypoints the avatar is rendered at for `code`, under the motion mode."""
        if self.motion.mode == "absolute":
            return code
        if self.anchor is None:
            self.set_anchor(code)
        source_area = None
        if self.motion.adapt_movement_scale:
            # Hull areas change only with the avatar or the anchor: computed once, not per frame.
            if self._source_area is None or self._source_area[0] is not state:
                self._source_area = (state, keypoint_hull_area(state.keypoints))
            if self._anchor_area is None:
                self._anchor_area = keypoint_hull_area(self.anchor)
            source_area = self._source_area[1]
        return relative_keypoints(code, self.anchor, state.keypoints, self.motion.use_jacobian,
                                  self.motion.adapt_movement_scale, source_area, self._anchor_area)

    @torch.inference_mode()
    def render_tensor(self, state: SourceHandle, code: Keypoints) -> torch.Tensor:
        """Receiver, per frame: (1, 3, S, S) float prediction in [0, 1]."""
        return self.backend.render(state, self.driving_keypoints(state, code))

    def render(self, state: SourceHandle, code: Keypoints) -> np.ndarray:
        """Receiver, per frame: the avatar moved by `code`, RGB uint8 (S, S, 3)."""
        return to_image(self.render_tensor(state, code))
