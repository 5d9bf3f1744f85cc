"""Which model a code stream belongs to, and of which kind: the header a sender builds and the receiver checks.

Codes are only meaningful to the generator trained with what made them, so the header names the
model (config name) and its `sdk.runtime.model_sha256` (config and weights), and the receiver
refuses a stream of another model with a message naming both. Two kinds (docs/bitstream.md):

- learned-keypoint models send their keypoints and Jacobians (`StreamHeader`, version 1);
- face-prior models send the semantic code of the tracked mesh (`SemanticStreamHeader`, version
  2: head pose + the first E expression coefficients), which is only meaningful in the face
  prior it was made with: the header names the prior too, and a receiver holding another one
  refuses the stream (`PriorMismatchError`).

The receiver reads the kind from the header (`read_stream_header`) and decodes with that kind's
decoder (`stream_decoder`). Hybrid models (prior + learned keypoints) have no stream kind yet.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..codec import (PRESETS, SEMANTIC_PRESETS, CodecConfig, CodecError, CodeDecoder, CodeEncoder,
                     SemanticCodecConfig, SemanticCodeDecoder, SemanticCodeEncoder, SemanticStreamHeader,
                     StreamHeader, read_stream_header)
from ..models import ModelConfig
from .errors import LiveError, ModelMismatchError

if TYPE_CHECKING:
    from ..prior import FacePrior

Header = StreamHeader | SemanticStreamHeader


def stream_kind(cfg: ModelConfig) -> str:
    """"keypoints" (learned-keypoint models) or "semantic" (face-prior models); LiveError for hybrid ones."""
    if cfg.semantic is None:
        return "keypoints"
    if cfg.num_kp:
        raise LiveError(f"{cfg.name} is a hybrid model (face-prior + learned keypoints): no code stream carries "
                        "both yet; use a face-prior (...-prior) or a learned-keypoint model live")
    return "semantic"


def codec_config(setting: str | CodecConfig | SemanticCodecConfig, cfg: ModelConfig
                 ) -> CodecConfig | SemanticCodecConfig:
    """The codec setting of `cfg`'s stream kind: a preset name is looked up among that kind's presets."""
    semantic = stream_kind(cfg) == "semantic"
    presets, kind = (SEMANTIC_PRESETS, "face-prior") if semantic else (PRESETS, "learned-keypoint")
    if isinstance(setting, str):
        if setting not in presets:
            raise LiveError(f"codec preset {setting!r} is not one of {cfg.name}'s ({kind} model) presets: "
                            f"{', '.join(presets)}")
        return presets[setting]
    if isinstance(setting, SemanticCodecConfig) != semantic:
        raise LiveError(f"{cfg.name} is a {kind} model: its stream takes a "
                        f"{'SemanticCodecConfig' if semantic else 'CodecConfig'}, got {type(setting).__name__}")
    return setting


def stream_header(cfg: ModelConfig, model_sha256: str, fps: float, codec: CodecConfig | SemanticCodecConfig,
                  prior: FacePrior | None = None) -> Header:
    """The header of a stream of `cfg`'s codes at nominal rate `fps`; face-prior models need their
    `prior` and send the first min(the setting's E, the model's E, the prior's E) coefficients."""
    if stream_kind(cfg) == "keypoints":
        if not isinstance(codec, CodecConfig):
            raise LiveError(f"{cfg.name} sends learned keypoints: its stream takes a CodecConfig")
        return StreamHeader(model_id=cfg.name, model_sha256=model_sha256, num_kp=cfg.num_kp,
                            resolution=cfg.resolution, fps=fps, config=codec)
    if prior is None or not isinstance(codec, SemanticCodecConfig):
        raise LiveError(f"{cfg.name} sends semantic codes: its stream takes a SemanticCodecConfig and the face prior")
    wanted = prior.components if codec.expression_dims is None else codec.expression_dims
    dims = min(wanted, cfg.semantic.expression_dims, prior.components)
    return SemanticStreamHeader.for_prior(prior, cfg.name, model_sha256, cfg.resolution, fps, codec, dims)


def _model_of(header: Header) -> str:
    """'model X (weights ..., K or face prior and E, resolution)' of a header, for messages."""
    if isinstance(header, SemanticStreamHeader):
        return (f"model {header.model_id!r} (weights {header.model_sha256}, {header.resolution}px; face prior "
                f"{header.prior_sha256}, E={header.expression_dims})")
    return f"model {header.model_id!r} (weights {header.model_sha256}, K={header.num_kp}, {header.resolution}px)"


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
    semantic = isinstance(header, SemanticStreamHeader)
    sent = "semantic codes (head pose + expression)" if semantic else "learned keypoints"
    if semantic != (stream_kind(cfg) == "semantic"):
        mine = "a face-prior model" if cfg.semantic is not None else "a learned-keypoint model"
        raise ModelMismatchError(f"the sender sends {sent} of {_model_of(header)} but this receiver loaded "
                                 f"{cfg.name!r}, {mine}; load the same model (--model) on both ends")
    mine_header = stream_header(cfg, model_sha256, header.fps, header.config, prior)
    if semantic:
        same = (header.model_id, header.model_sha256, header.resolution) == (
            mine_header.model_id, mine_header.model_sha256, mine_header.resolution)
    else:
        same = (header.model_id, header.model_sha256, header.num_kp, header.resolution) == (
            mine_header.model_id, mine_header.model_sha256, mine_header.num_kp, mine_header.resolution)
    if not same:
        raise ModelMismatchError(f"the sender sends {sent} of {_model_of(header)} but this receiver loaded "
                                 f"{_model_of(mine_header)}; load the same model (--model) on both ends")
    if semantic:
        assert prior is not None
        header.check_prior(prior.sha256, prior.components)
    return header


def stream_encoder(header: Header) -> CodeEncoder | SemanticCodeEncoder:
    """The sender's encoder of the header's kind: `encode(first, second, timestamp_ms)` with
    (keypoints, Jacobians) or (pose, expression)."""
    return SemanticCodeEncoder(header) if isinstance(header, SemanticStreamHeader) else CodeEncoder(header)


def stream_decoder(header: Header, prior: FacePrior | None = None) -> CodeDecoder | SemanticCodeDecoder:
    """The receiver's decoder of the header's kind (semantic: expressions zero-filled to `prior`'s E)."""
    if isinstance(header, SemanticStreamHeader):
        return SemanticCodeDecoder(header, prior)
    return CodeDecoder(header)


def stream_description(header: Header) -> dict:
    """The stream's kind, E (semantic) and codec setting, JSON-ready (for the stats)."""
    description: dict = {"kind": "semantic" if isinstance(header, SemanticStreamHeader) else "keypoints",
                         "config": dataclasses.asdict(header.config)}
    if isinstance(header, SemanticStreamHeader):
        description["expression_dims"] = header.expression_dims
    return description
