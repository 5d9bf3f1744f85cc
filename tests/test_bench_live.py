"""`python -m sdk bench live` on a tiny random model and a few frames of the bundled clip: the report's
shape (table + JSON), the synthetic one-core load, the targets and the ratios to the generator alone."""
import json

from sdk.bench import SYNTHETIC_LOAD
from sdk.bench.live import TARGETS
from sdk.cli import main


def test_bench_live_tiny_quiet_and_with_a_busy_core(tmp_path, capsys):
    report = tmp_path / "bench.json"
    assert main(["bench", "live", "--random", "dagan++-tiny", "--bundled", "--frames", "3", "--backends", "torch",
                 "--baseline-runs", "1", "--threads", "1", "--json", str(report)]) == 0
    table = capsys.readouterr().out
    assert "frame/alone" in table and "sch = scheduler" in table
    document = json.loads(report.read_text())
    runs = document["runs"]
    assert [(run["load"], run["pacing"]) for run in runs] == [("quiet", "unpaced"), ("quiet", "paced 25 fps"),
                                                              ("busy", "unpaced"), ("busy", "paced 25 fps")]
    load = document["synthetic_load"]
    assert load["kind"] == SYNTHETIC_LOAD["kind"] and load["processes"] == 1 and "core" in load
    assert document["targets"] == TARGETS and document["threads"]["generator"] == 1
    assert set(document["baselines"]) == {"torch quiet", "torch busy"}
    assert all(base["generator_ms"] > 0 for base in document["baselines"].values())
    for run in runs:
        # Paced, a loaded machine may skip all but one of the 3 frames: fps needs two rendered.
        assert run["frames_captured"] == 3 and run["frames_rendered"] >= 1 and run["generator_alone_ms"] > 0
        assert (run["fps"] > 0) == (run["frames_rendered"] > 1) and (run["frame_vs_generator_alone"] > 0) == (
            run["fps"] > 0)
        assert run["generator_vs_alone"] > 0
        assert "scheduler" in run["frames_dropped"]
        assert run["frames_captured"] == (run["frames_rendered"] + run["frames_dropped_total"]
                                          + run["frames_before_first_face"])
        assert (run["targets"] is None) == (run["pacing"] == "unpaced")
    assert set(runs[1]["targets"]) == {"fps", "rendered", "latency_p95", "kbps"}


def test_bench_live_runs_a_face_prior_model_on_its_semantic_stream(tmp_path, capsys):
    """A face-prior model has no keypoint network: its code is the semantic code of the tracker's mesh,
    and the baseline rigs the bundled portrait's own mesh."""
    report = tmp_path / "bench.json"
    assert main(["bench", "live", "--random", "fomm-tiny-prior", "--bundled", "--frames", "3", "--backends", "torch",
                 "--loads", "quiet", "--baseline-runs", "1", "--threads", "1", "--json", str(report)]) == 0
    assert "semantic code of the mesh" in capsys.readouterr().out
    document = json.loads(report.read_text())
    assert document["model"] == "fomm-tiny-prior" and document["stream_kind"] == "semantic"
    baseline = document["baselines"]["torch quiet"]
    assert baseline["encoder_ms"] > 0 and baseline["generator_ms"] > 0
    for run in document["runs"]:
        assert run["frames_captured"] == 3 and run["frames_rendered"] > 0 and 0 < run["kbps"] <= TARGETS["kbps_max"]
        assert run["frames_captured"] == (run["frames_rendered"] + run["frames_dropped_total"]
                                          + run["frames_before_first_face"])

