"""Run the Core ML exports of an export folder on a Mac and compare them with torch (macOS only).

    python -m export.check_coreml_macos DIR [--model default|PATH] [--compute-units cpu|all] [--json OUT]

Inputs are real images shipped with the SDK: `sdk/assets/portrait.jpg` is the avatar and frames of
`sdk/assets/driving.mp4` drive it (centre-cropped, no face tracking, so it needs no shared data;
models driven by the face prior take each image's face mesh from the SDK's landmarker).
For each precision: max abs error of every output of every graph on identical inputs, and the
PSNR of the generator's frames against torch's; limits as in `python -m export verify`, and as
there a precision whose files are missing or differ from the sha256 in export.json is not run
(status incomplete / corrupt). Exit status 0 when every precision passes. `.github/workflows/coreml-macos.yml` runs it in CI.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

from sdk.errors import SdkError
from sdk.media import iter_video, read_image
from .files import graph_path
from .manifest import ExportManifest, damaged, incomplete
from .verify import TOLERANCES, Reference, exported_model, psnr_db, torch_reference, within_tolerance

ASSETS = Path(__file__).resolve().parents[1] / "sdk" / "assets"
DRIVING_FRAMES = 5


def centre_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    return image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side].copy()


def reference_feeds(model, output_size: int) -> Reference:
    """Torch's inputs and outputs of every graph at `output_size` on the bundled portrait (the avatar)
    and driving frames."""
    portrait = centre_square(read_image(ASSETS / "portrait.jpg"))
    frames = []
    for index, frame in enumerate(iter_video(ASSETS / "driving.mp4")):
        if index % 10 == 0:
            frames.append(centre_square(frame))
        if len(frames) == DRIVING_FRAMES:
            break
    images, meshes = [portrait, *frames], None
    if model.cfg.semantic is not None:
        from sdk.face import FaceLandmarker

        with FaceLandmarker() as landmarker:
            found = [(image, landmarker.from_image(image)) for image in images]
        images = [image for image, mesh in found if mesh is not None]
        meshes = [mesh for _, mesh in found if mesh is not None]
    return torch_reference(model, images, output_size, meshes)


def check_precision(directory: Path, precision: str, reference: Reference, compute_units, graphs: list[str]) -> dict:
    import coremltools as ct

    errors: dict[str, float] = {}
    psnrs = []
    for graph in graphs:
        mlmodel = ct.models.MLModel(str(graph_path(directory, "coreml", precision, graph)), compute_units=compute_units)
        for feed, expected in zip(reference.feeds[graph], reference.outputs[graph]):
            got = mlmodel.predict(feed)
            for name, value in expected.items():
                key = f"{graph}.{name}"
                errors[key] = max(errors.get(key, 0.0), float(np.abs(np.asarray(got[name]) - value).max()))
            if graph == "generator":
                psnrs.append(psnr_db(np.asarray(got["image"], np.float32), expected["image"]))
    passed, note = within_tolerance(errors, min(psnrs) if psnrs else None, precision)
    tolerance = TOLERANCES[precision]
    return {"precision": precision, "status": "pass" if passed else "fail", "max_abs_error": errors,
            "psnr_mean_db": float(np.mean(psnrs)) if psnrs else None,
            "psnr_min_db": float(min(psnrs)) if psnrs else None, "note": note,
            "limits": {"keypoint_error": tolerance.keypoint_error, "min_psnr_db": tolerance.min_psnr_db}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--model", help="torch model (default: the one in export.json)")
    parser.add_argument("--compute-units", choices=["cpu", "all"], default="cpu",
                        help="cpu: exact comparison; all: Neural Engine / GPU as an app would run it")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if platform.system() != "Darwin":
        print("error: Core ML predicts only on macOS; on Linux use `python -m export verify` "
              "(structure checks)", file=sys.stderr)
        return 2
    import coremltools as ct

    try:
        manifest = ExportManifest.load(args.directory)
        model = exported_model(args.directory, manifest, args.model)
    except SdkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    groups = {precision: entries for (fmt, precision), entries in manifest.groups().items() if fmt == "coreml"}
    if not groups:
        print(f"error: {args.directory} has no Core ML exports", file=sys.stderr)
        return 2
    reference = reference_feeds(model, manifest.output_size)
    units = ct.ComputeUnit.CPU_ONLY if args.compute_units == "cpu" else ct.ComputeUnit.ALL
    results = []
    for precision, entries in groups.items():
        if problem := incomplete(entries, manifest.graphs):
            results.append({"precision": precision, "status": "incomplete", "note": problem})
        elif problem := damaged(args.directory, entries):
            results.append({"precision": precision, "status": "corrupt", "note": problem})
        else:
            results.append(check_precision(args.directory, precision, reference, units, manifest.graphs))
    for result in results:
        print(f"coreml {result['precision']}: {result['status'].upper()}  {result['note']}"
              + (f"  max abs error {max(result['max_abs_error'].values()):.2e}" if result.get("max_abs_error") else "")
              + (f"  PSNR mean {result['psnr_mean_db']:.1f} dB" if result.get("psnr_mean_db") is not None else ""))
    if args.json:
        args.json.write_text(json.dumps({"model_id": manifest.model_id, "compute_units": args.compute_units,
                                         "results": results}, indent=1) + "\n")
    return 0 if all(result["status"] == "pass" for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
