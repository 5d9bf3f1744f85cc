"""Defaults a newcomer meets first (issue 14): the README's two first commands and `.ci/run` in step, the
minimal install's import path, and torch's OpenMP threads not spinning unless asked to."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# Installed by an extra (or pulled by mediapipe, like jax) and imported by some other verb, never by animate.
EXTRAS_ONLY = ("onnx", "onnxruntime", "onnxsim", "coremltools", "litert_torch", "ai_edge_litert", "ai_edge_quantizer",
               "jax", "transformers", "torchao", "nncf", "dlib", "face_recognition_models", "tensorboard")


def _first_commands() -> list[list[str]]:
    """The commands of each bash block of the README's "First commands" section, split at `&&`."""
    section = ROOT.joinpath("README.md").read_text().split("## First commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[part.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")
             for part in line.split("&&")] for block in blocks]


def _quiet(command: str) -> str:
    return command.replace("pip install -q ", "pip install ")


def test_ci_runs_the_readme_first_commands_in_order():
    blocks = _first_commands()
    assert len(blocks) == 2
    install, test = blocks
    assert "pip install -e ." in install and install[-1].startswith("python -m sdk animate")
    assert test == ['pip install -e ".[dev]"', "python -m pytest -q"]
    ci = [_quiet(line.strip()) for line in ROOT.joinpath(".ci/run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    positions = [ci.index(command) for command in install + test]  # ValueError: .ci/run lacks one
    assert positions == sorted(positions)


def test_the_minimal_install_is_the_core_and_dev_has_every_extra():
    project = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["project"]
    core = {re.split(r"[=<>!~\[ ]", spec)[0].lower() for spec in project["dependencies"]}
    assert {"torch", "mediapipe", "av", "safetensors", "numpy"} <= core
    extras = project["optional-dependencies"]
    heavy = {re.split(r"[=<>!~\[ ]", spec)[0].lower() for name, specs in extras.items() for spec in specs}
    assert not core & (heavy - {"talking-head-sdk"})
    dev = next(spec for spec in extras["dev"] if spec.startswith("talking-head-sdk["))
    assert set(dev.split("[")[1].rstrip("]").split(",")) == set(extras) - {"dev", "all"}
    assert "torch==2.13.0" in project["dependencies"]


def test_animate_imports_nothing_from_the_extras(tmp_path):
    """`python -m sdk animate` (its parser builds every verb) on a tiny model and a 3-frame clip, in a
    fresh interpreter: none of the extras' packages is imported, so the minimal install suffices."""
    from sdk.checkpoint import save_model
    from sdk.media import iter_video, probe_video, write_video
    from sdk.models import TalkingHeadModel, get_config

    torch.manual_seed(0)
    save_model(TalkingHeadModel(get_config("dagan++-tiny")), tmp_path / "tiny")
    frames = []
    for frame in iter_video(ROOT / "sdk/assets/driving.mp4"):
        frames.append(frame)
        if len(frames) == 3:
            break
    write_video(tmp_path / "driving.mp4", frames, probe_video(ROOT / "sdk/assets/driving.mp4").fps)
    script = (f"import sys\nfrom sdk.cli import main\n"
              f"code = main(['animate', '--model', {str(tmp_path / 'tiny')!r}, '--driving', "
              f"{str(tmp_path / 'driving.mp4')!r}, '--out', {str(tmp_path / 'out.mp4')!r}, '--side-by-side'])\n"
              f"print('LOADED', [name for name in {EXTRAS_ONLY!r} if name in sys.modules])\nsys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LOADED []" in result.stdout
    assert (tmp_path / "out.mp4").stat().st_size > 0


def _omp_spin_count(environment: dict[str, str], code: str = "import sdk, torch") -> str:
    """GOMP_SPINCOUNT as libgomp reports it when torch loads it: 0 is PASSIVE; unset is 300000."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**environment, "OMP_DISPLAY_ENV": "VERBOSE", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r"GOMP_SPINCOUNT = '(\d+)'", result.stderr)
    if match is None:
        pytest.skip("torch's OpenMP here is not libgomp (no OMP_DISPLAY_ENV report)")
    return match.group(1)


def test_import_sdk_makes_torch_threads_wait_passively():
    environment = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    assert _omp_spin_count(environment, "import torch") != "0"  # what torch does on its own: spin a while
    assert _omp_spin_count(environment) == "0"
    assert _omp_spin_count(environment, "import sdk.cli, torch") == "0"  # the CLIs' first import
    # A policy the user chose is kept.
    assert _omp_spin_count({**environment, "OMP_WAIT_POLICY": "ACTIVE"}) not in ("0", "300000")


def test_mediapipe_start_up_lines_stay_off_stderr_and_real_errors_show():
    """A landmarker and a tracker built and run in a fresh process write none of MediaPipe's start-up
    lines to fd 2 (they come from its C++ threads after construction); other lines written to fd 2
    meanwhile, as a real error would be, come through."""
    from sdk.face.native_logs import STARTUP_NOISE

    script = """
import os, time
import sdk
from sdk.face import FaceLandmarker, FaceTracker, TrackerConfig
from sdk.face.native_logs import mediapipe_start
landmarker = FaceLandmarker()
assert landmarker.from_image(sdk.read_image("sdk/assets/portrait.jpg")) is not None
tracker = FaceTracker(TrackerConfig())
for index, frame in enumerate(sdk.iter_video("sdk/assets/driving.mp4")):
    assert tracker.update(frame).face_found
    if index == 2:
        break
with mediapipe_start():
    os.write(2, b"E0000 a real error\\n")
    os.write(2, b"W0000 inference_feedback_manager.cc:114] Feedback manager requires a model with a single "
                b"signature inference. Disabling support for feedback tensors.\\n")
time.sleep(0.3)  # any late line from the graphs' threads
landmarker.close(); tracker.close()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"E0000 a real error\n" in result.stderr
    assert not [noise for noise in STARTUP_NOISE if noise in result.stderr], result.stderr.decode()
    assert b"GetPrototype" not in result.stderr


def test_bench_animate_quiet_and_busy(tmp_path):
    """`python -m sdk bench animate` end to end on a tiny model and 2 frames, one policy: a quiet and a busy
    run, their ratio, the table and JSON; the synthetic load really uses a core."""
    import json
    import time
    from dataclasses import asdict

    from sdk.bench import busy_core
    from sdk.bench.animate import format_report, run_animate_bench
    from sdk.checkpoint import save_model
    from sdk.cli import build_parser
    from sdk.errors import SdkError
    from sdk.models import TalkingHeadModel, get_config

    args = build_parser().parse_args(["bench", "animate", "--frames", "2", "--policies", "passive", "--threads", "1"])
    assert args.frames == 2 and callable(args.run)
    before = os.times()
    with busy_core():
        time.sleep(0.5)
    assert os.times().children_user - before.children_user > 0.1
    torch.manual_seed(0)
    save_model(TalkingHeadModel(get_config("dagan++-tiny")), tmp_path / "tiny")
    report = run_animate_bench(str(tmp_path / "tiny"), frames=2, runs=1, policies=("PASSIVE",), threads=1)
    assert [(run.policy, run.load) for run in report.runs] == [("PASSIVE", "quiet"), ("PASSIVE", "busy")]
    assert all(run.seconds > 0 and run.process_seconds > run.seconds for run in report.runs)
    assert report.ratios["PASSIVE"] > 0 and report.omp_num_threads == "1"
    assert "busy/quiet" in format_report(report) and json.loads(json.dumps(asdict(report)))["synthetic_load"]
    with pytest.raises(SdkError, match="wait policy"):
        run_animate_bench("default", policies=("SPIN",))
