"""The one error the codec raises: every malformed, unknown or out-of-context input ends here."""
from __future__ import annotations

from ..errors import SdkError


class CodecError(SdkError):
    """A header or packet that cannot be decoded (corrupt, truncated, unknown version, missing reference)."""


class MissingReferenceError(CodecError):
    """A delta frame whose reference (its keyframe, or the previous frame) was not decoded:
    a packet was lost; decoding resumes at the next keyframe."""


class StalePacketError(CodecError):
    """A packet that is not newer than the last decoded frame (a duplicate or a late arrival)."""


class PriorMismatchError(CodecError):
    """A semantic-code stream whose face prior is not the receiver's (another file, or fewer
    expression coefficients than the stream sends): its codes would drive the wrong face geometry."""
