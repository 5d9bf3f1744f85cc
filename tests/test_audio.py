"""The audio front end (sdk.audio): files and paced files as microphones, PortAudio, log-mel, time alignment, codes."""
from __future__ import annotations

import logging
import time
import wave

import av
import numpy as np
import pytest
import torch

from sdk.audio.codes import apply_pose_delta, neutral_code, pose_delta, speak_codes
from sdk.audio.features import (FRAME_RATE, LogMel, MelConfig, WindowSpec, frame_centre_mel, frames_for_samples,
                                mel_filter_bank, slice_mel)
from sdk.audio.source import (AudioDeviceError, Microphone, PacedAudioFile, StreamResampler, list_input_devices,
                              load_audio, open_audio_source)
from sdk.errors import MediaReadError
from sdk.models.audio_expression import LIVE_WINDOW, OFFLINE_WINDOW
from sdk.prior import relative_motion

pytestmark = pytest.mark.usefixtures("single_thread")
RATE = 16_000


def write_audio(path, samples: np.ndarray, rate: int = RATE, codec: str = "pcm_s16le") -> None:
    """samples (N,) or (N, channels) float in [-1, 1] -> an audio file through PyAV."""
    samples = np.asarray(samples, dtype=np.float32)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        planar = samples.reshape(len(samples), channels).T.copy()
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def tone(seconds: float, hz: float = 440.0, rate: int = RATE, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


# --- log-mel and alignment ---------------------------------------------------------------------

def test_filter_bank_is_triangles_covering_the_band():
    bank = mel_filter_bank()
    assert bank.shape == (80, 257) and bank.min() >= 0 and bank.max() <= 1 + 1e-6
    assert (bank.max(1) > 0.25).all()  # none falls between FFT bins (the lowest are narrower than a bin)
    centres = bank.argmax(1)
    assert (np.diff(centres) >= 0).all()  # ordered low to high


def test_log_mel_shape_silence_and_a_tone_in_its_band():
    log_mel = LogMel()
    mel = log_mel(torch.from_numpy(tone(1.0, 1000.0))[None])
    assert mel.shape == (1, 80, RATE // 160 + 1)
    hz = np.linspace(0, 8000, 257)[mel_filter_bank().argmax(1)]
    assert abs(hz[int(mel[0, :, 50].argmax())] - 1000.0) < 100.0
    silent = log_mel(torch.zeros(1, 800))
    assert torch.allclose(silent, log_mel.silence[None, :, None].expand_as(silent))


def test_normalisation_is_per_bin():
    log_mel = LogMel()
    raw = log_mel.raw(torch.from_numpy(tone(0.5))[None])
    log_mel.set_normalisation(raw.mean((0, 2)), raw.std((0, 2)))
    normalised = log_mel(torch.from_numpy(tone(0.5))[None])
    assert normalised.mean((0, 2)).abs().max() < 1e-3


def test_alignment_rules():
    assert frame_centre_mel(0) == 2 and frame_centre_mel(10) == 42  # frame j's centre: (j + 0.5) x 40 ms
    assert frames_for_samples(640) == 1 and frames_for_samples(641) == 2 and frames_for_samples(1) == 1
    assert OFFLINE_WINDOW.lookahead_ms() == pytest.approx(242.5)
    assert LIVE_WINDOW.lookahead_ms() == pytest.approx(42.5)
    spec = WindowSpec(mel_before=8, mel_after=8, frames_before=1, frames_after=1)
    assert spec.mel_range(0, 3) == (2 - 4 - 8, 2 + 12 + 8)
    assert spec.mel_frames(3) == 4 * (3 + 2 - 1) + 16
    with pytest.raises(ValueError):
        WindowSpec(mel_before=1, mel_after=1)
    with pytest.raises(ValueError):
        MelConfig(hop=150)  # 640 samples per frame is not a whole number of hops


def test_slice_mel_pads_with_silence_on_both_sides():
    mel = torch.arange(12, dtype=torch.float32).reshape(1, 2, 6)
    silence = torch.tensor([-1.0, -2.0])
    cut = slice_mel(mel, -2, 8, silence)
    assert cut.shape == (1, 2, 10)
    assert cut[0, :, :2].tolist() == [[-1, -1], [-2, -2]] and cut[0, :, 8:].tolist() == [[-1, -1], [-2, -2]]
    assert torch.equal(cut[0, :, 2:8], mel[0])
    assert slice_mel(mel, 7, 9, silence)[0].tolist() == [[-1, -1], [-2, -2]]  # wholly past the end


# --- files --------------------------------------------------------------------------------------

def test_wav_16k_mono_loads_without_a_note(tmp_path, caplog):
    path = tmp_path / "speech.wav"
    write_audio(path, tone(0.5))
    with caplog.at_level(logging.WARNING):
        clip = load_audio(path)
    assert clip.rate == RATE and clip.channels == 1 and abs(len(clip.samples) - RATE // 2) <= 1
    assert not caplog.records


@pytest.mark.parametrize("codec, suffix", [("pcm_s16le", ".wav"), ("flac", ".flac"), ("libmp3lame", ".mp3")])
def test_stereo_at_another_rate_is_mixed_resampled_and_noted_once(tmp_path, caplog, codec, suffix):
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    left = tone(0.5, 440.0, 44_100)
    path = tmp_path / f"stereo{suffix}"
    write_audio(path, np.stack([left, -0.5 * left], 1), rate=44_100, codec=codec)
    with caplog.at_level(logging.WARNING, logger="sdk.audio.source"):
        clip = load_audio(path)
    assert clip.rate == 44_100 and clip.channels == 2
    assert abs(len(clip.samples) - RATE // 2) < 0.02 * RATE  # MP3 adds a little padding
    notes = [r.message for r in caplog.records if "resampled" in r.message]
    assert len(notes) == 1 and "mixed to mono" in notes[0]


def test_non_audio_corrupt_and_empty_files_are_errors_naming_them(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all\n" * 20)
    with pytest.raises(MediaReadError, match="notes.wav"):
        load_audio(text)
    corrupt = tmp_path / "cut.wav"
    write_audio(corrupt, tone(0.2))
    corrupt.write_bytes(corrupt.read_bytes()[:30])
    with pytest.raises(MediaReadError, match="cut.wav"):
        load_audio(corrupt)
    with pytest.raises(MediaReadError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
    with pytest.raises(MediaReadError, match="empty.wav"):
        load_audio(empty)


def test_clipping_is_noted_and_the_audio_still_used(tmp_path, caplog):
    path = tmp_path / "loud.wav"
    write_audio(path, np.clip(tone(0.5, level=3.0), -1, 1))
    with caplog.at_level(logging.WARNING, logger="sdk.audio.source"):
        clip = load_audio(path)
    assert any("clipped" in r.message for r in caplog.records)
    assert np.abs(clip.samples).max() <= 1.0 and len(clip.samples) > 0


def test_a_paced_file_is_a_real_time_microphone(tmp_path):
    path = tmp_path / "speech.wav"
    write_audio(path, tone(0.25))
    source = open_audio_source(path)
    assert isinstance(source, PacedAudioFile)
    block = RATE // 20  # 50 ms
    started = time.monotonic()
    blocks = []
    while (chunk := source.read(block)) is not None:
        blocks.append(chunk)
    elapsed = time.monotonic() - started
    assert len(blocks) == 5 and all(len(b) == block for b in blocks)
    assert elapsed >= 0.2  # five 50 ms blocks, no sooner than spoken
    assert source.stats.end == "end of file" and source.stats.samples == 5 * block
    fast = PacedAudioFile(path, paced=False)
    started = time.monotonic()
    while fast.read(block) is not None:
        pass
    assert time.monotonic() - started < 0.1
    with pytest.raises(MediaReadError, match="nothere.wav"):
        open_audio_source(tmp_path / "nothere.wav")


def test_stream_resampler_keeps_the_duration_across_blocks():
    resample = StreamResampler(48_000, 2)
    stereo = np.stack([tone(1.0, rate=48_000)] * 2, 1)
    out = np.concatenate([resample(stereo[i:i + 960]) for i in range(0, len(stereo), 960)])
    assert abs(len(out) - RATE) < 400  # the resampler holds back a few ms until flushed
    assert StreamResampler(RATE, 1)(tone(0.1)).shape == (1600,)


# --- microphones (PortAudio) ----------------------------------------------------------------------

def test_no_input_device_is_a_clear_error_listing_the_devices():
    try:
        devices = list_input_devices()
    except AudioDeviceError as exc:  # no sounddevice or no PortAudio here: that error says how to get them
        assert "sounddevice" in str(exc) or "PortAudio" in str(exc)
        pytest.skip(f"PortAudio is not usable on this machine ({exc})")
    if devices:
        pytest.skip(f"this machine has input devices ({devices[0]['name']}): the no-device error cannot happen")
    with pytest.raises(AudioDeviceError, match="no audio input device found"):
        Microphone()
    with pytest.raises(AudioDeviceError, match="no audio input device"):
        open_audio_source("3")


def test_missing_sounddevice_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sounddevice(name, *args, **kwargs):
        if name == "sounddevice":
            raise ImportError("No module named 'sounddevice'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sounddevice)
    with pytest.raises(AudioDeviceError, match=r"talking-head-sdk\[audio\]"):
        list_input_devices()


NULL_DEVICE_SCRIPT = """
import json, sys
import sdk.audio.source as source
source.DEVICE_TIMEOUT_S = 0.3
devices = source.list_input_devices()
microphone = source.Microphone("nullpcm")
chunk = microphone.read(3200)
microphone._stream.stop()  # the device stops delivering
while microphone.read(1600) is not None:
    pass
microphone.close()
print(json.dumps({"devices": [d["name"] for d in devices], "rate": microphone.rate, "shape": list(chunk.shape),
                  "finite": bool((abs(chunk) < 2).all()), "end": microphone.stats.end}))
"""


def test_a_real_portaudio_stream_on_an_alsa_null_device(tmp_path):
    """PortAudio's ALSA host on ALSA's null plugin (an ~/.asoundrc in a throwaway HOME): a real
    stream at the device's own rate, resampled to 16 kHz; then the device stops delivering."""
    import json
    import os
    import subprocess
    import sys

    try:
        list_input_devices()
    except AudioDeviceError as exc:
        pytest.skip(f"PortAudio is not usable on this machine ({exc})")
    if not sys.platform.startswith("linux"):
        pytest.skip("the null device is an ALSA plugin (Linux only)")
    (tmp_path / ".asoundrc").write_text('pcm.nullpcm {\n    type plug\n    slave.pcm "nullraw"\n}\n'
                                        "pcm.nullraw {\n    type null\n}\n")
    run = subprocess.run([sys.executable, "-c", NULL_DEVICE_SCRIPT], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": str(tmp_path)})
    if run.returncode and "nullpcm" in run.stderr and "no audio input device" in run.stderr:
        pytest.skip(f"PortAudio lists no ALSA null device here: {run.stderr.strip().splitlines()[-1]}")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "nullpcm" in result["devices"]
    assert result["shape"] == [3200] and result["finite"]  # 200 ms at 16 kHz
    assert result["end"] == "device stopped"


# --- codes ------------------------------------------------------------------------------------------

def test_pose_deltas_round_trip_and_speak_codes_give_them_back():
    rng = np.random.default_rng(0)
    reference = np.array([10.0, -5.0, 3.0, 0.05, -0.02, np.log(0.4)])
    for _ in range(5):
        delta = np.concatenate([rng.normal(0, 8, 3), rng.normal(0, 0.1, 2), rng.normal(0, 0.05, 1)])
        assert np.allclose(pose_delta(apply_pose_delta(reference, delta), reference), delta, atol=1e-9)
    expression = rng.normal(size=(4, 32))
    deltas = rng.normal(0, 2, size=(4, 6)) * [1, 1, 1, 0.01, 0.01, 0.01]
    anchor = neutral_code(reference, 32)
    for code, coefficients, delta in zip(speak_codes(reference, expression, deltas), expression, deltas):
        motion = relative_motion(code, anchor)
        assert np.allclose(motion.expression, coefficients)
        assert np.allclose(pose_delta(code.pose, reference), delta, atol=1e-9)
        assert np.allclose(motion.translation, delta[3:5]) and motion.log_scale == pytest.approx(delta[5])


def test_frame_rate_is_25():
    assert FRAME_RATE == 25 and MelConfig().mel_per_frame == 4
