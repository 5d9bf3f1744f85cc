"""What a hybrid packet's payload holds (docs/bitstream.md §13): the semantic code, then the learned keypoints.

A hybrid model (`sdk.models` "-hybrid" configs) is driven by the face prior's code (pose (6,) +
E expression coefficients) and by K learned keypoints (K, 2) [+ Jacobians (K, 2, 2)] of its keypoint
detector. A packet codes both with their own kinds' quantizers, prediction and groups, one after
the other in one arithmetic-coded payload: rotation, position, [expression] as in §11.4, then
shift, keypoints, [Jacobians] as in §6. Both parts share the packet framing (§4), so they share
its reference: a delta frame predicts each part from the same reference frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arithmetic import ArithmeticDecoder, ArithmeticEncoder
from .header import HybridStreamHeader
from .layout import CodeLayout, PacketTiming, QuantizedCode
from .semantic_layout import SemanticLayout, SemanticQuantized


@dataclass(frozen=True)
class HybridQuantized:
    """Integer code of one frame: the semantic part and the learned keypoints' part (extra dims: none)."""
    semantic: SemanticQuantized
    keypoints: QuantizedCode


class HybridLayout(PacketTiming):
    """Quantization and payload coding for one hybrid stream header: its two parts' layouts in turn."""

    def __init__(self, header: HybridStreamHeader):
        super().__init__(header.fps_millihertz)
        self.header = header
        self.semantic = SemanticLayout(header.semantic_header())
        self.keypoints = CodeLayout(header.keypoint_header())

    def quantize(self, pose: np.ndarray, expression: np.ndarray, keypoints: np.ndarray, jacobians: np.ndarray | None,
                 reference: HybridQuantized | None = None) -> tuple[HybridQuantized, int]:
        """(code, number of values clamped to their limit), each part as its own kind quantizes it."""
        semantic, clamped = self.semantic.quantize(pose, expression, None if reference is None else reference.semantic)
        learned, count = self.keypoints.quantize(keypoints, jacobians, None,
                                                 None if reference is None else reference.keypoints)
        return HybridQuantized(semantic, learned), clamped + count

    def dequantize(self, code: HybridQuantized) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(pose (6,), expression (E,)) float64 and (keypoints (K, 2), Jacobians (K, 2, 2) | None) float32."""
        keypoints, jacobians, _ = self.keypoints.dequantize(code.keypoints)
        return (*self.semantic.dequantize(code.semantic), keypoints, jacobians)

    def write(self, encoder: ArithmeticEncoder, code: HybridQuantized, reference: HybridQuantized | None) -> None:
        """Code `code` predicted from `reference` (None: a keyframe)."""
        self.semantic.write(encoder, code.semantic, None if reference is None else reference.semantic)
        self.keypoints.write(encoder, code.keypoints, None if reference is None else reference.keypoints)

    def read(self, decoder: ArithmeticDecoder, reference: HybridQuantized | None) -> HybridQuantized:
        semantic = self.semantic.read(decoder, None if reference is None else reference.semantic)
        learned = self.keypoints.read(decoder, None if reference is None else reference.keypoints)
        return HybridQuantized(semantic, learned)
