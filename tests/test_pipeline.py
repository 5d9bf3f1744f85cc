"""The stage wrapper, `animate` and `eval` on a tiny untrained model and real media."""
import dataclasses
import json
import logging

import numpy as np
import pytest
import torch

from sdk import media
from sdk.animate import DEFAULT_DRIVING, DEFAULT_SOURCE, animate
from sdk.checkpoint import save_model
from sdk.cli import main
from sdk.errors import MediaReadError, NoFaceError
from sdk.eval.reenactment import evaluate, format_report
from sdk.models import TalkingHeadModel, get_config
from sdk.pipeline import MotionConfig, TalkingHeadPipeline

from conftest import data_file


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("model") / "dagan-tiny"
    save_model(TalkingHeadModel(get_config("dagan-tiny")), directory, half=True)
    return directory


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir):
    from sdk.checkpoint import load_model

    return TalkingHeadPipeline(load_model(str(tiny_model_dir)))


@pytest.fixture(scope="module")
def driving_frames():
    frames = []
    for frame in media.iter_video(DEFAULT_DRIVING):
        frames.append(frame)
        if len(frames) == 12:
            break
    return frames


def test_stages_and_relative_motion(pipeline):
    crop = media.read_image(DEFAULT_SOURCE)[:300, :300].copy()
    state = pipeline.prepare_source(crop)
    code = pipeline.encode(crop)
    assert code.value.shape == (1, 15, 2) and code.jacobian.shape == (1, 15, 2, 2)
    # The first code is the anchor: relative motion then gives exactly the source keypoints.
    driven = pipeline.driving_keypoints(state, code)
    assert torch.allclose(driven.value, state.keypoints.value, atol=1e-5)
    frame = pipeline.render(state, code)
    assert pipeline.output_size == 128  # the default: twice the internal resolution, with the composite head
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    pipeline.motion = MotionConfig(mode="absolute")
    assert pipeline.driving_keypoints(state, code) is code
    pipeline.motion = MotionConfig()
    pipeline.reset_anchor()


def test_pipeline_rejects_bad_crops(pipeline):
    with pytest.raises(ValueError, match="square"):
        pipeline.encode(np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        pipeline.encode(np.zeros((40, 40), np.uint8))
    with pytest.raises(ValueError, match="relative"):
        MotionConfig(mode="sideways")


def test_animate_holds_the_code_through_frames_without_a_face(pipeline, driving_frames, tmp_path):
    frames = list(driving_frames)
    blank = np.full_like(frames[0], 128)
    frames[4:7] = [blank, blank, blank]
    driving = tmp_path / "gap.mp4"
    media.write_video(driving, frames, 25.0)
    out = tmp_path / "out.mp4"
    stats = animate(pipeline, DEFAULT_SOURCE, driving, out, crop="auto", side_by_side=True)
    assert stats.frames == len(frames) and stats.no_face_frames == 3
    assert stats.frames_before_first_face == 0
    info = media.probe_video(out)
    assert (info.width, info.height) == (256, 128)  # driver | avatar, both at the output size 2R
    assert len(media.read_video(out)[0]) == len(frames)


def test_animate_without_crop_and_bad_inputs(pipeline, driving_frames, tmp_path):
    driving = tmp_path / "short.mp4"
    media.write_video(driving, driving_frames[:4], 25.0)
    stats = animate(pipeline, DEFAULT_SOURCE, driving, tmp_path / "plain.mp4", crop="none")
    assert stats.frames == 4 and stats.no_face_frames == 0

    no_face = tmp_path / "wall.png"
    media.write_image(no_face, np.full((200, 200, 3), 90, np.uint8))
    with pytest.raises(NoFaceError, match="wall.png"):
        animate(pipeline, no_face, driving, tmp_path / "x.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(MediaReadError, match="corrupt.mp4"):
        animate(pipeline, DEFAULT_SOURCE, corrupt, tmp_path / "y.mp4")


def test_animate_cli_and_grayscale_rgba_sources(tiny_model_dir, driving_frames, tmp_path, capsys):
    import cv2

    driving = tmp_path / "short.mp4"
    media.write_video(driving, driving_frames[:3], 25.0)
    portrait = media.read_image(DEFAULT_SOURCE)
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY))
    rgba = tmp_path / "rgba.png"
    cv2.imwrite(str(rgba), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGRA))
    for source in (gray, rgba):
        out = tmp_path / f"{source.stem}.mp4"
        code = main(["animate", "--source", str(source), "--driving", str(driving), "--out", str(out),
                     "--model", str(tiny_model_dir)])
        assert code == 0 and media.probe_video(out).width == 128
        assert json.loads(capsys.readouterr().out)["frames"] == 3


def test_animate_at_a_chosen_size_and_sizes_the_model_cannot_serve(tiny_model_dir, driving_frames, tmp_path, capsys):
    driving = tmp_path / "short.mp4"
    media.write_video(driving, driving_frames[:2], 25.0)
    out = tmp_path / "s256.mp4"
    assert main(["animate", "--driving", str(driving), "--out", str(out), "--model", str(tiny_model_dir),
                 "--size", "256"]) == 0
    assert json.loads(capsys.readouterr().out)["output_size"] == 256
    assert (media.probe_video(out).width, media.probe_video(out).height) == (256, 256)
    for argv, message in ((["--size", "100"], "not a multiple of dagan-tiny's internal resolution 64"),
                          (["--crop", "none", "--paste-back"], "paste-back needs crop 'auto'")):
        code = main(["animate", "--driving", str(driving), "--out", str(tmp_path / "bad.mp4"),
                     "--model", str(tiny_model_dir), *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "bad.mp4").exists()


def test_old_model_without_composite_head_renders_at_its_resolution_only(driving_frames, tmp_path, capsys):
    torch.manual_seed(0)
    old = dataclasses.replace(get_config("dagan-tiny"), composite=None)  # as saved before the head
    model_dir = save_model(TalkingHeadModel(old), tmp_path / "old", half=False)
    driving = tmp_path / "short.mp4"
    media.write_video(driving, driving_frames[:2], 25.0)
    assert main(["animate", "--driving", str(driving), "--out", str(tmp_path / "old.mp4"),
                 "--model", str(model_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["output_size"] == 64
    assert media.probe_video(tmp_path / "old.mp4").width == 64
    code = main(["animate", "--driving", str(driving), "--out", str(tmp_path / "x.mp4"), "--model", str(model_dir),
                 "--size", "128"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: dagan-tiny has no composite head: it renders at 64² only, not 128²"]


def test_small_portrait_is_upscaled_with_a_warning(pipeline, driving_frames, tmp_path, caplog):
    import cv2

    small = tmp_path / "small.png"  # its face box is ~110 px: fewer pixels than the 128² output
    media.write_image(small, cv2.resize(media.read_image(DEFAULT_SOURCE), (120, 120), interpolation=cv2.INTER_AREA))
    driving = tmp_path / "short.mp4"
    media.write_video(driving, driving_frames[:2], 25.0)
    with caplog.at_level(logging.WARNING, logger="sdk.pipeline"):
        stats = animate(pipeline, small, driving, tmp_path / "out.mp4")
    assert stats.portrait_upscaled and stats.output_size == 128
    assert "smaller than the output size 128²: upscaled" in caplog.text
    assert media.probe_video(tmp_path / "out.mp4").width == 128
    assert not animate(pipeline, DEFAULT_SOURCE, driving, tmp_path / "big.mp4").portrait_upscaled


def test_paste_back_writes_the_whole_portrait(pipeline, driving_frames, tmp_path):
    import cv2

    # The bundled portrait with a 160-px border: far from the face, the video must be the portrait.
    portrait = cv2.copyMakeBorder(media.read_image(DEFAULT_SOURCE), 160, 160, 160, 160, cv2.BORDER_REFLECT)
    source = tmp_path / "wide.png"
    media.write_image(source, portrait)
    driving = tmp_path / "short.mp4"
    media.write_video(driving, driving_frames[:3], 25.0)
    out = tmp_path / "pasted.mp4"
    stats = animate(pipeline, source, driving, out, paste_back=True, side_by_side=True)
    assert stats.paste_back_scale == 1.0 and (stats.frame_width, stats.frame_height) == (2 * 832, 832)
    frames, _ = media.read_video(out)
    assert len(frames) == 3 and frames[0].shape == (832, 2 * 832, 3)  # driver panel at the portrait's height
    avatar = frames[-1][:, 832:].astype(np.int16)
    far = np.zeros(portrait.shape[:2], bool)  # the border outside the face box
    far[:150], far[-150:], far[:, :150], far[:, -150:] = True, True, True, True
    # H.264 (crf 18, 4:2:0 chroma) of the portrait itself: 2.2 grey levels; the face is the model's: 21
    assert np.abs(avatar[far] - portrait[far]).mean() < 3.0
    assert np.abs(avatar[~far] - portrait[~far]).mean() > 10.0


def test_cli_reports_a_missing_model_clearly(tmp_path, capsys):
    code = main(["animate", "--out", str(tmp_path / "o.mp4"), "--model", str(tmp_path / "nothing")])
    assert code == 2 and "nothing" in capsys.readouterr().err


def test_eval_reports_model_and_still_frame_baseline(pipeline, prepared_small):
    report = evaluate(pipeline, prepared_small, "test", frame_stride=20, cross_stride=20, with_identity=False)
    table = format_report(report)
    assert "still_frame" in table
    still = report.self_reenactment["still_frame"]
    model = report.self_reenactment["model"]
    assert still["frames"] == model["frames"] > 0
    assert still["akd"] is not None and still["psnr"] > 10
    # one test identity only: no cross-identity pairs
    assert report.cross_identity["model"]["frames"] == 0


def test_identity_distance_separates_people():
    from sdk.eval.metrics import IdentityDistance
    from sdk.face import crop_portrait

    assert IdentityDistance.available(), "the dev install includes the eval extra"
    identity = IdentityDistance()
    person, _ = crop_portrait(DEFAULT_SOURCE, size=256)
    other, _ = crop_portrait(data_file("image", "liveportrait-s12"), size=256)
    a, b, c = (identity.descriptor(image) for image in (person, person[:, ::-1].copy(), other))
    assert identity.distance(a, b) < 0.4 < identity.distance(a, c)


def test_shipped_default_model_loads_checks_and_animates(driving_frames, tmp_path):
    from sdk.checkpoint import MODELS_DIR, load_model
    from sdk.files import file_sha256

    default = MODELS_DIR / "default"
    recorded = (default / "weights.sha256").read_text().split()[0]
    assert file_sha256(default / "weights.safetensors") == recorded
    assert (default / "MODEL_CARD.md").is_file()
    total_bytes = sum(path.stat().st_size for path in default.iterdir())
    assert total_bytes < 30e6
    model = load_model("default")
    assert model.cfg.name == "dagan++-mobile" and model.cfg.composite is not None
    driving = tmp_path / "short.mp4"
    media.write_video(driving, driving_frames[:5], 25.0)
    stats = animate(TalkingHeadPipeline(model), DEFAULT_SOURCE, driving, tmp_path / "out.mp4", side_by_side=True)
    assert stats.frames == 5 and stats.no_face_frames == 0
    assert stats.output_size == 256 and (stats.frame_width, stats.frame_height) == (512, 256)  # 256² per panel
