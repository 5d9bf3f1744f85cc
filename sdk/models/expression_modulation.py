"""Expression modulation (seed 002 §3.2, issue 12): the semantic code's expression scales and shifts decoder features.

The seed feeds the expression to a SPADE generator; a spatially constant code needs no spatial
normalisation map, so this is FiLM / AdaIN-style conditioning without the normalisation: one small
MLP of the code gives every modulated decoder stage a per-channel scale and shift,

    features (N, C_i, h_i, w_i)  ->  features · (1 + γ_i) + β_i,      γ_i, β_i (N, C_i, 1, 1)

which exports as two MatMuls, a ReLU, slices and broadcast Mul/Add (ONNX, TFLite, INT8 alike).

The code is the expression *relative to the anchor* (`sdk.prior.relative_motion`): zero means "as
in the portrait", so dimensions a stream did not send are simply zero. Each coefficient is divided
by its typical size on the prior's fit data (`input_scale`, set from the basis energy when training
starts and saved with the weights) so that all of them reach the MLP at unit scale. The last layer
starts at zero: a decoder given modulation (e.g. `--init` from learned-keypoint weights) starts out
exactly as it was.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ExpressionModulation(nn.Module):
    """expression (N, E) -> one (scale, shift) pair per modulated stage, each (N, C_i, 1, 1).

    `channels`: C_i of each modulated decoder stage, in the decoder's order (coarsest first).
    """

    def __init__(self, expression_dims: int, hidden: int, channels: Sequence[int]):
        super().__init__()
        self.channels = tuple(channels)
        self.register_buffer("input_scale", torch.ones(expression_dims))
        self.mlp = nn.Sequential(nn.Linear(expression_dims, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * sum(self.channels)))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    @property
    def expression_dims(self) -> int:
        return self.input_scale.shape[0]

    def set_input_scale(self, typical: Tensor) -> None:
        """typical (E,): each coefficient's typical size (e.g. sqrt of the basis energy)."""
        if typical.shape != self.input_scale.shape:
            raise ValueError(f"input scale of shape {tuple(typical.shape)}, expected {tuple(self.input_scale.shape)}")
        self.input_scale.copy_(1.0 / typical.clamp_min(1e-6))

    def forward(self, expression: Tensor) -> tuple[tuple[Tensor, Tensor], ...]:
        if expression.ndim != 2 or expression.shape[1] != self.expression_dims:
            raise ValueError(f"expression must be (N, {self.expression_dims}), got {tuple(expression.shape)}")
        out = self.mlp(expression * self.input_scale)
        pairs, start = [], 0
        for channels in self.channels:
            scale = out[:, start:start + channels, None, None]
            shift = out[:, start + channels:start + 2 * channels, None, None]
            pairs.append((scale, shift))
            start += 2 * channels
        return tuple(pairs)

    @staticmethod
    def modulate(features: Tensor, scale_shift: tuple[Tensor, Tensor]) -> Tensor:
        """features (N, C, h, w), (γ, β) (N, C, 1, 1) -> features · (1 + γ) + β."""
        scale, shift = scale_shift
        return features * (1 + scale) + shift
