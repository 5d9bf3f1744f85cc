"""The torch backend: the model's own modules on CPU or CUDA (the reference the others are checked against).

With `frozen=True` (what `create_backend(..., "torch")` builds on the CPU) the per-frame stages run
as TorchScript graphs traced and frozen (`torch.jit.freeze`: weights become constants, BatchNorm
folds into the convolution before it, oneDNN gets fixed shapes), on a copy of the model whose
weights, inputs and source tensors are channels-last (oneDNN's own layout: fewer reorders around
each convolution):
- the keypoint encoder, traced on the first frame;
- the generator, traced once per avatar in `prepare_source` with that avatar's source tensors as
  constants, so freezing also folds what depends on the source alone (its downsampled image,
  its keypoint Gaussians) out of the per-frame graph.
Both compute what the modules compute, up to float rounding (~1e-5); `bench/render_speed.py
--torch-paths` measures them against the eager modules (here, under load: encoder 1.65-1.76x,
render 1.10-1.39x). Frames whose keypoints are not of the traced shapes fall back to the eager
modules.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor, nn

from ..models import Keypoints, SourceState, TalkingHeadModel
from ..prior import FacePrior
from .base import check_image, check_output_size
from .threads import Threads, graph_threads, torch_threads


# The model's methods the frozen graphs are traced through.
TRACED_METHODS = ("encode", "prepare_source", "render", "render_semantic")


@dataclass(frozen=True)
class FrozenSourceState(SourceState):
    """A `SourceState` with its generator traced and frozen on it: (kp value, kp jacobian[,
    expression]) -> frame (N, 3, S, S); `traced_shapes` are the shapes it was traced with."""
    frame_graph: torch.jit.ScriptModule | None = None
    traced_shapes: tuple[tuple[int, ...], ...] = ()


class TensorKeypointEncoder(nn.Module):
    """image (N, 3, R, R) -> keypoints (N, K, 2), jacobians (N, K, 2, 2): tensors, so it traces."""

    def __init__(self, model: TalkingHeadModel):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        keypoints = self.model.encode(image)
        return keypoints.value, keypoints.jacobian


class AvatarGenerator(nn.Module):
    """One avatar's per-frame generator: driving keypoints (N, K, 2), jacobians (N, K, 2, 2)
    [, expression (N, E)] -> frame (N, 3, S, S); the avatar's state is held, not an input."""

    def __init__(self, model: TalkingHeadModel, state: SourceState):
        super().__init__()
        self.model = model
        self.state = state

    def forward(self, value: Tensor, jacobian: Tensor, expression: Tensor | None = None) -> Tensor:
        driving = Keypoints(value, jacobian)
        if expression is None:
            return self.model.render(self.state, driving).prediction
        return self.model.render_semantic(self.state, driving, expression).prediction


def freeze_trace(module: nn.Module, inputs: tuple[Tensor, ...]) -> torch.jit.ScriptModule:
    """`module` traced on `inputs` and frozen (its Python branches are fixed by the config and shapes)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape branches, fixed on purpose
        return torch.jit.freeze(torch.jit.trace(module.eval(), inputs, check_trace=False))


class TorchBackend:
    """`TalkingHeadModel` on `device`; the source state is the model's `SourceState`
    (a `FrozenSourceState` when frozen).

    threads: intra-op threads per stage (an int for every stage, a `ThreadBudget`, or None:
    torch's setting of the calling thread), applied around each stage call on its thread.
    frozen: run the per-frame stages as frozen TorchScript graphs (module docstring), of the
    weights as they were when the backend was made; ignored off the CPU and for a model with one
    of `TRACED_METHODS` overridden on the object (`self.frozen` says which).
    """

    kind = "torch"

    def __init__(self, model: TalkingHeadModel, device: str | torch.device = "cpu", output_size: int | None = None,
                 threads: Threads = None, frozen: bool = False):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg
        self.output_size = check_output_size(self.cfg, output_size)
        self.threads = threads
        # A stage overridden on the model object (a wrapper, a test's slowed render) runs as given:
        # tracing would bake what it does on the first call into the graph.
        overridden = any(name in vars(model) for name in TRACED_METHODS)
        self.frozen = frozen and self.device.type == "cpu" and not overridden
        # What the frozen graphs are traced from: the weights copied channels-last, `model` untouched.
        self._traced_model = (copy.deepcopy(self.model).to(memory_format=torch.channels_last) if self.frozen
                              else self.model)
        self._encoder_graph: torch.jit.ScriptModule | None = None
        self.name = f"torch-{self.device.type}"

    @torch.inference_mode()
    def encode(self, image: torch.Tensor) -> Keypoints:
        check_image(image, self.cfg)
        with torch_threads(graph_threads(self.threads, "keypoint_encoder")):
            image = image.to(self.device)
            if not self.frozen:
                return self.model.encode(image)
            image = image.contiguous(memory_format=torch.channels_last)
            if self._encoder_graph is None:
                self._encoder_graph = freeze_trace(TensorKeypointEncoder(self._traced_model), (image,))
            return Keypoints(*self._encoder_graph(image))

    @torch.inference_mode()
    def prepare_source(self, image: torch.Tensor, avatar_mesh: np.ndarray | None = None) -> SourceState:
        check_image(image, self.cfg, self.output_size)
        image = image.to(self.device)
        if self.frozen:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch_threads(graph_threads(self.threads, "source_encoder")):
            state = self._traced_model.prepare_source(image, avatar_mesh)
        if not self.frozen:
            return state
        with torch_threads(graph_threads(self.threads, "generator")):
            return self._freeze_generator(state)

    def _freeze_generator(self, state: SourceState) -> FrozenSourceState:
        """`state` with the generator traced on it, on keypoints of its own shapes (its rest pose)."""
        # Copies: the tracer would take the state's own keypoint tensors, wherever used, for the inputs.
        inputs: tuple[Tensor, ...] = (state.keypoints.value.clone(), state.keypoints.jacobian.clone())
        if self.cfg.semantic is not None:
            inputs += (torch.zeros((state.image.shape[0], self.cfg.semantic.expression_dims), device=self.device),)
        graph = freeze_trace(AvatarGenerator(self._traced_model, state), inputs)
        own = {field.name: getattr(state, field.name) for field in fields(SourceState)}
        return FrozenSourceState(**own, frame_graph=graph, traced_shapes=tuple(tuple(t.shape) for t in inputs))

    @torch.inference_mode()
    def render(self, state: SourceState, kp_driving: Keypoints, expression: torch.Tensor | None = None
               ) -> torch.Tensor:
        with torch_threads(graph_threads(self.threads, "generator")):
            inputs = (kp_driving.value, kp_driving.jacobian) + (() if expression is None
                                                                else (expression.to(self.device),))
            if (isinstance(state, FrozenSourceState) and state.frame_graph is not None
                    and tuple(tuple(t.shape) for t in inputs) == state.traced_shapes):
                return state.frame_graph(*inputs)
            if expression is None:
                return self.model.render(state, kp_driving).prediction
            return self.model.render_semantic(state, kp_driving, inputs[2]).prediction

    def prior(self) -> FacePrior:
        return self.model.prior()
