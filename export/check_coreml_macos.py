"""Run the Core ML exports of an export folder on a Mac and compare them with torch (macOS only).

    python -m export.check_coreml_macos DIR [--model default|PATH] [--compute-units cpu|all] [--json OUT]

Inputs are real images shipped with the SDK: `sdk/assets/portrait.jpg` is the avatar and frames of
`sdk/assets/driving.mp4` drive it (centre-cropped, no face tracking, so it needs no shared data).
For each precision: max abs error of every output of every graph on identical inputs, and the
PSNR of the generator's frames against torch's; limits as in `python -m export verify`. Exit
status 0 when every precision passes. `.github/workflows/coreml-macos.yml` runs it in CI.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from sdk.checkpoint import load_model
from sdk.media import iter_video, read_image
from sdk.pipeline import TalkingHeadPipeline
from sdk.runtime.graph_backend import as_array
from sdk.runtime.graphs import GRAPH_NAMES, build_graphs, graph_specs, source_state_tensors
from sdk.runtime.torch_backend import TorchBackend

from .files import graph_path
from .manifest import ExportManifest
from .verify import KEYPOINT_OUTPUTS, PSNR_CAP_DB, TOLERANCES

ASSETS = Path(__file__).resolve().parents[1] / "sdk" / "assets"
DRIVING_FRAMES = 5


def centre_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    return image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side].copy()


def reference_feeds(model) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """Torch inputs and outputs of every graph on the bundled portrait and driving frames."""
    pipeline = TalkingHeadPipeline(TorchBackend(model))
    portrait = centre_square(read_image(ASSETS / "portrait.jpg"))
    frames = []
    for index, frame in enumerate(iter_video(ASSETS / "driving.mp4")):
        if index % 10 == 0:
            frames.append(centre_square(frame))
        if len(frames) == DRIVING_FRAMES:
            break
    graphs, specs = build_graphs(model), graph_specs(model.cfg)
    feeds = {name: [] for name in GRAPH_NAMES}
    outputs = {name: [] for name in GRAPH_NAMES}

    def record(graph, inputs):
        with torch.inference_mode():
            result = graphs[graph](*inputs)
        result = (result,) if isinstance(result, torch.Tensor) else result
        feeds[graph].append({n: as_array(v) for n, v in zip(specs[graph].input_names, inputs)})
        outputs[graph].append({n: as_array(v) for n, v in zip(specs[graph].output_names, result)})

    source = pipeline.to_model_input(portrait)
    record("source_encoder", (source,))
    state = pipeline.prepare_source(portrait)
    flat = source_state_tensors(state, with_depth=False)
    for frame in frames:
        record("keypoint_encoder", (pipeline.to_model_input(frame),))
        driving = pipeline.driving_keypoints(state, pipeline.encode(frame))
        record("generator", (source, flat[0], flat[1], driving.value, driving.jacobian, *flat[2:]))
    return feeds, outputs


def check_precision(directory: Path, precision: str, feeds, outputs, compute_units) -> dict:
    import coremltools as ct

    errors: dict[str, float] = {}
    psnrs = []
    for graph in GRAPH_NAMES:
        mlmodel = ct.models.MLModel(str(graph_path(directory, "coreml", precision, graph)), compute_units=compute_units)
        for feed, expected in zip(feeds[graph], outputs[graph]):
            got = mlmodel.predict(feed)
            for name, value in expected.items():
                key = f"{graph}.{name}"
                errors[key] = max(errors.get(key, 0.0), float(np.abs(np.asarray(got[name]) - value).max()))
            if graph == "generator":
                mse = float(((np.asarray(got["image"], np.float32) - expected["image"]) ** 2).mean())
                psnrs.append(PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * math.log10(1.0 / mse)))
    tolerance = TOLERANCES[precision]
    worst_keypoint = max(e for key, e in errors.items() if key.split(".")[1] in KEYPOINT_OUTPUTS)
    passed = worst_keypoint <= tolerance.keypoint_error and min(psnrs) >= tolerance.min_psnr_db
    return {"precision": precision, "status": "pass" if passed else "fail", "max_abs_error": errors,
            "psnr_mean_db": float(np.mean(psnrs)), "psnr_min_db": float(min(psnrs)),
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

    manifest = ExportManifest.load(args.directory)
    model = load_model(args.model or manifest.model_source)
    feeds, outputs = reference_feeds(model)
    units = ct.ComputeUnit.CPU_ONLY if args.compute_units == "cpu" else ct.ComputeUnit.ALL
    precisions = sorted({e.precision for e in manifest.entries if e.format == "coreml" and e.status == "ok"})
    if not precisions:
        print(f"error: {args.directory} has no Core ML exports", file=sys.stderr)
        return 2
    results = [check_precision(args.directory, precision, feeds, outputs, units) for precision in precisions]
    for result in results:
        worst = max(result["max_abs_error"].values())
        print(f"coreml {result['precision']}: {result['status'].upper()}  max abs error {worst:.2e}  "
              f"PSNR mean/min {result['psnr_mean_db']:.1f}/{result['psnr_min_db']:.1f} dB")
    if args.json:
        args.json.write_text(json.dumps({"model_id": manifest.model_id, "compute_units": args.compute_units,
                                         "results": results}, indent=1) + "\n")
    return 0 if all(result["status"] == "pass" for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
