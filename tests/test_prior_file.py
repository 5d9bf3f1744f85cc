"""The face prior file (checksum, version, refusals), the fit on a tiny prepared folder, and `python -m sdk prior`."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sdk.cli import main
from sdk.errors import ModelLoadError
from sdk.prior import FORMAT_VERSION, load_prior, save_prior, similarity_from_pose
from sdk.prior.prior_file import CHECKSUM_FILE, PRIOR_FILE

MANIFEST_FIELDS = ["id", "split", "identity", "content", "source_path", "status", "reason", "fps", "frames",
                   "face_frames", "size", "has_audio", "box_cx", "box_cy", "box_size"]


@pytest.fixture(scope="module")
def shipped():
    return load_prior("default")


def test_shipped_prior_is_small_and_verified(shipped) -> None:
    from sdk.prior.prior_file import PRIOR_DIR

    assert (PRIOR_DIR / PRIOR_FILE).stat().st_size < 1 << 20
    assert shipped.components == 32 and shipped.sha256 is not None
    assert "evaluating and developing" in shipped.metadata["fit"]["note"]
    assert load_prior("default", expected_sha256=shipped.sha256).sha256 == shipped.sha256


def test_round_trip_and_refusals(shipped, tmp_path) -> None:
    path = save_prior(shipped, tmp_path / "prior", half=False)
    loaded = load_prior(tmp_path / "prior")
    assert np.allclose(loaded.basis.components, shipped.basis.components)
    assert np.allclose(loaded.canonical, shipped.canonical, atol=1e-6)
    assert loaded.sha256 == (tmp_path / "prior" / CHECKSUM_FILE).read_text().split()[0]

    with pytest.raises(ModelLoadError, match="not the one the model was trained with"):
        load_prior(path, expected_sha256="0" * 64)

    flipped = bytearray(path.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        load_prior(path)

    (tmp_path / "prior" / CHECKSUM_FILE).unlink()
    with pytest.raises(ModelLoadError, match="no such face prior file"):
        load_prior(path)


def test_wrong_version_is_refused(shipped, tmp_path, monkeypatch) -> None:
    import sdk.prior.prior_file as prior_file

    monkeypatch.setattr(prior_file, "FORMAT_VERSION", FORMAT_VERSION + 1)
    save_prior(shipped, tmp_path)  # a valid file with a valid checksum, of a newer format
    monkeypatch.undo()
    with pytest.raises(ModelLoadError, match=f"format version {FORMAT_VERSION + 1}"):
        load_prior(tmp_path)


def test_foreign_safetensors_is_refused(tmp_path) -> None:
    from safetensors.numpy import save_file

    from sdk.files import file_sha256

    path = tmp_path / PRIOR_FILE
    save_file({"weight": np.zeros(3, np.float32)}, path)
    (tmp_path / CHECKSUM_FILE).write_text(f"{file_sha256(path)}  {PRIOR_FILE}\n")
    with pytest.raises(ModelLoadError, match="not a face prior"):
        load_prior(tmp_path)


def _write_prepared(root, shipped) -> None:
    """A tiny prepared folder: 4 train and 2 test "people" (shape offsets), 40 frames each of
    random expressions and poses made from the shipped prior, one frame without a face."""
    rng = np.random.default_rng(0)
    energy = np.sqrt(shipped.basis.energy)
    rows = []
    for number, split in enumerate(["train"] * 4 + ["test"] * 2):
        clip_id = f"clip{number}"
        shape = rng.normal(scale=0.01, size=(478, 3))
        meshes = []
        for frame in range(40):
            expression = rng.normal(size=shipped.components) * energy * (0.2 if frame % 4 == 0 else 1.0)
            pose = [rng.uniform(-20, 20), rng.uniform(-10, 10), rng.uniform(-8, 8), rng.uniform(-0.1, 0.1),
                    rng.uniform(-0.1, 0.1), np.log(0.5)]
            normalized = shipped.canonical + shape + shipped.basis.decode(expression)
            meshes.append(similarity_from_pose(np.array(pose), 64).apply(normalized))
        points = np.stack(meshes).astype(np.float32)
        points[7] = np.nan
        directory = root / "clips" / clip_id
        directory.mkdir(parents=True)
        np.save(directory / "landmarks.npy", points)
        (directory / "meta.json").write_text(json.dumps({"format": 2, "size": 64}))
        rows.append({"id": clip_id, "split": split, "identity": f"p{number}", "content": "talking",
                     "source_path": "synthetic", "status": "ok", "reason": "", "fps": "25.0", "frames": "40",
                     "face_frames": "39", "size": "64", "has_audio": "no", "box_cx": "0", "box_cy": "0",
                     "box_size": "0"})
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def test_cli_fit_and_show(shipped, tmp_path, capsys) -> None:
    data = tmp_path / "prepared"
    _write_prepared(data, shipped)
    out = tmp_path / "fitted"
    assert main(["prior", "fit", "--data", str(data), "--out", str(out), "--components", "8"]) == 0
    printed = capsys.readouterr().out
    assert "| 8 |" in printed and "mouth" in printed and "identity / expression" in printed
    fitted = load_prior(out)
    assert fitted.components == 8
    assert fitted.metadata["fit"]["clips"] == 4 and fitted.metadata["fit"]["dropped"] == 4
    report = json.loads((out / "fit_report.json").read_text())
    assert set(report["reconstruction_px"]) == {"0", "8"}
    # Synthetic expressions live in the shipped basis: 8 fitted components explain most of them.
    assert report["explained"]["8"]["test"] > 0.8
    assert main(["prior", "show", str(out)]) == 0
    assert "E = 8 expression coefficients" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["prior", "fit", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error:") and "manifest.csv" in error[0]
    assert main(["prior", "fit", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--components", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: prior fit: components")
    (tmp_path / PRIOR_FILE).write_bytes(b"not a prior")
    (tmp_path / CHECKSUM_FILE).write_text("0" * 64 + f"  {PRIOR_FILE}\n")
    assert main(["prior", "show", str(tmp_path)]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
