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

`SemanticStreamHeader` is the header of the semantic-code kind (version 2, kind byte 1: head pose
+ expression coefficients of a face prior, docs/bitstream.md §11), `HybridStreamHeader` that of the
hybrid kind (version 2, kind byte 2: the semantic code plus K learned keypoints, §13); every kind
ends alike (model id, its hash prefix, CRC-32), written and checked by the same code here.
`read_stream_header` parses any of them and returns the kind it holds.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from .config import STEP_UNIT, CodecConfig, HybridCodecConfig, SemanticCodecConfig
from .errors import CodecError, PriorMismatchError

if TYPE_CHECKING:
    from ..prior.prior_file import FacePrior

FLAG_KEYPOINTS = 0x01
FLAG_JACOBIANS = 0x02
FLAG_EXTRA = 0x04
FLAG_PREVIOUS = 0x08  # delta frames are predicted from the previous frame (else from the keyframe)
FLAG_SEMANTIC_PREVIOUS = 0x01  # version 2: delta frames are predicted from the previous frame
FLAG_HYBRID_JACOBIANS = 0x02  # version 2 kind 2: the learned keypoints come with Jacobians
SHA_PREFIX_BYTES = 8

# The version-2 header's kind byte (keypoint streams keep version 1).
KIND_SEMANTIC = 1  # pose + expression
KIND_HYBRID = 2    # pose + expression, then K learned keypoints [+ Jacobians]
MAGIC = b"THKC"
_FIXED = struct.Struct("<4sBBBBHIHHHBB")  # version 1, bytes 0..21 (then the model id's length)
_SEMANTIC_FIXED = struct.Struct("<4sBBBBHI7IBB8s")  # version 2 kind 1, bytes 0..51
_HYBRID_FIXED = struct.Struct("<4sBBBBHI7IBHHBB8s")  # version 2 kind 2, bytes 0..56
_VERSION = struct.Struct("<4sB")


def _check_identity(owner: str, model_id: str, model_sha256: str, resolution: int, fps: float) -> str:
    """Validate the fields both kinds share; returns the model hash's 8-byte prefix (hex)."""
    try:
        digest = bytes.fromhex(model_sha256)
    except ValueError:
        raise CodecError(f"{owner}.model_sha256={model_sha256!r}: not hex") from None
    if len(digest) < SHA_PREFIX_BYTES:
        raise CodecError(f"{owner}.model_sha256={model_sha256!r}: need at least {2 * SHA_PREFIX_BYTES} hex digits")
    if len(model_id.encode("utf-8")) > 255:
        raise CodecError(f"{owner}.model_id={model_id!r}: longer than 255 bytes in UTF-8")
    if not 1 <= resolution <= 0xFFFF:
        raise CodecError(f"{owner}.resolution={resolution!r}: must be 1..65535")
    if not 0 < round(fps * 1000) <= 0xFFFFFFFF:
        raise CodecError(f"{owner}.fps={fps!r}: must be positive")
    return digest[:SHA_PREFIX_BYTES].hex()


def _seal(fixed: bytes, model_id: str, model_sha256: str) -> bytes:
    """A header's fixed part + model id (length byte, UTF-8) + hash prefix + CRC-32 of all of it."""
    name = model_id.encode("utf-8")
    body = fixed + bytes([len(name)]) + name + bytes.fromhex(model_sha256)
    return body + struct.pack("<I", zlib.crc32(body))


def _unseal(data: bytes, fixed_size: int) -> tuple[str, str]:
    """Check the length and CRC of a header whose fixed part is `fixed_size` bytes (its model id's
    length byte follows); returns (model id, model hash prefix hex)."""
    if len(data) < fixed_size + 1:
        raise CodecError(f"stream header: {len(data)} bytes, shorter than the fixed part ({fixed_size + 1})")
    id_length = data[fixed_size]
    expected = fixed_size + 1 + id_length + SHA_PREFIX_BYTES + 4
    if len(data) != expected:
        raise CodecError(f"stream header: {len(data)} bytes, expected {expected} for a {id_length}-byte model id")
    (crc,) = struct.unpack_from("<I", data, expected - 4)
    if crc != zlib.crc32(data[:expected - 4]):
        raise CodecError("stream header: CRC-32 mismatch (corrupt header)")
    try:
        model_id = data[fixed_size + 1:fixed_size + 1 + id_length].decode("utf-8")
    except UnicodeDecodeError:
        raise CodecError("stream header: model id is not UTF-8") from None
    return model_id, data[expected - 4 - SHA_PREFIX_BYTES:expected - 4].hex()


def _header_bytes(data: bytes) -> tuple[bytes, int]:
    """(bytes, version) of something claiming to be a stream header; checks type and magic."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"stream header must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _VERSION.size:
        raise CodecError(f"stream header: {len(data)} bytes, shorter than its magic and version ({_VERSION.size})")
    magic, version = _VERSION.unpack_from(data)
    if magic != MAGIC:
        raise CodecError(f"stream header: bad magic {magic!r} (expected {MAGIC!r})")
    if version not in (StreamHeader.VERSION, SemanticStreamHeader.VERSION):
        raise CodecError(f"stream header: version {version} is not supported (this decoder reads versions "
                         f"{StreamHeader.VERSION} and {SemanticStreamHeader.VERSION})")
    if version == SemanticStreamHeader.VERSION and len(data) > 5 and data[5] not in (KIND_SEMANTIC, KIND_HYBRID):
        raise CodecError(f"stream header: version 2 stream of unknown kind {data[5]}")
    return data, version


_KIND_NAMES = {KIND_SEMANTIC: "semantic-code stream", KIND_HYBRID: "hybrid stream"}


def _version_2_of_kind(data: bytes, kind: int) -> bytes:
    """The bytes of a version-2 header of `kind` (1 semantic, 2 hybrid); another version or kind
    is a CodecError saying which it is and what reads it."""
    data, version = _header_bytes(data)
    if version != 2 or (len(data) > 5 and data[5] != kind):
        raise CodecError(f"stream header: this is a {_kind_name(data)}, not a {_KIND_NAMES[kind]}; read it "
                         "with read_stream_header")
    return data


def _kind_name(data: bytes) -> str:
    """What a header (its magic and version already checked) says it is, for messages."""
    if data[4] == 1:
        return "learned-keypoint stream (version 1)"
    if len(data) > 5 and data[5] == KIND_HYBRID:
        return "hybrid stream (version 2 kind 2: head pose + expression + learned keypoints)"
    return "semantic-code stream (version 2 kind 1: head pose + expression)"


def _check_prior_fields(owner: str, prior_sha256: str, expression_dims: int) -> str:
    """Validate the face-prior fields of the version-2 kinds; returns the prior hash's 8-byte prefix (hex)."""
    try:
        prior = bytes.fromhex(prior_sha256)
    except (TypeError, ValueError):
        raise CodecError(f"{owner}.prior_sha256={prior_sha256!r}: not hex") from None
    if len(prior) < SHA_PREFIX_BYTES:
        raise CodecError(f"{owner}.prior_sha256={prior_sha256!r}: need at least {2 * SHA_PREFIX_BYTES} hex digits")
    if not 0 <= expression_dims <= 255:
        raise CodecError(f"{owner}.expression_dims={expression_dims!r}: must be 0..255")
    return prior[:SHA_PREFIX_BYTES].hex()


def _check_prior(header: SemanticStreamHeader | HybridStreamHeader, prior_sha256: str | None, components: int) -> None:
    """PriorMismatchError unless the receiver's prior (its sha256, its E) is the one the codes are
    in and has at least the coefficients sent."""
    if prior_sha256 is None or prior_sha256[:2 * SHA_PREFIX_BYTES].lower() != header.prior_sha256:
        raise PriorMismatchError(
            f"the stream's codes are in face prior {header.prior_sha256} but this receiver loaded face prior "
            f"{(prior_sha256 or 'without a file')[:2 * SHA_PREFIX_BYTES]}; load the same prior file on both ends")
    if header.expression_dims > components:
        raise PriorMismatchError(f"the stream sends {header.expression_dims} expression coefficients, this "
                                 f"receiver's face prior has {components}")


def _dims_for(prior: FacePrior, wanted: int | None, expression_dims: int | None) -> int:
    """E of a stream of `prior`'s codes (see `SemanticStreamHeader.for_prior`); checks the prior has a file."""
    if expression_dims is None:
        dims = prior.components if wanted is None else min(wanted, prior.components)
    else:
        dims = expression_dims
    if prior.sha256 is None:
        raise CodecError("a stream needs a face prior loaded from (or saved to) a file: its sha256 "
                         "identifies it to the receiver")
    if dims > prior.components:
        raise CodecError(f"{dims} expression coefficients asked, the face prior has {prior.components}")
    return dims


def require_kind(header: object, expected: type, codecs: dict[type, str]) -> None:
    """An encoder or decoder of one kind given a header of another (or not a header) names the
    right one: `codecs` maps each header class to its codec's name."""
    if not isinstance(header, expected):
        instead = codecs.get(type(header))
        raise CodecError(f"this codec needs a {expected.__name__}, got {type(header).__name__}"
                         + (f"; use {instead}" if instead else ""))


def read_stream_header(data: bytes) -> StreamHeader | SemanticStreamHeader | HybridStreamHeader:
    """Parse a header of any kind: a `StreamHeader` (learned keypoints, version 1), a
    `SemanticStreamHeader` (pose + expression, version 2 kind 1) or a `HybridStreamHeader` (both,
    version 2 kind 2); any defect raises CodecError."""
    data, version = _header_bytes(data)
    if version == StreamHeader.VERSION:
        return StreamHeader.from_bytes(data)
    if len(data) > 5 and data[5] == KIND_HYBRID:
        return HybridStreamHeader.from_bytes(data)
    return SemanticStreamHeader.from_bytes(data)


@dataclass(frozen=True)
class StreamHeader:
    """What the receiver must know before the first frame.

    model_sha256: hex digest of the model weights (a prefix of at least 16 hex digits is enough;
        the header keeps the first 8 bytes) so the receiver can refuse codes of another model.
    fps: nominal frame rate; delta frames predict their timestamp from it.
    extra_dims: extra code dims per frame (reserved for audio codes; 0 = none).
    """

    MAGIC: ClassVar[bytes] = MAGIC
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
        object.__setattr__(self, "model_sha256", _check_identity("StreamHeader", self.model_id, self.model_sha256,
                                                                 self.resolution, self.fps))
        if not 1 <= self.num_kp <= 255:
            raise CodecError(f"StreamHeader.num_kp={self.num_kp!r}: must be 1..255")
        if not 0 <= self.extra_dims <= 255:
            raise CodecError(f"StreamHeader.extra_dims={self.extra_dims!r}: must be 0..255")
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
        steps = self.config.step_units()
        return _seal(_FIXED.pack(self.MAGIC, self.version, self.flags, self.num_kp, self.extra_dims,
                                 self.resolution, self.fps_millihertz, steps["keypoint_step"],
                                 steps["jacobian_step"], steps["extra_step"], self.config.keyframe_interval,
                                 round(self.config.hysteresis * 256)), self.model_id, self.model_sha256)

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamHeader:
        """Parse and validate a header; any defect raises CodecError naming it."""
        data, version = _header_bytes(data)
        if version != cls.VERSION:
            raise CodecError(f"stream header: this is a {_kind_name(data)}, not a learned-keypoint stream; read "
                             "it with read_stream_header")
        model_id, sha = _unseal(data, _FIXED.size)
        (_, _, flags, num_kp, extra_dims, resolution, fps_mhz, kp_step, jac_step, extra_step,
         interval, hysteresis) = _FIXED.unpack_from(data)
        if flags & ~(FLAG_KEYPOINTS | FLAG_JACOBIANS | FLAG_EXTRA | FLAG_PREVIOUS) or not flags & FLAG_KEYPOINTS:
            raise CodecError(f"stream header: unknown or missing flags 0x{flags:02x}")
        if bool(flags & FLAG_EXTRA) != bool(extra_dims):
            raise CodecError(f"stream header: extra-dims flag disagrees with {extra_dims} extra dims")
        if fps_mhz == 0:
            raise CodecError("stream header: frame rate 0")
        try:
            config = CodecConfig(keypoint_step=kp_step * STEP_UNIT, jacobians=bool(flags & FLAG_JACOBIANS),
                                 jacobian_step=jac_step * STEP_UNIT, extra_step=extra_step * STEP_UNIT,
                                 keyframe_interval=interval,
                                 reference="previous" if flags & FLAG_PREVIOUS else "keyframe",
                                 hysteresis=hysteresis / 256)
            return cls(model_id, sha, num_kp, resolution, fps_mhz / 1000, config, extra_dims)
        except CodecError as exc:
            raise CodecError(f"stream header: {exc}") from None


@dataclass(frozen=True)
class SemanticStreamHeader:
    """The header of a semantic-code stream: what the receiver must know before the first frame.

    model_id / model_sha256: the generator the codes are meant for (as in `StreamHeader`).
    prior_sha256: sha256 of the face prior file (`FacePrior.sha256`) whose pose frame and
        expression basis the codes are in; the header keeps the first 8 bytes, and a receiver
        holding another prior refuses the stream (`check_prior`).
    expression_dims: E, the expression coefficients sent per frame (the first E of the basis;
        0..255, 0 = pose only); the receiver zero-fills the rest.
    resolution: the generator's resolution in pixels (as in `StreamHeader`); the code itself is
        independent of it.
    """

    VERSION: ClassVar[int] = 2
    KIND: ClassVar[int] = KIND_SEMANTIC

    model_id: str
    model_sha256: str
    prior_sha256: str
    expression_dims: int
    resolution: int
    fps: float
    config: SemanticCodecConfig = field(default_factory=SemanticCodecConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_sha256", _check_identity("SemanticStreamHeader", self.model_id,
                                                                 self.model_sha256, self.resolution, self.fps))
        object.__setattr__(self, "prior_sha256", _check_prior_fields("SemanticStreamHeader", self.prior_sha256,
                                                                     self.expression_dims))
        # The config records the E this stream sends (a preset's E is only the most it asks for).
        object.__setattr__(self, "config", replace(self.config, expression_dims=self.expression_dims))

    @classmethod
    def for_prior(cls, prior: FacePrior, model_id: str, model_sha256: str, resolution: int, fps: float,
                  config: SemanticCodecConfig = SemanticCodecConfig(),
                  expression_dims: int | None = None) -> SemanticStreamHeader:
        """The header of a stream of `prior`'s codes, sending its first `expression_dims`
        coefficients (None: the config's `expression_dims`, at most the prior's E; all of them
        when that is None too)."""
        dims = _dims_for(prior, config.expression_dims, expression_dims)
        return cls(model_id, model_sha256, prior.sha256, dims, resolution, fps, config)

    @property
    def fps_millihertz(self) -> int:
        return round(self.fps * 1000)

    @property
    def flags(self) -> int:
        return FLAG_SEMANTIC_PREVIOUS if self.config.reference == "previous" else 0

    def check_prior(self, prior_sha256: str | None, components: int) -> None:
        """Raise PriorMismatchError unless the receiver's prior (its sha256, its E) is the one
        the codes are in and has at least the coefficients sent."""
        _check_prior(self, prior_sha256, components)

    def to_bytes(self) -> bytes:
        config = self.config
        return _seal(_SEMANTIC_FIXED.pack(MAGIC, self.VERSION, self.KIND, self.flags, self.expression_dims,
                                          self.resolution, self.fps_millihertz, *config.step_units(),
                                          config.keyframe_interval, round(config.hysteresis * 256),
                                          bytes.fromhex(self.prior_sha256)), self.model_id, self.model_sha256)

    @classmethod
    def from_bytes(cls, data: bytes) -> SemanticStreamHeader:
        """Parse and validate a version-2 kind-1 header; any defect raises CodecError naming it."""
        data = _version_2_of_kind(data, cls.KIND)
        model_id, sha = _unseal(data, _SEMANTIC_FIXED.size)
        (_, _, _, flags, dims, resolution, fps_mhz, *steps, interval, hysteresis, prior) = \
            _SEMANTIC_FIXED.unpack_from(data)
        if flags & ~FLAG_SEMANTIC_PREVIOUS:
            raise CodecError(f"stream header: unknown flags 0x{flags:02x}")
        if fps_mhz == 0:
            raise CodecError("stream header: frame rate 0")
        try:
            config = SemanticCodecConfig(tuple(step * STEP_UNIT for step in steps[:6]), steps[6] * STEP_UNIT,
                                         interval, "previous" if flags & FLAG_SEMANTIC_PREVIOUS else "keyframe",
                                         hysteresis / 256)
            return cls(model_id, sha, prior.hex(), dims, resolution, fps_mhz / 1000, config)
        except CodecError as exc:
            raise CodecError(f"stream header: {exc}") from None


@dataclass(frozen=True)
class HybridStreamHeader:
    """The header of a hybrid stream (docs/bitstream.md §13): the semantic code of a face prior, as
    in `SemanticStreamHeader`, plus the `num_kp` learned keypoints of a hybrid model (as in
    `StreamHeader`, with Jacobians when `config.jacobians`).

    Fields as in `SemanticStreamHeader`; num_kp: K learned keypoints per frame (1..255); config:
    a `HybridCodecConfig` (the semantic steps and prediction, the keypoints' steps).
    """

    VERSION: ClassVar[int] = 2
    KIND: ClassVar[int] = KIND_HYBRID

    model_id: str
    model_sha256: str
    prior_sha256: str
    expression_dims: int
    num_kp: int
    resolution: int
    fps: float
    config: HybridCodecConfig = field(default_factory=HybridCodecConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_sha256", _check_identity("HybridStreamHeader", self.model_id,
                                                                 self.model_sha256, self.resolution, self.fps))
        object.__setattr__(self, "prior_sha256", _check_prior_fields("HybridStreamHeader", self.prior_sha256,
                                                                     self.expression_dims))
        if not 1 <= self.num_kp <= 255:
            raise CodecError(f"HybridStreamHeader.num_kp={self.num_kp!r}: must be 1..255")
        if not isinstance(self.config, HybridCodecConfig):
            raise CodecError(f"HybridStreamHeader.config must be a HybridCodecConfig, got {type(self.config).__name__}")
        # As in SemanticStreamHeader: the config records the E this stream sends.
        semantic = replace(self.config.semantic, expression_dims=self.expression_dims)
        object.__setattr__(self, "config", replace(self.config, semantic=semantic))

    @classmethod
    def for_prior(cls, prior: FacePrior, model_id: str, model_sha256: str, num_kp: int, resolution: int,
                  fps: float, config: HybridCodecConfig = HybridCodecConfig(),
                  expression_dims: int | None = None) -> HybridStreamHeader:
        """The header of a stream of `prior`'s codes and `num_kp` learned keypoints (E as in
        `SemanticStreamHeader.for_prior`)."""
        dims = _dims_for(prior, config.expression_dims, expression_dims)
        return cls(model_id, model_sha256, prior.sha256, dims, num_kp, resolution, fps, config)

    @property
    def fps_millihertz(self) -> int:
        return round(self.fps * 1000)

    @property
    def flags(self) -> int:
        return ((FLAG_SEMANTIC_PREVIOUS if self.config.reference == "previous" else 0)
                | (FLAG_HYBRID_JACOBIANS if self.config.jacobians else 0))

    def check_prior(self, prior_sha256: str | None, components: int) -> None:
        """As `SemanticStreamHeader.check_prior`."""
        _check_prior(self, prior_sha256, components)

    def semantic_header(self) -> SemanticStreamHeader:
        """The pose + expression part, as a semantic-code stream's header (what its layout reads)."""
        return SemanticStreamHeader(self.model_id, self.model_sha256, self.prior_sha256, self.expression_dims,
                                    self.resolution, self.fps, self.config.semantic)

    def keypoint_header(self) -> StreamHeader:
        """The learned keypoints' part, as a learned-keypoint stream's header (what its layout reads)."""
        return StreamHeader(self.model_id, self.model_sha256, self.num_kp, self.resolution, self.fps,
                            self.config.keypoints())

    def to_bytes(self) -> bytes:
        config = self.config
        steps = config.keypoints().step_units()
        return _seal(_HYBRID_FIXED.pack(MAGIC, self.VERSION, self.KIND, self.flags, self.expression_dims,
                                        self.resolution, self.fps_millihertz, *config.semantic.step_units(),
                                        self.num_kp, steps["keypoint_step"], steps["jacobian_step"],
                                        config.keyframe_interval, round(config.hysteresis * 256),
                                        bytes.fromhex(self.prior_sha256)), self.model_id, self.model_sha256)

    @classmethod
    def from_bytes(cls, data: bytes) -> HybridStreamHeader:
        """Parse and validate a version-2 kind-2 header; any defect raises CodecError naming it."""
        data = _version_2_of_kind(data, cls.KIND)
        model_id, sha = _unseal(data, _HYBRID_FIXED.size)
        (_, _, _, flags, dims, resolution, fps_mhz, *steps, num_kp, kp_step, jac_step, interval, hysteresis,
         prior) = _HYBRID_FIXED.unpack_from(data)
        if flags & ~(FLAG_SEMANTIC_PREVIOUS | FLAG_HYBRID_JACOBIANS):
            raise CodecError(f"stream header: unknown flags 0x{flags:02x}")
        if fps_mhz == 0:
            raise CodecError("stream header: frame rate 0")
        try:
            semantic = SemanticCodecConfig(tuple(step * STEP_UNIT for step in steps[:6]), steps[6] * STEP_UNIT,
                                           interval, "previous" if flags & FLAG_SEMANTIC_PREVIOUS else "keyframe",
                                           hysteresis / 256)
            config = HybridCodecConfig(semantic, kp_step * STEP_UNIT, bool(flags & FLAG_HYBRID_JACOBIANS),
                                       jac_step * STEP_UNIT)
            return cls(model_id, sha, prior.hex(), dims, num_kp, resolution, fps_mhz / 1000, config)
        except CodecError as exc:
            raise CodecError(f"stream header: {exc}") from None
