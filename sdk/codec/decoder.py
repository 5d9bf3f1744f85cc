"""The receiver's side: packets -> FrameCode; every defect is a CodecError, nothing else escapes."""
from __future__ import annotations

from dataclasses import dataclass, replace

from .arithmetic import ArithmeticDecoder
from .encoder import KEYFRAME_MARKER
from .errors import CodecError, MissingReferenceError, StalePacketError
from .frame import FrameCode
from .header import StreamHeader
from .layout import CodedFrame, CodeLayout
from .varint import decode_varint

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


class CodeDecoder:
    def __init__(self, header: StreamHeader):
        self.header = header
        self.layout = CodeLayout(header)
        self._stats = DecoderStats()
        self._keyframe: CodedFrame | None = None
        self._last: CodedFrame | None = None

    @property
    def stats(self) -> DecoderStats:
        return replace(self._stats)

    def decode(self, packet: bytes) -> FrameCode:
        """One packet -> its FrameCode; raises CodecError (and counts why) when it cannot."""
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

    def _decode(self, packet: bytes) -> FrameCode:
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
        keypoints, jacobians, extra = self.layout.dequantize(code)
        return FrameCode(sequence, timestamp, marker == KEYFRAME_MARKER, keypoints, jacobians, extra)

    @staticmethod
    def _check_end(decoder: ArithmeticDecoder, payload_bytes: int) -> None:
        if 8 * payload_bytes > decoder.position - _WINDOW_SLACK_BITS:
            raise CodecError("packet longer than its contents (trailing bytes)")
