"""Audio-to-code networks, their file, the driver, training data, training, evaluation and `speak` (tiny models)."""
from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from sdk.audio.driver import AudioDriver, MotionSampling
from sdk.audio.features import FRAME_RATE, speech_mean
from sdk.audio.model_file import check_prior, load_audio_model, save_audio_model
from sdk.errors import ModelLoadError, SdkError
from sdk.models.audio_expression import LIVE_WINDOW, AudioExpressionConfig, AudioExpressionNet
from sdk.models.audio_frame_encoder import FrameEncoderConfig
from sdk.models.audio_motion import AudioMotionConfig, AudioMotionNet
from sdk.models.audio_motion_space import MotionSpace, MotionSpaceConfig
from sdk.models.audio_to_code import AudioModelConfig, AudioToCodeModel

pytestmark = pytest.mark.usefixtures("single_thread")
RATE = 16_000


def tiny_config(dims: int = 32) -> AudioModelConfig:
    encoder = FrameEncoderConfig(channels=8, features=8)
    return AudioModelConfig(
        expression=AudioExpressionConfig(encoder=encoder, channels=8, expression_dims=dims, utterance_norm=True),
        expression_live=AudioExpressionConfig(window=LIVE_WINDOW, encoder=encoder, channels=8, expression_dims=dims),
        motion_space=MotionSpaceConfig(clip_frames=4, features=8, bases=4, channels=8),
        motion=AudioMotionConfig(encoder=encoder, hidden=8, bases=4))


@pytest.fixture(scope="module")
def tiny_audio_model() -> AudioToCodeModel:
    torch.manual_seed(0)
    return AudioToCodeModel(tiny_config()).eval()


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts at a syllable rate: speech-like loudness changes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * rng.normal(size=len(t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def write_wav(path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def test_network_shapes():
    config = tiny_config()
    for expression_config in (config.expression, config.expression_live):
        net = AudioExpressionNet(expression_config).eval()
        for frames in (1, 7):
            mel = torch.randn(2, 80, expression_config.window.mel_frames(frames))
            speech = speech_mean(mel) if expression_config.utterance_norm else None
            assert net(mel, speech).shape == (2, frames, 32)
    space = MotionSpace(config.motion_space)
    clip = torch.randn(3, 6, 4)
    feature = space.encode(clip)
    assert feature.shape == (3, 8) and torch.allclose(feature.norm(dim=-1), torch.full((3,), 8 ** 0.5))
    weights = space.weights(feature)
    assert weights.shape == (3, 4) and torch.allclose(weights.sum(-1), torch.ones(3))
    assert space.decode(space.reconstruct(weights)).shape == (3, 6, 4)
    motion = AudioMotionNet(config.motion)
    log_weights = motion(torch.randn(3, 80, config.motion.window.mel_frames(4)), torch.zeros(3, 6))
    assert log_weights.shape == (3, 4) and torch.allclose(log_weights.exp().sum(-1), torch.ones(3))


def test_utterance_norm_takes_out_the_voice_and_microphone_colouring():
    config = tiny_config().expression
    net = AudioExpressionNet(config).eval()
    net.utterance_reference.normal_()
    mel = torch.randn(1, 80, config.window.mel_frames(6))
    colouring = 2 * torch.randn(1, 80, 1)  # a per-bin gain: another voice or microphone, the same speech
    with torch.no_grad():
        assert torch.allclose(net(mel, speech_mean(mel)), net(mel + colouring, speech_mean(mel + colouring)), atol=1e-5)
    with pytest.raises(ValueError, match="speech_mean"):
        net(mel)
    with pytest.raises(ValueError, match="mel front end"):
        AudioExpressionConfig(front_end="embedding", utterance_norm=True)
    # Pauses (the quietest 30 % of frames) do not count.
    speaking = torch.randn(1, 80, 70) + 1.0
    utterance = torch.cat([speaking, torch.full((1, 80, 30), -4.0)], -1)[..., torch.randperm(100)]
    assert torch.allclose(speech_mean(utterance), speaking.mean(-1), atol=1e-5)
    # A model saved before the option had it off (its config has no such field).
    old = AudioModelConfig().to_dict()
    del old["expression"]["utterance_norm"]
    assert not AudioModelConfig.from_dict(old).expression.utterance_norm and AudioModelConfig().expression.utterance_norm


def test_config_round_trip_and_checks():
    config = tiny_config()
    assert AudioModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown fields"):
        AudioModelConfig.from_dict({**config.to_dict(), "extra": 1})
    with pytest.raises(ValueError, match="even"):
        AudioExpressionConfig(window=LIVE_WINDOW.__class__(mel_before=12, mel_after=4, frames_before=3))
    with pytest.raises(ValueError, match="bases"):
        AudioModelConfig(motion=AudioMotionConfig(bases=5))


def test_model_file_round_trip_checksum_and_prior(tmp_path, tiny_audio_model):
    directory = save_audio_model(tiny_audio_model, tmp_path / "m", metadata={"prior_sha256": "ab" * 32})
    loaded = load_audio_model(directory)
    for key, value in tiny_audio_model.state_dict().items():
        expected = value.half().float() if value.is_floating_point() else value
        assert torch.equal(loaded.state_dict()[key], expected)
    check_prior(loaded, "ab" * 32)
    with pytest.raises(ModelLoadError, match="face prior"):
        check_prior(loaded, "cd" * 32)
    weights = directory / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelLoadError, match="checksum"):
        load_audio_model(directory)
    with pytest.raises(ModelLoadError, match="missing"):
        load_audio_model(tmp_path / "nothing")


def test_driver_lengths_seeds_scale_and_short_audio(tiny_audio_model):
    driver = AudioDriver(tiny_audio_model)
    samples = speech(1.0)
    mel = driver.features(samples)
    frames = driver.frames_of(samples)
    assert frames == 25
    assert driver.expression(mel, frames).shape == (25, 32)
    assert driver.expression(mel, frames, live=True).shape == (25, 32)
    first = driver.motion(mel, frames, MotionSampling(seed=1))
    assert first.shape == (25, 6)
    assert np.array_equal(first, driver.motion(mel, frames, MotionSampling(seed=1)))
    assert not np.allclose(first, driver.motion(mel, frames, MotionSampling(seed=2)))
    assert not driver.motion(mel, frames, MotionSampling(motion_scale=0.0)).any()
    # Shorter than one window (and than one frame): padded with silence, still a frame per started 40 ms.
    short = speech(0.03)
    assert driver.expression(driver.features(short), driver.frames_of(short)).shape == (1, 32)
    with pytest.raises(SdkError, match="no audio"):
        driver.features(np.zeros(0, np.float32))


# --- data, training, evaluation (real clips, prepared at 64²) ---------------------------------------

@pytest.fixture(scope="module")
def audio_cache(prepared_small, tmp_path_factory):
    from sdk.training.audio_data import load_audio_clips, prepare_audio_data

    out = tmp_path_factory.mktemp("audio_cache")
    prepare_audio_data(prepared_small, out, show_progress=False)
    manifest, clips = load_audio_clips(out)
    assert {clip.split for clip in clips} == {"train", "test"}
    return out


def test_cache_holds_25fps_codes_aligned_with_the_audio(audio_cache):
    from sdk.training.audio_data import load_audio_clips, resample_positions

    manifest, clips = load_audio_clips(audio_cache)
    assert manifest["expression_dims"] == 32
    for clip in clips:
        assert clip.expression.shape == (clip.frames, 32) and clip.pose.shape == (clip.frames, 6)
        assert clip.offsets.shape == (clip.frames, 478, 3) and clip.valid.any()
        seconds = clip.frames / FRAME_RATE
        assert abs(clip.mel.shape[1] / 100 - seconds) < 0.1  # ~4.3 s clips: mel at 100 Hz covers the frames
        assert np.abs(np.median(clip.pose[clip.valid], 0)[:3]).max() < 3.0  # degrees: deltas from the rest pose
    lower, upper, weight = resample_positions(30, 30.0)
    assert len(lower) == 25 and lower[0] == 0 and 0 < weight[1] < 1  # 30 fps -> 25 fps


def test_training_with_the_speaker_augmentations_and_the_correlation_loss(audio_cache, tmp_path):
    from sdk.training.audio import AudioTrainConfig, BatchMaker, train_audio

    config = AudioTrainConfig(data=audio_cache, out=tmp_path / "run", steps=2, batch_size=2, segment_frames=8,
                              motion_batch=4, val_every_identity=0, val_interval=2, checkpoint_interval=2,
                              log_interval=1, warmup_steps=1, corr_weight=1.0, mel_warp=0.15, time_mask=4)
    result = train_audio(config, tiny_config())
    assert result.step == 2 and np.isfinite(result.losses["corr"]) and np.isfinite(result.losses["live_corr"])
    raw = torch.arange(10.0)[None, :, None].expand(2, 10, 3)
    warped = BatchMaker._warp(raw, torch.tensor([1.0, 2.0]))
    assert torch.equal(warped[0], raw[0]) and warped[1, 4, 0] == 2.0  # bin k takes bin k / factor
    spans = BatchMaker._spans(4, 20, 5, 2, torch.Generator().manual_seed(0))
    assert spans.shape == (4, 20) and int(spans.sum(1).max()) <= 10
    with pytest.raises(ValueError, match="segment_frames >= 8"):
        AudioTrainConfig(corr_weight=1.0, segment_frames=4)


def test_train_audio_cli_maps_the_silence_share_and_refuses_a_bad_one(tmp_path, capsys):
    from sdk.cli import main

    assert main(["train", "audio", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--silence-share", "1.5"]) == 2
    assert "error: train audio: silence_share must be in [0, 1)" in capsys.readouterr().err


def test_training_exports_resumes_and_evaluates(audio_cache, prepared_small, tmp_path):
    from sdk.eval.audio import AudioEvalConfig, evaluate_audio, format_audio_report
    from sdk.training.audio import AudioTrainConfig, train_audio

    config = AudioTrainConfig(data=audio_cache, out=tmp_path / "run", steps=3, batch_size=2, segment_frames=4,
                              motion_batch=4, val_every_identity=0, val_interval=3, checkpoint_interval=3,
                              log_interval=1, warmup_steps=1)
    result = train_audio(config, tiny_config())
    assert result.step == 3 and (tmp_path / "run" / "model" / "weights.sha256").is_file()
    model = load_audio_model(tmp_path / "run" / "model")
    assert model.metadata["steps"] == 3 and "evaluating and developing" in model.metadata["note"]
    assert float(model.motion_space.radius) > 0
    resumed = train_audio(AudioTrainConfig(**{**config.__dict__, "steps": 4}), tiny_config())
    assert resumed.step == 4
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [3, 4]
    with pytest.raises(SdkError, match="another model config"):
        train_audio(AudioTrainConfig(**{**config.__dict__, "steps": 5}), AudioModelConfig())

    report = evaluate_audio(prepared_small, tmp_path / "run" / "model", config=AudioEvalConfig(seeds=2))
    assert report.clips == 1 and report.methods["still"].lmd_vs_still == pytest.approx(1.0)
    assert -1 <= report.methods["model"].mouth_correlation <= 1 and report.motion["real_std_deg"] > 0
    assert "mouth-opening r" in format_audio_report(report)


def test_best_lag_correlation_finds_the_shift():
    from sdk.eval.audio import best_lag_correlation

    signal = np.sin(np.linspace(0, 12, 100)) + np.random.default_rng(0).normal(0, 0.05, 100)
    r, lag = best_lag_correlation(signal[:-2], signal[2:], 3)
    assert lag == -2 and r > 0.99
    assert best_lag_correlation(np.ones(20), signal[:20], 3) == (0.0, 0)


# --- speak ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prior_pipeline():
    from sdk.models import TalkingHeadModel, get_config
    from sdk.pipeline import TalkingHeadPipeline

    torch.manual_seed(0)
    return TalkingHeadPipeline(TalkingHeadModel(get_config("dagan++-tiny-prior")).eval())


def test_speak_writes_one_frame_per_40ms_with_the_audio(tmp_path, prior_pipeline, tiny_audio_model):
    import av

    from sdk.audio.speak import SpeakConfig, speak
    from sdk.animate import DEFAULT_SOURCE

    audio = tmp_path / "hello.wav"
    write_wav(audio, speech(0.3))
    paths = speak(DEFAULT_SOURCE, audio, tmp_path / "out.mp4", SpeakConfig(samples=2, seed=3), renderer=prior_pipeline,
                  audio_model=tiny_audio_model, show_progress=False)
    assert [p.name for p in paths] == ["out_0.mp4", "out_1.mp4"]
    for path in paths:
        with av.open(str(path)) as container:
            assert container.streams.audio, "the speech is muxed in"
            frames = sum(1 for _ in container.decode(container.streams.video[0]))
        assert frames == 8  # ceil(0.3 s / 40 ms)
    still = speak(DEFAULT_SOURCE, audio, tmp_path / "still.mp4", SpeakConfig(motion_scale=0.0),
                  renderer=prior_pipeline, audio_model=tiny_audio_model, show_progress=False)
    assert still == [tmp_path / "still.mp4"] and still[0].stat().st_size > 0


def test_speak_refuses_bad_input_with_one_error_line(tmp_path, capsys, tiny_audio_model, prior_pipeline):
    from sdk.audio.speak import speak
    from sdk.animate import DEFAULT_SOURCE
    from sdk.cli import main
    from sdk.models import TalkingHeadModel, get_config
    from sdk.pipeline import TalkingHeadPipeline

    not_audio = tmp_path / "notes.mp3"
    not_audio.write_text("not audio")
    assert main(["speak", "--portrait", str(DEFAULT_SOURCE), "--audio", str(not_audio), "--out",
                 str(tmp_path / "o.mp4")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and "notes.mp3" in error and "Traceback" not in error
    assert main(["speak", "--portrait", str(DEFAULT_SOURCE), "--audio", str(not_audio), "--out",
                 str(tmp_path / "o.mp4"), "--samples", "0"]) == 2
    audio = tmp_path / "a.wav"
    write_wav(audio, speech(0.2))
    learned = TalkingHeadPipeline(TalkingHeadModel(get_config("dagan++-tiny")).eval())
    with pytest.raises(SdkError, match="face-prior renderer"):
        speak(DEFAULT_SOURCE, audio, tmp_path / "o.mp4", renderer=learned, audio_model=tiny_audio_model,
              show_progress=False)


# --- the shipped model and the front-end ablation ----------------------------------------------------

def test_shipped_model_closes_the_mouth_in_silence_and_keeps_the_head_idle():
    from sdk.eval.audio import lip_gap
    from sdk.prior import load_prior

    model = load_audio_model("default")
    prior = load_prior("default")
    check_prior(model, prior.sha256)
    assert "evaluating and developing" in model.metadata["note"]
    driver = AudioDriver(model)
    silence = np.zeros(RATE, np.float32)
    mel = driver.features(silence)
    unit = float(prior.controls.units[0])  # mouth_open = 1: the train split's 99th percentile lip-gap increase
    for live in (False, True):
        gap = lip_gap(prior.basis.decode(driver.expression(mel, 25, live=live)))
        assert np.abs(gap).max() < 0.15 * unit, "silence keeps the mouth (nearly) at rest"
    motion = driver.motion(mel, 25, MotionSampling(seed=0))
    assert 0 < np.abs(motion[:, :3]).max() < 20.0  # idle motion, degrees: neither frozen nor wild


def test_embedding_front_end_for_the_ablation():
    from sdk.audio.openwakeword import EMBEDDING_DIMS, find_models

    net = AudioExpressionNet(AudioExpressionConfig(front_end="embedding", channels=8)).eval()
    assert net(torch.randn(2, EMBEDDING_DIMS, 5 + 8)).shape == (2, 5, 32)
    with pytest.raises(ValueError, match="front_end"):
        AudioExpressionConfig(front_end="wav2vec")
    try:
        find_models()
    except ModelLoadError as exc:
        assert "openwakeword==0.4.0" in str(exc) and "CC BY-NC-SA" in str(exc)
    with pytest.raises(ModelLoadError, match="melspectrogram.onnx"):
        find_models(Path(__file__).parent)


def test_weight_average_follows_the_weights_and_gives_them_back():
    from sdk.training.audio import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(net, decay=0.5)
    start = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(2.0)
        net[1].running_mean.fill_(3.0)
    average.update()
    assert torch.allclose(average.state["0.weight"], start + 1.0)
    assert torch.equal(average.state["1.running_mean"], torch.full((2,), 3.0))
    with average.applied():
        assert torch.allclose(net[0].weight, start + 1.0)
    assert torch.allclose(net[0].weight, start + 2.0)
