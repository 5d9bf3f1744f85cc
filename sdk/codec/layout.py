"""What a packet's payload holds and how it is predicted: shared by the encoder and the decoder.

Quantization: q = round(value / step), clamped to |q·step| <= limit (keypoints 1, Jacobians 8,
extra dims 16); value = q · step. Steps are integers in 2^-16 (the header's units).
Prediction: keyframes from constants (keypoints 0, Jacobians the identity, extra dims 0), delta
frames from their reference frame (the last keyframe, or the previous frame, per the header).
Keypoint residuals are split into a shift (the median residual per axis, i.e. the head's
translation) and per-keypoint deviations from it.
Groups, in coding order: [timestamp residual (delta frames)], shift (2), keypoint deviations
(2K: x0, y0, x1, ...), Jacobians (4K: k, row, column), extra dims (D).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .arithmetic import ArithmeticDecoder, ArithmeticEncoder
from .entropy import GroupState, decode_values, encode_values
from .errors import CodecError
from .header import StreamHeader

if TYPE_CHECKING:
    from .hybrid_layout import HybridQuantized
    from .semantic_layout import SemanticQuantized

UNIT = 1 << 16
KEYPOINT_LIMIT, JACOBIAN_LIMIT, EXTRA_LIMIT = 1, 8, 16

# Prior mean magnitudes of each group, in 2^-16 value units: (keyframe, delta frame).
PRIOR_MEANS = {
    "shift": (6554, 164),
    "keypoints": (16384, 328),
    "jacobians": (7864, 328),
    "extra": (32768, 3277),
}
TIMESTAMP_PRIOR_MEAN16 = 16  # timestamp residuals are in ms: prior mean 1 ms


def quantize_values(values: np.ndarray, step: int | np.ndarray, limit: int | np.ndarray, held: np.ndarray | None,
                    keep: float) -> tuple[np.ndarray, int]:
    """(integer levels, number clamped): round(values / step) clamped to ±limit (step in 2^-16,
    limit in steps; each one for all values or one per value); with `held` levels (a delta frame's reference),
    a value keeps its held level while it is within `keep` steps of it (the encoder's hysteresis)."""
    # Clipped to just past the limit before the cast: float -> int64 of a value beyond ±2^63 is
    # undefined (x86-64 gives -2^63, which would pass as an unclamped -limit).
    scaled = np.clip(np.asarray(values, dtype=np.float64) * (UNIT / step), -(limit + 1), limit + 1)
    q = np.rint(scaled).astype(np.int64)
    clamped = int((np.abs(q) > limit).sum())
    q = np.clip(q, -limit, limit)
    return (q if held is None else np.where(np.abs(scaled - held) < keep, held, q)), clamped


class PacketTiming:
    """The timestamp residual of delta frames: the same for every stream kind (docs/bitstream.md §4)."""

    def __init__(self, fps_millihertz: int):
        self.fps_millihertz = fps_millihertz

    def write_timestamp_residual(self, encoder: ArithmeticEncoder, residual: int) -> None:
        encode_values(encoder, [residual], GroupState.prior(TIMESTAMP_PRIOR_MEAN16))

    def read_timestamp_residual(self, decoder: ArithmeticDecoder) -> int:
        return decode_values(decoder, 1, GroupState.prior(TIMESTAMP_PRIOR_MEAN16))[0]

    def predicted_timestamp(self, keyframe_timestamp: int, distance: int) -> int:
        """Keyframe time plus `distance` nominal frame periods, in whole ms (integer arithmetic)."""
        fps = self.fps_millihertz
        return keyframe_timestamp + (distance * 1_000_000 + fps // 2) // fps


@dataclass(frozen=True)
class QuantizedCode:
    """Integer code of one frame: keypoints (K, 2), Jacobians (K, 2, 2) | None, extra (D,) | None."""
    keypoints: np.ndarray
    jacobians: np.ndarray | None
    extra: np.ndarray | None


@dataclass(frozen=True)
class CodedFrame:
    """A frame both sides keep as a reference: its keyframe id, sequence, timestamp and integer
    code (a `QuantizedCode`, a `SemanticQuantized` in a semantic-code stream, a `HybridQuantized`
    in a hybrid one)."""
    keyframe_id: int
    sequence: int
    timestamp_ms: int
    code: QuantizedCode | SemanticQuantized | HybridQuantized


class CodeLayout(PacketTiming):
    """Quantization and payload coding for one stream header."""

    def __init__(self, header: StreamHeader):
        super().__init__(header.fps_millihertz)
        self.header = header
        steps = header.config.step_units()
        self.kp_step, self.jac_step, self.extra_step = (steps["keypoint_step"], steps["jacobian_step"],
                                                        steps["extra_step"])
        self.kp_max = KEYPOINT_LIMIT * UNIT // self.kp_step
        self.jac_max = JACOBIAN_LIMIT * UNIT // self.jac_step
        self.extra_max = EXTRA_LIMIT * UNIT // self.extra_step
        self.identity = (UNIT + self.jac_step // 2) // self.jac_step  # the Jacobian diagonal's prediction
        self.jacobians = header.config.jacobians
        self.extra_dims = header.extra_dims
        self._keep = 0.5 + header.config.hysteresis
        # Computed once per stream, not per frame: the keyframe prediction and each group's prior mean16.
        k = header.num_kp
        jacobians = np.zeros((k, 2, 2), np.int64)
        jacobians[:, 0, 0] = jacobians[:, 1, 1] = self.identity
        self._keyframe_prediction = QuantizedCode(np.zeros((k, 2), np.int64), jacobians,
                                                  np.zeros(self.extra_dims, np.int64))
        for array in (self._keyframe_prediction.keypoints, jacobians, self._keyframe_prediction.extra):
            array.setflags(write=False)
        steps = {"shift": self.kp_step, "keypoints": self.kp_step, "jacobians": self.jac_step,
                 "extra": self.extra_step}
        self._prior_mean16 = {(group, keyframe): (16 * means[index] + steps[group] // 2) // steps[group]
                              for group, means in PRIOR_MEANS.items()
                              for index, keyframe in enumerate((True, False))}

    # -- quantization -------------------------------------------------------------------------
    def quantize(self, keypoints: np.ndarray, jacobians: np.ndarray | None, extra: np.ndarray | None,
                 reference: QuantizedCode | None = None) -> tuple[QuantizedCode, int]:
        """(code, number of values clamped to their limit).

        With a `reference`, a value keeps the reference's level while it is within
        (0.5 + hysteresis) steps of it (the encoder's choice; decoders never need to know).
        """
        clamped = 0

        def one(values: np.ndarray | None, step: int, limit: int, held: np.ndarray | None) -> np.ndarray | None:
            nonlocal clamped
            if values is None:
                return None
            q, count = quantize_values(values, step, limit, held, self._keep)
            clamped += count
            return q

        ref = reference or QuantizedCode(None, None, None)
        return QuantizedCode(one(keypoints, self.kp_step, self.kp_max, ref.keypoints),
                             one(jacobians, self.jac_step, self.jac_max, ref.jacobians) if self.jacobians else None,
                             one(extra, self.extra_step, self.extra_max, ref.extra) if self.extra_dims else None
                             ), clamped

    def dequantize(self, code: QuantizedCode) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        def one(q: np.ndarray | None, step: int) -> np.ndarray | None:
            return None if q is None else (q * step / UNIT).astype(np.float32)

        return (one(code.keypoints, self.kp_step), one(code.jacobians, self.jac_step),
                one(code.extra, self.extra_step))

    def _prediction(self, reference: QuantizedCode | None) -> QuantizedCode:
        return self._keyframe_prediction if reference is None else reference

    def _prior(self, group: str, keyframe: bool) -> GroupState:
        """A fresh state for `group`: prior mean μ (2^-16 units) -> mean16 = (16μ + step // 2) // step."""
        return GroupState.prior(self._prior_mean16[group, keyframe])

    # -- payload --------------------------------------------------------------------------------
    def write(self, encoder: ArithmeticEncoder, code: QuantizedCode, reference: QuantizedCode | None) -> None:
        """Code `code` predicted from `reference` (None: a keyframe)."""
        keyframe = reference is None
        prediction = self._prediction(reference)
        residual = code.keypoints - prediction.keypoints
        shift = [int(np.rint(np.median(residual[:, axis]))) for axis in (0, 1)]
        encode_values(encoder, shift, self._prior("shift", keyframe))
        encode_values(encoder, (residual - np.array(shift)).ravel().tolist(),
                      self._prior("keypoints", keyframe))
        if self.jacobians:
            encode_values(encoder, (code.jacobians - prediction.jacobians).ravel().tolist(),
                          self._prior("jacobians", keyframe))
        if self.extra_dims:
            encode_values(encoder, (code.extra - prediction.extra).tolist(),
                          self._prior("extra", keyframe))

    def read(self, decoder: ArithmeticDecoder, reference: QuantizedCode | None) -> QuantizedCode:
        keyframe = reference is None
        prediction = self._prediction(reference)
        k = self.header.num_kp
        shift = decode_values(decoder, 2, self._prior("shift", keyframe))
        deviations = decode_values(decoder, 2 * k, self._prior("keypoints", keyframe))
        keypoints = prediction.keypoints + np.array(deviations, np.int64).reshape(k, 2) + np.array(shift, np.int64)
        check_range(keypoints, self.kp_max, "keypoint")
        jacobians = extra = None
        if self.jacobians:
            values = decode_values(decoder, 4 * k, self._prior("jacobians", keyframe))
            jacobians = prediction.jacobians + np.array(values, np.int64).reshape(k, 2, 2)
            check_range(jacobians, self.jac_max, "Jacobian")
        if self.extra_dims:
            values = decode_values(decoder, self.extra_dims, self._prior("extra", keyframe))
            extra = prediction.extra + np.array(values, np.int64)
            check_range(extra, self.extra_max, "extra code")
        return QuantizedCode(keypoints, jacobians, extra)



def check_range(values: np.ndarray, limit: int | np.ndarray, what: str) -> None:
    if (np.abs(values) > limit).any():
        raise CodecError(f"decoded {what} value outside its range (corrupt packet)")
