"""A backend over exported graph files: the stage calls turned into named-tensor runs of the three graphs.

A `GraphRunner` (ONNX Runtime sessions, TFLite interpreters, ...) runs one graph on a dict of
float32 arrays by input name and returns a dict by output name, and reports the metadata each
file carries. `GraphBackend` checks that the three files belong to one model at one precision and one
output size and match `graph_specs` (names and shapes), then implements `encode`, `prepare_source` and
`render` on top: the portrait comes in at the output size, the source encoder sees it averaged down to
the internal resolution (as `TalkingHeadModel.prepare_source` does), and the generator keeps it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..models import Keypoints, ModelConfig
from ..models.talking_head import to_internal
from .base import BackendError, check_image
from .graphs import GRAPH_NAMES, GraphSpec, graph_specs
from .metadata import GraphMetadata


class GraphRunner(Protocol):
    """Runs exported graphs by name.

    files: the file of each graph; metadata: what each file carries; provider: what executes them
    (e.g. "cpu", "cuda", "xnnpack").
    """
    files: dict[str, Path]
    metadata: dict[str, GraphMetadata]
    provider: str

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """float32 arrays by input name -> float32 arrays by output name."""
        ...

    def io_shapes(self, graph: str) -> tuple[dict[str, tuple], dict[str, tuple]]:
        """The inputs and outputs the file declares: shape by name (a dimension that is not an int is dynamic)."""
        ...


@dataclass(frozen=True)
class GraphSourceState:
    """Per-avatar state: the keypoints (for relative motion), the depth map if any, and the
    generator's per-avatar inputs (``portrait`` included) as float32 arrays by input name."""
    keypoints: Keypoints
    depth: torch.Tensor | None
    feeds: dict[str, np.ndarray] = field(repr=False)


def as_array(tensor: torch.Tensor) -> np.ndarray:
    """A float32, contiguous host copy (what every runtime takes)."""
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


class GraphBackend:
    """The `Backend` protocol over a `GraphRunner`; `kind` names it ("onnx", "onnx-int8", "tflite", ...).
    Its `output_size` is the one the files were exported at."""

    def __init__(self, runner: GraphRunner, kind: str):
        first = check_graph_files(runner)
        self.runner = runner
        self.kind = kind
        self.cfg: ModelConfig = first.config
        self.model_sha256 = first.model_sha256
        self.precision = first.precision
        self.output_size = first.output_size
        self.specs: dict[str, GraphSpec] = graph_specs(self.cfg, self.output_size)
        self.device = torch.device("cpu")  # inputs arrive as host arrays whatever executes the graphs
        self.name = f"{kind}-{runner.provider}"

    @torch.inference_mode()
    def encode(self, image: torch.Tensor) -> Keypoints:
        check_image(image, self.cfg)
        outputs = self.runner.run("keypoint_encoder", {"image": as_array(image)})
        return Keypoints(torch.from_numpy(outputs["keypoints"]), torch.from_numpy(outputs["jacobians"]))

    @torch.inference_mode()
    def prepare_source(self, image: torch.Tensor) -> GraphSourceState:
        check_image(image, self.cfg, self.output_size)
        pixels = as_array(to_internal(image, self.cfg.resolution))
        outputs = self.runner.run("source_encoder", {"image": pixels})
        available = {**outputs, "source_image": pixels, "portrait": as_array(image)}
        feeds = {name: available[name] for name in self.specs["generator"].input_names
                 if not name.startswith("driving_")}
        depth = torch.from_numpy(outputs["depth"]) if "depth" in outputs else None
        keypoints = Keypoints(torch.from_numpy(outputs["source_keypoints"]),
                              torch.from_numpy(outputs["source_jacobians"]))
        return GraphSourceState(keypoints, depth, feeds)

    @torch.inference_mode()
    def render(self, state: GraphSourceState, kp_driving: Keypoints) -> torch.Tensor:
        feeds = dict(state.feeds)
        feeds["driving_keypoints"] = as_array(kp_driving.value)
        feeds["driving_jacobians"] = as_array(kp_driving.jacobian)
        return torch.from_numpy(self.runner.run("generator", feeds)["image"])


def check_precision(backend: GraphBackend, precision: str) -> GraphBackend:
    """`backend`, unless its files are not at `precision` (e.g. fp32 graphs copied into an int8 folder)."""
    if backend.precision != precision:
        raise BackendError(f"{backend.runner.files[GRAPH_NAMES[0]].parent}: graphs of precision {backend.precision}, "
                           f"expected {precision}")
    return backend


def check_graph_output_size(backend: GraphBackend, output_size: int, where: str | Path) -> GraphBackend:
    """`backend`, unless its files were exported at another output size than `output_size`."""
    if backend.output_size != output_size:
        raise BackendError(f"{where}: graphs exported at output size {backend.output_size}², not the "
                           f"{output_size}² asked for; pass output_size={backend.output_size} (--size "
                           f"{backend.output_size}) or export at {output_size} "
                           f"(`python -m export --size {output_size}`)")
    return backend


def check_graph_files(runner: GraphRunner) -> GraphMetadata:
    """Raise BackendError unless the three files hold the right graphs of one model, at one precision
    and one output size, with the spec's I/O (names and shapes); returns the first graph's metadata."""
    first = runner.metadata[GRAPH_NAMES[0]]
    specs = graph_specs(first.config, first.output_size)
    for name in GRAPH_NAMES:
        metadata, path = runner.metadata[name], runner.files[name]
        if metadata.graph != name:
            raise BackendError(f"{path}: holds the {metadata.graph} graph, expected {name}")
        if metadata.model_sha256 != first.model_sha256:
            raise BackendError(f"{path}: graph of model {metadata.model_sha256[:12]}, but "
                               f"{runner.files[GRAPH_NAMES[0]]} is of {first.model_sha256[:12]}")
        if metadata.precision != first.precision:
            raise BackendError(f"{path}: {metadata.precision} graph, but {runner.files[GRAPH_NAMES[0]]} is "
                               f"{first.precision}")
        if metadata.output_size != first.output_size:
            raise BackendError(f"{path}: graph for output size {metadata.output_size}², but "
                               f"{runner.files[GRAPH_NAMES[0]]} is for {first.output_size}²")
        spec = specs[name]
        inputs, outputs = runner.io_shapes(name)
        want_inputs = {tensor.name: tensor.shape for tensor in spec.inputs}
        want_outputs = {tensor.name: tensor.shape for tensor in spec.outputs}
        if not (_same_shapes(inputs, want_inputs) and _same_shapes(outputs, want_outputs)):
            raise BackendError(f"{path}: inputs {inputs} / outputs {outputs} do not match the {name} spec "
                               f"{want_inputs} / {want_outputs}")
    return first


def _same_shapes(declared: dict[str, tuple], expected: dict[str, tuple[int, ...]]) -> bool:
    """Same names, and each declared shape is the spec's (a dimension that is not an int is dynamic: any size)."""
    return declared.keys() == expected.keys() and all(
        len(declared[name]) == len(shape) and all(not isinstance(got, int) or got == want
                                                  for got, want in zip(declared[name], shape))
        for name, shape in expected.items())
