"""One graph as a Core ML mlprogram (.mlpackage), and the structural check that runs without macOS.

Conversion: the traced graph (F.grid_sample becomes MIL `resample`), fixed input shapes, named
inputs and outputs, compute precision fp32 or fp16, iOS 16 / macOS 13 as the minimum target.
Metadata: `GraphMetadata` in the model's user-defined metadata, each tensor's meaning in its
description. Core ML cannot predict on Linux, so `check_coreml` reads the package back and
checks names, shapes, precision, metadata and the op set; `export/check_coreml_macos.py` runs
the graphs on a Mac and compares them with torch.
"""
from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sdk.models import TalkingHeadModel
from sdk.runtime.graphs import build_graphs, example_inputs
from sdk.runtime.metadata import GraphMetadata

from sdk.files import replace_directory

MINIMUM_TARGET = "iOS16"


def _coremltools():
    """coremltools, without its import-time warnings about the macOS-only runtime and untested torch."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools

    return coremltools


def write_coreml(model: TalkingHeadModel, graph: str, precision: str, path: Path, metadata: GraphMetadata) -> Path:
    """Convert one graph of `model` at the output size of `metadata` to an mlprogram at `path`
    (fp32 or fp16 compute)."""
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"Core ML float export writes fp32 or fp16, not {precision!r}")
    model = model.to("cpu").eval()
    spec, size = metadata.spec, metadata.output_size
    with torch.no_grad():
        traced = torch.jit.trace(build_graphs(model, output_size=size)[graph],
                                 example_inputs(model.cfg, output_size=size)[graph])
    return save_mlprogram(traced, spec, precision, metadata.to_strings(), metadata.sdk_version,
                          f"{metadata.model_id} {graph} ({precision}), talking-head SDK {metadata.sdk_version}", path)


def save_mlprogram(traced: torch.jit.ScriptModule, spec, precision: str, strings: dict[str, str], version: str,
                   description: str, path: Path) -> Path:
    """A traced graph as an mlprogram at `path` (fp32 or fp16 compute) with `spec`'s named I/O,
    `strings` as its metadata; the video graphs and the audio graphs (`export.audio`) alike."""
    ct = _coremltools()
    # The converter's progress bars would break ours; its exception says what failed.
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        mlmodel = ct.convert(
            traced, convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, MINIMUM_TARGET),
            # float32 I/O at every precision (as ONNX and TFLite): fp16 packages cast inside.
            inputs=[ct.TensorType(name=tensor.name, shape=tensor.shape, dtype=np.float32) for tensor in spec.inputs],
            outputs=[ct.TensorType(name=tensor.name, dtype=np.float32) for tensor in spec.outputs],
            compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16)
    mlmodel.user_defined_metadata.update(strings)
    mlmodel.short_description = description
    mlmodel.version = version
    for tensor in spec.inputs:
        mlmodel.input_description[tensor.name] = tensor.meaning
    for tensor in spec.outputs:
        mlmodel.output_description[tensor.name] = tensor.meaning
    return replace_directory(path, lambda partial: mlmodel.save(str(partial)))


@dataclass(frozen=True)
class CoremlStructure:
    """What `check_coreml` read from a package: I/O shapes by name, op counts, the element types of
    the non-constant ops' outputs (e.g. {"FLOAT16": 180, "FLOAT32": 4}), metadata."""
    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]
    ops: dict[str, int]
    compute_types: dict[str, int]
    metadata: GraphMetadata


def read_coreml(path: Path) -> CoremlStructure:
    """Read an .mlpackage's spec (no prediction; works on Linux). ValueError if unreadable."""
    ct = _coremltools()

    if not (path / "Manifest.json").is_file():
        raise ValueError(f"{path}: not an .mlpackage (no Manifest.json)")
    try:
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    except Exception as exc:  # coremltools raises bare Exceptions / protobuf errors for corrupt packages
        raise ValueError(f"{path}: coremltools cannot read it ({exc})") from exc

    def shapes(features) -> dict[str, tuple[int, ...]]:
        return {feature.name: tuple(int(d) for d in feature.type.multiArrayType.shape) for feature in features}

    ops: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            _count_ops(block, ops, types)
    metadata = GraphMetadata.from_strings(dict(spec.description.metadata.userDefined), str(path))
    return CoremlStructure(shapes(spec.description.input), shapes(spec.description.output), dict(ops), dict(types),
                           metadata)


def _count_ops(block, ops: Counter, types: Counter) -> None:
    from coremltools.proto import MIL_pb2

    for operation in block.operations:
        ops[operation.type] += 1
        if operation.type != "const":
            for output in operation.outputs:
                if output.type.HasField("tensorType"):
                    types[MIL_pb2.DataType.Name(output.type.tensorType.dataType)] += 1
        for nested in operation.blocks:
            _count_ops(nested, ops, types)


def check_coreml(path: Path, expected: GraphMetadata) -> tuple[CoremlStructure, list[str]]:
    """The package's structure and the problems found: names and shapes against the spec, metadata
    against `expected`, compute in the precision asked for, and `resample` for the generator's warp."""
    structure = read_coreml(path)
    spec = expected.spec
    problems = []
    want_inputs = {tensor.name: tensor.shape for tensor in spec.inputs}
    want_outputs = {tensor.name: tensor.shape for tensor in spec.outputs}
    if structure.inputs != want_inputs:
        problems.append(f"inputs {structure.inputs} != spec {want_inputs}")
    if structure.outputs != want_outputs:
        problems.append(f"outputs {structure.outputs} != spec {want_outputs}")
    problems += structure.metadata.mismatches(expected)
    if expected.graph == "generator" and "resample" not in structure.ops:
        problems.append("generator has no `resample` op (the warp did not map to Core ML's grid sampler)")
    half, single = structure.compute_types.get("FLOAT16", 0), structure.compute_types.get("FLOAT32", 0)
    if expected.precision == "fp16" and half <= single:
        problems.append(f"fp16 package computes mostly in float32 ({half} fp16 vs {single} fp32 op outputs)")
    if expected.precision == "fp32" and half:
        problems.append(f"fp32 package has {half} fp16 op outputs")
    return structure, problems
