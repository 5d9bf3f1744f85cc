"""What every exported graph file carries: which model, which weights, which bitstream, which output
size, what each tensor means.

`model_sha256(model)` is the model's identity for caches, exported files and the stream header:
a sha256 over the config and the weights as loaded (fp32, sorted by name), so it is the same
whether the model came from a checkpoint (fp16 on disk) or was built in memory.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch

from ..codec.header import StreamHeader
from ..models import ModelConfig, TalkingHeadModel
from .graphs import GraphSpec, graph_specs

# The code stream the keypoint encoder's outputs are meant for (`sdk.codec`).
BITSTREAM_VERSION: int = StreamHeader.VERSION
METADATA_PREFIX = "sdk."
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


def model_sha256(model: TalkingHeadModel) -> str:
    """Hex sha256 of the model's config (JSON) and fp32 weights in name order."""
    digest = hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        value = tensor.detach().to("cpu")
        if value.is_floating_point():
            value = value.to(torch.float32)
        digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class GraphMetadata:
    """The metadata written into (and read back from) every exported graph file."""
    graph: str
    precision: str
    model_id: str
    model_sha256: str
    bitstream_version: int
    config: ModelConfig
    spec: GraphSpec
    sdk_version: str

    @property
    def output_size(self) -> int:
        """The side S of the frames of the set of graphs this file belongs to."""
        return self.spec.output_size

    def to_strings(self) -> dict[str, str]:
        """Flat string key/values (ONNX metadata_props, Core ML user metadata, TFLite metadata)."""
        def tensors(specs):
            return json.dumps([{"name": s.name, "shape": list(s.shape), "meaning": s.meaning} for s in specs])

        values = {"graph": self.graph, "precision": self.precision, "model_id": self.model_id,
                  "model_sha256": self.model_sha256, "bitstream_version": str(self.bitstream_version),
                  "model_config": json.dumps(self.config.to_dict(), sort_keys=True),
                  "inputs": tensors(self.spec.inputs), "outputs": tensors(self.spec.outputs),
                  "output_size": str(self.output_size), "sdk_version": self.sdk_version}
        return {METADATA_PREFIX + key: value for key, value in values.items()}

    @classmethod
    def from_strings(cls, values: dict[str, str], where: str) -> GraphMetadata:
        """Inverse of `to_strings`; raises ValueError naming `where` if a key is missing or invalid."""
        try:
            def get(key: str) -> str:
                return values[METADATA_PREFIX + key]

            config = ModelConfig.from_dict(json.loads(get("model_config")))
            graph = get("graph")
            # Files written before the output size was recorded render at the internal resolution.
            output_size = int(values.get(METADATA_PREFIX + "output_size", config.resolution))
            spec = graph_specs(config, output_size)[graph]
            metadata = cls(graph, get("precision"), get("model_id"), get("model_sha256"),
                           int(get("bitstream_version")), config, spec, get("sdk_version"))
            declared = {side: [(entry["name"], tuple(entry["shape"])) for entry in json.loads(get(side))]
                        for side in ("inputs", "outputs")}
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{where}: missing or invalid sdk metadata ({exc!r}); "
                             "not a graph written by `python -m export`") from exc
        if metadata.precision not in PRECISIONS:
            raise ValueError(f"{where}: metadata precision {metadata.precision!r} is none of {', '.join(PRECISIONS)}")
        for side, tensors in (("inputs", spec.inputs), ("outputs", spec.outputs)):
            expected = [(tensor.name, tensor.shape) for tensor in tensors]
            if declared[side] != expected:
                raise ValueError(f"{where}: metadata {side} {declared[side]} do not match the {graph} spec {expected}")
        return metadata

    def mismatches(self, expected: GraphMetadata) -> list[str]:
        """What differs from `expected` in the fields that identify a graph file (graph, precision,
        model_sha256, bitstream_version, output_size); empty when the file is the one expected."""
        return [f"metadata {name} {getattr(self, name)!r} != {getattr(expected, name)!r}"
                for name in ("graph", "precision", "model_sha256", "bitstream_version", "output_size")
                if getattr(self, name) != getattr(expected, name)]


def graph_metadata(model: TalkingHeadModel, spec: GraphSpec, precision: str, sha256: str | None = None) -> GraphMetadata:
    """Metadata for one graph of `model` in the set of `spec` (`graph_specs(cfg, output_size)[graph]`);
    pass `sha256` when already computed: hashing reads every weight."""
    from .. import __version__

    return GraphMetadata(spec.name, precision, model.cfg.name, sha256 or model_sha256(model), BITSTREAM_VERSION,
                         model.cfg, spec, __version__)
