"""The audio graphs, their backends and export (issue 13 item 5), and the live microphone (item 4); tiny models."""
from __future__ import annotations

import json
import numpy as np
import pytest
import torch

from sdk.audio.driver import AudioDriver, MotionSampling
from sdk.audio.features import LogMel, frames_for_samples
from sdk.audio.live import LiveAudioCoder, window_of
from sdk.audio.model_file import save_audio_model
from sdk.audio.source import AudioDeviceError, SourceStats
from sdk.errors import MediaReadError
from sdk.models import TalkingHeadModel, get_config
from sdk.models.audio_to_code import AudioToCodeModel
from sdk.runtime.audio_backend import (BackendError, TorchAudioBackend, audio_graph_path, create_audio_backend,
                                       load_audio_graphs)
from sdk.runtime.audio_graphs import SampleLogMel, audio_graph_specs, build_audio_graphs, frame_samples

from test_audio_models import RATE, speech, tiny_config, write_wav

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def tiny_audio_model() -> AudioToCodeModel:
    torch.manual_seed(0)
    model = AudioToCodeModel(tiny_config()).eval()
    with torch.no_grad():  # a space of some size, so motion shows in the codes
        model.motion_space.radius.fill_(2.0)
        model.motion_space.pose_std.copy_(torch.tensor([3.0, 2.0, 1.0, 0.01, 0.01, 0.01]))
    return model


@pytest.fixture(scope="module")
def tiny_prior_model():
    torch.manual_seed(0)
    return TalkingHeadModel(get_config("dagan++-tiny-prior")).eval()


@pytest.fixture(scope="module")
def exported(tiny_audio_model, tmp_path_factory):
    """The tiny audio model's onnx + tflite fp32 graphs (and its folder), via `python -m export --audio`."""
    from export.cli import main

    root = tmp_path_factory.mktemp("audio_export")
    model_dir = save_audio_model(tiny_audio_model, root / "model", half=False)
    assert main(["--audio", str(model_dir), "--format", "onnx,tflite", "--precision", "fp32", "--out",
                 str(root / "out"), "--no-progress"]) == 0
    return model_dir, root / "out"


# -- the graphs ----------------------------------------------------------------------------------

def test_sample_log_mel_is_the_log_mel_on_whole_frames():
    log_mel = LogMel()
    log_mel.set_normalisation(torch.linspace(-5, -1, 80), torch.linspace(1, 2, 80))
    samples = torch.from_numpy(speech(0.5))[None]
    reference = log_mel(samples)  # frame m centred on sample 160 m
    start, stop = 10, 30
    from sdk.runtime.audio_graphs import sample_range

    lo, hi = sample_range(start, stop)
    assert torch.allclose(SampleLogMel(log_mel)(samples[:, lo:hi]), reference[..., start:stop], atol=1e-3)


def test_expression_graph_is_the_live_net_and_motion_graph_the_driver_step(tiny_audio_model):
    model = tiny_audio_model
    samples = speech(1.0)
    driver = AudioDriver(model)
    mel = driver.features(samples)
    offline = driver.expression(mel, driver.frames_of(samples), live=True)
    graphs = build_audio_graphs(model)
    window = model.config.expression_live.window
    for frame in (10, 20):  # windows inside the audio (at its edges the offline path pads mel frames, not samples)
        with torch.no_grad():
            got = graphs["audio_expression"](torch.from_numpy(window_of(samples, window, frame, 1))[None])
        assert np.allclose(got[0, 0].numpy(), offline[frame], atol=1e-4)
    motion_window = model.config.motion.window
    start, stop = motion_window.mel_range(8, model.config.motion_space.clip_frames)
    from sdk.audio.features import slice_mel

    state, offset = torch.full((1, 6), 0.3), torch.full((1, 8), 0.1)
    with torch.no_grad():
        log_weights = model.motion(slice_mel(mel, start, stop, model.log_mel.silence), state)
        expected = state[:, None] + model.motion_space.decode(
            model.motion_space.reconstruct(log_weights.exp()) + offset).transpose(1, 2)
        got = graphs["audio_motion"](torch.from_numpy(window_of(samples, motion_window, 8, 4))[None], state, offset)
    assert torch.allclose(got, expected, atol=1e-4)
    specs = audio_graph_specs(model.config)
    start, stop = frame_samples(window, 0, 1)
    assert specs["audio_expression"].inputs[0].shape == (1, stop - start)
    assert [t.name for t in specs["audio_motion"].inputs] == ["samples", "previous_pose", "offset"]


# -- the live coder ----------------------------------------------------------------------------

def test_live_coder_one_frame_per_40ms_as_soon_as_its_audio_is_there(tiny_audio_model):
    backend = TorchAudioBackend(tiny_audio_model)
    samples = speech(0.83)
    coder = LiveAudioCoder(backend, MotionSampling(seed=1))
    assert coder.lookahead_ms == 42.5 and coder.ready_at(0) - 320 == 680  # 42.5 ms past frame 0's centre
    frames = []
    for start in range(0, len(samples), 160):
        before = coder.next_frame
        got = coder.push(samples[start:start + 160])
        assert all(coder.ready_at(f.index) <= coder.received for f in got)
        assert coder.ready_at(before + len(got)) > coder.received  # nothing held back
        frames += got
    frames += coder.finish()
    assert [f.index for f in frames] == list(range(frames_for_samples(len(samples))))
    whole = LiveAudioCoder(backend, MotionSampling(seed=1))
    again = whole.push(samples) + whole.finish()  # block size does not change the codes
    for a, b in zip(frames, again):
        assert np.allclose(a.expression, b.expression, atol=1e-5) and np.allclose(a.pose_delta, b.pose_delta, atol=1e-5)


def test_head_motion_is_causal_seeded_and_scaled(tiny_audio_model):
    backend = TorchAudioBackend(tiny_audio_model)
    samples = speech(1.0)
    clip = tiny_audio_model.config.motion_space.clip_frames

    def motion(audio, **sampling):
        coder = LiveAudioCoder(backend, MotionSampling(**sampling))
        return np.stack([f.pose_delta for f in coder.push(audio) + coder.finish()])

    base = motion(samples, seed=0)
    changed = samples.copy()
    changed[frame_samples(tiny_audio_model.config.motion.window, clip, clip)[0] + 4000:] *= -3.0
    later = motion(changed, seed=0)
    assert np.allclose(base[:2 * clip], later[:2 * clip])  # clip 2 is the first to hear the change
    assert not np.allclose(base, motion(samples, seed=1))
    assert np.abs(motion(samples, seed=0, motion_scale=0.0)).max() == 0.0


def test_silence_and_audio_shorter_than_a_window(tiny_audio_model):
    backend = TorchAudioBackend(tiny_audio_model)
    coder = LiveAudioCoder(backend)
    frames = coder.push(np.zeros(RATE // 2, np.float32)) + coder.finish()
    assert len(frames) == 13 and all(np.isfinite(f.expression).all() for f in frames)
    short = LiveAudioCoder(backend)
    assert short.push(speech(0.05)) == [] and [f.index for f in short.finish()] == [0, 1]


def test_shipped_model_live_keeps_the_mouth_closed_in_silence():
    from sdk.audio.model_file import load_audio_model
    from sdk.eval.audio import lip_gap
    from sdk.prior import load_prior

    prior = load_prior("default")
    coder = LiveAudioCoder(TorchAudioBackend(load_audio_model("default")))
    frames = coder.push(np.zeros(RATE, np.float32)) + coder.finish()
    gap = lip_gap(prior.basis.decode(np.stack([f.expression for f in frames])))
    assert np.abs(gap).max() < 0.15 * float(prior.controls.units[0])


# -- backends and export -----------------------------------------------------------------------

def test_onnx_backend_caches_its_graphs_and_matches_torch(tiny_audio_model, tmp_path):
    torch_backend = TorchAudioBackend(tiny_audio_model)
    onnx_backend = create_audio_backend(tiny_audio_model, "onnx", cache_dir=tmp_path)
    files = sorted(tmp_path.rglob("*.onnx"))
    assert len(files) == 2 and onnx_backend.name == "onnx-cpu"
    mtimes = [f.stat().st_mtime_ns for f in files]
    create_audio_backend(tiny_audio_model, "onnx", cache_dir=tmp_path)
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # made once
    samples = speech(0.6)
    codes = []
    for backend in (torch_backend, onnx_backend):
        coder = LiveAudioCoder(backend, MotionSampling(seed=2))
        codes.append(np.stack([np.r_[f.expression, f.pose_delta] for f in coder.push(samples) + coder.finish()]))
    assert np.allclose(codes[0], codes[1], atol=1e-4)
    with pytest.raises(BackendError, match="unknown audio backend"):
        create_audio_backend(tiny_audio_model, "coreml")
    with pytest.raises(BackendError, match="export folder"):
        create_audio_backend(tiny_audio_model, "tflite")


def test_export_verify_and_tflite_backend(exported, tiny_audio_model, tmp_path):
    from export.audio import AudioExportManifest, verify_audio_export

    model_dir, out = exported
    manifest = AudioExportManifest.load(out)
    assert {(e.format, e.precision, e.graph, e.status) for e in manifest.entries} == {
        (fmt, "fp32", graph, "ok") for fmt in ("onnx", "tflite") for graph in ("audio_expression", "audio_motion")}
    clip = tmp_path / "speech.wav"
    write_wav(clip, speech(1.0))
    report = verify_audio_export(out, str(model_dir), clip)
    assert report.passed and report.frames == 25 and {g.format for g in report.groups} == {"onnx", "tflite"}
    assert all(error < 1e-3 for group in report.groups for error in group.relative_error.values())
    tflite = create_audio_backend(tiny_audio_model, "tflite", graphs=out)
    assert tflite.name == "tflite-xnnpack" and tflite.expression(np.zeros(
        audio_graph_specs(tiny_audio_model.config)["audio_expression"].inputs[0].shape[1], np.float32)).shape == (1, 32)
    other = AudioToCodeModel(tiny_config())
    with pytest.raises(BackendError, match="not of the given one"):
        create_audio_backend(other, "onnx", graphs=out)
    with pytest.raises(BackendError, match="no onnx int8 audio graphs"):
        create_audio_backend(tiny_audio_model, "onnx-int8", graphs=out)


def test_verify_reports_a_damaged_file_and_the_cli_prints_the_table(exported, tmp_path, capsys):
    import shutil

    from export.cli import main

    model_dir, out = exported
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    clip = tmp_path / "speech.wav"
    write_wav(clip, speech(0.5))
    assert main(["verify", str(copy), "--audio-model", str(model_dir), "--audio-clip", str(clip)]) == 0
    assert "audio_expression.expression" in capsys.readouterr().out
    assert json.loads((copy / "verify.json").read_text())["audio"]["passed"]
    path = audio_graph_path(copy, "tflite", "fp32", "audio_motion")
    path.write_bytes(path.read_bytes()[:1000])
    assert main(["verify", str(copy), "--audio-model", str(model_dir), "--audio-clip", str(clip)]) == 1
    groups = {g["format"]: g for g in json.loads((copy / "verify.json").read_text())["audio"]["groups"]}
    assert groups["tflite"]["status"] == "corrupt" and groups["onnx"]["status"] == "pass"
    with pytest.raises(BackendError):
        load_audio_graphs(copy, "tflite", "fp32")


def test_int8_and_coreml_export(tiny_audio_model, tmp_path):
    from export.audio import run_audio_export, verify_audio_export

    model_dir = save_audio_model(tiny_audio_model, tmp_path / "model", half=False)
    clip = tmp_path / "speech.wav"
    write_wav(clip, speech(1.5))
    manifest = run_audio_export(str(model_dir), ("onnx", "coreml"), ("int8",), tmp_path / "out", calibration=clip,
                                show_progress=False)
    assert all(entry.status == "ok" for entry in manifest.entries), manifest.entries
    int8 = create_audio_backend(tiny_audio_model, "onnx-int8", graphs=tmp_path / "out")
    assert int8.name == "onnx-int8-cpu" and int8.precision == "int8"
    report = verify_audio_export(tmp_path / "out", str(model_dir), clip)
    statuses = {g.format: g.status for g in report.groups}
    assert statuses["coreml"] == "checked" and statuses["onnx"] in ("pass", "fail")  # a random net: no tolerance


# -- the live microphone session ----------------------------------------------------------------

def mic_config(tmp_path, **output):
    from sdk.live import CaptureConfig, LiveConfig, OutputConfig

    return LiveConfig(backend="torch", capture=CaptureConfig(paced=False),
                      output=OutputConfig(window=False, **output))


def test_microphone_session_same_stream_kind_and_audio_in_the_file(tmp_path, tiny_prior_model, tiny_audio_model):
    import av

    from sdk.live.microphone import MicrophoneConfig, live_microphone

    audio = tmp_path / "speech.wav"
    write_wav(audio, speech(0.5))
    stats = live_microphone(mic_config(tmp_path, out_path=tmp_path / "mic.mp4"), MicrophoneConfig(source=audio),
                            model=tiny_prior_model, audio_model=tiny_audio_model)
    assert stats.frames_captured == stats.frames_sent == 13
    assert stats.frames_captured == stats.frames_rendered + stats.frames_dropped_total
    assert stats.codec["stream"]["kind"] == "semantic" and stats.stop_reason == "end of file"
    assert stats.audio_to_frame_latency_ms_p95 is not None and stats.lookahead_ms == 42.5
    assert stats.audio_backend == "torch" and stats.kbps > 0 and stats.audio_seconds == pytest.approx(0.5, abs=0.02)
    with av.open(str(tmp_path / "mic.mp4")) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) == 13
    with av.open(str(tmp_path / "mic.mp4")) as container:
        samples = sum(frame.samples for frame in container.decode(container.streams.audio[0]))
    assert 13 * 640 <= samples <= 13 * 640 + 2048, "the audio of the 13 frames (AAC adds a priming frame, pads the last)"
    document = stats.to_dict()
    for key in ("audio_to_frame_latency_ms_p50", "audio_underruns", "audio_overruns", "frames_dropped"):
        assert key in document


def test_microphone_over_udp_loopback_and_frame_limit(tmp_path, tiny_prior_model, tiny_audio_model):
    from dataclasses import replace

    from sdk.live import CaptureConfig, TransportConfig
    from sdk.live.microphone import MicrophoneConfig, live_microphone

    audio = tmp_path / "speech.wav"
    write_wav(audio, speech(1.0))
    config = replace(mic_config(tmp_path), transport=TransportConfig(kind="udp"),
                     capture=CaptureConfig(paced=False, max_frames=6))
    stats = live_microphone(config, MicrophoneConfig(source=audio, motion_scale=0.0), model=tiny_prior_model,
                            audio_model=tiny_audio_model)
    assert stats.mode == "udp-loopback" and stats.frames_sent == 6 and stats.stop_reason == "frame limit"


def test_microphone_bad_input(tmp_path, tiny_prior_model, tiny_audio_model, monkeypatch, capsys):
    from sdk.audio import source
    from sdk.cli import main
    from sdk.live import LiveConfig, LiveError, TransportConfig
    from sdk.live.microphone import MicrophoneConfig, live_microphone

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    with pytest.raises(MediaReadError, match="notes.wav"):
        live_microphone(mic_config(tmp_path), MicrophoneConfig(source=not_audio), model=tiny_prior_model,
                        audio_model=tiny_audio_model)
    assert main(["live", "--mic", str(not_audio), "--headless"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error:") and "notes.wav" in error[0]

    monkeypatch.setattr(source, "list_input_devices", lambda: [])
    with pytest.raises(AudioDeviceError, match="no audio input device"):
        live_microphone(mic_config(tmp_path), MicrophoneConfig(source=None), model=tiny_prior_model,
                        audio_model=tiny_audio_model)
    monkeypatch.setattr(source, "list_input_devices",
                        lambda: [{"index": 3, "name": "USB mic", "channels": 1, "rate": 48000.0}])
    with pytest.raises(AudioDeviceError, match="3: USB mic"):
        source.resolve_input_device("headset")

    with pytest.raises(LiveError, match="learned keypoints"):
        _learned_renderer(tmp_path, tiny_audio_model)
    with pytest.raises(LiveError, match="receiver half"):
        live_microphone(LiveConfig(transport=TransportConfig(kind="udp", listen=("127.0.0.1", 0))))


def _learned_renderer(tmp_path, audio_model):
    from sdk.live.microphone import MicrophoneConfig, live_microphone

    audio = tmp_path / "speech.wav"
    write_wav(audio, speech(0.2))
    live_microphone(mic_config(tmp_path), MicrophoneConfig(source=audio),
                    model=TalkingHeadModel(get_config("dagan++-tiny")).eval(), audio_model=audio_model)


class StoppingDevice:
    """A microphone that delivers 0.3 s of speech, then nothing (its driver stopped)."""

    kind, name = "device", "fake mic"

    def __init__(self):
        self.samples = speech(0.3)
        self.stats = SourceStats()

    def read(self, block):
        start = self.stats.samples
        if start >= len(self.samples):
            self.stats.end = "device stopped"
            return None
        self.stats.samples += block
        chunk = self.samples[start:start + block]
        return np.pad(chunk, (0, block - len(chunk)))

    def start_fresh(self):
        pass

    def close(self):
        self.stats.end = self.stats.end or "stopped"


def test_a_device_that_stops_ends_the_session_with_its_frames(tmp_path, tiny_prior_model, tiny_audio_model,
                                                              monkeypatch):
    from sdk.audio import source
    from sdk.live.microphone import MicrophoneConfig, live_microphone

    monkeypatch.setattr(source, "open_audio_source", lambda spec, paced=True: StoppingDevice())
    stats = live_microphone(mic_config(tmp_path), MicrophoneConfig(source="fake"), model=tiny_prior_model,
                            audio_model=tiny_audio_model)
    assert stats.stop_reason == "device stopped" and stats.frames_sent == 8  # ceil(0.3 s / 40 ms)
    assert stats.audio_source == "device: fake mic"


def test_silence_and_a_clip_shorter_than_a_window_drive_the_avatar(tmp_path, tiny_prior_model, tiny_audio_model):
    from sdk.live.microphone import MicrophoneConfig, live_microphone

    for name, samples, frames in (("silence", np.zeros(RATE // 5, np.float32), 5), ("short", speech(0.05), 2)):
        audio = tmp_path / f"{name}.wav"
        write_wav(audio, samples)
        stats = live_microphone(mic_config(tmp_path), MicrophoneConfig(source=audio), model=tiny_prior_model,
                                audio_model=tiny_audio_model)
        assert stats.frames_sent == frames and stats.frames_rendered + stats.frames_dropped_total == frames, name


def test_cli_live_mic_writes_the_stats(tmp_path, tiny_prior_model, tiny_audio_model, capsys):
    from sdk.checkpoint import save_model
    from sdk.cli import main

    model_dir = save_model(tiny_prior_model, tmp_path / "prior", half=False)
    audio_dir = save_audio_model(tiny_audio_model, tmp_path / "audio", half=False)
    audio = tmp_path / "speech.wav"
    write_wav(audio, speech(0.4))
    assert main(["live", "--mic", str(audio), "--model", str(model_dir), "--audio-model", str(audio_dir),
                 "--backend", "torch", "--headless", "--unpaced", "--frames", "5", "--seed", "3",
                 "--stats-json", str(tmp_path / "stats.json")]) == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames_sent"] == 5 and stats["audio_backend"] == "torch" and "audio_to_frame_latency_ms_p95" in stats
    capsys.readouterr()
    assert main(["live", "--mic", str(audio), "--model", str(model_dir), "--headless", "--epsilon", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error:")


NULL_MIC_SCRIPT = """
import json, sys
from sdk.live import CaptureConfig, LiveConfig, OutputConfig
from sdk.live.microphone import MicrophoneConfig, live_microphone
config = LiveConfig(model=sys.argv[1], backend="torch", capture=CaptureConfig(max_frames=10),
                    output=OutputConfig(window=False))
stats = live_microphone(config, MicrophoneConfig(source="nullpcm", audio_model=sys.argv[2]))
print(json.dumps(stats.to_dict()))
"""


def test_a_real_portaudio_microphone_drives_the_session(tmp_path, tiny_prior_model, tiny_audio_model):
    """ALSA's null plugin as a PortAudio input (see test_audio.py): a real stream of silence, 10 frames."""
    import os
    import subprocess
    import sys

    from sdk.audio.source import list_input_devices
    from sdk.checkpoint import save_model

    try:
        list_input_devices()
    except AudioDeviceError as exc:
        pytest.skip(f"PortAudio is not usable on this machine ({exc})")
    if not sys.platform.startswith("linux"):
        pytest.skip("the null device is an ALSA plugin (Linux only)")
    (tmp_path / ".asoundrc").write_text('pcm.nullpcm {\n    type plug\n    slave.pcm "nullraw"\n}\n'
                                        "pcm.nullraw {\n    type null\n}\n")
    model_dir = save_model(tiny_prior_model, tmp_path / "prior", half=False)
    audio_dir = save_audio_model(tiny_audio_model, tmp_path / "audio", half=False)
    run = subprocess.run([sys.executable, "-c", NULL_MIC_SCRIPT, str(model_dir), str(audio_dir)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"})
    if run.returncode and "no audio input device" in run.stderr:
        pytest.skip(f"PortAudio lists no ALSA null device here: {run.stderr.strip().splitlines()[-1]}")
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stdout.strip().splitlines()[-1])
    assert stats["frames_sent"] == 10 and stats["stop_reason"] == "frame limit"
    # the null device has no clock: it delivers faster than real time, and what the queue cannot hold is counted
    assert stats["audio_source"].startswith("device: nullpcm") and stats["audio_overruns"] >= 0
