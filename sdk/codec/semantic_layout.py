"""What a semantic-code packet's payload holds and how it is predicted (docs/bitstream.md §11).

The code of a frame is `sdk.prior`'s: pose (6,) = yaw, pitch, roll (degrees), tx, ty (keypoint
units), log_scale; then the first E expression coefficients. Each pose number has its own step,
all coefficients share one (steps are integers in 2^-16, the header's units).
Quantization: q = round(value / step) clamped to ±limit (pose 180°, 180°, 180°, 4, 4, 4;
coefficients 16); value = q · step. Prediction: keyframes from 0, delta frames from their
reference frame (the last keyframe, or the previous frame, per the header), as in the
learned-keypoint kind. Groups, in coding order: [timestamp residual (delta frames)], rotation
(yaw, pitch, roll), position (tx, ty, log_scale), expression (E), each residual in steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arithmetic import ArithmeticDecoder, ArithmeticEncoder
from .config import EXPRESSION_LIMIT, POSE_LIMITS
from .entropy import GroupState, decode_values, encode_values
from .header import SemanticStreamHeader
from .layout import UNIT, PacketTiming, check_range, quantize_values

# Each group's prior mean magnitude in 1/16 of a step (mean16): (keyframe, delta frame). In
# steps, not value units: a preset's steps are chosen to move the mesh alike, so a residual of
# one step means about the same in every group and every preset.
PRIOR_MEAN16 = {
    "rotation": (16 * 16, 16),
    "position": (16 * 64, 16),
    "expression": (16 * 2, 8),
}


@dataclass(frozen=True)
class SemanticQuantized:
    """Integer code of one frame: pose (6,) and expression (E,), int64 levels."""
    pose: np.ndarray
    expression: np.ndarray


class SemanticLayout(PacketTiming):
    """Quantization and payload coding for one semantic-code stream header."""

    def __init__(self, header: SemanticStreamHeader):
        super().__init__(header.fps_millihertz)
        self.header = header
        *pose_steps, self.expression_step = header.config.step_units()
        self.pose_steps = np.array(pose_steps, np.int64)
        self.pose_max = np.array(POSE_LIMITS, np.int64) * UNIT // self.pose_steps
        self.expression_max = EXPRESSION_LIMIT * UNIT // self.expression_step
        self.dims = header.expression_dims
        self._keep = 0.5 + header.config.hysteresis
        self._keyframe_prediction = SemanticQuantized(np.zeros(6, np.int64), np.zeros(self.dims, np.int64))
        for array in (self._keyframe_prediction.pose, self._keyframe_prediction.expression):
            array.setflags(write=False)

    def quantize(self, pose: np.ndarray, expression: np.ndarray, reference: SemanticQuantized | None = None
                 ) -> tuple[SemanticQuantized, int]:
        """(code, number of values clamped to their limit); hysteresis against `reference` as in
        the learned-keypoint kind."""
        held = reference or SemanticQuantized(None, None)
        pose_q, clamped = quantize_values(pose, self.pose_steps, self.pose_max, held.pose, self._keep)
        expression_q, count = quantize_values(expression, self.expression_step, self.expression_max,
                                              held.expression, self._keep)
        return SemanticQuantized(pose_q, expression_q), clamped + count

    def dequantize(self, code: SemanticQuantized) -> tuple[np.ndarray, np.ndarray]:
        """(pose (6,), expression (E,)) float64: exactly q · step / 2^16."""
        return code.pose * self.pose_steps / UNIT, code.expression * self.expression_step / UNIT

    def _prior(self, group: str, keyframe: bool) -> GroupState:
        return GroupState.prior(PRIOR_MEAN16[group][0 if keyframe else 1])

    def write(self, encoder: ArithmeticEncoder, code: SemanticQuantized, reference: SemanticQuantized | None) -> None:
        """Code `code` predicted from `reference` (None: a keyframe)."""
        keyframe = reference is None
        prediction = self._keyframe_prediction if keyframe else reference
        pose = (code.pose - prediction.pose).tolist()
        encode_values(encoder, pose[:3], self._prior("rotation", keyframe))
        encode_values(encoder, pose[3:], self._prior("position", keyframe))
        if self.dims:
            encode_values(encoder, (code.expression - prediction.expression).tolist(),
                          self._prior("expression", keyframe))

    def read(self, decoder: ArithmeticDecoder, reference: SemanticQuantized | None) -> SemanticQuantized:
        keyframe = reference is None
        prediction = self._keyframe_prediction if keyframe else reference
        residual = (decode_values(decoder, 3, self._prior("rotation", keyframe))
                    + decode_values(decoder, 3, self._prior("position", keyframe)))
        pose = prediction.pose + np.array(residual, np.int64)
        check_range(pose, self.pose_max, "pose")
        expression = prediction.expression
        if self.dims:
            expression = expression + np.array(decode_values(decoder, self.dims, self._prior("expression", keyframe)),
                                               np.int64)
            check_range(expression, self.expression_max, "expression")
        return SemanticQuantized(pose, expression)
