"""The torch backend: the model's own modules on CPU or CUDA (the reference the others are checked against)."""
from __future__ import annotations

import numpy as np
import torch

from ..models import Keypoints, SourceState, TalkingHeadModel
from ..prior import FacePrior
from .base import check_image, check_output_size
from .threads import Threads, graph_threads, torch_threads


class TorchBackend:
    """`TalkingHeadModel` on `device`; the source state is the model's `SourceState`.

    threads: intra-op threads per stage (an int for every stage, a `ThreadBudget`, or None:
    torch's setting of the calling thread), applied around each stage call on its thread.
    """

    kind = "torch"

    def __init__(self, model: TalkingHeadModel, device: str | torch.device = "cpu", output_size: int | None = None,
                 threads: Threads = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg
        self.output_size = check_output_size(self.cfg, output_size)
        self.threads = threads
        self.name = f"torch-{self.device.type}"

    @torch.inference_mode()
    def encode(self, image: torch.Tensor) -> Keypoints:
        check_image(image, self.cfg)
        with torch_threads(graph_threads(self.threads, "keypoint_encoder")):
            return self.model.encode(image.to(self.device))

    @torch.inference_mode()
    def prepare_source(self, image: torch.Tensor, avatar_mesh: np.ndarray | None = None) -> SourceState:
        check_image(image, self.cfg, self.output_size)
        with torch_threads(graph_threads(self.threads, "source_encoder")):
            return self.model.prepare_source(image.to(self.device), avatar_mesh)

    @torch.inference_mode()
    def render(self, state: SourceState, kp_driving: Keypoints, expression: torch.Tensor | None = None
               ) -> torch.Tensor:
        with torch_threads(graph_threads(self.threads, "generator")):
            if expression is None:
                return self.model.render(state, kp_driving).prediction
            return self.model.render_semantic(state, kp_driving, expression.to(self.device)).prediction

    def prior(self) -> FacePrior:
        return self.model.prior()
