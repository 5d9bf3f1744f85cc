"""The stream header: sent once (reliably) before any frame packet; both sides build codecs from it.

Byte layout (little-endian; docs/bitstream.md §2 is the normative text):

    0   4  magic b"THKC"
    4   1  version (1)
    5   1  flags: bit0 keypoints (always 1), bit1 Jacobians, bit2 extra code dims,
              bit3 delta frames predicted from the previous frame (else the keyframe); others 0
    6   1  K, number of keypoints (1..255)
    7   1  D, number of extra code dims (0..255; non-zero iff flag bit2)
    8   2  resolution of the model in pixels (u16)
    10  4  frame rate in 1/1000 Hz (u32, > 0)
    14  2  keypoint step, 16  2 Jacobian step, 18  2 extra step (u16, units of 2^-16, > 0)
    20  1  keyframe interval (1..127)
    21  1  encoder hysteresis in 1/256 of a step (informative: the largest error is 0.5 + this)
    22  1  L, length of the model id
    23  L  model id, UTF-8
    23+L 8 first 8 bytes of the model weights' sha256
    31+L 4 CRC-32 (zlib/IEEE 802.3) of bytes 0 .. 30+L (u32)
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import ClassVar

from .config import STEP_UNIT, CodecConfig
from .errors import CodecError

FLAG_KEYPOINTS = 0x01
FLAG_JACOBIANS = 0x02
FLAG_EXTRA = 0x04
FLAG_PREVIOUS = 0x08  # delta frames are predicted from the previous frame (else from the keyframe)
SHA_PREFIX_BYTES = 8

_FIXED = struct.Struct("<4sBBBBHIHHHBBB")  # bytes 0..22, up to the model id


@dataclass(frozen=True)
class StreamHeader:
    """What the receiver must know before the first frame.

    model_sha256: hex digest of the model weights (a prefix of at least 16 hex digits is enough;
        the header keeps the first 8 bytes) so the receiver can refuse codes of another model.
    fps: nominal frame rate; delta frames predict their timestamp from it.
    extra_dims: extra code dims per frame (reserved for audio codes; 0 = none).
    """

    MAGIC: ClassVar[bytes] = b"THKC"
    VERSION: ClassVar[int] = 1

    model_id: str
    model_sha256: str
    num_kp: int
    resolution: int
    fps: float
    config: CodecConfig = field(default_factory=CodecConfig)
    extra_dims: int = 0
    version: int = VERSION

    def __post_init__(self) -> None:
        try:
            digest = bytes.fromhex(self.model_sha256)
        except ValueError:
            raise CodecError(f"StreamHeader.model_sha256={self.model_sha256!r}: not hex") from None
        if len(digest) < SHA_PREFIX_BYTES:
            raise CodecError(f"StreamHeader.model_sha256={self.model_sha256!r}: need at least "
                             f"{2 * SHA_PREFIX_BYTES} hex digits")
        object.__setattr__(self, "model_sha256", digest[:SHA_PREFIX_BYTES].hex())
        if len(self.model_id.encode("utf-8")) > 255:
            raise CodecError(f"StreamHeader.model_id={self.model_id!r}: longer than 255 bytes in UTF-8")
        if not 1 <= self.num_kp <= 255:
            raise CodecError(f"StreamHeader.num_kp={self.num_kp!r}: must be 1..255")
        if not 0 <= self.extra_dims <= 255:
            raise CodecError(f"StreamHeader.extra_dims={self.extra_dims!r}: must be 0..255")
        if not 1 <= self.resolution <= 0xFFFF:
            raise CodecError(f"StreamHeader.resolution={self.resolution!r}: must be 1..65535")
        if not 0 < round(self.fps * 1000) <= 0xFFFFFFFF:
            raise CodecError(f"StreamHeader.fps={self.fps!r}: must be positive")
        if self.version != self.VERSION:
            raise CodecError(f"StreamHeader.version={self.version!r}: this decoder implements version "
                             f"{self.VERSION}")

    @property
    def fps_millihertz(self) -> int:
        return round(self.fps * 1000)

    @property
    def flags(self) -> int:
        return (FLAG_KEYPOINTS | (FLAG_JACOBIANS if self.config.jacobians else 0)
                | (FLAG_EXTRA if self.extra_dims else 0)
                | (FLAG_PREVIOUS if self.config.reference == "previous" else 0))

    def to_bytes(self) -> bytes:
        model_id = self.model_id.encode("utf-8")
        steps = self.config.step_units()
        body = _FIXED.pack(self.MAGIC, self.version, self.flags, self.num_kp, self.extra_dims,
                           self.resolution, self.fps_millihertz, steps["keypoint_step"],
                           steps["jacobian_step"], steps["extra_step"], self.config.keyframe_interval,
                           round(self.config.hysteresis * 256), len(model_id))
        body += model_id + bytes.fromhex(self.model_sha256)
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamHeader:
        """Parse and validate a header; any defect raises CodecError naming it."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"stream header must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < _FIXED.size:
            raise CodecError(f"stream header: {len(data)} bytes, shorter than the fixed part ({_FIXED.size})")
        (magic, version, flags, num_kp, extra_dims, resolution, fps_mhz, kp_step, jac_step, extra_step,
         interval, hysteresis, id_length) = _FIXED.unpack_from(data)
        if magic != cls.MAGIC:
            raise CodecError(f"stream header: bad magic {magic!r} (expected {cls.MAGIC!r})")
        if version != cls.VERSION:
            raise CodecError(f"stream header: version {version} is not supported (this decoder: {cls.VERSION})")
        expected = _FIXED.size + id_length + SHA_PREFIX_BYTES + 4
        if len(data) != expected:
            raise CodecError(f"stream header: {len(data)} bytes, expected {expected} for a {id_length}-byte model id")
        (crc,) = struct.unpack_from("<I", data, expected - 4)
        if crc != zlib.crc32(data[:expected - 4]):
            raise CodecError("stream header: CRC-32 mismatch (corrupt header)")
        if flags & ~(FLAG_KEYPOINTS | FLAG_JACOBIANS | FLAG_EXTRA | FLAG_PREVIOUS) or not flags & FLAG_KEYPOINTS:
            raise CodecError(f"stream header: unknown or missing flags 0x{flags:02x}")
        if bool(flags & FLAG_EXTRA) != bool(extra_dims):
            raise CodecError(f"stream header: extra-dims flag disagrees with {extra_dims} extra dims")
        if fps_mhz == 0:
            raise CodecError("stream header: frame rate 0")
        try:
            model_id = data[_FIXED.size:_FIXED.size + id_length].decode("utf-8")
        except UnicodeDecodeError:
            raise CodecError("stream header: model id is not UTF-8") from None
        sha = data[_FIXED.size + id_length:expected - 4].hex()
        try:
            config = CodecConfig(keypoint_step=kp_step * STEP_UNIT, jacobians=bool(flags & FLAG_JACOBIANS),
                                 jacobian_step=jac_step * STEP_UNIT, extra_step=extra_step * STEP_UNIT,
                                 keyframe_interval=interval,
                                 reference="previous" if flags & FLAG_PREVIOUS else "keyframe",
                                 hysteresis=hysteresis / 256)
            return cls(model_id, sha, num_kp, resolution, fps_mhz / 1000, config, extra_dims)
        except CodecError as exc:
            raise CodecError(f"stream header: {exc}") from None
