"""Writing the graphs as ONNX: legacy TorchScript exporter at opset 17, checked, simplified, with metadata.

The legacy exporter (`dynamo=False`) emits GridSample directly (opset 16+); the dynamo exporter
would need `onnxscript`. The warp stays GridSample: `row_gather_warp` runs the generator faster in
ORT on CPU here (quantization report, interleaved medians: 21.1 vs 25.8 ms at 1 thread, 15.1 vs
15.9 ms at 2), but GridSample is one standard op that CUDA / TensorRT run natively and that keeps
fp16 coordinates out of index arithmetic.
fp16 files keep float32 inputs and outputs (casts at the edges), so every backend feeds the same
tensors whatever the precision. The layout of an export folder is
``DIR/onnx/<precision>/<graph>.onnx`` (`onnx_graph_path`), shared with `python -m export`.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..files import atomic_file
from ..models import TalkingHeadModel
from .base import BackendError
from .graphs import build_graphs, example_inputs, graph_names, graph_specs
from .metadata import GraphMetadata, graph_metadata, model_sha256

ONNX_OPSET = 17
ONNX_FLOAT_PRECISIONS = ("fp32", "fp16")


def onnx_graph_path(directory: str | Path, precision: str, graph: str) -> Path:
    """Where `graph` at `precision` lives in an export folder."""
    return Path(directory) / "onnx" / precision / f"{graph}.onnx"


def export_onnx(model: TalkingHeadModel, directory: str | Path, precision: str = "fp32",
                graphs: tuple[str, ...] | None = None, simplify: bool = True,
                sha256: str | None = None, output_size: int | None = None) -> dict[str, Path]:
    """Write `graphs` of `model` (None: all of its `graph_names`) at `output_size` (None: the
    model's default) to ``directory/onnx/<precision>/`` and return their paths by name."""
    names = graph_names(model.cfg)
    graphs = names if graphs is None else graphs
    unknown = sorted(set(graphs) - set(names))
    if unknown:
        raise BackendError(f"unknown graphs {unknown} of {model.cfg.name}; expected some of {names}")
    model = model.to("cpu").eval()
    sha256 = sha256 or model_sha256(model)
    specs = graph_specs(model.cfg, output_size)
    return {name: write_onnx_graph(model, name, precision, onnx_graph_path(directory, precision, name),
                                   graph_metadata(model, specs[name], precision, sha256), simplify)
            for name in graphs}


def write_onnx_graph(model: TalkingHeadModel, graph: str, precision: str, path: Path, metadata: GraphMetadata,
                     simplify: bool = True) -> Path:
    """Write one graph of `model` as ONNX at `path`, in the set of graphs `metadata` describes (its output size).

    The file is checked with `onnx.checker` (full check, with shape inference), simplified with
    onnxsim when `simplify`, and carries `metadata` in its metadata_props. Raises BackendError for
    a precision ONNX export does not produce here (int8 comes from `python -m quantization`).
    """
    if precision not in ONNX_FLOAT_PRECISIONS:
        raise BackendError(f"ONNX export writes {' or '.join(ONNX_FLOAT_PRECISIONS)}, not {precision!r}"
                           + ("; int8 graphs come from `python -m quantization`" if precision == "int8" else ""))
    model = model.to("cpu").eval()
    spec, size = metadata.spec, metadata.output_size
    onnx_model = trace_to_onnx(build_graphs(model, output_size=size)[graph],
                               example_inputs(model.cfg, output_size=size)[graph], spec.input_names, spec.output_names)
    if simplify:
        onnx_model = simplify_onnx(onnx_model, graph)
    if precision == "fp16":
        onnx_model = to_float16(onnx_model)
    set_onnx_metadata(onnx_model, metadata.to_strings())
    return save_onnx(onnx_model, Path(path))


def trace_to_onnx(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], input_names: list[str],
                  output_names: list[str]):
    """Trace `module` on `inputs` and return the checked `onnx.ModelProto` (fixed shapes)."""
    import onnx

    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, inputs, buffer, input_names=input_names, output_names=output_names,
                          opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=True)
    onnx_model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def simplify_onnx(onnx_model, name: str):
    """onnxsim's constant folding and shape simplification, checked against the original by onnxsim."""
    from onnxsim import simplify

    simplified, ok = simplify(onnx_model)
    if not ok:
        raise BackendError(f"{name}: onnxsim could not validate the simplified graph against the original")
    return simplified


def to_float16(onnx_model):
    """fp16 weights and activations with float32 inputs/outputs (ORT adds casts where a CPU kernel lacks fp16)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(onnx_model, keep_io_types=True)
    # The converter adds one cast per consumer of a shared constant, all writing the same tensor,
    # and appends casts after their consumers; ORT and the checker want each tensor written once,
    # unique node names, and topological order.
    unique, written = [], set()
    for node in converted.graph.node:
        if node.op_type == "Cast" and tuple(node.output) in written:
            continue
        written.add(tuple(node.output))
        unique.append(node)
    seen: dict[str, int] = {}
    for node in unique:
        if node.name:
            count = seen.get(node.name, 0)
            seen[node.name] = count + 1
            if count:
                node.name = f"{node.name}_{count}"
    del converted.graph.node[:]
    converted.graph.node.extend(unique)
    ordered = _topological_order(converted.graph)
    del converted.graph.node[:]
    converted.graph.node.extend(ordered)
    onnx.checker.check_model(converted, full_check=True)
    return converted


def _topological_order(graph) -> list:
    """The graph's nodes, each after the producers of its inputs (stable otherwise)."""
    available = {tensor.name for tensor in graph.input} | {tensor.name for tensor in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise BackendError("fp16 conversion left a graph with a cycle or a missing input")
        for node in ready:
            available.update(node.output)
        ordered += ready
        ready_ids = {id(node) for node in ready}
        pending = [node for node in pending if id(node) not in ready_ids]
    return ordered


def set_onnx_metadata(onnx_model, metadata: dict[str, str]) -> None:
    """Replace the model's metadata_props with `metadata`."""
    del onnx_model.metadata_props[:]
    for key, value in metadata.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value


def save_onnx(onnx_model, path: Path) -> Path:
    """Write atomically (a reader never sees half a file) and return `path`."""
    import onnx

    with atomic_file(path) as partial:
        onnx.save(onnx_model, str(partial))
    return path
