"""A two-process UDP session between two network namespaces with 5 % loss and 40±20 ms delay.

Runs bench/netem_session.py briefly (SDK_NETEM_DURATION seconds, default 4) with the real codec on
synthetic codes; `python bench/netem_session.py --duration 120` is the 2-minute run. Skipped, with
the reason, where network namespaces cannot be created (not root, no iproute2, a sandbox).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "netem_session.py"
NAMESPACE_UNAVAILABLE = 77
FPS_FLOOR = 15  # frames per second the sender reaches at least, even on a loaded CI machine


def test_two_namespace_udp_session_under_loss_and_delay(tmp_path):
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (`ip`) is not installed: cannot create network namespaces")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    duration = float(os.environ.get("SDK_NETEM_DURATION", "4"))
    report = tmp_path / "netem.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--duration", str(duration), "--codes", "synthetic",
                             "--json", str(report)], capture_output=True, text=True, timeout=duration + 150)
    if result.returncode == NAMESPACE_UNAVAILABLE:
        pytest.skip(result.stderr.strip().splitlines()[-1])
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(report.read_text())
    assert summary["frames_sent"] >= FPS_FLOOR * duration
    assert summary["receiver"]["sessions"] == 1 and summary["receiver"]["forged"] == 0
    assert summary["rendered_ratio"] > 0.6                 # 5 % loss: most frames arrive and decode
    assert summary["latency_ms_p95"] < 400                 # 40±20 ms network, never an unbounded queue
    assert summary["decoder"]["malformed"] == 0
