"""The torch backend: the model's own modules on CPU or CUDA (the reference the others are checked against)."""
from __future__ import annotations

import torch

from ..models import Keypoints, SourceState, TalkingHeadModel
from .base import check_image, check_output_size


class TorchBackend:
    """`TalkingHeadModel` on `device`; the source state is the model's `SourceState`."""

    kind = "torch"

    def __init__(self, model: TalkingHeadModel, device: str | torch.device = "cpu", output_size: int | None = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg
        self.output_size = check_output_size(self.cfg, output_size)
        self.name = f"torch-{self.device.type}"

    @torch.inference_mode()
    def encode(self, image: torch.Tensor) -> Keypoints:
        check_image(image, self.cfg)
        return self.model.encode(image.to(self.device))

    @torch.inference_mode()
    def prepare_source(self, image: torch.Tensor) -> SourceState:
        check_image(image, self.cfg, self.output_size)
        return self.model.prepare_source(image.to(self.device))

    @torch.inference_mode()
    def render(self, state: SourceState, kp_driving: Keypoints) -> torch.Tensor:
        return self.model.render(state, kp_driving).prediction
