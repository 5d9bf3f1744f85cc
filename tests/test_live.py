"""`sdk.live_camera` and `python -m sdk live` on a tiny random model and short clips cut from the bundled video."""
import dataclasses
import json
import socket
import threading
import time

import numpy as np
import pytest
import torch

from sdk import media
from sdk.checkpoint import save_model
from sdk.cli import main
from sdk.codec import CodecConfig
from sdk.errors import MediaReadError, NoFaceError, SdkError
from sdk.live import (DROP_STAGES, CameraError, CaptureConfig, LiveConfig, LiveControls, LiveError,
                      ModelMismatchError, OutputConfig, TransportConfig, live_camera)
from sdk.live.avatars import DEFAULT_PORTRAIT, decode_portrait, encode_portrait, load_avatars
from sdk.live.capture import DEFAULT_DRIVING, Camera
from sdk.live.outputs import PreviewWindow, compose
from sdk.live.queues import DropOldestQueue, GeneratorGate
from sdk.live.stream import parse_and_check_header, stream_header
from sdk.models import TalkingHeadModel, get_config
from sdk.prior import Edits
from sdk.runtime import ThreadBudget, model_sha256
from sdk.transport import Impairment, SessionKey, SessionTimeoutError

from conftest import CLIP_FRAMES, data_file

GRAY = 128


@pytest.fixture(scope="module")
def faceless_stretch_clip(driving_frames, tmp_path_factory):
    """2 frames without a face, 4 with, 3 without, 1 with."""
    blank = np.full_like(driving_frames[0], GRAY)
    frames = [blank, blank, *driving_frames[:4], blank, blank, blank, driving_frames[4]]
    path = tmp_path_factory.mktemp("clips") / "gaps.mp4"
    media.write_video(path, frames, 25.0)
    return path


def headless(camera, **overrides) -> LiveConfig:
    """A session on `camera` with the torch backend, no window, and whatever else is given."""
    capture = overrides.pop("capture", CaptureConfig(camera=camera, paced=False))
    output = overrides.pop("output", OutputConfig(window=False))
    return LiveConfig(capture=capture, backend="torch", output=output, **overrides)


def assert_every_frame_accounted_for(stats) -> None:
    assert stats.frames_captured == (stats.frames_rendered + stats.frames_dropped_total
                                     + stats.frames_before_first_face), stats.to_dict()


# -- the pieces --------------------------------------------------------------------------------

def test_drop_oldest_queue_keeps_the_newest_and_counts():
    queue = DropOldestQueue(2, "test")
    for item in range(5):
        queue.put(item)
    assert queue.dropped == 3 and len(queue) == 2
    assert queue.get(0.0) == 3 and queue.get(0.0) == 4 and queue.get(0.01) is None
    assert not queue.finished
    queue.put(5)
    queue.close()
    assert not queue.finished and queue.get(0.0) == 5 and queue.finished and queue.get(1.0) is None
    cancel = threading.Event()
    waiting = DropOldestQueue(1, "waiting")
    assert waiting.put_waiting("a", cancel)
    cancel.set()
    assert not waiting.put_waiting("b", cancel) and waiting.dropped == 0 and waiting.get(0.0) == "a"
    # Drops count under the label the consumer gives while it is not taking items.
    labelled = DropOldestQueue(1, "capture")
    labelled.put(0)
    labelled.put(1)
    with labelled.drops_counted_as("scheduler"):
        labelled.put(2)
        labelled.put(3)
    labelled.put(4)
    assert labelled.drops == {"capture": 2, "scheduler": 2} and labelled.dropped == 4 and labelled.get(0.0) == 4


def test_generator_gate_holds_the_sender_while_a_newer_code_waits():
    codes = DropOldestQueue(1, "generator")
    gate = GeneratorGate(codes, lambda item: int(item.split()[1]), transit_grace_s=0.2)
    abort = threading.Event()
    assert not gate.behind()  # an idle generator takes the next code at once
    with gate.rendering(0):
        assert not gate.behind()  # nothing newer than the code being rendered
        gate.sent(1)
        assert gate.behind()  # code 1 is in transit: a frame now would only wait, or push it out
        codes.put("code 1")
        assert gate.behind()  # queued
    assert not gate.behind()  # between renders, one waiting code is the generator's next
    gate.sent(2)
    assert gate.behind()  # ... but two are one too many
    assert codes.get(0.0) == "code 1"
    with gate.rendering(1):
        assert gate.behind()  # code 2, sent after 1, is in transit ...
        began = time.monotonic()
        gate.wait_until_caught_up(abort)  # ... and lost: after the grace the sender goes on without it
        assert 0.1 < time.monotonic() - began < 2.0 and not gate.behind()
        gate.sent(3)
        codes.put("code 3")
        threading.Timer(0.1, codes.get, args=(0.0,)).start()  # taken from the queue: the wait ends
        began = time.monotonic()  # (at the latest when the grace after `sent(3)` runs out)
        gate.wait_until_caught_up(abort)
        assert 0.05 < time.monotonic() - began < 2.0
    abort.set()
    with gate.rendering(3):
        gate.sent(4)
        gate.wait_until_caught_up(abort)  # an abort ends the wait at once
    assert gate.holds == 3


def test_keys_steer_the_session_and_no_display_is_a_clear_error(monkeypatch):
    controls = LiveControls()
    for key in "anns":
        assert controls.handle_key(ord(key))
    assert controls.take_generator_requests() == (True, 2) and controls.side_by_side
    assert controls.take_generator_requests() == (False, 0)
    assert controls.handle_key(ord("p")) and controls.take_generator_requests() == (False, -1)
    assert not controls.handle_key(-1) and not controls.handle_key(ord("x"))
    assert not controls.quit_requested.is_set()
    assert controls.handle_key(27) and controls.quit_requested.is_set()
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(LiveError, match="--headless"):
        PreviewWindow(controls, 256)
    avatar = np.zeros((8, 8, 3), np.uint8)
    assert compose(avatar, None, False) is avatar
    assert compose(avatar, np.full_like(avatar, 9), True).shape == (8, 16, 3)
    assert compose(avatar, None, True)[:, :8].max() == 0  # a receiver half has no driver crop
    portrait = np.zeros((12, 20, 3), np.uint8)  # paste-back: the driver's crop at the portrait's height
    assert compose(portrait, np.full_like(avatar, 9), True).shape == (12, 32, 3)


def test_bad_camera_index_and_missing_video(tmp_path):
    with pytest.raises(CameraError, match="camera 99: cannot open"):
        Camera(99)
    with pytest.raises(CameraError, match="no such video file"):
        Camera(tmp_path / "missing.mp4")
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_bytes(b"not a video at all")
    with pytest.raises(CameraError, match="notes.mp4"):
        Camera(not_a_video).read()
    # live_camera fails on the camera before it loads any model
    with pytest.raises(CameraError, match="camera 99"):
        live_camera(headless("99", model="no-such-model"))


def test_portraits_without_a_face(tmp_path, tiny_model):
    faceless = tmp_path / "folder" / "wall.png"
    media.write_image(faceless, np.full((200, 200, 3), GRAY, np.uint8))
    with pytest.raises(NoFaceError, match="wall.png: no face"):
        load_avatars(faceless, 64)
    with pytest.raises(NoFaceError, match="none of its 1 images"):
        load_avatars(faceless.parent, 64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaReadError, match="no portrait images"):
        load_avatars(tmp_path / "empty", 64)
    with pytest.raises(MediaReadError, match="no such portrait"):
        load_avatars(tmp_path / "nope.jpg", 64)
    (faceless.parent / "b_face.jpg").write_bytes(DEFAULT_PORTRAIT.read_bytes())
    avatars = load_avatars(faceless.parent, 64)  # the faceless one is skipped with a warning
    assert [a.name for a in avatars] == ["b_face.jpg"] and avatars[0].crop.shape == (64, 64, 3)
    assert np.array_equal(decode_portrait(encode_portrait(avatars[0])).crop, avatars[0].crop)
    with pytest.raises(LiveError, match="not a readable image"):
        decode_portrait(b"garbage")
    with pytest.raises(NoFaceError, match="wall.png"):
        live_camera(headless(DEFAULT_DRIVING, portrait=faceless), model=tiny_model)


def test_receiver_refuses_codes_of_another_model(tiny_model):
    torch.manual_seed(1)
    other = TalkingHeadModel(get_config("dagan++-tiny"))
    header = stream_header(other.cfg, model_sha256(other), 25.0, CodecConfig()).to_bytes()
    with pytest.raises(ModelMismatchError, match="load the same model"):
        parse_and_check_header(header, tiny_model.cfg, model_sha256(tiny_model))
    mine = stream_header(tiny_model.cfg, model_sha256(tiny_model), 25.0, CodecConfig()).to_bytes()
    assert parse_and_check_header(mine, tiny_model.cfg, model_sha256(tiny_model)).fps == 25.0


# -- whole sessions ----------------------------------------------------------------------------

def test_cli_headless_with_out_file_and_stats_json(tmp_path, clip, tiny_model):
    model_dir = save_model(tiny_model, tmp_path / "model", half=False)
    out, stats_json = tmp_path / "live.mp4", tmp_path / "stats.json"
    assert main(["live", "--camera", str(clip), "--model", str(model_dir), "--backend", "torch", "--headless",
                 "--frames", "6", "--unpaced", "--queue", "16", "--side-by-side", "--out", str(out),
                 "--stats-json", str(stats_json)]) == 0
    stats = json.loads(stats_json.read_text())
    for key in ("frames_captured", "frames_rendered", "frames_dropped", "no_face_frames", "fps", "kbps",
                "bytes_per_frame", "latency_ms_p50", "latency_ms_p95", "encoder_ms", "generator_ms", "transport",
                "threads", "backend_choice"):
        assert key in stats
    assert set(stats["frames_dropped"]) == set(DROP_STAGES) and "scheduler" in DROP_STAGES
    assert stats["threads"] == ThreadBudget.auto().as_dict()  # no --threads: the budget for this machine
    assert stats["frames_captured"] == 6 and stats["stop_reason"] == "frame limit"
    assert stats["frames_rendered"] == 6 and stats["frames_dropped_total"] == 0
    assert stats["bytes_per_frame"] > 0 and stats["latency_ms_p95"] >= stats["latency_ms_p50"] > 0
    assert stats["output_size"] == 128 and not stats["paste_back"] and not stats["portrait_upscaled"]
    frames, fps = media.read_video(out)
    assert len(frames) == 6 and frames[0].shape == (128, 256, 3) and fps == 25.0  # driver | avatar at 2R


def test_output_size_paste_back_and_a_small_portrait(tmp_path, clip, tiny_model):
    import cv2

    seen = []
    config = headless(clip, capture=CaptureConfig(camera=clip, paced=False, max_frames=3), queue_capacity=CLIP_FRAMES,
                      output_size=128, paste_back=True, output=OutputConfig(window=False, side_by_side=True))
    stats = live_camera(config, model=tiny_model, on_frame=seen.append)
    assert stats.output_size == 128 and stats.paste_back and stats.frames_rendered == len(seen) == 3
    portrait = media.read_image(DEFAULT_PORTRAIT)
    first = seen[0]
    assert first.avatar.shape == portrait.shape and first.driver.shape == (128, 128, 3)
    assert first.image.shape == (512, 1024, 3)  # driver | the whole portrait, at its height
    np.testing.assert_array_equal(first.avatar[:40], portrait[:40])  # above the face box: the portrait itself

    small = tmp_path / "small.png"  # its face box is ~110 px: fewer pixels than the 128² output
    media.write_image(small, cv2.resize(portrait, (120, 120), interpolation=cv2.INTER_AREA))
    stats = live_camera(headless(clip, capture=CaptureConfig(camera=clip, paced=False, max_frames=2), portrait=small),
                        model=tiny_model, on_frame=seen.append)
    assert stats.portrait_upscaled and not stats.paste_back and seen[-1].avatar.shape == (128, 128, 3)


def test_cli_bad_output_sizes_and_paste_back_options(tmp_path, clip, tiny_model, capsys):
    torch.manual_seed(0)
    old = TalkingHeadModel(dataclasses.replace(get_config("dagan++-tiny"), composite=None))  # saved before the head
    model_dirs = {"new": save_model(tiny_model, tmp_path / "new", half=False),
                  "old": save_model(old, tmp_path / "old", half=False)}
    cases = [("new", ["--size", "100"], "output size 100 is not a multiple of dagan++-tiny's internal resolution 64"),
             ("old", ["--size", "128"], "dagan++-tiny has no composite head: it renders at 64² only, not 128²"),
             ("new", ["--paste-back", "--connect", "127.0.0.1:9", "--key-file", str(tmp_path / "k")],
              "a sender half (connect) renders none"),
             ("new", ["--paste-back", "--listen", "127.0.0.1:9", "--key-file", str(tmp_path / "k")],
              "give this receiver its own portrait")]
    for model, argv, message in cases:
        code = main(["live", "--camera", str(clip), "--model", str(model_dirs[model]), "--backend", "torch",
                     "--headless", "--frames", "2", *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], (argv, err)
    stats_json = tmp_path / "old.json"  # the old model renders at its own resolution
    assert main(["live", "--camera", str(clip), "--model", str(model_dirs["old"]), "--backend", "torch",
                 "--headless", "--frames", "2", "--unpaced", "--stats-json", str(stats_json)]) == 0
    assert json.loads(stats_json.read_text())["output_size"] == 64


def test_ended_video_stops_cleanly_and_callback_gets_every_frame(clip, tiny_model):
    seen = []
    stats = live_camera(headless(clip, queue_capacity=CLIP_FRAMES), model=tiny_model, on_frame=seen.append)
    assert stats.stop_reason == "end of video" and stats.frames_captured == CLIP_FRAMES
    assert stats.frames_rendered == len(seen) == CLIP_FRAMES and stats.frames_dropped_total == 0
    assert [f.index for f in seen] == list(range(CLIP_FRAMES))
    assert [f.sequence for f in seen] == list(range(CLIP_FRAMES))
    first = seen[0]
    assert first.image.shape == first.avatar.shape == first.driver.shape == (128, 128, 3)  # 2R: the default
    assert first.avatar_name == DEFAULT_PORTRAIT.name and not first.no_face
    assert stats.latency_clock == "shared" and stats.encoder_ms > 0 and stats.generator_ms > 0
    assert_every_frame_accounted_for(stats)


def test_slow_consumer_drops_oldest_and_counts_and_avatars_switch(tmp_path, clip, tiny_model):
    folder = tmp_path / "avatars"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(DEFAULT_PORTRAIT.read_bytes())
    (folder / "b.png").write_bytes(data_file("image", "dagan-src").read_bytes())
    controls = LiveControls()
    seen = []

    def slow_callback(frame):
        seen.append(frame)
        if len(seen) == 1:  # the sender is still at the first frames: the rest render with avatar b
            controls.reanchor()
            controls.next_avatar()
        threading.Event().wait(0.15)

    stats = live_camera(headless(clip, portrait=folder, queue_capacity=1), model=tiny_model,
                        on_frame=slow_callback, controls=controls)
    assert stats.frames_dropped["output"] > 0
    sequences = [frame.sequence for frame in seen]
    assert sequences == sorted(sequences) and sequences[-1] == stats.frames_sent - 1  # oldest dropped, newest kept
    assert stats.reanchors == 1 and stats.avatar_switches == 1 and stats.avatar == "b.png"
    assert seen[0].avatar_name == "a.jpg" and seen[-1].avatar_name == "b.png"
    assert_every_frame_accounted_for(stats)


def test_a_slow_generator_makes_the_scheduler_skip_frames_before_tracking(clip, tiny_model, monkeypatch):
    torch.manual_seed(0)
    slow = TalkingHeadModel(get_config("dagan++-tiny")).eval()
    render = slow.render

    def slow_render(*args):
        time.sleep(0.12)  # three frame periods at 25 fps
        return render(*args)
    slow.render = slow_render
    tracked = []
    from sdk.face import FaceTracker
    update = FaceTracker.update
    monkeypatch.setattr(FaceTracker, "update", lambda self, *args: tracked.append(1) or update(self, *args))
    budget = ThreadBudget(encoder=1, generator=1)
    stats = live_camera(headless(clip, capture=CaptureConfig(camera=clip, fps=25.0), threads=budget), model=slow)
    assert stats.frames_dropped["scheduler"] > 0 and stats.frames_dropped["generator"] <= 1, stats.frames_dropped
    assert len(tracked) == stats.frames_captured - stats.frames_dropped["capture"] - stats.frames_dropped["scheduler"]
    assert stats.threads == budget.as_dict() and stats.backend_choice is None
    assert_every_frame_accounted_for(stats)


def test_auto_backend_states_its_pick_in_the_stats(clip, tiny_model, monkeypatch):
    from sdk.runtime import factory

    monkeypatch.setattr(factory, "onnx_runtime_available", lambda: False)  # no graphs to export in a unit test
    config = dataclasses.replace(headless(clip, capture=CaptureConfig(camera=clip, paced=False, max_frames=2)),
                                 backend="auto", threads=1)
    stats = live_camera(config, model=tiny_model)
    assert stats.backend_choice["chosen"] == "torch" and set(stats.backend_choice["frame_ms"]) == {"torch"}
    assert stats.backend == stats.backend_choice["backend"] == "torch-cpu"
    assert stats.threads["encoder"] == stats.threads["generator"] == 1
    assert stats.to_dict()["backend_choice"] == stats.backend_choice
    with pytest.raises(ValueError, match="threads must be >= 1"):
        LiveConfig(threads=0)


def test_no_face_stretch_holds_the_last_code_then_resumes(faceless_stretch_clip, tiny_model):
    seen = []
    stats = live_camera(headless(faceless_stretch_clip, queue_capacity=CLIP_FRAMES), model=tiny_model,
                        on_frame=seen.append)
    assert stats.frames_before_first_face == 2 and stats.no_face_frames == 5
    assert stats.frames_sent == stats.frames_rendered == 8
    assert [f.no_face for f in seen] == [False] * 4 + [True] * 3 + [False]
    # the held frames show the avatar as it was at the last face
    assert all(np.array_equal(f.avatar, seen[3].avatar) for f in seen[4:7])
    assert_every_frame_accounted_for(stats)


def test_lossy_link_drops_are_counted(clip, tiny_model):
    transport = TransportConfig(impairment=Impairment(loss=0.5, seed=3))
    stats = live_camera(headless(clip, transport=transport, queue_capacity=CLIP_FRAMES), model=tiny_model)
    assert stats.stop_reason == "end of video" and stats.frames_sent == CLIP_FRAMES
    receiver = stats.transport["receiver"]
    assert stats.frames_dropped["transport"] + stats.frames_dropped["decode"] + receiver["recovered"] > 0
    assert_every_frame_accounted_for(stats)


def test_paced_file_keeps_its_pace(clip, tiny_model):
    stats = live_camera(headless(clip, capture=CaptureConfig(camera=clip, fps=50.0, max_frames=6)), model=tiny_model)
    assert stats.frames_captured == 6 and 35 < stats.capture_fps < 55
    assert_every_frame_accounted_for(stats)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_udp_sender_and_receiver_halves(tmp_path, clip, tiny_model):
    key_file = tmp_path / "session.key"
    address = ("127.0.0.1", _free_udp_port())
    results = {}

    def receiver():
        config = LiveConfig(backend="torch", output=OutputConfig(window=False), queue_capacity=CLIP_FRAMES,
                            transport=TransportConfig(kind="udp", listen=address, key_file=key_file,
                                                      session_timeout_s=20.0, idle_timeout_s=2.0))
        results["receiver"] = live_camera(config, model=tiny_model, on_frame=lambda f: results.setdefault("first", f))

    listening = threading.Thread(target=receiver)
    listening.start()
    for _ in range(200):  # the listening end writes the key file
        if key_file.exists():
            break
        threading.Event().wait(0.05)
    sent = live_camera(headless(clip, transport=TransportConfig(kind="udp", connect=address, key_file=key_file)),
                       model=tiny_model)
    listening.join(30)
    received = results["receiver"]
    assert sent.mode == "udp-sender" and received.mode == "udp-receiver"
    assert sent.frames_sent == sent.frames_captured == CLIP_FRAMES and sent.frames_rendered == 0
    assert received.frames_rendered == received.frames_received == CLIP_FRAMES
    assert received.stop_reason == "sender closed" and received.latency_clock == "estimated"
    assert received.avatar == "sender's portrait" and results["first"].driver is None
    assert received.bytes_per_frame == pytest.approx(sent.bytes_per_frame)


def test_udp_without_key_file_is_a_clear_error(tiny_model):
    config = headless(DEFAULT_DRIVING, transport=TransportConfig(kind="udp", connect=("127.0.0.1", 9)))
    with pytest.raises(LiveError, match="--key-file"):
        live_camera(config, model=tiny_model)


def test_udp_loopback_in_one_process(clip, tiny_model):
    stats = live_camera(headless(clip, transport=TransportConfig(kind="udp"), queue_capacity=CLIP_FRAMES,
                                 capture=CaptureConfig(camera=clip, paced=False, max_frames=4)), model=tiny_model)
    assert stats.mode == "udp-loopback" and stats.frames_rendered == 4 and stats.latency_clock == "shared"
    assert stats.transport["sender"]["wire_bytes"] > stats.transport["sender"]["frame_bytes"] > 0
    assert_every_frame_accounted_for(stats)


def test_receiver_half_without_a_sender_times_out(tmp_path, tiny_model):
    transport = TransportConfig(kind="udp", listen=("127.0.0.1", _free_udp_port()), key_file=tmp_path / "k",
                                session_timeout_s=0.3)
    with pytest.raises(SessionTimeoutError, match="no sender started a session within 0.3 s"):
        live_camera(LiveConfig(backend="torch", output=OutputConfig(window=False), transport=transport),
                    model=tiny_model)


def test_receiver_half_quits_while_waiting_for_a_sender(tmp_path, tiny_model):
    controls = LiveControls()
    threading.Timer(0.3, controls.quit).start()
    transport = TransportConfig(kind="udp", listen=("127.0.0.1", _free_udp_port()), key_file=tmp_path / "k")
    stats = live_camera(LiveConfig(backend="torch", output=OutputConfig(window=False), transport=transport),
                        model=tiny_model, controls=controls)
    assert stats.stop_reason == "quit" and stats.frames_rendered == 0


def test_sender_half_quits_while_waiting_for_a_receiver(tmp_path, clip, tiny_model):
    """Quit must not wait out the session timeout while the sender's handshake goes unanswered."""
    key_file = SessionKey.generate().save(tmp_path / "k")
    controls = LiveControls()
    threading.Timer(0.3, controls.quit).start()
    transport = TransportConfig(kind="udp", connect=("127.0.0.1", _free_udp_port()), key_file=key_file,
                                session_timeout_s=60.0)
    began = time.monotonic()
    stats = live_camera(headless(clip, transport=transport), model=tiny_model, controls=controls)
    assert time.monotonic() - began < 20
    assert stats.stop_reason == "quit" and stats.frames_sent == 0


# -- face-prior models: the semantic code stream, edits, keys -------------------------------------

@pytest.fixture(scope="module")
def tiny_prior_model():
    torch.manual_seed(0)
    return TalkingHeadModel(get_config("dagan++-tiny-prior")).eval()


class StreamSpy:
    """Records what the sender's stream encoder is given and what the receiver renders."""

    def __init__(self, monkeypatch):
        from sdk.live import receiver, session

        self.sent, self.rendered, self.edits = [], [], []
        make_encoder, to_code = session.stream_encoder, receiver.pipeline_code

        def stream_encoder(header):
            encoder = make_encoder(header)
            encode = encoder.encode

            def recording(*arguments):  # the code's arrays, then the timestamp
                self.sent.append(tuple(np.array(array) for array in arguments[:-1]))
                return encode(*arguments)
            encoder.encode = recording
            return encoder

        def pipeline_code(code, device):
            converted = to_code(code, device)
            self.rendered.append(converted)
            return converted

        from sdk.pipeline import TalkingHeadPipeline
        driving_motion = TalkingHeadPipeline.driving_motion

        def recording_motion(pipeline, state, code):
            self.edits.append(pipeline.edits)
            return driving_motion(pipeline, state, code)

        monkeypatch.setattr(session, "stream_encoder", stream_encoder)
        monkeypatch.setattr(receiver, "pipeline_code", pipeline_code)
        monkeypatch.setattr(TalkingHeadPipeline, "driving_motion", recording_motion)


@pytest.mark.parametrize("kind", ["inproc", "udp"])
def test_face_prior_model_sends_semantic_codes_and_applies_edits_and_keys(kind, clip, tiny_prior_model, monkeypatch):
    from sdk.codec import SEMANTIC_PRESETS
    from sdk.prior import SemanticCode

    spy = StreamSpy(monkeypatch)
    controls = LiveControls()
    seen = []

    def press_keys(frame):
        seen.append(frame)
        if len(seen) == 3:
            controls.handle_key(ord("j"))  # yaw +5
            controls.handle_key(ord("1"))  # mouth_open 0.25
            controls.handle_key(0xFF52)  # the up arrow (GTK): pitch -5

    config = dataclasses.replace(headless(clip, transport=TransportConfig(kind=kind), queue_capacity=CLIP_FRAMES),
                                 backend="auto", edits=Edits.parse("yaw=10,smile=0.5"))
    stats = live_camera(config, model=tiny_prior_model, on_frame=press_keys, controls=controls)
    stream = stats.codec["stream"]
    dims = min(SEMANTIC_PRESETS["default"].expression_dims or 32, tiny_prior_model.cfg.semantic.expression_dims)
    assert stream["kind"] == "semantic" and stream["expression_dims"] == dims
    assert stats.frames_sent == stats.frames_rendered == CLIP_FRAMES and stats.frames_dropped_total == 0
    # auto timed the face-prior model's backends (its graphs exported on first use) and took the fastest.
    choice = stats.backend_choice
    assert choice["chosen"] in choice["frame_ms"] and "torch" in choice["frame_ms"]
    assert stats.flagged_mesh_frames == {"missing": 0, "out_of_range": 0, "poor_fit": 0}
    assert stats.kbps > 0 and stats.encoder_ms > 0
    # Every code arrives as sent, within the quantization error; the coefficients not sent are 0.
    config_used = SEMANTIC_PRESETS["default"]
    limits = (0.5 + config_used.hysteresis) * np.array([*config_used.pose_steps, config_used.expression_step]) + 1e-9
    assert len(spy.sent) == len(spy.rendered) == CLIP_FRAMES
    for (pose, expression), code in zip(spy.sent, spy.rendered):
        assert isinstance(code, SemanticCode) and len(code.expression) == tiny_prior_model.prior().components
        assert (np.abs(code.pose - pose) <= limits[:6]).all()
        assert (np.abs(code.expression[:dims] - expression[:dims]) <= limits[6]).all()
        assert not code.expression[dims:].any()
    # The edits reach the renderer, and the keys change them from the next frame on.
    assert spy.edits[0] == Edits.parse("yaw=10,smile=0.5")
    assert spy.edits[-1] == Edits.parse("yaw=15,pitch=-5,smile=0.5,mouth_open=0.25")
    assert stats.edits == "yaw=15,pitch=-5,smile=0.5,mouth_open=0.25" and stats.edit_changes == 1
    assert_every_frame_accounted_for(stats)


def test_flagged_meshes_repeat_the_last_code_and_are_counted(clip, tiny_prior_model, monkeypatch):
    from sdk.face import FaceTracker
    from sdk.face.pose import rotation_from_angles

    update, calls = FaceTracker.update, []

    def damaged(self, *args):
        track = update(self, *args)
        calls.append(track)
        points = None if track.landmarks is None else track.landmarks.astype(np.float64)
        index = len(calls) - 1
        if index == 0:  # before the first good mesh: nothing to send yet
            points[13] = np.nan
        elif index == 3:  # a profile beyond the prior's yaw range
            centre = points.mean(0)
            points = (points - centre) @ rotation_from_angles(75.0, 0.0, 0.0).T + centre
        elif index == 5:  # a distorted mesh
            points = points + np.random.default_rng(0).normal(0, 25.0, points.shape)
        return dataclasses.replace(track, landmarks=points)

    monkeypatch.setattr(FaceTracker, "update", damaged)
    stats = live_camera(headless(clip, queue_capacity=CLIP_FRAMES), model=tiny_prior_model)
    assert stats.flagged_mesh_frames == {"missing": 1, "out_of_range": 1, "poor_fit": 1}
    assert stats.frames_before_first_face == 1 and stats.no_face_frames == 0
    assert stats.frames_sent == stats.frames_rendered == CLIP_FRAMES - 1
    assert_every_frame_accounted_for(stats)


def test_udp_halves_with_a_face_prior_model(tmp_path, clip, tiny_prior_model):
    key_file = SessionKey.generate().save(tmp_path / "session.key")
    address = ("127.0.0.1", _free_udp_port())
    results = {}

    def receiver():
        config = LiveConfig(backend="torch", output=OutputConfig(window=False), queue_capacity=CLIP_FRAMES,
                            edits=Edits(yaw=-20.0),
                            transport=TransportConfig(kind="udp", listen=address, key_file=key_file,
                                                      session_timeout_s=30.0, idle_timeout_s=3.0))
        results["receiver"] = live_camera(config, model=tiny_prior_model)

    listening = threading.Thread(target=receiver)
    listening.start()
    sent = live_camera(headless(clip, transport=TransportConfig(kind="udp", connect=address, key_file=key_file,
                                                                session_timeout_s=30.0)), model=tiny_prior_model)
    listening.join(60)
    received = results["receiver"]
    assert sent.codec["stream"] == received.codec["stream"] and sent.codec["stream"]["kind"] == "semantic"
    assert sent.frames_sent == CLIP_FRAMES and received.frames_rendered == received.frames_received == CLIP_FRAMES
    assert received.avatar == "sender's portrait" and received.edits == "yaw=-20" and sent.edits == ""
    assert received.bytes_per_frame == pytest.approx(sent.bytes_per_frame)


def test_stream_kind_follows_the_model_and_receivers_refuse_the_other(tiny_model, tiny_prior_model):
    from sdk.codec import PriorMismatchError, SemanticCodecConfig, SemanticStreamHeader
    from sdk.live.stream import codec_config

    prior = tiny_prior_model.prior()
    semantic = stream_header(tiny_prior_model.cfg, model_sha256(tiny_prior_model), 25.0,
                             SemanticCodecConfig(expression_dims=40), prior)
    assert isinstance(semantic, SemanticStreamHeader)  # E: at most the model's and the prior's
    assert semantic.expression_dims == min(tiny_prior_model.cfg.semantic.expression_dims, prior.components)
    parsed = parse_and_check_header(semantic.to_bytes(), tiny_prior_model.cfg, model_sha256(tiny_prior_model), prior)
    assert parsed == semantic
    with pytest.raises(ModelMismatchError, match="semantic codes .* a learned-keypoint model"):
        parse_and_check_header(semantic.to_bytes(), tiny_model.cfg, model_sha256(tiny_model))
    learned = stream_header(tiny_model.cfg, model_sha256(tiny_model), 25.0, CodecConfig()).to_bytes()
    with pytest.raises(ModelMismatchError, match="learned keypoints .* a face-prior model"):
        parse_and_check_header(learned, tiny_prior_model.cfg, model_sha256(tiny_prior_model), prior)
    other_prior = dataclasses.replace(semantic, prior_sha256="ab" * 32).to_bytes()
    with pytest.raises(PriorMismatchError, match="load the same prior file"):
        parse_and_check_header(other_prior, tiny_prior_model.cfg, model_sha256(tiny_prior_model), prior)
    assert codec_config("low", tiny_prior_model.cfg) == SemanticCodecConfig.preset("low")
    assert codec_config("low", tiny_model.cfg) == CodecConfig.preset("low")
    with pytest.raises(LiveError, match="not one of dagan\\+\\+-tiny-prior's"):
        codec_config("no-jacobians", tiny_prior_model.cfg)
    with pytest.raises(LiveError, match="takes a CodecConfig"):
        codec_config(SemanticCodecConfig(), tiny_model.cfg)
    assert codec_config("default", get_config("dagan++-tiny-hybrid")).semantic == SemanticCodecConfig.preset("default")


def test_cli_edit_errors(tmp_path, clip, tiny_model, tiny_prior_model, capsys):
    model_dirs = {"learned": save_model(tiny_model, tmp_path / "learned", half=False),
                  "prior": save_model(tiny_prior_model, tmp_path / "prior", half=False)}
    key = str(SessionKey.generate().save(tmp_path / "k"))
    cases = [("learned", ["--edit", "yaw=15,smile=0.5"], "edits need a face-prior model"),
             ("prior", ["--edit", "yaw=15", "--connect", "127.0.0.1:9", "--key-file", key],
              "a sender half (connect) renders none"),
             ("prior", ["--edit", "wink=1"], "unknown edit 'wink'"),
             ("prior", ["--codec", "no-jacobians"], "not one of dagan++-tiny-prior's")]
    for model, argv, message in cases:
        code = main(["live", "--camera", str(clip), "--model", str(model_dirs[model]), "--backend", "torch",
                     "--headless", "--frames", "2", *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], (argv, err)


def test_edit_keys_nudge_cycle_and_reset():
    from sdk.live.controls import KEY_BINDINGS, format_edits

    controls = LiveControls()
    assert not controls.handle_key(ord("j")) and controls.edits == Edits()  # a learned model takes no edits
    with pytest.raises(SdkError, match="face-prior model"):
        controls.nudge(yaw=5)
    controls.enable_edits(Edits.parse("roll=3"))
    assert controls.take_edits() == Edits(roll=3.0) and controls.take_edits() is None
    # j, J, the left arrow: GTK (and with NumLock), Windows, macOS
    for key in (ord("j"), ord("J"), 0xFF51, 0x10FF51, 0x250000, 0xF702):
        assert controls.handle_key(key)
    assert controls.edits.yaw == 30.0
    for key in (ord("l"), 0xFF53, ord("k"), 0x280000, ord("i"), ord("u"), ord("o"), ord("o")):
        assert controls.handle_key(key)
    assert (controls.edits.yaw, controls.edits.pitch, controls.edits.roll) == (20.0, 5.0, 8.0)
    for _ in range(50):  # clamped to its range
        controls.handle_key(ord("j"))
    assert controls.edits.yaw == 45.0
    levels = []
    for _ in range(5):  # 0.25, 0.5, 0.75, 1, then off
        controls.handle_key(ord("1"))
        levels.append(dict(controls.edits.controls).get("mouth_open"))
    assert levels == [0.25, 0.5, 0.75, 1.0, None]
    assert controls.handle_key(ord("6")) and dict(controls.edits.controls) == {"jaw_left_right": 0.25}
    modes = []
    for _ in range(4):
        controls.handle_key(ord("f"))
        modes.append((controls.edits.freeze_pose, controls.edits.freeze_expression))
    assert modes == [(True, False), (False, True), (True, True), (False, False)]
    assert Edits.parse(format_edits(controls.edits)) == controls.edits
    assert controls.handle_key(ord("0")) and controls.edits == Edits() and format_edits(Edits()) == ""
    assert controls.take_edits() == Edits()
    # Arrow keys are not characters: the left arrow's GTK code (0xFF51) no longer reads as "Q" (quit).
    assert not controls.quit_requested.is_set() and not controls.handle_key(0xFFBE)  # F1: nothing
    assert controls.handle_key(ord("q") | 0x100000) and controls.quit_requested.is_set()  # q with NumLock (GTK)
    assert all(key in KEY_BINDINGS for key in ("j/l", "i/k", "u/o", "1-6", "f", "0"))


# -- hybrid models: the hybrid stream kind (face-prior code + learned keypoints) -----------------

@pytest.fixture(scope="module")
def tiny_hybrid_model():
    torch.manual_seed(0)
    return TalkingHeadModel(get_config("dagan++-tiny-hybrid")).eval()


def test_hybrid_stream_header_names_its_kind_and_receivers_refuse_the_others(tiny_hybrid_model, tiny_prior_model):
    from sdk.codec import HybridCodecConfig, HybridStreamHeader, PriorMismatchError, SemanticCodecConfig
    from sdk.live.stream import codec_config, stream_description

    cfg, sha, prior = tiny_hybrid_model.cfg, model_sha256(tiny_hybrid_model), tiny_hybrid_model.prior()
    header = stream_header(cfg, sha, 25.0, codec_config("default", cfg), prior)
    assert isinstance(header, HybridStreamHeader) and header.num_kp == cfg.num_kp == 5
    assert header.expression_dims == min(16, cfg.semantic.expression_dims, prior.components)
    assert parse_and_check_header(header.to_bytes(), cfg, sha, prior) == header
    assert stream_description(header)["kind"] == "hybrid"
    with pytest.raises(ModelMismatchError, match="hybrid codes .* a face-prior model"):
        parse_and_check_header(header.to_bytes(), tiny_prior_model.cfg, model_sha256(tiny_prior_model), prior)
    semantic = stream_header(tiny_prior_model.cfg, model_sha256(tiny_prior_model), 25.0, SemanticCodecConfig(), prior)
    with pytest.raises(ModelMismatchError, match="semantic codes .* a hybrid model"):
        parse_and_check_header(semantic.to_bytes(), cfg, sha, prior)
    fewer = dataclasses.replace(header, num_kp=4).to_bytes()
    with pytest.raises(ModelMismatchError, match="K=4"):
        parse_and_check_header(fewer, cfg, sha, prior)
    with pytest.raises(PriorMismatchError, match="load the same prior file"):
        parse_and_check_header(dataclasses.replace(header, prior_sha256="ab" * 32).to_bytes(), cfg, sha, prior)
    with pytest.raises(LiveError, match="takes a HybridCodecConfig"):
        codec_config(SemanticCodecConfig(), cfg)
    with pytest.raises(LiveError, match="takes a HybridCodecConfig and the face prior"):
        stream_header(cfg, sha, 25.0, HybridCodecConfig())


@pytest.mark.parametrize("kind", ["inproc", "udp"])
def test_hybrid_model_sends_its_code_and_learned_keypoints_end_to_end(kind, clip, tiny_hybrid_model, monkeypatch):
    from sdk.codec import HYBRID_PRESETS
    from sdk.pipeline import HybridCode

    spy = StreamSpy(monkeypatch)
    config = dataclasses.replace(headless(clip, transport=TransportConfig(kind=kind), queue_capacity=CLIP_FRAMES),
                                 edits=Edits.parse("yaw=10"))
    stats = live_camera(config, model=tiny_hybrid_model)
    assert stats.codec["stream"]["kind"] == "hybrid" and stats.edits == "yaw=10"
    assert stats.frames_sent == stats.frames_rendered == CLIP_FRAMES and stats.frames_dropped_total == 0
    assert stats.flagged_mesh_frames == {"missing": 0, "out_of_range": 0, "poor_fit": 0}
    setting = HYBRID_PRESETS["default"]
    keep = 0.5 + setting.hysteresis
    dims = stats.codec["stream"]["expression_dims"]
    assert len(spy.sent) == len(spy.rendered) == CLIP_FRAMES
    for (pose, expression, keypoints, jacobians), code in zip(spy.sent, spy.rendered):
        assert isinstance(code, HybridCode) and code.learned.value.shape == (1, 5, 2)
        assert (np.abs(code.semantic.pose - pose) <= keep * np.array(setting.semantic.pose_steps) + 1e-9).all()
        assert (np.abs(code.semantic.expression[:dims] - expression[:dims])
                <= keep * setting.semantic.expression_step + 1e-9).all()
        assert np.abs(code.learned.value[0].numpy() - keypoints).max() <= keep * setting.keypoint_step + 1e-6
        assert np.abs(code.learned.jacobian[0].numpy() - np.clip(jacobians, -8, 8)).max() <= (
            keep * setting.jacobian_step + 1e-5)
    assert_every_frame_accounted_for(stats)


def test_udp_halves_and_the_cli_with_a_hybrid_model(tmp_path, clip, tiny_hybrid_model):
    key_file = SessionKey.generate().save(tmp_path / "session.key")
    address = ("127.0.0.1", _free_udp_port())
    results = {}

    def receiver():
        config = LiveConfig(backend="torch", output=OutputConfig(window=False), queue_capacity=CLIP_FRAMES,
                            transport=TransportConfig(kind="udp", listen=address, key_file=key_file,
                                                      session_timeout_s=30.0, idle_timeout_s=3.0))
        results["receiver"] = live_camera(config, model=tiny_hybrid_model)

    listening = threading.Thread(target=receiver)
    listening.start()
    sent = live_camera(headless(clip, transport=TransportConfig(kind="udp", connect=address, key_file=key_file,
                                                                session_timeout_s=30.0)), model=tiny_hybrid_model)
    listening.join(60)
    received = results["receiver"]
    assert sent.codec["stream"] == received.codec["stream"] and sent.codec["stream"]["kind"] == "hybrid"
    assert sent.frames_sent == CLIP_FRAMES and received.frames_rendered == received.frames_received == CLIP_FRAMES
    model_dir = save_model(tiny_hybrid_model, tmp_path / "hybrid", half=False)
    stats_json = tmp_path / "stats.json"
    assert main(["live", "--camera", str(clip), "--model", str(model_dir), "--backend", "torch", "--headless",
                 "--frames", "4", "--unpaced", "--edit", "yaw=-10", "--stats-json", str(stats_json)]) == 0
    stats = json.loads(stats_json.read_text())
    assert stats["codec"]["stream"]["kind"] == "hybrid" and stats["frames_rendered"] == 4

