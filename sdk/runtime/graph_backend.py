"""A backend over exported graph files: the stage calls turned into named-tensor runs of the graphs.

A `GraphRunner` (ONNX Runtime sessions, TFLite interpreters, ...) runs one graph on a dict of
float32 arrays by input name and returns a dict by output name, and reports the metadata each
file carries. `GraphBackend` checks that the files are the model's graphs (`graph_names`), of one
model at one precision and one output size, and match `graph_specs` (names and shapes), then
implements `encode`, `prepare_source` and `render` on top: the portrait comes in at the output
size, the source encoder sees it averaged down to the internal resolution (as
`TalkingHeadModel.prepare_source` does), and the generator keeps it.

Models driven by the face prior (prior, hybrid; issue 12), the protocol `TorchBackend` has:
`prepare_source(portrait, avatar_mesh)` takes the avatar's mesh (478, 3) in the portrait's S²
pixels and builds its rig (`sdk.models.semantic_inputs.avatar_rigs`) with the face prior the
graphs were exported with (the sha256 in their metadata; `load_prior("default", sha256)` unless
one is given, and another prior is a BackendError naming both); the state's `keypoints` are the
avatar's own prior keypoints (then its learned ones, hybrid), fed to the generator as
``source_keypoints``; `render(state, kp_driving, expression)` takes the K = `cfg.motion_keypoints`
driving keypoints and the expression (1, E). A "prior" model has no keypoint encoder: `encode`
is a BackendError (its sender sends the mesh's semantic code).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from ..errors import ModelLoadError
from ..models import Keypoints, ModelConfig
from ..models.semantic_inputs import avatar_rigs, concat_keypoints, rest_keypoints
from ..models.talking_head import to_internal
from .base import BackendError, check_image
from .graphs import GRAPH_NAMES, GraphSpec, graph_specs
from .metadata import GraphMetadata

if TYPE_CHECKING:
    from ..prior import AvatarRig, FacePrior

# Where an export folder keeps the face prior its semantic graphs are driven by (`python -m export`).
PRIOR_FOLDER = "prior"


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
    generator's per-avatar inputs (``portrait`` included) as float32 arrays by input name.

    Face-prior models: `keypoints` are the avatar's own K = motion_keypoints (prior, then learned),
    `rigs` its `sdk.prior.AvatarRig` (one), and for hybrid `learned` its learned keypoints alone
    (what the driver's learned keypoints are made relative to); None otherwise, as in `SourceState`."""
    keypoints: Keypoints
    depth: torch.Tensor | None
    feeds: dict[str, np.ndarray] = field(repr=False)
    rigs: tuple[AvatarRig, ...] | None = None
    learned: Keypoints | None = None


def as_array(tensor: torch.Tensor) -> np.ndarray:
    """A float32, contiguous host copy (what every runtime takes)."""
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


class GraphBackend:
    """The `Backend` protocol over a `GraphRunner`; `kind` names it ("onnx", "onnx-int8", "tflite", ...).
    Its `output_size` is the one the files were exported at.

    prior: for face-prior models, the prior to drive avatars with: a `FacePrior`, a prior file or
    folder (`sdk.prior.load_prior`), or None: the shipped one; it must be the one the graphs'
    metadata names (BackendError otherwise). `face_prior` holds it (None for learned keypoints),
    `prior()` returns it.
    """

    def __init__(self, runner: GraphRunner, kind: str, prior: FacePrior | str | Path | None = None):
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
        self.face_prior = None if self.cfg.semantic is None else graph_prior(prior, first, runner.files["generator"])

    def prior(self) -> FacePrior:
        """The face prior the graphs are driven by (face-prior models; as `TalkingHeadModel.prior`)."""
        if self.face_prior is None:
            raise ValueError(f"{self.cfg.name} uses learned keypoints, not the face prior")
        return self.face_prior

    @torch.inference_mode()
    def encode(self, image: torch.Tensor) -> Keypoints:
        if "keypoint_encoder" not in self.specs:
            raise BackendError(f"{self.cfg.name} has no keypoint encoder: its sender sends the semantic code of the "
                               "face mesh (sdk.prior.SemanticEncoder)")
        check_image(image, self.cfg)
        outputs = self.runner.run("keypoint_encoder", {"image": as_array(image)})
        return Keypoints(torch.from_numpy(outputs["keypoints"]), torch.from_numpy(outputs["jacobians"]))

    @torch.inference_mode()
    def prepare_source(self, image: torch.Tensor, avatar_mesh: np.ndarray | None = None) -> GraphSourceState:
        check_image(image, self.cfg, self.output_size)
        semantic = self.cfg.semantic
        if (avatar_mesh is None) != (semantic is None):
            raise BackendError(f"{self.cfg.name} " + ("needs the avatar's face mesh" if avatar_mesh is None
                                                       else "uses learned keypoints and takes no face mesh"))
        pixels = as_array(to_internal(image, self.cfg.resolution))
        outputs = self.runner.run("source_encoder", {"image": pixels})
        depth = torch.from_numpy(outputs["depth"]) if "depth" in outputs else None
        rigs = learned = None
        if semantic is None:
            keypoints = Keypoints(torch.from_numpy(outputs["source_keypoints"]),
                                  torch.from_numpy(outputs["source_jacobians"]))
        else:
            rigs = avatar_rigs(self.face_prior, avatar_mesh, 1, self.output_size, semantic)
            if "learned_keypoints" in outputs:
                learned = Keypoints(torch.from_numpy(outputs["learned_keypoints"]),
                                    torch.from_numpy(outputs["learned_jacobians"]))
            keypoints = concat_keypoints(rest_keypoints(rigs, semantic, torch.from_numpy(pixels)), learned)
        available = {**outputs, "source_image": pixels, "portrait": as_array(image),
                     "source_keypoints": as_array(keypoints.value), "source_jacobians": as_array(keypoints.jacobian)}
        feeds = {name: available[name] for name in self.specs["generator"].input_names
                 if not name.startswith("driving_") and name != "expression"}
        return GraphSourceState(keypoints, depth, feeds, rigs, learned)

    @torch.inference_mode()
    def render(self, state: GraphSourceState, kp_driving: Keypoints, expression: torch.Tensor | None = None
               ) -> torch.Tensor:
        feeds = dict(state.feeds)
        feeds["driving_keypoints"] = as_array(kp_driving.value)
        feeds["driving_jacobians"] = as_array(kp_driving.jacobian)
        semantic = self.cfg.semantic
        if (expression is None) != (semantic is None):
            raise BackendError(f"{self.cfg.name} " + ("is driven by an expression code: pass it (1, "
                                                       f"{semantic.expression_dims})" if expression is None
                                                       else "uses learned keypoints and takes no expression"))
        if expression is not None:
            if tuple(expression.shape) != (1, semantic.expression_dims):
                raise BackendError(f"{self.cfg.name}: expected an expression of shape (1, {semantic.expression_dims}), "
                                   f"got {tuple(expression.shape)}")
            feeds["expression"] = as_array(expression)
        return torch.from_numpy(self.runner.run("generator", feeds)["image"])


def graph_prior(prior: FacePrior | str | Path | None, metadata: GraphMetadata, where: Path) -> FacePrior:
    """The face prior semantic graphs are driven by: `prior` (a FacePrior, or a file or folder to
    load; None: the shipped one) unless it is not the one `metadata` names, a BackendError naming both."""
    from ..prior import FacePrior, load_prior

    expected = metadata.face_prior_sha256
    if not isinstance(prior, FacePrior):
        try:
            prior = load_prior("default" if prior is None else prior, expected)
        except ModelLoadError as exc:
            raise BackendError(f"{where}: graphs of {metadata.config.name} driven by face prior {expected[:12]}: "
                               f"{exc}") from None
    elif prior.sha256 != expected:
        raise BackendError(f"{where}: graphs of {metadata.config.name} are driven by face prior {expected[:12]}, not "
                           f"the {str(prior.sha256)[:12]} given; use the prior they were exported with")
    dims = metadata.config.semantic.expression_dims
    if prior.components < dims:
        raise BackendError(f"{where}: the face prior has {prior.components} expression components, "
                           f"{metadata.config.name} takes {dims}")
    return prior


def check_precision(backend: GraphBackend, precision: str) -> GraphBackend:
    """`backend`, unless its files are not at `precision` (e.g. fp32 graphs copied into an int8 folder)."""
    if backend.precision != precision:
        raise BackendError(f"{backend.runner.files['generator'].parent}: graphs of precision {backend.precision}, "
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
    """Raise BackendError unless the runner's files hold the model's graphs (`graph_names` of the
    config in their metadata) of one model, at one precision and one output size, with the spec's
    I/O (names and shapes); returns the first graph's metadata."""
    present = [name for name in GRAPH_NAMES if name in runner.files]
    first_path = runner.files[present[0]]
    first = runner.metadata[present[0]]
    specs = graph_specs(first.config, first.output_size)
    missing = [name for name in specs if name not in runner.files]
    if missing:
        raise BackendError(f"missing graph files: {', '.join(missing)} of {first.config.name} (beside {first_path})")
    for name in present:
        metadata, path = runner.metadata[name], runner.files[name]
        if metadata.graph != name:
            raise BackendError(f"{path}: holds the {metadata.graph} graph, expected {name}")
        if name not in specs:
            raise BackendError(f"{path}: {first.config.name} has no {name} graph (its graphs: {', '.join(specs)})")
        if metadata.model_sha256 != first.model_sha256:
            raise BackendError(f"{path}: graph of model {metadata.model_sha256[:12]}, but "
                               f"{first_path} is of {first.model_sha256[:12]}")
        if metadata.precision != first.precision:
            raise BackendError(f"{path}: {metadata.precision} graph, but {first_path} is {first.precision}")
        if metadata.output_size != first.output_size:
            raise BackendError(f"{path}: graph for output size {metadata.output_size}², but "
                               f"{first_path} is for {first.output_size}²")
        if metadata.face_prior_sha256 != first.face_prior_sha256:
            raise BackendError(f"{path}: graph driven by face prior {str(metadata.face_prior_sha256)[:12]}, but "
                               f"{first_path} by {str(first.face_prior_sha256)[:12]}")
        spec = specs[name]
        inputs, outputs = runner.io_shapes(name)
        want_inputs = {tensor.name: tensor.shape for tensor in spec.inputs}
        want_outputs = {tensor.name: tensor.shape for tensor in spec.outputs}
        if not (_same_shapes(inputs, want_inputs) and _same_shapes(outputs, want_outputs)):
            raise BackendError(f"{path}: inputs {inputs} / outputs {outputs} do not match the {name} spec "
                               f"{want_inputs} / {want_outputs}")
    return first


def missing_runner_files(files: dict[str, Path], kind: str) -> None:
    """BackendError naming the graph files a runner was given that are not there (which graphs a
    model needs is checked against the config in their metadata, `check_graph_files`)."""
    unknown = sorted(set(files) - set(GRAPH_NAMES))
    if unknown or not files:
        raise BackendError(f"no {kind} graph files given, or unknown graphs {unknown}; expected some of "
                           f"{', '.join(GRAPH_NAMES)}")
    missing = [str(path) for path in files.values() if not Path(path).is_file()]
    if missing:
        raise BackendError(f"missing {kind} graph files: " + ", ".join(missing))


def _same_shapes(declared: dict[str, tuple], expected: dict[str, tuple[int, ...]]) -> bool:
    """Same names, and each declared shape is the spec's (a dimension that is not an int is dynamic: any size)."""
    return declared.keys() == expected.keys() and all(
        len(declared[name]) == len(shape) and all(not isinstance(got, int) or got == want
                                                  for got, want in zip(declared[name], shape))
        for name, shape in expected.items())


def present_graph_files(files: dict[str, Path]) -> dict[str, Path]:
    """The graph files of `files` that exist (a face-prior "prior" model has no keypoint encoder;
    which graphs a model needs is checked against the config in its files' metadata)."""
    return {name: path for name, path in files.items() if path.is_file()}


def export_folder_prior(directory: str | Path, prior: FacePrior | str | Path | None) -> FacePrior | str | Path | None:
    """The prior to drive an export folder's face-prior graphs with: `prior`, else the folder's copy
    (``directory/prior/``, written by `python -m export`) when it has one, else None (the shipped one)."""
    if prior is not None:
        return prior
    folder = Path(directory) / PRIOR_FOLDER
    return folder if folder.is_dir() else None
