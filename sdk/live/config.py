"""The typed configuration of a live session (`live_camera`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..codec import PRESETS, SEMANTIC_PRESETS, CodecConfig, SemanticCodecConfig
from ..pipeline import MotionConfig
from ..prior import Edits
from ..runtime import ThreadBudget
from ..transport import Impairment, JitterConfig
from .capture import CaptureConfig
from .outputs import OutputConfig

Mode = Literal["inproc", "udp-loopback", "udp-sender", "udp-receiver"]


@dataclass(frozen=True)
class TransportConfig:
    """How codes travel from the sender half to the receiver half.

    kind: "inproc" (both halves in this process, in-memory link) or "udp".
    listen: (host, port) to receive on: this process runs only the receiver half (udp).
    connect: (host, port) of a receiver: this process runs only the sender half (udp).
        With udp and neither, both halves run here over UDP on 127.0.0.1 ("udp-loopback").
    key_file: the pre-shared session key (64 hex digits) both processes of a udp session read;
        a listening receiver creates it when missing. In-process sessions make their own key.
    impairment: simulated loss / delay / duplication on the in-process link (tests, demos).
    jitter: the receiver's reordering tolerance and buffer size.
    session_timeout_s: how long one end waits for the other to start the session (and a
        receiver half for the first code after the start: a driver may show no face at first).
    idle_timeout_s: a receiver half ends the session when no packet came for this long (the
        sender sends one per frame, faceless frames included, so silence means it is gone).
    """

    kind: Literal["inproc", "udp"] = "inproc"
    listen: tuple[str, int] | None = None
    connect: tuple[str, int] | None = None
    key_file: Path | None = None
    impairment: Impairment = field(default_factory=Impairment)
    jitter: JitterConfig = field(default_factory=JitterConfig)
    session_timeout_s: float = 30.0
    idle_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in ("inproc", "udp"):
            raise ValueError(f"TransportConfig.kind must be 'inproc' or 'udp', got {self.kind!r}")
        if self.listen is not None and self.connect is not None:
            raise ValueError("TransportConfig: listen (receiver half) and connect (sender half) exclude each other")
        if self.kind == "inproc" and (self.listen is not None or self.connect is not None):
            raise ValueError("TransportConfig: listen / connect need kind='udp'")
        if self.kind == "udp" and self.impairment != Impairment():
            raise ValueError("TransportConfig.impairment simulates a network in-process; with udp use tc netem")
        if not (self.session_timeout_s > 0 and self.idle_timeout_s > 0):
            raise ValueError(f"TransportConfig: timeouts must be > 0, got {self.session_timeout_s}, "
                             f"{self.idle_timeout_s}")

    @property
    def mode(self) -> Mode:
        if self.kind == "inproc":
            return "inproc"
        if self.connect is not None:
            return "udp-sender"
        return "udp-receiver" if self.listen is not None else "udp-loopback"


@dataclass(frozen=True)
class LiveConfig:
    """Everything `live_camera` needs besides an optional model object and callback.

    capture: the camera and its pacing. portrait: an image or a folder of portraits (the
        window's n/p keys switch); None: the bundled portrait, except on a receiver half, which
        then animates the portrait the sender sent.
    model: "default", a shipped model name or a model folder (`sdk.load_model`).
    backend: a `sdk.runtime.BACKEND_KINDS` kind ("auto" times the available ones and takes the
        fastest); graphs: an export folder for the ONNX backends (see `sdk.runtime.create_backend`).
    device: "cpu" or "cuda".
    threads: intra-op threads per stage (`ThreadBudget`); an int gives every stage that many;
        None: `ThreadBudget.auto()` for the cores this process may use.
    output_size: the side S of rendered frames, a multiple of the model's internal resolution
        (None: the model's default output size); portraits are cropped at S², and upscaled,
        with a warning, when their face has fewer pixels.
    paste_back: the receiver pastes each frame into the whole portrait over a feathered seam
        (scaled down to at most 1080 rows); needs the portrait itself, not the sender's crop.
    motion: relative motion against the anchor (the driver's first code, or re-anchored).
    codec: the code stream's setting: a preset name, looked up among the presets of the model's
        stream kind (`sdk.codec.PRESETS` for learned-keypoint models, `SEMANTIC_PRESETS` for
        face-prior models, whose sender sends the semantic code of the tracked mesh), or a
        `CodecConfig` / `SemanticCodecConfig` of that kind.
    edits: face-prior models: pose and expression edits applied where frames are rendered
        (`sdk.prior.Edits`, e.g. `Edits.parse("yaw=15,smile=0.5")`; the window's keys change
        them); they do not change the stream. Edits with a learned-keypoint model are an error.
    queue_capacity: frames each queue between two stages holds before it drops the oldest; 1
        (the default) keeps latency lowest: a stage that frees up takes the newest frame.
    """

    capture: CaptureConfig = field(default_factory=CaptureConfig)
    portrait: Path | None = None
    model: str | Path = "default"
    backend: str = "auto"
    graphs: Path | None = None
    device: str = "cpu"
    threads: ThreadBudget | int | None = None  # an int becomes ThreadBudget.uniform(int)
    output_size: int | None = None
    paste_back: bool = False
    motion: MotionConfig = field(default_factory=MotionConfig)
    codec: str | CodecConfig | SemanticCodecConfig = "default"
    edits: Edits = field(default_factory=Edits)
    transport: TransportConfig = field(default_factory=TransportConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    queue_capacity: int = 1

    def __post_init__(self) -> None:
        if self.queue_capacity < 1:
            raise ValueError(f"LiveConfig.queue_capacity must be >= 1, got {self.queue_capacity}")
        if isinstance(self.threads, int):
            if self.threads < 1:
                raise ValueError(f"LiveConfig.threads must be >= 1, got {self.threads}")
            object.__setattr__(self, "threads", ThreadBudget.uniform(self.threads))
        if self.output_size is not None and self.output_size < 1:
            raise ValueError(f"LiveConfig.output_size must be >= 1, got {self.output_size}")
        if self.paste_back and self.transport.mode == "udp-sender":
            raise ValueError("paste-back happens where frames are rendered: a sender half (connect) renders none")
        if isinstance(self.codec, str) and self.codec not in PRESETS and self.codec not in SEMANTIC_PRESETS:
            raise ValueError(f"unknown codec preset {self.codec!r} (learned-keypoint models: {', '.join(PRESETS)}; "
                             f"face-prior models: {', '.join(SEMANTIC_PRESETS)})")
        if not self.edits.is_identity and self.transport.mode == "udp-sender":
            raise ValueError("edits are applied where frames are rendered: a sender half (connect) renders none; "
                             "pass --edit to the receiver")
        if self.paste_back and self.transport.mode == "udp-receiver" and self.portrait is None:
            raise ValueError("paste-back needs the whole portrait, and a sender sends only its face crop: "
                             "give this receiver its own portrait (--portrait, LiveConfig.portrait)")
