"""`python -m export --bundle android|ios`: the exported files laid out where the demo apps read them.

One folder, `BUNDLE_FOLDER`, under the platform's resource root in `--bundle-dir` (default
``OUT/<platform>``):

    android: <bundle-dir>/assets/talking_head/       (--bundle-dir android-demo/app/src/main: the app
                                                      module's assets, packed into the APK as they are)
    ios:     <bundle-dir>/Resources/talking_head/    (a folder reference in the app target's resources)

holding

    bundle.json                          what is here (below); the app helpers read it first
    <graph>.tflite | <graph>.mlpackage/  the `--graphs` chosen (TFLite for Android, Core ML for iOS), at
                                         the one `--precision` given, as exported (same bytes)
    face_prior.safetensors + .sha256     face-prior models: the prior their graphs are driven by

`bundle.json` (`BUNDLE_FORMAT`, version `BUNDLE_VERSION`): the model (id, sha256, keypoint source,
internal resolution, output size), `sender` / `receiver`: which graphs each side runs, `graphs`:
per graph its file, sha256, size and metadata (the `GraphMetadata` every file carries, as JSON:
inputs and outputs with shapes and meanings), `face_prior` (file, sha256, E expression dims, the
K prior keypoints' mesh indices, `sdk.prior.keypoint_indices`) or null, and `streams`: the stream
header the two ends exchange, built by the live session's one builder
(`sdk.live.stream.stream_header`) with its kind's default preset at `STREAM_FPS`: its kind
("keypoints", "semantic" or "hybrid"; the native core reads all three), its fields and its bytes
(hex) as `docs/bitstream.md` lays them out. A sender running at another rate writes its own header
from these fields with its frame rate.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from sdk import __version__
from sdk.files import replace_directory
from sdk.models import TalkingHeadModel
from sdk.prior import keypoint_indices
from sdk.runtime.graphs import RECEIVER_GRAPHS, SENDER_GRAPHS, graph_specs
from sdk.runtime.metadata import METADATA_PREFIX, GraphMetadata, graph_metadata

from .files import PRIOR_PATH
from .manifest import ExportManifest, damaged, incomplete
from .request import BUNDLE_PLATFORMS, ExportError

BUNDLE_FORMAT = "talking-head-app-bundle"
BUNDLE_VERSION = 1
BUNDLE_FILE = "bundle.json"
BUNDLE_FOLDER = "talking_head"
PLATFORM_ROOTS: dict[str, Path] = {"android": Path("assets"), "ios": Path("Resources")}
STREAM_FPS = 25.0  # the nominal rate of the headers written here (docs/bitstream.md: the rate field)


def bundle_folder(root: Path, platform: str) -> Path:
    """Where `write_bundle` puts a platform's files under `root` (the --bundle-dir)."""
    return Path(root) / PLATFORM_ROOTS[platform] / BUNDLE_FOLDER


def write_bundle(model: TalkingHeadModel, out: Path, manifest: ExportManifest, platform: str, precision: str,
                 graphs: tuple[str, ...], root: Path) -> Path:
    """Lay out `graphs` of the export folder `out` (platform format, `precision`) and the folder's
    face prior for `platform` under `root`, replacing what was there; returns the bundle folder.
    ExportError when one of them failed to export or is damaged."""
    fmt = BUNDLE_PLATFORMS[platform]
    entries = [entry for entry in manifest.entries
               if (entry.format, entry.precision) == (fmt, precision) and entry.graph in graphs]
    problem = incomplete(entries, list(graphs)) or damaged(out, entries)
    if problem is None and manifest.face_prior is not None:
        problem = damaged(out, [manifest.face_prior])
    if problem:
        raise ExportError(f"--bundle {platform}: {fmt} {precision}: {problem}; the bundle was not written")
    specs = graph_specs(model.cfg, manifest.output_size)
    document = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "platform": platform, "sdk_version": __version__,
        "model_id": manifest.model_id, "model_sha256": manifest.model_sha256,
        "keypoint_source": model.cfg.keypoint_source, "resolution": model.cfg.resolution,
        "output_size": manifest.output_size, "graph_format": fmt, "precision": precision,
        "sender": [name for name in graphs if name in SENDER_GRAPHS],
        "receiver": [name for name in graphs if name in RECEIVER_GRAPHS],
        "graphs": {entry.graph: {"file": Path(entry.path).name, "sha256": entry.sha256, "bytes": entry.bytes,
                                 "metadata": metadata_json(graph_metadata(model, specs[entry.graph], precision,
                                                                          manifest.model_sha256))}
                   for entry in entries},
        "face_prior": _prior_json(model, manifest),
        "streams": stream_parameters(model, manifest.model_sha256),
    }

    def fill(folder: Path) -> None:
        folder.mkdir(parents=True)
        for entry in entries:
            source = out / entry.path
            if source.is_dir():  # .mlpackage
                shutil.copytree(source, folder / source.name)
            else:
                shutil.copyfile(source, folder / source.name)
        if manifest.face_prior is not None:
            prior = out / manifest.face_prior.path
            for path in (prior, prior.with_suffix(".sha256")):
                shutil.copyfile(path, folder / path.name)
        (folder / BUNDLE_FILE).write_text(json.dumps(document, indent=1) + "\n")

    return replace_directory(bundle_folder(root, platform), fill)


def metadata_json(metadata: GraphMetadata) -> dict[str, Any]:
    """A file's metadata as the apps read it: `GraphMetadata.to_strings` without the key prefix,
    its JSON values (config, inputs, outputs) decoded."""
    values = {key.removeprefix(METADATA_PREFIX): value for key, value in metadata.to_strings().items()}
    for key in ("model_config", "inputs", "outputs"):
        values[key] = json.loads(values[key])
    for key in ("bitstream_version", "output_size"):
        values[key] = int(values[key])
    return values


def stream_parameters(model: TalkingHeadModel, model_sha256: str) -> list[dict[str, Any]]:
    """The stream header of `model`'s codes at `STREAM_FPS` with its kind's default preset, built
    by the live session's builder (`sdk.live.stream.stream_header`): kind, fields and bytes (hex)."""
    from sdk.live.stream import codec_config, stream_header, stream_kind

    cfg = model.cfg
    header = stream_header(cfg, model_sha256, STREAM_FPS, codec_config("default", cfg),
                           None if cfg.semantic is None else model.prior())
    return [{"kind": stream_kind(cfg), "version": header.VERSION, "fields": dataclasses.asdict(header),
             "header_hex": header.to_bytes().hex()}]


def _prior_json(model: TalkingHeadModel, manifest: ExportManifest) -> dict[str, Any] | None:
    if manifest.face_prior is None:
        return None
    semantic = model.cfg.semantic
    return {"file": PRIOR_PATH.name, "sha256": manifest.face_prior.sha256, "bytes": manifest.face_prior.bytes,
            "expression_dims": semantic.expression_dims, "prior_keypoints": semantic.prior_keypoints,
            "keypoint_indices": [int(index) for index in keypoint_indices(semantic.prior_keypoints)],
            "jacobians": semantic.jacobians}
