"""The stage wrapper: one method per pipeline stage, whose boundaries are the export boundaries.

    sender:   encode(frame crop[, mesh])            -> code                  [keypoint encoder | face prior]
    receiver: prepare_source(portrait crop[, mesh]) -> SourceState (once)    [source encoder]
              render(state, code)                   -> frame                 [warp + decode]

The code is what the sender sends: `Keypoints` for learned-keypoint models; for face-prior models
(issue 12) the `SemanticCode` (head pose + expression) of the frame's tracked face mesh
(`sdk.prior.SemanticEncoder`, numpy, no network), and for hybrid ones a `HybridCode` (that plus
the frame's learned keypoints). Their receiver drives the avatar's own mesh with the driver's
motion (`sdk.prior.AvatarRig`), with `edits` (`sdk.prior.Edits`: head-rotation offsets, named
expression controls, freeze modes) on top; `render_motion` renders a `MotionDelta` directly (a
still portrait re-posed, the audio path).

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

from .errors import NoFaceError, SdkError
from .media import resize_image, to_image, to_tensor
from .models import Keypoints, ModelConfig, TalkingHeadModel, keypoint_hull_area, relative_keypoints
from .models.semantic_inputs import concat_keypoints, driven_keypoints
from .prior import EncoderConfig, EncoderStats, Edits, MotionDelta, SemanticCode, SemanticEncoder, relative_motion
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


@dataclass(frozen=True)
class HybridCode:
    """A hybrid model's code: the semantic code of the frame's mesh and its learned keypoints."""

    semantic: SemanticCode
    learned: Keypoints


Code = Keypoints | SemanticCode | HybridCode


class TalkingHeadPipeline:
    """Stages of the talking-head model on numpy crops, with relative motion.

    `encode` is what the sender runs; `prepare_source` and `render` are what the receiver runs.
    The anchor for relative motion is the first code rendered after construction or
    `reset_anchor()`; `set_anchor(code)` re-anchors on purpose (e.g. a "neutral pose" key).

    `model_or_backend`: a `sdk.runtime.Backend` (e.g. from `sdk.runtime.create_backend`), or a
    `TalkingHeadModel`, which runs on a `TorchBackend` on `device` at `output_size` (None: the
    model's default); `device` and `output_size` are ignored for a backend, which has its own.
    `edits` (face-prior models only; settable): applied to every rendered frame.
    """

    def __init__(self, model_or_backend: TalkingHeadModel | Backend, motion: MotionConfig = MotionConfig(),
                 device: str | torch.device = "cpu", output_size: int | None = None, edits: Edits = Edits()):
        if isinstance(model_or_backend, TalkingHeadModel):
            model_or_backend = TorchBackend(model_or_backend, device, output_size)
        self.backend: Backend = model_or_backend
        self.device = self.backend.device
        self.motion = motion
        self.anchor: Code | None = None
        self._anchor_area: torch.Tensor | None = None
        self._source_area: tuple[SourceHandle, torch.Tensor] | None = None  # per avatar, not per frame
        self._semantic_encoder: SemanticEncoder | None = None
        self.edits = edits

    @property
    def is_semantic(self) -> bool:
        """Whether the model is driven by the face prior (its code comes from the face mesh)."""
        return self.cfg.semantic is not None

    @property
    def edits(self) -> Edits:
        return self._edits

    @edits.setter
    def edits(self, edits: Edits) -> None:
        if not edits.is_identity and not self.is_semantic:
            raise SdkError(f"{self.cfg.name} uses learned keypoints: pose and expression edits need a face-prior "
                           "model (e.g. dagan++-mobile-prior)")
        self._edits = edits

    @property
    def encoder_stats(self) -> EncoderStats:
        """Face-prior models: the sender's frames by mesh status (flagged frames repeat the last good code)."""
        return self._encoder().stats

    def _encoder(self) -> SemanticEncoder:
        if not self.is_semantic:
            raise ValueError(f"{self.cfg.name} uses learned keypoints: it has no semantic encoder")
        if self._semantic_encoder is None:
            # Meshes are rescaled to the output size first, so one encoder serves every crop size.
            self._semantic_encoder = SemanticEncoder(self.backend.prior(), EncoderConfig(image_size=self.output_size))
        return self._semantic_encoder

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

    def _mesh_at_output_size(self, mesh: np.ndarray, crop: np.ndarray) -> np.ndarray:
        """A (478, 3) mesh in the pixels of `crop` -> in the pixels of that crop resized to S²."""
        mesh = np.asarray(mesh, dtype=np.float64)
        if mesh.shape != (478, 3):
            raise ValueError(f"expected a (478, 3) face mesh, got {mesh.shape}")
        return mesh * (self.output_size / crop.shape[0])

    @torch.inference_mode()
    def encode(self, frame_crop: np.ndarray, mesh: np.ndarray | None = None) -> Code | None:
        """Sender: a face crop -> its code.

        Learned keypoints: keypoints (1, K, 2) and Jacobians (1, K, 2, 2); `mesh` is not used.
        Face-prior models: `mesh` is the crop's tracked face mesh (478, 3) in its pixels (None or
        NaN points: no face); a frame the prior cannot trust repeats the last good code, counted in
        `encoder_stats`; None until the first good frame.
        """
        if not self.is_semantic:
            return self.backend.encode(self.to_model_input(frame_crop))
        scaled = None if mesh is None else self._mesh_at_output_size(mesh, frame_crop)
        code = self._encoder().encode(scaled).code
        if code is None or self.cfg.num_kp == 0:
            return code
        return HybridCode(code, self.backend.encode(self.to_model_input(frame_crop)))

    @torch.inference_mode()
    def prepare_source(self, portrait_crop: np.ndarray, mesh: np.ndarray | None = None) -> SourceHandle:
        """Receiver, once per avatar: depth, keypoints and encoder features of the portrait.

        Face-prior models also rig the portrait's face mesh: `mesh` (478, 3) in the crop's pixels,
        or None to find it in the crop (MediaPipe; NoFaceError when there is none).
        A crop smaller than the output size is upscaled (bilinear) with a warning: the frames can
        then be no sharper than the crop.
        """
        if portrait_crop.ndim == 3 and portrait_crop.shape[0] < self.output_size:
            log.warning("portrait crop of %d² is smaller than the output size %d²: upscaled, so the frames are "
                        "no sharper than the crop (use a larger portrait or a smaller --size)",
                        portrait_crop.shape[0], self.output_size)
        image = self.to_model_input(portrait_crop, self.output_size)
        if not self.is_semantic:
            return self.backend.prepare_source(image)
        if mesh is None:
            from .face import FaceLandmarker  # mediapipe: loaded only when a mesh is not given

            with FaceLandmarker() as landmarker:
                mesh = landmarker.from_image(portrait_crop)
            if mesh is None:
                raise NoFaceError("no face mesh found in the portrait crop: a face-prior model needs one to rig")
        return self.backend.prepare_source(image, self._mesh_at_output_size(mesh, portrait_crop))

    def reset_encoder(self) -> None:
        """Face-prior models: forget the sender's last good code and its counts (a new driver)."""
        if self.is_semantic:
            self._encoder().reset()

    def set_anchor(self, code: Code) -> None:
        """Make `code` the driver's neutral pose for relative motion."""
        self.anchor = code
        self._anchor_area = None

    def reset_anchor(self) -> None:
        """The next rendered code becomes the anchor."""
        self.anchor = None
        self._anchor_area = None

    def driving_keypoints(self, state: SourceHandle, code: Keypoints) -> Keypoints:
        """Learned keypoints: the keypoints the avatar is rendered at for `code`, under the motion mode."""
        if self.motion.mode == "absolute":
            return code
        if self.anchor is None:
            self.set_anchor(code)
        return self._relative_learned(state, state.keypoints, code, self.anchor)

    def _relative_learned(self, state: SourceHandle, source: Keypoints, code: Keypoints, anchor: Keypoints
                          ) -> Keypoints:
        source_area = None
        if self.motion.adapt_movement_scale:
            # Hull areas change only with the avatar or the anchor: computed once, not per frame.
            if self._source_area is None or self._source_area[0] is not state:
                self._source_area = (state, keypoint_hull_area(source))
            if self._anchor_area is None:
                self._anchor_area = keypoint_hull_area(anchor)
            source_area = self._source_area[1]
        return relative_keypoints(code, anchor, source, self.motion.use_jacobian,
                                  self.motion.adapt_movement_scale, source_area, self._anchor_area)

    def driving_motion(self, state: SourceHandle, code: SemanticCode) -> MotionDelta:
        """Face-prior models: the motion the avatar is driven with for `code`, edits included.

        Relative mode: the driver's motion since the anchor code. Absolute mode: the driver's pose
        and expression as they are, i.e. relative to the avatar's own code (self-reenactment).
        """
        if self.motion.mode == "absolute":
            anchor = state.rigs[0].code
        else:
            if self.anchor is None:
                self.set_anchor(code)
            anchor = self.anchor.semantic if isinstance(self.anchor, HybridCode) else self.anchor
        return self.edits.apply(relative_motion(code, anchor), self._encoder().prior)

    @torch.inference_mode()
    def render_motion_tensor(self, state: SourceHandle, motion: MotionDelta, learned: Keypoints | None = None
                             ) -> torch.Tensor:
        """Face-prior models, per frame: the avatar moved by `motion` (relative to its portrait;
        edits not applied) [+ hybrid: its learned keypoints, already relative] -> (1, 3, S, S)."""
        if (learned is None) != (self.cfg.num_kp == 0):
            raise ValueError(f"{self.cfg.name} " + ("needs the learned keypoints too (hybrid)" if learned is None
                                                     else "has no learned keypoints"))
        keypoints, expression = driven_keypoints(state.rigs, [motion], self.cfg.semantic, state.keypoints.value)
        return self.backend.render(state, concat_keypoints(keypoints, learned), expression)

    def render_motion(self, state: SourceHandle, motion: MotionDelta, learned: Keypoints | None = None) -> np.ndarray:
        """`render_motion_tensor` as RGB uint8 (S, S, 3) (e.g. a still portrait re-posed: MotionDelta
        `Edits(...).apply(MotionDelta.identity(0), prior)`)."""
        return to_image(self.render_motion_tensor(state, motion, learned))

    @torch.inference_mode()
    def render_tensor(self, state: SourceHandle, code: Code) -> torch.Tensor:
        """Receiver, per frame: (1, 3, S, S) float prediction in [0, 1]."""
        if not self.is_semantic:
            return self.backend.render(state, self.driving_keypoints(state, code))
        if isinstance(code, HybridCode):
            if self.anchor is None:
                self.set_anchor(code)
            motion = self.driving_motion(state, code.semantic)
            learned = code.learned
            if self.motion.mode == "relative":
                learned = self._relative_learned(state, state.learned, code.learned, self.anchor.learned)
            return self.render_motion_tensor(state, motion, learned)
        if not isinstance(code, SemanticCode):
            raise ValueError(f"{self.cfg.name} renders semantic codes, got {type(code).__name__}")
        return self.render_motion_tensor(state, self.driving_motion(state, code))

    def render(self, state: SourceHandle, code: Code) -> np.ndarray:
        """Receiver, per frame: the avatar moved by `code`, RGB uint8 (S, S, 3)."""
        return to_image(self.render_tensor(state, code))
