"""The light full-resolution refinement after the composite (issue 11): a few 3×3 convolutions at
the output size that add a residual to the composited frame.

    frame (N, 3, S, S) in [0, 1], composite mask (N, 1, S, S) -> frame (N, 3, S, S) in [0, 1]

Why: bilinear resampling of the portrait at sub-pixel offsets blurs it (the warp alone keeps
0.88× the real frames' variance of the Laplacian) and the decoded image is upsampled from the
internal resolution; a network that sees the output pixels (and where the mask took which source)
can restore some of that detail. The mask input tells it where the frame is the warp and where the
upsampled decoded image. The last convolution starts at zero, so a model given the refinement
after training (`--init`) renders exactly as before until training changes it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class FrameRefinement(nn.Module):
    """`layers` 3×3 convolutions of `channels` with ReLU, then a 3×3 convolution to the residual."""

    def __init__(self, channels: int, layers: int = 2):
        super().__init__()
        if channels < 1 or layers < 1:
            raise ValueError(f"a frame refinement needs channels >= 1 and layers >= 1, got {channels}, {layers}")
        blocks: list[nn.Module] = []
        width = 4  # the frame's RGB and the composite mask
        for _ in range(layers):
            blocks += [nn.Conv2d(width, channels, 3, padding=1), nn.ReLU(inplace=True)]
            width = channels
        self.body = nn.Sequential(*blocks)
        self.residual = nn.Conv2d(width, 3, 3, padding=1)
        reset_refinement_output(self)

    def forward(self, frame: Tensor, mask: Tensor) -> Tensor:
        residual = self.residual(self.body(torch.cat([frame, mask], dim=1)))
        return (frame + residual).clamp(0.0, 1.0)


def reset_refinement_output(refinement: FrameRefinement) -> None:
    """Zero the residual convolution: the refinement then passes the frame through unchanged."""
    nn.init.zeros_(refinement.residual.weight)
    nn.init.zeros_(refinement.residual.bias)
