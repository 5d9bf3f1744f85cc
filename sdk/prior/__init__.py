"""Semantic face prior from the tracker's 478-point mesh (seed 002, issue 12): pose, expression code, keypoints.

Sender (per frame, numpy, no network): `SemanticEncoder(prior).encode(mesh)` -> `EncodedFrame`
with a `SemanticCode` (pose (6,) + expression (E,)), flagged frames repeating the last good code.
Receiver: `AvatarRig(prior, avatar_mesh, size).drive(relative_motion(code, anchor))` -> the
avatar's K keypoints (model coordinates) and Jacobians, from the avatar's own face shape.
Editing: `Edits.parse("yaw=15,smile=0.5").apply(motion, prior)` (rotation offsets, named controls, freeze modes).
The prior (canonical neutral face, rigid weights, expression basis, control maps) is one
checksummed file: `load_prior("default")` reads `sdk/assets/prior/`; `python -m sdk prior fit`
makes one, `python -m sdk prior show` describes one.

Modules: `procrustes` (weighted similarity fit), `canonical` (frame, rigid weights), `neutral`
(per-clip neutral), `features`, `basis`, `controls`, `code` (SemanticCode, relative motion),
`keypoints` (K selection, coordinates, Jacobians), `encoder`, `receiver`, `edits`, `prior_file`, `fit`, `cli`.
"""
from __future__ import annotations

from .basis import ExpressionBasis, fit_basis
from .code import POSE_NAMES, MotionDelta, SemanticCode, pose_from_similarity, relative_motion, similarity_from_pose
from .edits import ANGLE_LIMITS, EditError, Edits
from .controls import CONTROL_NAMES, CONTROL_SPECS, ControlMap, ControlRangeWarning
from .encoder import EncodedFrame, EncoderConfig, EncoderStats, SemanticEncoder
from .keypoints import KEYPOINT_PRIORITY, MAX_KEYPOINTS, keypoint_indices, to_keypoint_coords
from .prior_file import FORMAT_VERSION, FacePrior, load_prior, save_prior
from .procrustes import Similarity, fit_similarity
from .receiver import AvatarRig, DrivenKeypoints, RigConfig

__all__ = [
    "ANGLE_LIMITS", "CONTROL_NAMES", "CONTROL_SPECS", "FORMAT_VERSION", "KEYPOINT_PRIORITY", "MAX_KEYPOINTS", "POSE_NAMES",
    "AvatarRig", "ControlMap", "ControlRangeWarning", "DrivenKeypoints", "EncodedFrame", "EncoderConfig",
    "EditError", "Edits", "EncoderStats", "ExpressionBasis", "FacePrior", "MotionDelta", "RigConfig", "SemanticCode", "SemanticEncoder",
    "Similarity", "fit_basis", "fit_similarity", "keypoint_indices", "load_prior", "pose_from_similarity",
    "relative_motion", "save_prior", "similarity_from_pose", "to_keypoint_coords",
]
