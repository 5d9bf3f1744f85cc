import numpy as np
import pytest

from sdk import media
from sdk.errors import MediaReadError


def test_read_image_converts_grayscale_and_rgba(tmp_path):
    gray = np.full((20, 30), 77, np.uint8)
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 255  # red, half transparent over white
    rgba[..., 3] = 128
    import cv2

    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    out_gray = media.read_image(tmp_path / "gray.png")
    out_rgba = media.read_image(tmp_path / "rgba.png")
    assert out_gray.shape == (20, 30, 3) and (out_gray == 77).all()
    assert out_rgba.shape == (20, 30, 3)
    assert tuple(out_rgba[0, 0]) == (255, 127, 127)


def test_bad_image_paths_name_the_file(tmp_path):
    with pytest.raises(MediaReadError, match="missing.png"):
        media.read_image(tmp_path / "missing.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    with pytest.raises(MediaReadError, match="corrupt.png"):
        media.read_image(corrupt)


def test_video_round_trip_with_audio(tmp_path):
    frames = [np.full((33, 47, 3), 10 * i, np.uint8) for i in range(6)]  # odd size is padded
    audio = np.sin(np.linspace(0, 200, 16000)).astype(np.float32) * 0.5
    path = tmp_path / "clip.mp4"
    assert media.write_video(path, frames, 25.0, audio=audio) == 6
    info = media.probe_video(path)
    assert (info.width, info.height, info.has_audio) == (48, 34, True)
    decoded, fps = media.read_video(path)
    assert len(decoded) == 6 and fps == 25.0
    assert abs(int(decoded[3][5, 5, 0]) - 30) <= 3
    sound = media.read_audio(path)
    assert abs(len(sound) - 16000) < 2048 and sound.dtype == np.float32


def test_corrupt_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaReadError, match="bad.mp4"):
        media.read_video(bad)
    with pytest.raises(MediaReadError, match="nothing.mp4"):
        list(media.iter_video(tmp_path / "nothing.mp4"))


def test_tensor_conversions():
    image = np.random.default_rng(1).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    tensor = media.to_tensor(image)
    assert tensor.shape == (1, 3, 8, 9) and float(tensor.max()) <= 1.0
    assert (media.to_image(tensor) == image).all()
