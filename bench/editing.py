"""Editing fidelity of a face-prior model (issue 12 item 5), measured on its output with the face mesh.

    python bench/editing.py --model runs/prior/model [--manifest ../shared/data/manifest.csv]
        [--portraits 12] [--yaw 15] [--size 256] [--json out/editing.json]

For each portrait image of the shared manifest (kind "image"), the model renders the still portrait
with no edit (the baseline, in the same run) and with `yaw=+Y`, `yaw=-Y`, `mouth_open=1`,
`smile=1`, `eyes_closed=1` (`python -m sdk edit`'s path, the portrait rigged once: `sdk.edit`). Each output is
measured by MediaPipe's mesh, as a user would see it:
- head yaw (the face prior's pose of the mesh, degrees) minus the unedited render's: the turn the
  edit made, which must be >= 10° in the edit's direction for ±15°;
- inner-lip gap, mouth width and mean eyelid gap of the pose-normalised mesh (`sdk.prior.features`),
  as ratios to the unedited render's: `mouth_open=1` must at least double the lip gap;
- identity distance (dlib, `sdk.eval.metrics.IdentityDistance`, when the eval extra is installed)
  of the edited render to the portrait crop itself: must stay < 0.6.
A render the mesh finds no face in is counted (`missed`) and left out of the means.

Where a head turn is lost, per rotation edit (torch model): the yaw of the rig's driven mesh (what
the keypoints are taken from) minus the portrait's, how far the K prior keypoints move (pixels at
the output size), and how much of the rig's motion the dense flow makes at the driven mesh's
points ("flow follows": 1 = all of it, 0 = none), over the whole mesh and over the face outline
(`face_oval`).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sdk.checkpoint import load_model
from sdk.edit import prepare_portrait, render_edit
from sdk.errors import SdkError
from sdk.eval.metrics import IdentityDistance
from sdk.face import FaceLandmarker
from sdk.face.regions import MESH_REGIONS
from sdk.pipeline import TalkingHeadPipeline
from sdk.prior import EncoderConfig, Edits, MotionDelta, SemanticEncoder, to_keypoint_coords
from sdk.prior.features import feature_index, measure_features
from sdk.runtime import SourceHandle, TorchBackend

EDITS = ("none", "yaw=+{yaw}", "yaw=-{yaw}", "mouth_open=1", "smile=1", "eyes_closed=1")


def portrait_paths(manifest: Path, count: int) -> list[Path]:
    with manifest.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["kind"] == "image"]
    return [manifest.parent / row["path"] for row in rows[:count]]


def measure(landmarker: FaceLandmarker, encoder: SemanticEncoder, image: np.ndarray) -> dict[str, float] | None:
    """yaw (degrees) and the mouth / eye features of the mesh found in `image`, or None (no face,
    or a mesh the prior flags)."""
    found = landmarker.from_image(image)
    if found is None:
        return None
    mesh = found.astype(np.float64) * (encoder.config.image_size / image.shape[0])
    encoded = encoder.encode(mesh)
    encoder.reset()
    if encoded.flagged:
        return None
    features = measure_features(encoder.normalize(mesh).mesh)
    return {"yaw": float(encoded.code.pose[0]), "lip_gap": float(features[feature_index("lip_gap")]),
            "mouth_width": float(features[feature_index("mouth_width")]),
            "eye_gap": float((features[feature_index("right_eye_gap")] + features[feature_index("left_eye_gap")]) / 2)}


@torch.inference_mode()
def rig_motion(pipeline: TalkingHeadPipeline, state: SourceHandle, edits: Edits) -> dict[str, float]:
    """What the rig and the dense flow make of a rotation edit: the driven mesh's yaw change, the
    prior keypoints' mean motion in pixels, and the share of the mesh's motion the flow follows."""
    model = pipeline.model
    rig = state.rigs[0]
    size = rig.image_size
    motion = edits.apply(MotionDelta.identity(0), model.prior())
    rest, moved = rig.drive(), rig.drive(motion)
    encoder = SemanticEncoder(model.prior(), EncoderConfig(image_size=size))
    yaws = [encoder.encode(mesh).code.pose[0] for mesh in (rest.mesh, moved.mesh)]
    inputs = model.drive(state, [motion])
    grid = model.render_semantic(state, inputs.keypoints, inputs.expression).deformation  # (1, h, w, 2)
    source, driven = (to_keypoint_coords(mesh[:, :2], size) for mesh in (rest.mesh, moved.mesh))
    # The flow is backward: at a driven point it says where in the portrait to sample.
    sampled = F.grid_sample(grid.permute(0, 3, 1, 2), torch.as_tensor(driven, dtype=grid.dtype)[None, None],
                            align_corners=True)[0, :, 0].T.numpy()
    wanted, made = driven - source, driven - sampled

    def follows(points: np.ndarray) -> float:
        return float((made[points] * wanted[points]).sum() / max((wanted[points] ** 2).sum(), 1e-12))

    return {"rig_yaw_change": float(yaws[1] - yaws[0]),
            "keypoint_px": float(np.linalg.norm(moved.value - rest.value, axis=-1).mean() * (size - 1) / 2),
            "flow_follows": follows(np.arange(len(driven))), "outline_follows": follows(MESH_REGIONS["face_oval"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a face-prior model folder")
    parser.add_argument("--manifest", default=str(Path(os.environ.get("SDK_SHARED_DATA", "../shared/data")) / "manifest.csv"))
    parser.add_argument("--portraits", type=int, default=12)
    parser.add_argument("--yaw", type=float, default=15.0)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--json", help="also write the results as JSON")
    args = parser.parse_args(argv)

    pipeline = TalkingHeadPipeline(load_model(args.model), output_size=args.size)
    if not pipeline.is_semantic:
        raise SystemExit(f"error: {pipeline.cfg.name} is not a face-prior model")
    edits = [name.format(yaw=f"{args.yaw:g}") for name in EDITS]
    encoder = SemanticEncoder(pipeline.backend.prior(), EncoderConfig(image_size=256))
    identity = IdentityDistance() if IdentityDistance.available() else None
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in edits}
    missed = {name: 0 for name in edits}
    used = 0
    with FaceLandmarker() as landmarker:
        for path in portrait_paths(Path(args.manifest), args.portraits):
            try:
                avatar, state = prepare_portrait(pipeline, path)
                parsed = {name: Edits.parse("" if name == "none" else name) for name in edits}
                renders = {name: render_edit(pipeline, avatar, state, edit) for name, edit in parsed.items()}
            except SdkError as exc:
                print(f"skipped {path.name}: {exc}", file=sys.stderr)
                continue
            base = measure(landmarker, encoder, renders["none"])
            if base is None:
                missed["none"] += 1
                continue
            used += 1
            reference = identity.descriptor(avatar.crop) if identity else None
            for name, image in renders.items():
                found = measure(landmarker, encoder, image)
                if found is None:
                    missed[name] += 1
                    continue
                row = {"yaw_change": found["yaw"] - base["yaw"],
                       "lip_gap_ratio": found["lip_gap"] / max(base["lip_gap"], 1e-6),
                       "mouth_width_ratio": found["mouth_width"] / base["mouth_width"],
                       "eye_gap_ratio": found["eye_gap"] / max(base["eye_gap"], 1e-6),
                       "lip_gap": found["lip_gap"]}
                edit = parsed[name]
                if (edit.yaw or edit.pitch or edit.roll) and isinstance(pipeline.backend, TorchBackend):
                    row.update(rig_motion(pipeline, state, edit))
                if reference is not None:
                    descriptor = identity.descriptor(image)
                    if descriptor is not None:
                        row["identity"] = IdentityDistance.distance(descriptor, reference)
                rows[name].append(row)

    def mean(name: str, key: str) -> float | None:
        values = [row[key] for row in rows[name] if key in row]
        return float(np.mean(values)) if values else None

    def median(name: str, key: str) -> float | None:
        values = [row[key] for row in rows[name] if key in row]
        return float(np.median(values)) if values else None

    summary = {name: {"renders": len(rows[name]), "missed": missed[name],
                      "yaw_change_deg": mean(name, "yaw_change"), "lip_gap_ratio_median": median(name, "lip_gap_ratio"),
                      "mouth_width_ratio": mean(name, "mouth_width_ratio"), "eye_gap_ratio": mean(name, "eye_gap_ratio"),
                      "identity": mean(name, "identity"),
                      **{key: mean(name, key) for key in ("rig_yaw_change", "keypoint_px", "flow_follows",
                                                          "outline_follows")}} for name in edits}
    yaw_plus, yaw_minus = summary[edits[1]], summary[edits[2]]
    checks = {
        f"yaw ±{args.yaw:g}° turns the head >= 10° the same way": (
            yaw_plus["yaw_change_deg"] is not None and yaw_minus["yaw_change_deg"] is not None
            and yaw_plus["yaw_change_deg"] >= 10 and yaw_minus["yaw_change_deg"] <= -10),
        "mouth_open=1 at least doubles the lip gap (median ratio)": (
            (summary["mouth_open=1"]["lip_gap_ratio_median"] or 0) >= 2.0),
        "identity distance < 0.6 on every edit": (
            all(row["identity"] is not None and row["identity"] < 0.6 for row in summary.values())
            if identity else None),
    }
    print(f"editing fidelity of {pipeline.cfg.name} ({args.model}) on {used} portraits at {pipeline.output_size}²; "
          "measured on the renders with MediaPipe's mesh, against the unedited render")

    def cell(value: float | None, digits: int = 2) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    print(f"{'edit':<16} {'renders':>7} {'missed':>6} {'yaw Δ°':>7} {'lip gap ×':>9} {'mouth w ×':>9} "
          f"{'eye gap ×':>9} {'ID dist':>7}")
    for name, row in summary.items():
        print(f"{name:<16} {row['renders']:>7} {row['missed']:>6} {cell(row['yaw_change_deg'], 1):>7} "
              f"{cell(row['lip_gap_ratio_median']):>9} {cell(row['mouth_width_ratio']):>9} "
              f"{cell(row['eye_gap_ratio']):>9} {cell(row['identity'], 3):>7}")
    print(f"\nwhere a turn is lost: {'edit':<10} {'rig yaw Δ°':>10} {'keypoints px':>12} {'flow follows':>12} "
          f"{'outline follows':>15}")
    for name, row in summary.items():
        if row["rig_yaw_change"] is not None:
            print(f"{'':<22}{name:<10} {cell(row['rig_yaw_change'], 1):>10} {cell(row['keypoint_px'], 1):>12} "
                  f"{cell(row['flow_follows']):>12} {cell(row['outline_follows']):>15}")
    for check, ok in checks.items():
        print(f"  {'✓' if ok else ('—' if ok is None else '✗')} {check}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": args.model, "config": pipeline.cfg.name, "portraits": used,
                                               "output_size": pipeline.output_size, "edits": summary,
                                               "checks": checks, "per_render": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
