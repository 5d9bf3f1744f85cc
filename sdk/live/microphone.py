"""`live_microphone()`: microphone (or a paced audio file) -> audio encoder -> semantic codes -> the camera's
codec and transport -> generator -> outputs.

    capture: read audio blocks ─► [blocks] ─► sender: LiveAudioCoder, pack, send ─► transport ─┐
    ┌───────────────────────────────────────────────────────────────────────────────────────────┘
    └► network: receive, decode ─► [codes] ─► generator ─► [rendered] ─► outputs (calling thread)

The receiver half is the camera session's (`sdk.live.session`): the stream is the semantic kind
(`SemanticStreamHeader`), so a receiver cannot tell (and does not care) whether a camera or a
microphone drove it; `python -m sdk live --listen` receives either. The renderer must be a
face-prior model (the shipped `prior`).

Codes: one per 40 ms of audio (25 fps), each the avatar's rest pose moved by the audio's pose
delta and carrying its expression deltas (`sdk.audio.codes.speak_codes`). The first code is the
avatar at rest (`neutral_code`): the receiver takes the first code as the anchor of relative
motion, as it takes a camera's first face, so every later code moves it by exactly its deltas.
Expression: the live net, 42.5 ms lookahead (`LiveAudioCoder`); head motion: causal, each clip
sampled from the previous clip's audio (seed / epsilon / motion scale as `speak`).

Latency: a frame's audio is captured when the sample at the centre of its 40 ms arrives (the
time its block was read, less the samples after it); `audio_to_frame_latency_ms_*` run from
there to the frame handed to the outputs, so they include the lookahead and the block wait.
Audio that a device lost (`overruns`) or that came later than real time (`underruns`) is
counted (`sdk.audio.source.SourceStats`). A video file (`OutputConfig.out_path`) gets the audio
muxed in, in sync: frame j shows audio [40 j, 40 (j + 1)) ms, a frame the generator dropped is
filled with the previous one (counted, `file_repeated_frames`). The file's audio is kept in
memory until the end (64 kB per second).
"""
from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..audio.features import FRAME_RATE
from ..codec import SemanticCodeEncoder
from ..media import AUDIO_SAMPLE_RATE
from ..models import TalkingHeadModel
from ..models.audio_to_code import AudioToCodeModel
from ..prior import SemanticCode
from ..runtime import Backend
from .avatars import Avatar, encode_portrait
from .config import LiveConfig
from .controls import LiveControls
from .errors import LiveError
from .outputs import LiveFrame, VideoFileSink
from .queues import POLL_S
from .sender import SenderCounts, SentFrame
from .session import _LiveSession
from .stats import LatencyLog, LiveStats, StageTimer
from .stream import stream_encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MicrophoneConfig:
    """What drives the avatar in `live_microphone` (the rest is the session's `LiveConfig`).

    source: a PortAudio input device (index or part of its name; None: the default input) or an
        audio file, paced in real time as a microphone (`LiveConfig.capture.paced`).
    audio_model: "default" (sdk/assets/audio) or a model folder (`sdk.audio.load_audio_model`).
    audio_backend: an `AUDIO_BACKEND_KINDS` kind; None: the session's `LiveConfig.backend`
        ("auto": torch). audio_graphs: an export folder with audio graphs (`python -m export
        --audio`); None: `LiveConfig.graphs` when it has them, else the cache.
    seed / epsilon / motion_scale: the head motion's sample (as `speak`); 0 motion: a still head.
    block_ms: how much audio is read at a time (the latency it adds is up to one block).
    """

    source: int | str | Path | None = None
    audio_model: str | Path = "default"
    audio_backend: str | None = None
    audio_graphs: Path | None = None
    seed: int = 0
    epsilon: float = 0.5
    motion_scale: float = 1.0
    block_ms: float = 10.0

    def __post_init__(self) -> None:
        if not 1.0 <= self.block_ms <= 200.0:
            raise ValueError(f"MicrophoneConfig.block_ms must be in [1, 200], got {self.block_ms}")
        if self.epsilon < 0 or self.motion_scale < 0:
            raise ValueError("MicrophoneConfig: epsilon and motion_scale must be >= 0")


@dataclass
class MicrophoneStats(LiveStats):
    """`LiveStats` (frames_captured: audio frames coded, camera: the audio source) plus:

    audio_to_frame_latency_ms_p50/_p95: a frame's audio captured -> the frame output (module
    docstring; the same clock as latency_ms_*). lookahead_ms: the live net's. audio_underruns /
    audio_overruns / audio_invalid_samples: the source's counters. audio_seconds: audio read.
    audio_coder_ms: mean per frame of the audio graphs. file_repeated_frames: frames written
    twice to the video file in place of dropped ones (audio sync)."""

    audio_source: str = ""
    audio_backend: str = ""
    lookahead_ms: float = 0.0
    audio_to_frame_latency_ms_p50: float | None = None
    audio_to_frame_latency_ms_p95: float | None = None
    audio_underruns: int = 0
    audio_overruns: int = 0
    audio_invalid_samples: int = 0
    audio_seconds: float = 0.0
    audio_coder_ms: float = 0.0
    file_repeated_frames: int = 0


def live_microphone(config: LiveConfig | None = None, microphone: MicrophoneConfig = MicrophoneConfig(), *,
                    model: TalkingHeadModel | None = None, audio_model: AudioToCodeModel | None = None,
                    on_frame: Callable[[LiveFrame], None] | None = None,
                    controls: LiveControls | None = None) -> MicrophoneStats:
    """Run a microphone-driven session until the audio ends, `capture.max_frames` frames, or quit.

    config: the session (model, backend, portrait, transport, outputs; `capture.paced` and
        `capture.max_frames` apply to the audio); None: defaults with `model="prior"`.
    model / audio_model: objects to use instead of loading `config.model` / `microphone.audio_model`.

    Raises AudioDeviceError (no or a broken input device, listing the devices), MediaReadError
    (a file that is not audio), LiveError (a renderer that is not a face-prior model, a receiver
    half), ModelLoadError (an audio model of another face prior), and what `live_camera` raises.
    """
    config = config or LiveConfig(model="prior")
    if config.transport.mode == "udp-receiver":
        raise LiveError("a receiver half does not care what drives the stream: run `python -m sdk live --listen` "
                        "(live_camera) there, and the microphone on the sending end (--connect)")
    session = _MicrophoneSession(config, microphone, model, audio_model, on_frame,
                                 controls or LiveControls(config.output.side_by_side))
    return session.run()


class MicrophoneFileSink(VideoFileSink):
    """The session's video file with its audio: frames as they come, the audio they cover at the end."""

    def __init__(self, path: str | Path, fps: float, audio: Callable[[], np.ndarray]):
        super().__init__(path, fps)
        self._audio = audio
        self._audio_stream = self._container.add_stream("aac", rate=AUDIO_SAMPLE_RATE)
        self._audio_stream.layout = "mono"

    def close(self) -> None:
        import av

        if self.frames:
            covered = self.frames * AUDIO_SAMPLE_RATE // FRAME_RATE
            samples = self._audio()[:covered]
            samples = np.pad(samples, (0, covered - len(samples))).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.clip(samples, -1.0, 1.0), format="flt", layout="mono")
            frame.sample_rate = AUDIO_SAMPLE_RATE
            self._container.mux(self._audio_stream.encode(frame))
            self._container.mux(self._audio_stream.encode(None))
        super().close()


class _MicrophoneSession(_LiveSession):
    """`_LiveSession` with a microphone sender half (the hooks `_open_input`, `_setup_sender`,
    `_capture_main`, `_sender_main`, `_write_file`, `_sender_stats`)."""

    def __init__(self, config: LiveConfig, microphone: MicrophoneConfig, model: TalkingHeadModel | None,
                 audio_model: AudioToCodeModel | None, on_frame: Callable[[LiveFrame], None] | None,
                 controls: LiveControls):
        super().__init__(config, model, on_frame, controls)
        self.microphone = microphone
        self.audio_model_override = audio_model
        # Paced, audio comes in real time and every frame is coded (the head motion chains); unpaced
        # (benchmarks), the sender waits for the generator as the camera's scheduler does.
        self.gate = None if config.capture.paced else self.gate
        self.source = None
        self.blocks: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue()
        self.kept_audio: list[np.ndarray] = []
        self.counts = SenderCounts()
        self.coding = StageTimer()
        self.repeated_frames = 0
        self.encoder = None
        self._last_image: np.ndarray | None = None

    def _open_input(self) -> None:
        from ..audio.source import open_audio_source

        self.source = open_audio_source(self.microphone.source, paced=self.config.capture.paced)

    def _setup_sender(self, backend: Backend, avatars: list[Avatar]) -> None:
        from ..audio.driver import MotionSampling
        from ..audio.live import LiveAudioCoder
        from ..audio.model_file import check_prior, load_audio_model
        from ..pipeline import TalkingHeadPipeline
        from ..runtime.audio_backend import AUDIO_FOLDER, create_audio_backend

        if self.kind != "semantic":
            driven = "learned keypoints" if self.kind == "keypoints" else "the face prior and learned keypoints"
            raise LiveError(f"{self.cfg.name} is driven by {driven}: a microphone drives the semantic code (head "
                            "pose + expression) alone, which needs a face-prior model (--model prior)")
        config, microphone = self.config, self.microphone
        audio_model = self.audio_model_override or load_audio_model(microphone.audio_model)
        check_prior(audio_model, self.prior.sha256)
        kind = microphone.audio_backend or (config.backend if config.backend != "auto" else "torch")
        graphs = microphone.audio_graphs
        if graphs is None and config.graphs is not None and (Path(config.graphs) / AUDIO_FOLDER).is_dir():
            graphs = config.graphs
        self.audio_backend = create_audio_backend(audio_model, kind, graphs=graphs, threads=self.budget.encoder)
        sampling = MotionSampling(seed=microphone.seed, epsilon=microphone.epsilon,
                                  motion_scale=microphone.motion_scale)
        warm_up = LiveAudioCoder(self.audio_backend, sampling)  # lazy initialisation is not a frame
        warm_up.push(np.zeros(warm_up.ready_at(0), np.float32))
        self.coder = LiveAudioCoder(self.audio_backend, sampling)
        self.fps = float(FRAME_RATE)
        self.rest_pose = TalkingHeadPipeline(backend).prepare_source(avatars[0].crop).rigs[0].code.pose
        self.portrait_to_send = encode_portrait(avatars[0]) if self.mode == "udp-sender" else None
        self.block = max(1, round(AUDIO_SAMPLE_RATE * microphone.block_ms / 1000))

    def _capture_main(self) -> None:
        try:
            while not self.capture_ready.wait(POLL_S):
                if self.stop_capture.is_set():
                    return
            self.source.start_fresh()
            while not self.stop_capture.is_set() and not self.threads.abort.is_set():
                block = self.source.read(self.block)
                if block is None:
                    break
                self.blocks.put((block, time.monotonic()))
        finally:
            self.blocks.put(None)

    def _sender_main(self) -> None:
        from ..audio.codes import neutral_code, speak_codes

        try:
            header = self._start_stream()
            if header is None:
                return
            self.encoder = encoder = stream_encoder(header)
            self.capture_ready.set()
            limit = self.config.capture.max_frames
            dims = self.audio_backend.config.expression_dims
            neutral = neutral_code(self.rest_pose, dims)
            while not self.threads.abort.is_set():
                try:
                    item = self.blocks.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                tick = time.perf_counter()
                if item is None:
                    frames, read_at = self.coder.finish(), time.monotonic()
                else:
                    block, read_at = item
                    if self.config.output.out_path is not None:
                        self.kept_audio.append(block)
                    frames = self.coder.push(block)
                if frames:
                    self.coding.add((time.perf_counter() - tick) / len(frames))
                for frame in frames:
                    if limit is not None and self.counts.sent >= limit:
                        self.capture_stats.end = "frame limit"
                        self.stop_capture.set()
                        return
                    code = neutral if frame.index == 0 else speak_codes(self.rest_pose, frame.expression[None],
                                                                         frame.pose_delta[None])[0]
                    centre = frame.index * self.coder.samples_per_frame + self.coder.samples_per_frame // 2
                    captured_at = read_at - max(self.coder.received - centre, 0) / AUDIO_SAMPLE_RATE
                    self._send(encoder, code, frame.index, captured_at)
                if item is None:
                    return
        finally:
            if self.source is not None:
                self.capture_stats.end = self.capture_stats.end or self.source.stats.end or "stopped"
            self.sender_transport.close()
            self.sender_done.set()

    def _send(self, encoder: SemanticCodeEncoder, code: SemanticCode, index: int, captured_at: float) -> None:
        """Frame `index`'s code as the stream's next packet (the log gives the receiver its capture time)."""
        if self.gate is not None:
            self.gate.wait_until_caught_up(self.threads.abort)
        packet = encoder.encode(code.pose, code.expression, index * 1000 // FRAME_RATE)
        sequence = self.counts.sent
        if self.sent_log is not None:
            self.sent_log.add(sequence, SentFrame(captured_at, None, False))
        if self.gate is not None:
            self.gate.sent(sequence)
        self.sender_transport.send(packet)
        self.counts.sent += 1
        self.counts.packet_bytes += len(packet)
        stats = self.capture_stats
        stats.first_at = stats.first_at or captured_at
        stats.last_at = captured_at
        stats.frames += 1

    def _audio(self) -> np.ndarray:
        return np.concatenate(self.kept_audio) if self.kept_audio else np.zeros(0, np.float32)

    def _write_file(self, image: np.ndarray, sequence: int) -> None:
        if self.sink is None:
            self.sink = MicrophoneFileSink(self.config.output.out_path, self.fps, self._audio)
        while self._last_image is not None and self.sink.frames < sequence:  # a dropped frame: hold the last
            self.sink.write(self._last_image)
            self.repeated_frames += 1
        self.sink.write(image)
        self._last_image = image

    def _shutdown(self) -> None:
        super()._shutdown()
        if self.source is not None:
            self.source.close()

    def _sender_stats(self, stats: LiveStats, fps: float) -> None:
        stats.camera = self.source.name
        stats.frames_captured = self.capture_stats.frames
        stats.frames_sent = self.counts.sent
        stats.encoder_ms = self.coding.mean_ms
        stats.bytes_per_frame = self.counts.packet_bytes / self.counts.sent if self.counts.sent else 0.0
        stats.kbps = stats.bytes_per_frame * 8 * fps / 1000
        transport = self.sender_transport.stats
        stats.wire_kbps = transport.wire_bytes * 8 / stats.seconds / 1000 if stats.seconds else 0.0
        stats.transport["sender"] = transport.as_dict()
        if self.encoder is not None:
            stats.codec["encoder"] = asdict(self.encoder.stats)

    def _stats(self) -> MicrophoneStats:
        base = super()._stats()
        latency: LatencyLog = self.latency
        source = self.source.stats
        return MicrophoneStats(**asdict(base), audio_source=f"{self.source.kind}: {self.source.name}",
                               audio_backend=self.audio_backend.name, lookahead_ms=self.coder.lookahead_ms,
                               audio_to_frame_latency_ms_p50=latency.percentile(50),
                               audio_to_frame_latency_ms_p95=latency.percentile(95),
                               audio_underruns=source.underruns, audio_overruns=source.overruns,
                               audio_invalid_samples=source.invalid_samples,
                               audio_seconds=source.samples / AUDIO_SAMPLE_RATE, audio_coder_ms=self.coding.mean_ms,
                               file_repeated_frames=self.repeated_frames)
