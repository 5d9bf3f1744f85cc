"""The inference model: depth net (dagan variants), keypoint detector and generator together.

Learned keypoints (`keypoint_source` "learned"). Sender: `encode(frame)` -> Keypoints (depth then
keypoints), the per-frame code, at the internal resolution R. Receiver: `prepare_source(portrait)`
once, at the output size S (a multiple of R with the composite head; R without it), then
`render(state, kp_driving)` per frame -> frames at S. Relative motion
(`sdk.models.motion.relative_keypoints`) is applied by the caller between the two.

Face prior ("prior", "hybrid"; issue 12). The sender sends the semantic code of its tracked mesh
(`sdk.prior.SemanticEncoder`, numpy, no network), plus for "hybrid" its learned keypoints
(`encode`). The receiver (sdk.pipeline, sdk.live), with the avatar portrait and its mesh (the
tracker's, in the portrait's S² pixels), would do:

    prior = model.prior()                                   # the prior it was trained with (checked)
    state = model.prepare_source(portrait, avatar_mesh)     # once: features + the avatar's rig
    anchor = the driver's first good code (or its neutral)
    per frame:
        motion = sdk.prior.relative_motion(code, anchor)    # edits go on top (issue 12 item 5)
        learned = relative_keypoints(model.encode(frame), kp_first, state.learned)   # hybrid only
        inputs = model.drive(state, [motion], learned)      # numpy rig -> keypoints + expression
        frame = model.render_semantic(state, inputs.keypoints, inputs.expression).prediction

`drive` is the numpy side (the avatar's own mesh moved by the driver's motion and projected to K
keypoints, `sdk.prior.AvatarRig`); `prepare_source` and `render_semantic` are the torch export
boundaries, as `prepare_source` and `render` are for learned keypoints: the per-frame graph takes
keypoints (N, K, 2) + Jacobians (N, K, 2, 2) with K = cfg.motion_keypoints (prior first) and the
expression (N, E), zero beyond the dimensions the stream carries.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from torch import Tensor, nn

from ..errors import ModelLoadError
from ..prior import AvatarRig, FacePrior, MotionDelta, load_prior
from .config import ModelConfig
from .depth_net import DepthNet
from .blocks import downsample
from .generator import Generator, GeneratorOutput, SourceFeatures
from .keypoint_detector import KeypointDetector
from .motion import Keypoints
from .semantic_inputs import avatar_rigs, concat_keypoints, driven_keypoints, rest_keypoints



@dataclass(frozen=True)
class SourceState:
    """Everything per avatar: image (N, 3, R, R) at the internal resolution, depth (N, 1, R, R) |
    None, keypoints, features, and the portrait (N, 3, S, S) at the output size the composite warps.

    Prior and hybrid models: `keypoints` are the K = cfg.motion_keypoints the dense motion compares
    with (the avatar's prior keypoints, then its learned ones), `rigs` one `sdk.prior.AvatarRig`
    per avatar (its mesh, ready to be driven), and for hybrid `learned` the avatar's learned
    keypoints alone (what the driver's learned keypoints are made relative to); None otherwise."""
    image: Tensor
    depth: Tensor | None
    keypoints: Keypoints
    features: SourceFeatures
    portrait: Tensor
    rigs: tuple[AvatarRig, ...] | None = None
    learned: Keypoints | None = None

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


class SemanticInputs(NamedTuple):
    """The per-frame inputs of `render_semantic`: keypoints (N, K, 2) + (N, K, 2, 2), K =
    cfg.motion_keypoints; expression (N, E) relative to the anchor."""
    keypoints: Keypoints
    expression: Tensor


class TalkingHeadModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.depth_net = DepthNet(cfg) if cfg.uses_depth else None
        # None for the "prior" source: its keypoints come from the face mesh.
        self.kp_detector = KeypointDetector(cfg) if cfg.num_kp else None
        self.generator = Generator(cfg)
        # Free-form provenance (training steps, data, ...) filled in by `sdk.checkpoint.load_model`;
        # prior and hybrid models record the face prior they were trained with ("face_prior").
        self.metadata: dict[str, Any] = {}
        self.face_prior: FacePrior | None = None  # prior and hybrid: set, or loaded by `prior()`

    def estimate_depth(self, image: Tensor) -> Tensor | None:
        """image (N, 3, H, W) -> normalised depth (N, 1, H, W), or None for fomm."""
        return None if self.depth_net is None else self.depth_net.depth(image)

    def encode(self, image: Tensor) -> Keypoints:
        """The sender's keypoint encoder: image (N, 3, H, W) -> Keypoints (N, K, 2), (N, K, 2, 2)
        (K = num_kp: every keypoint for learned configs, the learned ones for hybrid)."""
        if self.kp_detector is None:
            raise ValueError(f"{self.cfg.name} has no keypoint detector: its sender sends the semantic code "
                             "of the face mesh (sdk.prior.SemanticEncoder)")
        return self.kp_detector(image, self.estimate_depth(image))

    def prior(self) -> FacePrior:
        """The face prior of a prior or hybrid model: `face_prior` if set, else the shipped one,
        refused (ModelLoadError) unless it is the one the model was trained with (metadata)."""
        if self.cfg.semantic is None:
            raise ValueError(f"{self.cfg.name} uses learned keypoints, not the face prior")
        expected = self.metadata.get("face_prior", {}).get("sha256")
        if self.face_prior is None:
            self.face_prior = load_prior("default", expected)
        elif expected is not None and self.face_prior.sha256 != expected:
            raise ModelLoadError(f"face prior {str(self.face_prior.sha256)[:12]} is not the one {self.cfg.name} was "
                                 f"trained with ({expected[:12]}); use that prior file")
        if self.face_prior.components < self.cfg.semantic.expression_dims:
            raise ModelLoadError(f"the face prior has {self.face_prior.components} expression components, "
                                 f"{self.cfg.name} takes {self.cfg.semantic.expression_dims}")
        return self.face_prior

    def prepare_source(self, portrait: Tensor, avatar_mesh: np.ndarray | None = None) -> SourceState:
        """Once per avatar: portrait (N, 3, S, S) at the output size -> SourceState.

        S must pass `cfg.check_output_size`; the encoders see the portrait averaged down to R.
        Prior and hybrid models also need `avatar_mesh`, (N, 478, 3) or (478, 3): each portrait's
        face mesh in its S² pixels (a mesh with NaN points is a NoFaceError); learned ones take none.
        """
        try:
            self.cfg.check_output_size(portrait.shape[-1])
        except ValueError as exc:
            raise ValueError(f"portrait of {portrait.shape[-1]}²: {exc}") from None
        if (avatar_mesh is None) != (self.cfg.semantic is None):
            raise ValueError(f"{self.cfg.name} " + ("needs the avatar's face mesh" if avatar_mesh is None
                                                     else "uses learned keypoints and takes no face mesh"))
        image = to_internal(portrait, self.cfg.resolution)
        depth = self.estimate_depth(image)
        if avatar_mesh is None:
            keypoints = self.kp_detector(image, depth)
            return SourceState(image, depth, keypoints, self.generator.encode_source(image, depth), portrait)
        features = self.generator.encode_source(image, depth)
        rigs = avatar_rigs(self.prior(), avatar_mesh, portrait.shape[0], portrait.shape[-1], self.cfg.semantic)
        keypoints = rest_keypoints(rigs, self.cfg.semantic, image)
        learned = None if self.kp_detector is None else self.kp_detector(image, depth)
        return SourceState(image, depth, concat_keypoints(keypoints, learned), features, portrait, rigs, learned)

    def render(self, state: SourceState, kp_driving: Keypoints) -> GeneratorOutput:
        """Per frame: the avatar moved to `kp_driving` (already made relative if wanted), at the state's output size."""
        return self.generator.render(state.features, state.keypoints, kp_driving, state.image, state.portrait)

    def drive(self, state: SourceState, motions: Sequence[MotionDelta], learned: Keypoints | None = None
              ) -> SemanticInputs:
        """Prior and hybrid, per frame, numpy side: one driver motion per avatar (`relative_motion`
        of its code against its anchor; an expression of any length, used up to E) [+ for hybrid
        the learned keypoints (N, num_kp, ...), already made relative] -> `SemanticInputs`
        (`semantic_inputs.driven_keypoints`)."""
        if state.rigs is None:
            raise ValueError("this source state was prepared without a face mesh (learned keypoints)")
        if (learned is None) != (self.kp_detector is None):
            raise ValueError(f"{self.cfg.name} " + ("needs the driver's learned keypoints too (hybrid)"
                                                     if learned is None else "has no learned keypoints"))
        keypoints, expression = driven_keypoints(state.rigs, motions, self.cfg.semantic, state.image)
        return SemanticInputs(concat_keypoints(keypoints, learned), expression)

    def render_semantic(self, state: SourceState, kp_driving: Keypoints, expression: Tensor) -> GeneratorOutput:
        """Prior and hybrid, per frame, torch side (the export boundary): keypoints (N, K, ...)
        with K = cfg.motion_keypoints and expression (N, E) from `drive` -> frames at the state's size."""
        return self.generator.render(state.features, state.keypoints, kp_driving, state.image, state.portrait,
                                     expression)
