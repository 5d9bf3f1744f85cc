"""What every exported graph file carries: which model, which weights, which bitstream, which output
size, what each tensor means, and for models driven by the face prior which prior (its file's sha256).

`model_sha256(model)` is the model's identity for caches, exported files and the stream header:
a sha256 over the config and the weights as loaded (fp32, sorted by name), so it is the same
whether the model came from a checkpoint (fp16 on disk) or was built in memory.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch

from ..codec.header import SemanticStreamHeader, StreamHeader
from ..models import ModelConfig, TalkingHeadModel
from .graphs import GraphSpec, graph_specs

# The code stream the keypoint encoder's outputs are meant for (`sdk.codec`); face-prior models'
# codes are the semantic kind's (`bitstream_version`).
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
    # The face prior a prior / hybrid model was trained with (`FacePrior.sha256`); None for learned
    # keypoints, whose files carry no such key (their metadata is what it was before it existed).
    face_prior_sha256: str | None = None

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
        if self.face_prior_sha256 is not None:
            values["face_prior_sha256"] = self.face_prior_sha256
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
            prior = values.get(METADATA_PREFIX + "face_prior_sha256")
            if (prior is None) != (config.semantic is None):
                raise ValueError("a face prior's sha256 is recorded exactly for models driven by the face prior")
            metadata = cls(graph, get("precision"), get("model_id"), get("model_sha256"),
                           int(get("bitstream_version")), config, spec, get("sdk_version"), prior)
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
        model_sha256, bitstream_version, output_size, face_prior_sha256); empty when the file is the one expected."""
        return [f"metadata {name} {getattr(self, name)!r} != {getattr(expected, name)!r}"
                for name in ("graph", "precision", "model_sha256", "bitstream_version", "output_size",
                             "face_prior_sha256")
                if getattr(self, name) != getattr(expected, name)]


def graph_metadata(model: TalkingHeadModel, spec: GraphSpec, precision: str, sha256: str | None = None) -> GraphMetadata:
    """Metadata for one graph of `model` in the set of `spec` (`graph_specs(cfg, output_size)[graph]`);
    pass `sha256` when already computed: hashing reads every weight."""
    from .. import __version__

    return GraphMetadata(spec.name, precision, model.cfg.name, sha256 or model_sha256(model),
                         bitstream_version(model.cfg), model.cfg, spec, __version__, face_prior_sha256(model))


def bitstream_version(cfg: ModelConfig) -> int:
    """The version of the code stream `cfg`'s model is driven by: the learned keypoints'
    (`BITSTREAM_VERSION`), or for face-prior models the semantic code's (`SemanticStreamHeader`)."""
    return BITSTREAM_VERSION if cfg.semantic is None else SemanticStreamHeader.VERSION


def face_prior_sha256(model: TalkingHeadModel) -> str | None:
    """The sha256 of the face prior `model` is driven by (`TalkingHeadModel.prior`: the one its
    metadata names, checked), None for learned keypoints; a ModelLoadError when that prior is not
    here, a ValueError for a prior fitted in memory (no file to name)."""
    if model.cfg.semantic is None:
        return None
    prior = model.prior()
    if prior.sha256 is None:
        raise ValueError(f"{model.cfg.name}: its face prior was never saved to a file; graphs must name the "
                         "prior file they are driven by (save it with sdk.prior.save_prior)")
    return prior.sha256
