"""`python -m export` / `verify` / `bench` on a tiny model: every format, real test frames, bad inputs."""
import json
import shutil
import sys
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from export.cli import main
from export.coreml_writer import read_coreml
from export.files import path_sha256
from export.manifest import ExportManifest
from export.tflite_writer import add_metadata, fp16_weights
from sdk.checkpoint import load_model, save_model
from sdk.codec import HybridStreamHeader, read_stream_header
from sdk.models import TalkingHeadModel, get_config
from sdk.runtime import BITSTREAM_VERSION, BackendError, create_backend, graph_specs, model_sha256
from sdk.runtime.graphs import build_graphs, example_inputs
from sdk.runtime.metadata import GraphMetadata, graph_metadata
from sdk.runtime.tflite_backend import TfliteRunner, read_tflite_metadata

FORMATS = {"onnx": "fp32,fp16", "tflite": "fp32", "coreml": "fp32,fp16"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = TalkingHeadModel(get_config("dagan++-tiny"))
    for attention in model.generator.attention:
        attention.gamma.data.fill_(0.5)  # untrained attention is the identity; make it count
    torch.nn.init.normal_(model.generator.composite_head.weight, std=0.3)  # and the composite mask an even blend
    directory = tmp_path_factory.mktemp("model") / "tiny"
    save_model(model, directory)
    return directory


@pytest.fixture(scope="module")
def export_dir(model_dir, tmp_path_factory):
    """The tiny model in every format at its default output size, 128 = 2R (TFLite at fp32 only: its
    conversion is the slow one)."""
    out = tmp_path_factory.mktemp("export") / "tiny"
    for fmt, precisions in FORMATS.items():
        code = main(["--model", str(model_dir), "--format", fmt, "--precision", precisions, "--out", str(out),
                     "--no-progress"])
        assert code == 0
    return out


def test_export_writes_every_format_with_a_summary(export_dir, model_dir, capsys):
    manifest = ExportManifest.load(export_dir)
    assert len(manifest.entries) == 15 and all(entry.status == "ok" for entry in manifest.entries)
    assert manifest.model_sha256 == model_sha256(load_model(model_dir))
    assert manifest.bitstream_version == BITSTREAM_VERSION and manifest.output_size == 128
    for entry in manifest.entries:
        assert (export_dir / entry.path).exists() and entry.bytes > 0 and len(entry.sha256) == 64
    # Exporting again into the folder replaces its entries and keeps the others.
    assert main(["--model", str(model_dir), "--format", "onnx", "--out", str(export_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "format  precision  graph" in out and "15 of 15 graphs exported" in out and "output 128²" in out


def test_every_file_carries_its_metadata(export_dir, model_dir):
    model = load_model(model_dir)
    sha = model_sha256(model)
    specs = graph_specs(model.cfg)
    for graph in specs:
        onnx_model = onnx.load(str(export_dir / "onnx" / "fp16" / f"{graph}.onnx"))
        from_onnx = GraphMetadata.from_strings({p.key: p.value for p in onnx_model.metadata_props}, graph)
        from_tflite = read_tflite_metadata(export_dir / "tflite" / "fp32" / f"{graph}.tflite")
        coreml = read_coreml(export_dir / "coreml" / "fp16" / f"{graph}.mlpackage")
        for metadata, precision in ((from_onnx, "fp16"), (from_tflite, "fp32"), (coreml.metadata, "fp16")):
            assert metadata == graph_metadata(model, specs[graph], precision, sha)
        assert [i.name for i in onnx_model.graph.input] == specs[graph].input_names
        assert list(coreml.inputs) == specs[graph].input_names
        assert coreml.outputs == {t.name: t.shape for t in specs[graph].outputs}
    assert json.loads(from_onnx.to_strings()["sdk.inputs"])[0]["meaning"].startswith("RGB float32 in [0, 1]")
    assert coreml.outputs["image"] == (1, 3, 128, 128) and coreml.inputs["portrait"] == (1, 3, 128, 128)
    # The dense motion's warp, one per warped feature scale, and the portrait's at the output size.
    assert coreml.ops.get("resample") == 2 + len(model.generator.warped_scales)
    assert coreml.compute_types.get("FLOAT16", 0) > 100


def test_verify_compares_every_runnable_export_with_torch(export_dir, capsys):
    assert main(["verify", str(export_dir), "--frames", "3"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "frames of" in out
    report = json.loads((export_dir / "verify.json").read_text())
    status = {(g["format"], g["precision"]): g for g in report["groups"]}
    assert {key: group["status"] for key, group in status.items()} == {
        ("onnx", "fp32"): "pass", ("onnx", "fp16"): "pass", ("tflite", "fp32"): "pass",
        ("coreml", "fp32"): "checked", ("coreml", "fp16"): "checked"}
    assert status[("onnx", "fp32")]["max_abs_error"]["keypoint_encoder.keypoints"] < 1e-4
    assert status[("tflite", "fp32")]["psnr_min_db"] >= 40
    assert report["frames"] == 3 and report["clip"]


def test_export_at_another_output_size_verifies_and_stays_in_its_folder(export_dir, model_dir, tmp_path, capsys):
    out = tmp_path / "r64"
    assert main(["--model", str(model_dir), "--size", "64", "--out", str(out), "--no-progress"]) == 0
    assert ExportManifest.load(out).output_size == 64
    assert main(["verify", str(out), "--frames", "2"]) == 0
    report = json.loads((out / "verify.json").read_text())
    assert [group["status"] for group in report["groups"]] == ["pass"]
    assert create_backend(load_model(model_dir), "onnx", graphs=out, output_size=64).output_size == 64
    capsys.readouterr()
    # One output size per folder; a size the model cannot render at; a folder from before sizes were recorded.
    assert main(["--model", str(model_dir), "--size", "64", "--out", str(export_dir), "--no-progress"]) == 2
    assert "holds graphs at output size 128², not 64²" in capsys.readouterr().err
    assert main(["--model", str(model_dir), "--size", "96", "--out", str(tmp_path / "r96"), "--no-progress"]) == 2
    assert "--size 96: output size 96 is not a multiple" in capsys.readouterr().err
    data = json.loads((out / "export.json").read_text())
    del data["output_size"]
    (out / "export.json").write_text(json.dumps(data))
    assert main(["verify", str(out)]) == 2
    assert "written before export folders recorded their output size" in capsys.readouterr().err


def test_exported_tflite_runs_as_a_backend_and_fp16_halves_weights(export_dir, model_dir, tmp_path):
    model = load_model(model_dir)
    backend = create_backend(model, "tflite", graphs=export_dir)
    assert backend.name == "tflite-xnnpack"
    image = example_inputs(model.cfg)["keypoint_encoder"][0]
    assert torch.allclose(backend.encode(image).value, model.encode(image).value, atol=1e-4)
    # fp16 weights, on the converted fp32 graph (`write_tflite` does the same after converting;
    # converting again would only repeat the slow part).
    fp32 = export_dir / "tflite" / "fp32" / "keypoint_encoder.tflite"
    spec = graph_specs(model.cfg)["keypoint_encoder"]
    path = tmp_path / "kp16.tflite"
    path.write_bytes(add_metadata(fp16_weights(fp32.read_bytes()), graph_metadata(model, spec, "fp16").to_strings()))
    assert path.stat().st_size < 0.75 * fp32.stat().st_size
    assert read_tflite_metadata(path).precision == "fp16"
    runner = TfliteRunner({**backend.runner.files, "keypoint_encoder": path})
    keypoints = runner.run("keypoint_encoder", {"image": image.numpy()})["keypoints"]
    with torch.no_grad():
        expected = build_graphs(model)["keypoint_encoder"](image)[0].numpy()
    assert np.abs(keypoints - expected).max() < 3e-2


def test_bench_times_each_graph_against_torch(export_dir):
    from export.bench import bench_export, bench_table

    timings = bench_export(export_dir, threads=(1,), runs=2)
    runtimes = {timing.runtime for timing in timings}
    assert runtimes == {"torch", "onnx-fp32", "onnx-fp16", "tflite-fp32"}
    assert len(timings) == 3 * len(runtimes) and all(timing.median_ms > 0 for timing in timings)
    assert "speed vs torch" in bench_table(timings)


def test_bad_export_requests_fail_clearly(model_dir, tmp_path, capsys, monkeypatch):
    # int8 comes from the quantization package; here it is made unimportable to check the message.
    monkeypatch.setitem(sys.modules, "quantization", None)
    out = str(tmp_path / "out")
    cases = [
        (["--model", str(model_dir), "--format", "onnx,gif", "--out", out], "unknown format 'gif'"),
        (["--model", str(model_dir), "--precision", "fp8", "--out", out], "unknown precision 'fp8'"),
        (["--model", str(model_dir), "--format", "", "--out", out], "no format given"),
        (["--model", str(tmp_path), "--out", out], "missing config.json"),
        (["--model", str(model_dir / "weights.safetensors"), "--out", out], "no such model directory"),
        (["--model", str(model_dir), "--precision", "int8", "--out", out], "int8 needs `python -m quantization"),
    ]
    for argv, message in cases:
        assert main(argv + ["--no-progress"]) == 2, argv
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_int8_on_a_fresh_checkout_calibrates_on_the_bundled_clip(model_dir, tmp_path, monkeypatch, capsys):
    """`python -m export --precision int8` with no --calibration and no cache/prepared: the bundled clip,
    said on stdout (here with few pairs and no sensitivity pass, to be quick)."""
    from export import int8
    from quantization import calibration
    from quantization.calibration import CalibrationConfig
    from quantization.onnx_int8 import Int8Config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(calibration, "MAX_VIDEO_FRAMES", 6)
    monkeypatch.setattr(int8, "_int8_config", lambda source: Int8Config(CalibrationConfig(source, pairs=3),
                                                                        target_psnr_db=0.0, sensitivity_pairs=2))
    out = tmp_path / "out"
    assert main(["--model", str(model_dir), "--format", "onnx", "--precision", "int8", "--out", str(out),
                 "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    assert "int8: calibration frames from the bundled driving clip" in stdout and "3 of 3 graphs exported" in stdout
    record = json.loads((out / "onnx" / "int8" / "quantization.json").read_text())
    assert "driving.mp4 (video, 6 tracked frames" in record["calibration"]["origin"]


def test_export_into_a_folder_of_another_model_is_refused(export_dir, model_dir, tmp_path, capsys):
    other = tmp_path / "other"
    torch.manual_seed(5)
    save_model(TalkingHeadModel(get_config("fomm-tiny")), other)
    assert main(["--model", str(other), "--out", str(export_dir), "--no-progress"]) == 2
    assert "holds graphs of another model" in capsys.readouterr().err
    # Nor into one whose graphs were written for another bitstream version (export.json would mislabel them).
    older = tmp_path / "older"
    older.mkdir()
    manifest = ExportManifest.load(export_dir)
    manifest.bitstream_version = BITSTREAM_VERSION - 1
    manifest.save(older)
    assert main(["--model", str(model_dir), "--out", str(older), "--no-progress"]) == 2
    assert f"holds graphs for bitstream v{BITSTREAM_VERSION - 1}" in capsys.readouterr().err


def test_damaged_tflite_files_are_backend_errors(export_dir, tmp_path):
    data = (export_dir / "tflite" / "fp32" / "generator.tflite").read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "damaged.tflite"
    for trial in range(300):
        damaged = bytearray(data[:int(rng.integers(8, len(data)))] if trial % 3 == 0 else data)
        for position in rng.integers(8, min(len(damaged), 4000), size=int(rng.integers(1, 40))):
            damaged[position] = int(rng.integers(256))
        path.write_bytes(bytes(damaged))
        try:
            read_tflite_metadata(path)
        except BackendError as exc:  # flatbuffers' own TypeError / struct.error would be a traceback
            assert "damaged.tflite" in str(exc)


def test_verify_reports_corrupt_exports(export_dir, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(export_dir, damaged, ignore=shutil.ignore_patterns("tflite", "coreml"))
    generator = damaged / "onnx" / "fp32" / "generator.onnx"
    generator.write_bytes(generator.read_bytes()[: generator.stat().st_size // 2])
    # An fp32 graph in the fp16 group, listed with its own sha256: intact, but not the file it claims to be.
    mislabelled = damaged / "onnx" / "fp16" / "keypoint_encoder.onnx"
    shutil.copyfile(export_dir / "onnx" / "fp32" / "keypoint_encoder.onnx", mislabelled)
    manifest = ExportManifest.load(damaged)
    manifest.entries = [replace(entry, sha256=path_sha256(mislabelled)) if damaged / entry.path == mislabelled
                        else entry for entry in manifest.entries if entry.format == "onnx"]
    manifest.save(damaged)
    assert main(["verify", str(damaged), "--frames", "2"]) == 1
    report = json.loads((damaged / "verify.json").read_text())
    status = {(g["format"], g["precision"]): g for g in report["groups"]}
    assert status[("onnx", "fp32")]["status"] == "corrupt"
    assert "generator.onnx: sha256 differs" in status[("onnx", "fp32")]["note"]
    assert status[("onnx", "fp16")]["status"] == "fail"
    assert "keypoint_encoder: metadata precision 'fp32' != 'fp16'" in status[("onnx", "fp16")]["note"]
    assert "FAILED" in capsys.readouterr().out
    assert main(["bench", str(damaged), "--threads", "1", "--runs", "1"]) == 2
    assert "generator.onnx: sha256 differs from export.json" in capsys.readouterr().err

    # A foreign or edited export.json is refused with its name, not a traceback.
    text = (damaged / "export.json").read_text()
    for edit in ({"precision": "fp8"}, {"path": "../../elsewhere.onnx"}, {"sha256": None}, {"bytes": "many"}):
        data = json.loads(text)
        data["entries"][0].update(edit)
        (damaged / "export.json").write_text(json.dumps(data))
        assert main(["verify", str(damaged)]) == 2, edit
        assert "export.json: corrupt" in capsys.readouterr().err
    (damaged / "export.json").write_text(json.dumps({**json.loads(text), "model_sha256": None}))
    assert main(["verify", str(damaged)]) == 2
    assert "export.json: corrupt" in capsys.readouterr().err

    (damaged / "export.json").write_text("{not json")
    assert main(["verify", str(damaged)]) == 2
    assert "export.json: corrupt" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "no such export folder" in capsys.readouterr().err
    assert main(["bench", str(export_dir), "--threads", "one"]) == 2
    assert "expected comma-separated integers" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Models driven by the face prior (issue 12), `--graphs` and `--bundle` (issue 15)


def save_semantic_model(name: str, directory):
    """A tiny face-prior model saved with the prior it is driven by, every path counting."""
    from sdk.prior import load_prior

    torch.manual_seed(0)
    model = TalkingHeadModel(get_config(name))
    for attention in model.generator.attention:
        attention.gamma.data.fill_(0.5)
    torch.nn.init.normal_(model.generator.composite_head.weight, std=0.3)
    torch.nn.init.normal_(model.generator.expression_modulation.mlp[-1].weight, std=0.1)
    save_model(model, directory, extra_metadata={"face_prior": {"sha256": load_prior("default").sha256}})
    return directory


@pytest.fixture(scope="module")
def prior_export(tmp_path_factory):
    """dagan++-tiny-prior in ONNX and TFLite (fp32), with its Android bundle."""
    model_dir = save_semantic_model("dagan++-tiny-prior", tmp_path_factory.mktemp("model") / "prior")
    out = tmp_path_factory.mktemp("export") / "prior"
    assert main(["--model", str(model_dir), "--format", "onnx,tflite", "--bundle", "android", "--out", str(out),
                 "--no-progress"]) == 0
    return model_dir, out


def test_a_prior_model_exports_its_receiver_graphs_and_its_prior(prior_export, capsys):
    from sdk.codec import SemanticStreamHeader, read_stream_header
    from sdk.prior import load_prior

    model_dir, out = prior_export
    prior = load_prior("default")
    manifest = ExportManifest.load(out)
    assert manifest.graphs == ["source_encoder", "generator"] and len(manifest.entries) == 4
    assert manifest.face_prior.sha256 == prior.sha256 and manifest.bitstream_version == SemanticStreamHeader.VERSION
    assert load_prior(out / "prior").sha256 == prior.sha256  # the copy verifies
    assert read_tflite_metadata(out / "tflite" / "fp32" / "generator.tflite").face_prior_sha256 == prior.sha256
    # The Android bundle: the TFLite graphs, the prior, and what the app needs to know.
    bundle = out / "android" / "assets" / "talking_head"
    assert sorted(path.name for path in bundle.iterdir()) == [
        "bundle.json", "face_prior.safetensors", "face_prior.sha256", "generator.tflite", "source_encoder.tflite"]
    document = json.loads((bundle / "bundle.json").read_text())
    assert document["sender"] == [] and document["receiver"] == ["source_encoder", "generator"]
    assert document["keypoint_source"] == "prior" and document["output_size"] == 128 and document["resolution"] == 64
    generator = document["graphs"]["generator"]
    assert generator["sha256"] == path_sha256(bundle / "generator.tflite")
    assert [tensor["name"] for tensor in generator["metadata"]["inputs"]][2:7] == [
        "source_keypoints", "source_jacobians", "driving_keypoints", "driving_jacobians", "expression"]
    assert document["face_prior"]["sha256"] == prior.sha256 and len(document["face_prior"]["keypoint_indices"]) == 15
    (stream,) = document["streams"]
    header = read_stream_header(bytes.fromhex(stream["header_hex"]))
    assert stream["kind"] == "semantic" and isinstance(header, SemanticStreamHeader)
    assert header.prior_sha256 == prior.sha256[:16] and header.model_sha256 == manifest.model_sha256[:16]
    # A prior model's sender has no graph: its export is the prior file alone.
    sender = out.parent / "sender"
    assert main(["--model", str(model_dir), "--graphs", "sender", "--out", str(sender), "--no-progress"]) == 0
    assert "0 of 0 graphs exported" in capsys.readouterr().out
    manifest = ExportManifest.load(sender)
    assert manifest.graphs == [] and manifest.entries == [] and (sender / "prior" / "face_prior.sha256").is_file()


def test_a_prior_model_verifies_and_runs_on_tflite_and_onnx(prior_export, capsys):
    from sdk.prior import load_prior, similarity_from_pose

    model_dir, out = prior_export
    assert main(["verify", str(out), "--frames", "3"]) == 0
    report = json.loads((out / "verify.json").read_text())
    assert {(g["format"], g["status"]) for g in report["groups"]} == {("onnx", "pass"), ("tflite", "pass")}
    assert all(group["psnr_min_db"] >= 40 for group in report["groups"])
    model, prior = load_model(model_dir), load_prior("default")
    mesh = similarity_from_pose(np.array([5.0, 0, 0, 0, 0, np.log(0.5)]), 128).apply(prior.canonical)
    portrait = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    backend, reference = create_backend(model, "tflite", graphs=out), create_backend(model, "torch")
    state, expected = backend.prepare_source(portrait, mesh), reference.prepare_source(portrait, mesh)
    expression = torch.full((1, 16), 0.5)
    assert torch.allclose(backend.render(state, state.keypoints, expression),
                          reference.render(expected, expected.keypoints, expression), atol=1e-4)
    from export.bench import bench_export

    timings = bench_export(out, threads=(1,), runs=1)
    assert {(t.graph, t.runtime) for t in timings} == {(graph, runtime) for graph in ("source_encoder", "generator")
                                                       for runtime in ("torch", "onnx-fp32", "tflite-fp32")}


def test_a_hybrid_receiver_bundles_for_ios_and_verifies_what_it_holds(tmp_path):
    model_dir = save_semantic_model("fomm-tiny-hybrid", tmp_path / "hybrid")
    out = tmp_path / "export"
    assert main(["--model", str(model_dir), "--graphs", "receiver", "--format", "onnx,coreml", "--bundle", "ios",
                 "--bundle-dir", str(tmp_path / "app"), "--out", str(out), "--no-progress"]) == 0
    bundle = tmp_path / "app" / "Resources" / "talking_head"
    document = json.loads((bundle / "bundle.json").read_text())
    assert document["receiver"] == ["source_encoder", "generator"] and document["sender"] == []
    assert (bundle / "generator.mlpackage" / "Manifest.json").is_file() and (bundle / "face_prior.safetensors").is_file()
    # Its stream header: the hybrid kind (docs/bitstream.md §13; the native core reads it too). A parsed
    # header holds the prior's hash prefix.
    (stream,) = document["streams"]
    header = read_stream_header(bytes.fromhex(stream["header_hex"]))
    assert stream["kind"] == "hybrid" and isinstance(header, HybridStreamHeader) and "streams_note" not in document
    assert (header.model_id, header.num_kp, header.prior_sha256) == (
        document["model_id"], stream["fields"]["num_kp"], document["face_prior"]["sha256"][:16])
    outputs = [tensor["name"] for tensor in document["graphs"]["source_encoder"]["metadata"]["outputs"]]
    assert outputs[:2] == ["learned_keypoints", "learned_jacobians"]
    # A receiver-only folder verifies what it holds: its generator on torch's inputs, no end to end.
    assert main(["verify", str(out), "--frames", "2"]) == 0
    status = {g["format"]: g for g in json.loads((out / "verify.json").read_text())["groups"]}
    assert status["onnx"]["status"] == "pass" and "source_encoder, generator only" in status["onnx"]["note"]
    assert status["coreml"]["status"] == "checked"
    # The bundle ships one precision of its platform's format, and only graphs that exported.
    assert main(["--model", str(model_dir), "--bundle", "ios", "--precision", "fp32,fp16", "--out", str(out),
                 "--no-progress"]) == 2
    assert main(["--model", str(model_dir), "--bundle", "android", "--format", "onnx", "--out", str(out),
                 "--no-progress"]) == 2


def test_int8_calibrates_a_prior_model_on_the_meshes_of_the_bundled_clip(tmp_path, monkeypatch, capsys):
    from export import int8
    from quantization import calibration
    from quantization.calibration import CalibrationConfig
    from quantization.onnx_int8 import Int8Config

    model_dir = save_semantic_model("fomm-tiny-prior", tmp_path / "prior")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(calibration, "MAX_VIDEO_FRAMES", 6)
    monkeypatch.setattr(int8, "_int8_config", lambda source: Int8Config(CalibrationConfig(source, pairs=3),
                                                                        target_psnr_db=0.0, sensitivity_pairs=2))
    out = tmp_path / "out"
    assert main(["--model", str(model_dir), "--precision", "int8", "--out", str(out), "--no-progress"]) == 0
    assert "2 of 2 graphs exported" in capsys.readouterr().out
    record = json.loads((out / "onnx" / "int8" / "quantization.json").read_text())
    assert record["calibration"]["pairs"] == 3 and record["psnr_vs_float_db"] > 25
    backend = create_backend(load_model(model_dir), "onnx-int8", graphs=out)
    assert backend.precision == "int8" and backend.prior().sha256 == ExportManifest.load(out).face_prior.sha256
