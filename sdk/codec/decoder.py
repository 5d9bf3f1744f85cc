"""The receiver's side: packets -> FrameCode / SemanticFrameCode / HybridFrameCode; every defect is a
CodecError, nothing else escapes."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .arithmetic import ArithmeticDecoder
from .encoder import KEYFRAME_MARKER
from .errors import CodecError, MissingReferenceError, StalePacketError
from .frame import FrameCode, HybridFrameCode, SemanticFrameCode
from .header import HybridStreamHeader, SemanticStreamHeader, StreamHeader, require_kind
from .hybrid_layout import HybridLayout
from .layout import CodedFrame, CodeLayout
from .semantic_layout import SemanticLayout
from .varint import decode_varint

if TYPE_CHECKING:
    from ..prior.prior_file import FacePrior

Frame = FrameCode | SemanticFrameCode | HybridFrameCode
_DECODERS = {StreamHeader: "CodeDecoder", SemanticStreamHeader: "SemanticCodeDecoder",
             HybridStreamHeader: "HybridCodeDecoder"}

# A valid packet ends at most this many bits before where the decoder's 32-bit window stops
# reading (see docs/bitstream.md §3): more trailing bytes mean a corrupt or foreign packet.
_WINDOW_SLACK_BITS = 23


@dataclass
class DecoderStats:
    decoded: int = 0
    keyframes: int = 0
    missing_reference: int = 0  # delta frames whose reference frame was lost (until the next keyframe)
    stale: int = 0              # packets older than (or repeating) one already decoded
    malformed: int = 0          # anything else that is not a valid packet of this stream


class _PacketDecoder:
    """The packet framing every stream kind shares (docs/bitstream.md §4, §7): markers,
    references, numbering, timestamps, counting what fails; the kind's layout reads the payload."""

    def __init__(self, header: StreamHeader | SemanticStreamHeader | HybridStreamHeader,
                 layout: CodeLayout | SemanticLayout | HybridLayout):
        self.header = header
        self.layout = layout
        self._stats = DecoderStats()
        self._keyframe: CodedFrame | None = None
        self._last: CodedFrame | None = None

    @property
    def stats(self) -> DecoderStats:
        return replace(self._stats)

    def decode(self, packet: bytes) -> Frame:
        """One packet -> its decoded frame; raises CodecError (and counts why) when it cannot."""
        try:
            return self._decode(packet)
        except CodecError as exc:
            self._count(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - a decoder bug on hostile input must not escape as anything else
            self._stats.malformed += 1
            raise CodecError(f"undecodable packet ({type(exc).__name__}: {exc})") from exc

    def _count(self, exc: CodecError) -> None:
        if isinstance(exc, MissingReferenceError):
            self._stats.missing_reference += 1
        elif isinstance(exc, StalePacketError):
            self._stats.stale += 1
        else:
            self._stats.malformed += 1

    def _decode(self, packet: bytes) -> Frame:
        if not isinstance(packet, (bytes, bytearray, memoryview)):
            raise CodecError(f"packet must be bytes, got {type(packet).__name__}")
        data = bytes(packet)
        if len(data) < 2:
            raise CodecError(f"packet of {len(data)} bytes is too short")
        marker, key_id = data[0], data[1]
        if marker == KEYFRAME_MARKER:
            sequence, offset = decode_varint(data, 2)
            timestamp, offset = decode_varint(data, offset)
            decoder = ArithmeticDecoder(data[offset:])
            code = self.layout.read(decoder, None)
            if self._last is not None and sequence <= self._last.sequence:
                raise StalePacketError(f"keyframe {sequence} is not newer than frame {self._last.sequence}")
            frame = CodedFrame(key_id, sequence, timestamp, code)
            self._check_end(decoder, len(data) - offset)
            self._keyframe = frame
            self._stats.keyframes += 1
        elif 1 <= marker < min(KEYFRAME_MARKER, self.header.config.keyframe_interval):
            key = self._keyframe
            if key is None or key.keyframe_id != key_id:
                raise MissingReferenceError(f"delta frame of keyframe #{key_id}, which was not received")
            sequence = key.sequence + marker
            if self._last is not None and sequence <= self._last.sequence:
                raise StalePacketError(f"frame {sequence} is not newer than frame {self._last.sequence}")
            reference = key.code
            if self.header.config.reference == "previous":
                if self._last is None or self._last.sequence != sequence - 1:
                    raise MissingReferenceError(f"frame {sequence - 1}, the reference of frame {sequence}, "
                                                "was not received")
                reference = self._last.code
            decoder = ArithmeticDecoder(data[2:])
            timestamp = self.layout.predicted_timestamp(key.timestamp_ms, marker) + \
                self.layout.read_timestamp_residual(decoder)
            if timestamp < 0:
                raise CodecError("negative timestamp (corrupt packet)")
            code = self.layout.read(decoder, reference)
            self._check_end(decoder, len(data) - 2)
            frame = CodedFrame(key_id, sequence, timestamp, code)
        else:
            raise CodecError(f"unknown packet marker 0x{marker:02x}")
        self._last = frame
        self._stats.decoded += 1
        return self._frame(frame, marker == KEYFRAME_MARKER)

    def _frame(self, frame: CodedFrame, keyframe: bool) -> Frame:
        raise NotImplementedError

    @staticmethod
    def _check_end(decoder: ArithmeticDecoder, payload_bytes: int) -> None:
        if 8 * payload_bytes > decoder.position - _WINDOW_SLACK_BITS:
            raise CodecError("packet longer than its contents (trailing bytes)")


class CodeDecoder(_PacketDecoder):
    """Packets of a learned-keypoint stream -> `FrameCode`."""

    def __init__(self, header: StreamHeader):
        require_kind(header, StreamHeader, _DECODERS)
        super().__init__(header, CodeLayout(header))

    def decode(self, packet: bytes) -> FrameCode:
        """One packet -> its FrameCode; raises CodecError (and counts why) when it cannot."""
        return super().decode(packet)

    def _frame(self, frame: CodedFrame, keyframe: bool) -> FrameCode:
        keypoints, jacobians, extra = self.layout.dequantize(frame.code)
        return FrameCode(frame.sequence, frame.timestamp_ms, keyframe, keypoints, jacobians, extra)


class SemanticCodeDecoder(_PacketDecoder):
    """Packets of a semantic-code stream -> `SemanticFrameCode`.

    prior: the receiver's face prior (`sdk.prior.FacePrior`): the stream is refused with a
    PriorMismatchError unless it is the prior the codes are in, and decoded expressions are
    zero-filled to its E coefficients. Without one, expressions have the E the stream sends.
    """

    def __init__(self, header: SemanticStreamHeader, prior: FacePrior | None = None):
        require_kind(header, SemanticStreamHeader, _DECODERS)
        super().__init__(header, SemanticLayout(header))
        self.expression_dims = header.expression_dims
        if prior is not None:
            header.check_prior(prior.sha256, prior.components)
            self.expression_dims = prior.components

    def decode(self, packet: bytes) -> SemanticFrameCode:
        """One packet -> its SemanticFrameCode; raises CodecError (and counts why) when it cannot."""
        return super().decode(packet)

    def _frame(self, frame: CodedFrame, keyframe: bool) -> SemanticFrameCode:
        pose, sent = self.layout.dequantize(frame.code)
        return SemanticFrameCode(frame.sequence, frame.timestamp_ms, keyframe, pose,
                                 _zero_filled(sent, self.expression_dims))


class HybridCodeDecoder(_PacketDecoder):
    """Packets of a hybrid stream -> `HybridFrameCode`; `prior` as in `SemanticCodeDecoder`."""

    def __init__(self, header: HybridStreamHeader, prior: FacePrior | None = None):
        require_kind(header, HybridStreamHeader, _DECODERS)
        super().__init__(header, HybridLayout(header))
        self.expression_dims = header.expression_dims
        if prior is not None:
            header.check_prior(prior.sha256, prior.components)
            self.expression_dims = prior.components

    def decode(self, packet: bytes) -> HybridFrameCode:
        """One packet -> its HybridFrameCode; raises CodecError (and counts why) when it cannot."""
        return super().decode(packet)

    def _frame(self, frame: CodedFrame, keyframe: bool) -> HybridFrameCode:
        pose, sent, keypoints, jacobians = self.layout.dequantize(frame.code)
        return HybridFrameCode(frame.sequence, frame.timestamp_ms, keyframe, pose,
                               _zero_filled(sent, self.expression_dims), keypoints, jacobians)


def _zero_filled(sent: np.ndarray, dims: int) -> np.ndarray:
    """The coefficients a stream sent, zero-filled to the receiver's prior's E (docs/bitstream.md §11.5)."""
    expression = np.zeros(dims)
    expression[:len(sent)] = sent
    return expression
