"""One graph as a .tflite file: litert-torch conversion with named signature I/O, fp16 weights, metadata.

- Names: litert-torch names a signature's inputs after the forward's keyword arguments and its
  outputs after the keys of a returned dict, so the graph is wrapped in `NamedGraph`.
- Warp: the generator uses `row_gather_warp` (row gathers) instead of F.grid_sample, which
  litert-torch decomposes into per-element GATHER_ND and selects (measured ~15× slower on XNNPACK),
  for the features and for the composite head's full-resolution warp of the portrait alike.
- fp16: weights of convolutions stored as fp16 (ai-edge-quantizer's float_casting; compute stays
  float32 on CPU, GPU delegates run fp16), the usual TFLite "float16 quantization".
- Metadata: `GraphMetadata` as JSON in a flatbuffer metadata entry (`TFLITE_METADATA_NAME`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from sdk.models import TalkingHeadModel
from sdk.runtime.graphs import GraphSpec, build_graphs, example_inputs, row_gather_warp
from sdk.runtime.metadata import GraphMetadata
from sdk.runtime.tflite_backend import TFLITE_METADATA_NAME

from sdk.files import write_bytes_atomic


class NamedGraph(nn.Module):
    """A graph with keyword inputs and a dict of outputs, named by its spec (for litert-torch)."""

    def __init__(self, inner: nn.Module, spec: GraphSpec):
        super().__init__()
        self.inner = inner  # not `graph`: torch.export's GraphModule owns that attribute name
        self.spec = spec

    def forward(self, **inputs: Tensor) -> dict[str, Tensor]:
        outputs = self.inner(*(inputs[name] for name in self.spec.input_names))
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        return dict(zip(self.spec.output_names, outputs))


def write_tflite(model: TalkingHeadModel, graph: str, precision: str, path: Path, metadata: GraphMetadata) -> Path:
    """Convert one graph of `model` at the output size of `metadata` and write it to `path` (fp32 or fp16)."""
    import litert_torch

    if precision not in ("fp32", "fp16"):
        raise ValueError(f"TFLite float export writes fp32 or fp16, not {precision!r}")
    litert_torch.config.show_progress = False  # our own progress display runs around it
    model = model.to("cpu").eval()
    spec, size = metadata.spec, metadata.output_size
    module = NamedGraph(build_graphs(model, warp=row_gather_warp, output_size=size)[graph], spec).eval()
    sample = dict(zip(spec.input_names, example_inputs(model.cfg, output_size=size)[graph]))
    with torch.no_grad():
        content = bytes(litert_torch.convert(module, sample_kwargs=sample).model_content())
    if precision == "fp16":
        content = fp16_weights(content)
    return write_bytes_atomic(path, add_metadata(content, metadata.to_strings()))


def fp16_weights(content: bytes) -> bytes:
    """Store conv / fully-connected weights as fp16 with dequantize ops (ai-edge-quantizer float_casting)."""
    from ai_edge_quantizer import qtyping, quantizer

    config = qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
        compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True)
    converter = quantizer.Quantizer(bytearray(content))
    converter.update_quantization_recipe(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                         op_config=config, algorithm_key="float_casting")
    return bytes(converter.quantize(enable_progress_report=False).quantized_model)


def add_metadata(content: bytes, metadata: dict[str, str]) -> bytes:
    """The flatbuffer with `metadata` as JSON in the metadata entry `TFLITE_METADATA_NAME` (replaced if present)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    # ai-edge-quantizer appends large buffers after the flatbuffer (offset/size); repacking would
    # lose that tail, so such buffers are moved inline.
    for buffer in model.buffers:
        if buffer.offset > 1:
            buffer.data = np.frombuffer(content, dtype=np.uint8, count=buffer.size, offset=buffer.offset)
            buffer.offset = buffer.size = 0
    model.metadata = [entry for entry in (model.metadata or []) if entry.name != TFLITE_METADATA_NAME.encode()
                      and entry.name != TFLITE_METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata, sort_keys=True).encode(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = TFLITE_METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
