"""Which model a code stream belongs to: the stream header a sender builds and the receiver checks.

Codes are only meaningful to the generator trained with the keypoint encoder that made them,
so the header names the model (config name) and its `sdk.runtime.model_sha256` (config and
weights), and the receiver refuses a stream of another model with a message naming both.
"""
from __future__ import annotations

from ..codec import CodecConfig, CodecError, StreamHeader
from ..models import ModelConfig
from .errors import ModelMismatchError


def stream_header(cfg: ModelConfig, model_sha256: str, fps: float, codec: CodecConfig) -> StreamHeader:
    """The header of a stream of `cfg`'s codes at nominal rate `fps`."""
    return StreamHeader(model_id=cfg.name, model_sha256=model_sha256, num_kp=cfg.num_kp,
                        resolution=cfg.resolution, fps=fps, config=codec)


def parse_and_check_header(data: bytes, cfg: ModelConfig, model_sha256: str) -> StreamHeader:
    """Parse a received header and make sure this receiver's model can render its codes.

    Raises ModelMismatchError (a garbled header: CodecError) naming both models.
    """
    try:
        header = StreamHeader.from_bytes(data)
    except CodecError as exc:
        raise CodecError(f"the sender's stream header is not valid: {exc}") from None
    mine = stream_header(cfg, model_sha256, header.fps, header.config)
    if (header.model_id, header.model_sha256, header.num_kp, header.resolution) != (
            mine.model_id, mine.model_sha256, mine.num_kp, mine.resolution):
        raise ModelMismatchError(
            f"the sender encodes codes of model {header.model_id!r} (weights {header.model_sha256}, "
            f"K={header.num_kp}, {header.resolution}px) but this receiver loaded {mine.model_id!r} "
            f"(weights {mine.model_sha256}, K={mine.num_kp}, {mine.resolution}px); load the same "
            "model (--model) on both ends")
    return header
