"""Which model a code stream belongs to, and of which kind: the header a sender builds and the receiver checks.

Codes are only meaningful to the generator trained with what made them, so the header names the
model (config name) and its `sdk.runtime.model_sha256` (config and weights), and the receiver
refuses a stream of another model with a message naming both. Three kinds (docs/bitstream.md):

- learned-keypoint models send their keypoints and Jacobians (`StreamHeader`, version 1);
- face-prior models send the semantic code of the tracked mesh (`SemanticStreamHeader`, version
  2 kind 1: head pose + the first E expression coefficients), which is only meaningful in the
  face prior it was made with: the header names the prior too, and a receiver holding another
  one refuses the stream (`PriorMismatchError`);
- hybrid models (prior + learned keypoints) send both (`HybridStreamHeader`, version 2 kind 2):
  the semantic code, as the semantic kind, then their K learned keypoints and Jacobians.

The receiver reads the kind from the header (`read_stream_header`) and decodes with that kind's
decoder (`stream_decoder`).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..codec import (HYBRID_PRESETS, PRESETS, SEMANTIC_PRESETS, CodecConfig, CodecError, CodeDecoder, CodeEncoder,
                     HybridCodecConfig, HybridCodeDecoder, HybridCodeEncoder, HybridStreamHeader, SemanticCodecConfig,
                     SemanticCodeDecoder, SemanticCodeEncoder, SemanticStreamHeader, StreamHeader, read_stream_header)
from ..models import ModelConfig
from .errors import LiveError, ModelMismatchError

if TYPE_CHECKING:
    from ..prior import FacePrior

Header = StreamHeader | SemanticStreamHeader | HybridStreamHeader
Setting = CodecConfig | SemanticCodecConfig | HybridCodecConfig

# Per stream kind: its header, its codec setting and presets, what a model of it is, what it sends.
_KINDS: dict[str, tuple[type, type, dict, str, str]] = {
    "keypoints": (StreamHeader, CodecConfig, PRESETS, "a learned-keypoint model", "learned keypoints"),
    "semantic": (SemanticStreamHeader, SemanticCodecConfig, SEMANTIC_PRESETS, "a face-prior model",
                 "semantic codes (head pose + expression)"),
    "hybrid": (HybridStreamHeader, HybridCodecConfig, HYBRID_PRESETS, "a hybrid model (face prior + learned "
               "keypoints)", "hybrid codes (head pose + expression + learned keypoints)"),
}


def stream_kind(cfg: ModelConfig) -> str:
    """"keypoints" (learned-keypoint models), "semantic" (face-prior models) or "hybrid" (both)."""
    if cfg.semantic is None:
        return "keypoints"
    return "hybrid" if cfg.num_kp else "semantic"


def _header_kind(header: Header) -> str:
    return next(kind for kind, (header_type, *_) in _KINDS.items() if isinstance(header, header_type))


def codec_config(setting: str | Setting, cfg: ModelConfig) -> Setting:
    """The codec setting of `cfg`'s stream kind: a preset name is looked up among that kind's presets."""
    _, setting_type, presets, model, _ = _KINDS[stream_kind(cfg)]
    if isinstance(setting, str):
        if setting not in presets:
            raise LiveError(f"codec preset {setting!r} is not one of {cfg.name}'s ({model}) presets: "
                            f"{', '.join(presets)}")
        return presets[setting]
    if not isinstance(setting, setting_type):
        raise LiveError(f"{cfg.name} is {model}: its stream takes a {setting_type.__name__}, got "
                        f"{type(setting).__name__}")
    return setting


def stream_header(cfg: ModelConfig, model_sha256: str, fps: float, codec: Setting,
                  prior: FacePrior | None = None) -> Header:
    """The header of a stream of `cfg`'s codes at nominal rate `fps`; face-prior and hybrid models
    need their `prior` and send the first min(the setting's E, the model's E, the prior's E) coefficients."""
    kind = stream_kind(cfg)
    _, setting_type, _, _, sent = _KINDS[kind]
    if not isinstance(codec, setting_type) or (kind != "keypoints" and prior is None):
        raise LiveError(f"{cfg.name} sends {sent}: its stream takes a {setting_type.__name__}"
                        + ("" if kind == "keypoints" else " and the face prior"))
    if kind == "keypoints":
        return StreamHeader(model_id=cfg.name, model_sha256=model_sha256, num_kp=cfg.num_kp,
                            resolution=cfg.resolution, fps=fps, config=codec)
    wanted = prior.components if codec.expression_dims is None else codec.expression_dims
    dims = min(wanted, cfg.semantic.expression_dims, prior.components)
    if kind == "semantic":
        return SemanticStreamHeader.for_prior(prior, cfg.name, model_sha256, cfg.resolution, fps, codec, dims)
    return HybridStreamHeader.for_prior(prior, cfg.name, model_sha256, cfg.num_kp, cfg.resolution, fps, codec, dims)


def _model_of(header: Header) -> str:
    """'model X (weights ..., K and/or face prior and E, resolution)' of a header, for messages."""
    parts = [f"weights {header.model_sha256}"]
    if not isinstance(header, SemanticStreamHeader):
        parts.append(f"K={header.num_kp}")
    parts.append(f"{header.resolution}px")
    if not isinstance(header, StreamHeader):
        parts.append(f"face prior {header.prior_sha256}, E={header.expression_dims}")
    return f"model {header.model_id!r} ({', '.join(parts)})"


def parse_and_check_header(data: bytes, cfg: ModelConfig, model_sha256: str, prior: FacePrior | None = None
                           ) -> Header:
    """Parse a received header of either kind and make sure this receiver's model (and, for the
    semantic kind, its face `prior`) can render its codes.

    Raises ModelMismatchError (another model or kind), PriorMismatchError (another face prior) or,
    for a garbled header, CodecError.
    """
    try:
        header = read_stream_header(data)
    except CodecError as exc:
        raise CodecError(f"the sender's stream header is not valid: {exc}") from None
    kind = _header_kind(header)
    sent = _KINDS[kind][4]
    if kind != stream_kind(cfg):
        raise ModelMismatchError(f"the sender sends {sent} of {_model_of(header)} but this receiver loaded "
                                 f"{cfg.name!r}, {_KINDS[stream_kind(cfg)][3]}; load the same model (--model) on "
                                 "both ends")
    mine_header = stream_header(cfg, model_sha256, header.fps, header.config, prior)
    fields = ("model_id", "model_sha256", "resolution") + (() if kind == "semantic" else ("num_kp",))
    if any(getattr(header, name) != getattr(mine_header, name) for name in fields):
        raise ModelMismatchError(f"the sender sends {sent} of {_model_of(header)} but this receiver loaded "
                                 f"{_model_of(mine_header)}; load the same model (--model) on both ends")
    if kind != "keypoints":
        assert prior is not None
        header.check_prior(prior.sha256, prior.components)
    return header


def stream_encoder(header: Header) -> CodeEncoder | SemanticCodeEncoder | HybridCodeEncoder:
    """The sender's encoder of the header's kind: `encode(*arrays, timestamp_ms)` with the arrays
    of `sdk.live.sender.code_arrays`: (keypoints, Jacobians), (pose, expression) or
    (pose, expression, keypoints, Jacobians)."""
    encoder = {"keypoints": CodeEncoder, "semantic": SemanticCodeEncoder, "hybrid": HybridCodeEncoder}
    return encoder[_header_kind(header)](header)


def stream_decoder(header: Header, prior: FacePrior | None = None
                   ) -> CodeDecoder | SemanticCodeDecoder | HybridCodeDecoder:
    """The receiver's decoder of the header's kind (semantic, hybrid: expressions zero-filled to `prior`'s E)."""
    kind = _header_kind(header)
    if kind == "keypoints":
        return CodeDecoder(header)
    return (SemanticCodeDecoder if kind == "semantic" else HybridCodeDecoder)(header, prior)


def stream_description(header: Header) -> dict:
    """The stream's kind, E (semantic, hybrid) and codec setting, JSON-ready (for the stats)."""
    description: dict = {"kind": _header_kind(header), "config": dataclasses.asdict(header.config)}
    if not isinstance(header, StreamHeader):
        description["expression_dims"] = header.expression_dims
    return description
