"""`live_camera()`: camera -> face -> code (keypoint encoder | face prior) -> codec -> transport -> generator
-> outputs.

Threads, joined by bounded drop-oldest queues of `LiveConfig.queue_capacity` frames each:

    capture ─► [frames] ─► sender: track, crop, encode, pack, send ─► transport ─┐
    ┌─────────────────────────────────────────────────────────────────────────────┘
    └► network: receive, decode ─► [codes] ─► generator ─► [rendered] ─► outputs (calling thread)

Which halves run here follows `TransportConfig.mode`. The outputs (window, callback, video file)
run on the calling thread, as OpenCV windows need.

The stream's kind follows the model (`stream.py`): learned-keypoint models send their keypoints;
face-prior models send the semantic code of the tracker's mesh, the receiver picks the decoder
from the header and renders the code on the avatar's own mesh with `LiveConfig.edits` (and the
window's edit keys) on top. Face-prior models run on the torch backend ("auto" picks it and says
why in the stats: their exported graphs are not timed here yet).

The scheduler: each stage runs with the intra-op threads of a `ThreadBudget` (`LiveConfig.threads`,
default `ThreadBudget.auto()` from the cores this process may use), and with both halves here the
sender takes a frame only when the generator is not behind (`GeneratorGate`), so frames the
generator could not render anyway are skipped before tracking and counted as "scheduler" drops.

The session ends when the video ends, after `max_frames`, on quit (window key,
`LiveControls.quit()`, Ctrl-C) or when the sender goes away; frames in flight are still rendered,
so every captured frame is rendered or counted. An error in any thread stops all of them and is
raised here.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from ..codec import SemanticStreamHeader, StreamHeader
from ..face import FaceTracker, TrackerConfig
from ..models import TalkingHeadModel
from ..pipeline import TalkingHeadPipeline
from ..prior.encoder import STATUSES
from ..runtime import Backend, ThreadBudget, choose_backend, create_backend, model_sha256
from ..transport import (
    PacketReceiver,
    PacketSender,
    SessionKey,
    SessionStart,
    SessionTimeoutError,
    TransportError,
    UdpReceiver,
    UdpSender,
    inproc_pair,
    load_session_key,
)
from .avatars import (
    DEFAULT_PORTRAIT,
    Avatar,
    AvatarRing,
    decode_portrait,
    encode_portrait,
    load_avatars,
)
from .capture import Camera, CapturedFrame, CaptureStats, run_capture
from .config import LiveConfig
from .controls import LiveControls, format_edits
from .errors import LiveError
from .outputs import LiveFrame, PreviewWindow, VideoFileSink, compose
from .queues import POLL_S, DropOldestQueue, GeneratorGate
from .receiver import AvatarRenderer, CodeReceiver, ReceivedCode, RenderedFrame
from .sender import CodeSender, SentFrameLog
from .stats import LatencyLog, LiveStats
from .stream import (Header, codec_config, parse_and_check_header, stream_decoder, stream_description, stream_encoder,
                     stream_header, stream_kind)
from .views import Views, open_views

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0
FLAG_STATUSES = tuple(status for status in STATUSES if status != "ok")


def live_camera(config: LiveConfig | None = None, *, model: TalkingHeadModel | None = None,
                on_frame: Callable[[LiveFrame], None] | None = None,
                controls: LiveControls | None = None) -> LiveStats:
    """Run a live session until it ends; returns its stats.

    config: None runs the defaults: the bundled clip driving the bundled portrait, in a window.
    model: a model object to use instead of loading `config.model` (e.g. a random test model).
    on_frame: called on the calling thread with every output frame; a slow callback makes the
        output queue drop the oldest frames (counted as "output" drops).
    controls: to steer the session from elsewhere (the window's keys use it too).

    Raises CameraError, MediaReadError / NoFaceError (portrait), ModelMismatchError, LiveError,
    TransportError / SessionTimeoutError, CodecError (a garbled stream header), ModelLoadError.
    """
    config = config or LiveConfig()
    return _LiveSession(config, model, on_frame, controls or LiveControls(config.output.side_by_side)).run()


class _Threads:
    """The session's worker threads: the first exception in any of them sets `abort`."""

    def __init__(self) -> None:
        self.abort = threading.Event()
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def start(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
                self.errors.append(exc)
                self.abort.set()

        thread = threading.Thread(target=run, name=f"live-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        if stuck:
            log.warning("threads still running after %.0f s: %s", timeout_s, ", ".join(stuck))


class _LiveSession:
    def __init__(self, config: LiveConfig, model: TalkingHeadModel | None,
                 on_frame: Callable[[LiveFrame], None] | None, controls: LiveControls):
        self.config = config
        self.model_override = model
        self.on_frame = on_frame
        self.controls = controls
        self.mode = config.transport.mode
        self.has_sender = self.mode != "udp-receiver"
        self.has_receiver = self.mode != "udp-sender"
        self.threads = _Threads()
        self.stop_capture = threading.Event()    # quit: capture stops, frames in flight still render
        self.stop_receiving = threading.Event()  # a receiver half's quit: the network thread stops
        self.sender_done = threading.Event()
        self.session_ready = threading.Event()   # the receiver has the stream header and its avatar
        self.capture_ready = threading.Event()   # the sender has started the session
        capacity = config.queue_capacity
        self.frames: DropOldestQueue[CapturedFrame] = DropOldestQueue(capacity, "capture")
        self.codes: DropOldestQueue[ReceivedCode] = DropOldestQueue(capacity, "generator")
        self.rendered: DropOldestQueue[RenderedFrame] = DropOldestQueue(capacity, "output")
        # The scheduler's hand-off needs the generator in this process.
        self.gate = (GeneratorGate(self.codes, lambda received: received.code.sequence)
                     if self.has_sender and self.has_receiver else None)
        self.budget = ThreadBudget.auto() if config.threads is None else config.threads
        self.backend_choice: dict | None = None
        self._opencv_threads: int | None = None  # OpenCV's own setting, restored at the end
        self.latency = LatencyLog()
        self.capture_stats = CaptureStats()
        self.delivered = 0
        self.last_output_at: float | None = None
        self.header: StreamHeader | SemanticStreamHeader | None = None
        self.fps = 0.0  # the stream's nominal frame rate (sender side)
        self.portrait_to_send: bytes | None = None
        self.sent_log = SentFrameLog() if self.has_sender and self.has_receiver else None
        # set up by _setup / the network thread
        self.camera: Camera | None = None
        self.tracker: FaceTracker | None = None
        self.code_sender: CodeSender | None = None
        self.code_receiver: CodeReceiver | None = None
        self.renderer: AvatarRenderer | None = None
        self.sender_transport: PacketSender | None = None
        self.receiver_transport: PacketReceiver | None = None
        self.sink: VideoFileSink | None = None
        self.window: PreviewWindow | None = None
        self.views: Views | None = None
        self.started_at = time.monotonic()

    # -- setup -------------------------------------------------------------------------------

    def run(self) -> LiveStats:
        try:
            self._setup()
            self._start_threads()
            self._output_loop()
        except BaseException:
            self.threads.abort.set()  # e.g. the callback raised: stop every thread, do not drain
            raise
        finally:
            self._shutdown()
        if self.threads.errors:
            raise self.threads.errors[0]
        return self._stats()

    def _setup(self) -> None:
        config = self.config
        if self.has_receiver and config.output.window:
            self.window = PreviewWindow(self.controls, config.output.display_size)  # fails before model loading
        self._opencv_threads = cv2.getNumThreads()
        cv2.setNumThreads(self.budget.opencv)
        key = self._session_key()
        if self.has_sender:
            self._open_input()  # a missing camera (microphone) fails before anything loads
        self.views = open_views(config, self.camera, self._stats)  # so do a taken port, no virtual camera
        if self.model_override is not None:
            model = self.model_override.to(config.device).eval()
        else:
            from ..checkpoint import load_model
            model = load_model(config.model, device=config.device)
        self.cfg = model.cfg
        self.kind = stream_kind(self.cfg)  # "keypoints", "semantic" or "hybrid" (both: the face prior drives it)
        self.codec = codec_config(config.codec, self.cfg)
        if not config.edits.is_identity and self.kind == "keypoints":
            raise LiveError(f"--edit (LiveConfig.edits): {self.cfg.name} uses learned keypoints; pose and "
                            "expression edits need a face-prior model (e.g. dagan++-mobile-prior)")
        self.model_sha256 = model_sha256(model)
        backend = self._backend(model)
        self.backend_name = backend.name
        self.output_size = backend.output_size
        self.prior = backend.prior() if self.kind != "keypoints" else None
        avatars = self._local_avatars()
        self._open_transport(key)
        if self.has_sender:
            self._setup_sender(backend, avatars)
        if self.has_receiver:
            self.receive_pipeline = TalkingHeadPipeline(backend, config.motion, edits=config.edits)
            if self.kind != "keypoints":
                self.controls.enable_edits(config.edits)
            if avatars:  # prepared now, so the first codes do not wait for the source encoder
                self.renderer = AvatarRenderer(self.receive_pipeline, AvatarRing(avatars), self.controls,
                                               config.paste_back)

    def _open_input(self) -> None:
        """The sender's input (a camera here; `sdk.live.microphone` opens a microphone)."""
        self.camera = Camera(self.config.capture.camera)

    def _setup_sender(self, backend: Backend, avatars: list[Avatar]) -> None:
        """The sender half's per-frame coder, once the transport is open."""
        config = self.config
        assert self.camera is not None
        self.fps = config.capture.fps or self.camera.fps
        self.tracker = FaceTracker(TrackerConfig(fps=self.fps))
        self.code_sender = CodeSender(TalkingHeadPipeline(backend, config.motion), self.tracker,
                                      transport=self.sender_transport, log=self.sent_log)
        if self.kind == "keypoints":  # warm-up: lazy initialisation is not a frame (the prior's code has none)
            self.code_sender.pipeline.encode(avatars[0].crop)
        self.portrait_to_send = encode_portrait(avatars[0]) if self.mode == "udp-sender" else None

    def _backend(self, model: TalkingHeadModel) -> Backend:
        """The configured backend with the session's thread budget; "auto" times the candidates
        (face-prior models included: their graphs take the rig's keypoints and the expression)."""
        config = self.config
        options = dict(graphs=config.graphs, threads=self.budget, output_size=config.output_size)
        if config.backend != "auto":
            return create_backend(model, config.backend, config.device, **options)
        choice = choose_backend(model, config.device, **options)
        self.backend_choice = choice.as_dict()
        return choice.backend

    def _local_avatars(self) -> list[Avatar]:
        """The sender's portrait to send (udp-sender), the receiver's own avatars, or [] (use the sender's)."""
        portrait = self.config.portrait
        if self.mode == "udp-receiver" and portrait is None:
            return []
        return load_avatars(portrait if portrait is not None else DEFAULT_PORTRAIT, self.output_size)

    def _session_key(self) -> SessionKey:
        key_file = self.config.transport.key_file
        if self.mode in ("inproc", "udp-loopback"):
            return SessionKey.generate()
        if key_file is None:
            raise LiveError("a udp session between two processes needs the same key on both ends: pass "
                            "--key-file (TransportConfig.key_file); the listening end creates it when missing")
        if self.mode == "udp-receiver" and not Path(key_file).exists():
            SessionKey.generate().save(key_file)
            log.warning("wrote a new session key to %s: give this file to the sender (--key-file)", key_file)
        return load_session_key(key_file)

    def _open_transport(self, key: SessionKey) -> None:
        transport = self.config.transport
        if self.mode == "inproc":
            self.sender_transport, self.receiver_transport = inproc_pair(
                key, transport.impairment, transport.jitter, start_timeout_s=transport.session_timeout_s)
        elif self.mode == "udp-loopback":
            self.receiver_transport = UdpReceiver(("127.0.0.1", 0), key, transport.jitter)
            self.sender_transport = UdpSender(self.receiver_transport.address, key,
                                              start_timeout_s=transport.session_timeout_s)
        elif self.mode == "udp-sender":
            assert transport.connect is not None
            self.sender_transport = UdpSender(transport.connect, key, start_timeout_s=transport.session_timeout_s)
        else:
            assert transport.listen is not None
            self.receiver_transport = UdpReceiver(transport.listen, key, transport.jitter)
            log.info("listening on %s:%d", *self.receiver_transport.address)

    # -- threads -----------------------------------------------------------------------------

    def _start_threads(self) -> None:
        if self.has_receiver:
            self.threads.start("network", self._network_main)
            self.threads.start("generator", self._generator_main)
        if self.has_sender:
            self.threads.start("capture", self._capture_main)
            self.threads.start("sender", self._sender_main)

    def _capture_main(self) -> None:
        assert self.camera is not None
        while not self.capture_ready.wait(POLL_S):
            if self.stop_capture.is_set():
                self.frames.close()
                return
        run_capture(self.camera, self.config.capture, self.frames, self.stop_capture, self.capture_stats)

    def _start_stream(self) -> Header | None:
        """The stream header, sent to the receiver with the portrait; None when the session was
        quit while waiting for the receiver (the output loop closed the transport)."""
        assert self.sender_transport is not None
        self.header = stream_header(self.cfg, self.model_sha256, self.fps, self.codec, self.prior)
        try:
            self.sender_transport.start_session(self.header.to_bytes(), self.portrait_to_send)
        except TransportError:
            if self.stop_capture.is_set():
                return None
            raise
        return self.header

    def _sender_main(self) -> None:
        assert self.code_sender is not None and self.sender_transport is not None
        try:
            header = self._start_stream()
            if header is None:
                return
            epoch = time.monotonic()  # stream time 0, before the first frame is captured
            self.capture_ready.set()
            self.code_sender.run(self.frames, self.threads.abort, stream_encoder(header), epoch, self.gate)
        finally:
            self.sender_transport.close()  # tells the receiver the session ended
            self.sender_done.set()

    def _network_main(self) -> None:
        assert self.receiver_transport is not None
        transport = self.config.transport
        start = self._wait_for_session(transport.session_timeout_s)
        if start is None:
            return
        header = parse_and_check_header(start.header, self.cfg, self.model_sha256, self.prior)
        self.header = self.header or header
        if self.renderer is None:
            if start.portrait is None:
                raise LiveError("the sender sent no portrait and this receiver has none: pass --portrait "
                                "(LiveConfig.portrait) on one of the two ends")
            self.renderer = AvatarRenderer(self.receive_pipeline, AvatarRing([decode_portrait(start.portrait)]),
                                           self.controls, self.config.paste_back)
        remote = not self.has_sender
        self.code_receiver = CodeReceiver(self.receiver_transport, stream_decoder(header, self.prior), self.sent_log,
                                          transport.idle_timeout_s if remote else None,
                                          transport.session_timeout_s if remote else None)
        self.session_ready.set()
        self.code_receiver.run(self.codes, self.stop_receiving, self.sender_done)

    def _wait_for_session(self, timeout_s: float) -> SessionStart | None:
        """The sender's session start; None when stopped first (quit, or the sender failed)."""
        assert self.receiver_transport is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.receiver_transport.wait_session(min(POLL_S, max(deadline - time.monotonic(), 1e-3)))
            except SessionTimeoutError:
                if self.stop_receiving.is_set() or self.threads.abort.is_set():
                    return None
                if time.monotonic() >= deadline:
                    raise SessionTimeoutError(f"no sender started a session within {timeout_s:g} s "
                                              "(is it running, with the same key file?)") from None

    def _generator_main(self) -> None:
        try:
            while not self.session_ready.wait(POLL_S):
                if self.threads.abort.is_set() or self.stop_receiving.is_set():
                    return
            assert self.renderer is not None
            self.renderer.run(self.codes, self.rendered, self.threads.abort, self.gate)
        finally:
            self.rendered.close()

    # -- outputs (calling thread) ------------------------------------------------------------

    def _output_loop(self) -> None:
        interrupted = False
        while True:
            try:
                if self.window is not None:
                    self.window.poll()
                if self.threads.abort.is_set():
                    return
                if self.controls.quit_requested.is_set():
                    self.stop_capture.set()
                    if not self.has_sender:
                        self.stop_receiving.set()
                    elif not self.has_receiver and not self.capture_ready.is_set():
                        assert self.sender_transport is not None
                        self.sender_transport.close()  # gives up a start_session waiting for the remote receiver
                if not self.has_receiver:
                    if not self.threads.alive():
                        return
                    time.sleep(POLL_S)
                    continue
                item = self.rendered.get(0.01 if self.window is not None else POLL_S)
                if item is None:
                    if self.rendered.finished:
                        return
                    continue
                self._deliver(item)
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True  # a second Ctrl-C aborts; the first ends the session cleanly
                log.info("interrupted: finishing the frames in flight (Ctrl-C again to abort)")
                self.controls.quit()

    def _deliver(self, item: RenderedFrame) -> None:
        now = time.monotonic()
        received = item.received
        latency_ms = 1000.0 * (now - received.captured_at)
        self.latency.add(latency_ms)
        sent = self.sent_log.get(received.code.sequence) if self.sent_log is not None else None
        driver = sent.crop if sent is not None else None
        side_by_side = self.controls.side_by_side
        frame = LiveFrame(image=compose(item.avatar, driver, side_by_side), avatar=item.avatar,
                          driver=driver, avatar_name=item.avatar_name, index=self.delivered,
                          sequence=received.code.sequence, no_face=bool(sent and sent.no_face),
                          latency_ms=latency_ms)
        output = self.config.output
        if output.out_path is not None:
            # the file keeps the layout it started with; compose again only when the window's differs
            self._write_file(frame.image if output.side_by_side == side_by_side
                             else compose(item.avatar, driver, output.side_by_side), received.code.sequence)
        if self.on_frame is not None:
            self.on_frame(frame)
        if self.views is not None:
            self.views.show(frame)
        if self.window is not None:
            self.window.show(frame.image)
        self.last_output_at = now
        self.delivered += 1

    def _write_file(self, image: np.ndarray, sequence: int) -> None:
        """One output frame to the video file (`sdk.live.microphone` keeps it in sync with the audio)."""
        if self.sink is None:
            assert self.header is not None
            self.sink = VideoFileSink(self.config.output.out_path, self.header.fps)
        self.sink.write(image)

    # -- end ---------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop what still runs (after an error or a receiver half's quit), join, close everything."""
        self.stop_capture.set()
        if self.threads.abort.is_set() or not self.has_sender:
            self.stop_receiving.set()
        self.threads.join(JOIN_TIMEOUT_S)
        for close in (self.sink.close if self.sink else None, self.window.close if self.window else None,
                      self.views.close if self.views else None,
                      self.camera.close if self.camera else None, self.tracker.close if self.tracker else None,
                      self.sender_transport.close if self.sender_transport else None,
                      self.receiver_transport.close if self.receiver_transport else None):
            if close is not None:
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 - closing must not hide the session's own error
                    log.warning("while closing: %s", exc)
        if self._opencv_threads is not None:
            cv2.setNumThreads(self._opencv_threads)

    def _stats(self) -> LiveStats:
        seconds = time.monotonic() - self.started_at
        stats = LiveStats(mode=self.mode, model=self.cfg.name, backend=self.backend_name, seconds=seconds,
                          output_size=self.output_size, paste_back=self.config.paste_back,
                          threads=self.budget.as_dict(), backend_choice=self.backend_choice)
        fps = self.header.fps if self.header is not None else 0.0
        if self.header is not None:
            stats.codec["stream"] = stream_description(self.header)
        if self.has_sender:
            self._sender_stats(stats, fps)
        if self.has_receiver:
            self._receiver_stats(stats, fps)
        if self.controls.quit_requested.is_set():
            stats.stop_reason = "quit"
        elif self.has_sender:
            stats.stop_reason = self.capture_stats.end
        else:
            stats.stop_reason = self.code_receiver.counts.end if self.code_receiver else ""
        return stats

    def _sender_stats(self, stats: LiveStats, fps: float) -> None:
        assert self.code_sender is not None and self.camera is not None and self.sender_transport is not None
        counts = self.code_sender.counts
        stats.camera = self.camera.name
        stats.frames_captured = self.capture_stats.frames + self.capture_stats.skipped
        stats.frames_dropped["capture"] = self.frames.drops["capture"] + self.capture_stats.skipped
        stats.frames_dropped["scheduler"] = self.frames.drops["scheduler"]
        stats.frames_sent = counts.sent
        stats.no_face_frames = counts.no_face_frames
        stats.frames_before_first_face = counts.before_first_face
        if self.kind != "keypoints":
            flagged = self.code_sender.pipeline.encoder_stats
            stats.flagged_mesh_frames = {status: getattr(flagged, status) for status in FLAG_STATUSES}
        stats.tracker_ms = self.code_sender.tracking.mean_ms
        stats.encoder_ms = self.code_sender.encoding.mean_ms
        stats.bytes_per_frame = counts.packet_bytes / counts.sent if counts.sent else 0.0
        stats.kbps = stats.bytes_per_frame * 8 * fps / 1000
        capture_seconds = self.capture_stats.last_at - self.capture_stats.first_at
        if self.capture_stats.frames > 1 and capture_seconds > 0:
            stats.capture_fps = (self.capture_stats.frames - 1) / capture_seconds
        transport = self.sender_transport.stats
        stats.wire_kbps = transport.wire_bytes * 8 / stats.seconds / 1000
        stats.transport["sender"] = transport.as_dict()
        if self.code_sender.encoder is not None:
            stats.codec["encoder"] = asdict(self.code_sender.encoder.stats)
        if not self.has_receiver:
            span = capture_seconds
            stats.fps = (counts.sent - 1) / span if counts.sent > 1 and span > 0 else 0.0

    def _receiver_stats(self, stats: LiveStats, fps: float) -> None:
        assert self.receiver_transport is not None
        transport = self.receiver_transport.stats
        stats.transport["receiver"] = transport.as_dict()
        stats.frames_dropped["transport"] = transport.lost + transport.late + transport.overflow
        if self.has_sender and self.code_receiver is not None:
            # Both ends are here: exact, including lost packets at the end that no later one revealed.
            stats.frames_dropped["transport"] = stats.frames_sent - self.code_receiver.counts.packets
        stats.frames_dropped["generator"] = self.codes.dropped
        stats.frames_dropped["output"] = self.rendered.dropped
        stats.frames_rendered = self.delivered
        receiver = self.code_receiver
        if receiver is not None:
            stats.frames_dropped["decode"] = receiver.counts.undecodable
            stats.frames_received = receiver.counts.decoded
            stats.codec["decoder"] = asdict(receiver.decoder.stats)
            if not self.has_sender and receiver.counts.packets:
                stats.bytes_per_frame = receiver.counts.packet_bytes / receiver.counts.packets
                stats.kbps = stats.bytes_per_frame * 8 * fps / 1000
                stats.latency_clock = "estimated"
        if self.renderer is not None:
            stats.generator_ms = self.renderer.rendering.mean_ms
            stats.reanchors = self.renderer.reanchors
            stats.avatar_switches = self.renderer.avatar_switches
            stats.edits = format_edits(self.receive_pipeline.edits) if self.kind != "keypoints" else ""
            stats.edit_changes = self.renderer.edit_changes
            stats.avatar = self.renderer.avatars.current.name
            stats.portrait_upscaled = any(avatar.crop.shape[0] < self.output_size
                                          for avatar in self.renderer.avatars.avatars)
        stats.latency_ms_p50 = self.latency.percentile(50)
        stats.latency_ms_p95 = self.latency.percentile(95)
        stats.latency_ms_max = self.latency.maximum
        first = self.capture_stats.first_at if self.has_sender else (receiver.first_arrival if receiver else None)
        if self.delivered > 1 and first is not None and self.last_output_at is not None:
            span = self.last_output_at - first
            stats.fps = self.delivered / span if span > 0 else 0.0
