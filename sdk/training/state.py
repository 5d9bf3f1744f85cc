"""Training checkpoints: atomic writes, tensor-only RNG states, loading without arbitrary unpickling.

A checkpoint is one `torch.save` file holding only tensors, numbers, strings, lists and dicts
(model, optimizer and grad-scaler state dicts, the step, per-rank RNG states as tensors), so it
loads with `torch.load(weights_only=True)`, which refuses to run code from the file.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SdkError
from ..files import atomic_file

CHECKPOINT_FORMAT = 1


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and every GPU), numpy and Python's `random`."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


def capture_rng_state() -> dict[str, torch.Tensor]:
    """This process's torch, CUDA, numpy and Python RNG states, as tensors only."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    if kind != "MT19937":
        raise RuntimeError(f"unexpected numpy generator {kind}")
    version, python_state, _ = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
        "numpy_position": torch.tensor([position, has_gauss], dtype=torch.int64),
        "numpy_cached_gaussian": torch.tensor([cached], dtype=torch.float64),
        "python": torch.tensor([version, *python_state], dtype=torch.int64),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, torch.Tensor]) -> None:
    """Inverse of `capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    position, has_gauss = (int(v) for v in state["numpy_position"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), position, has_gauss,
                         float(state["numpy_cached_gaussian"][0])))
    python = [int(v) for v in state["python"]]
    random.setstate((python[0], tuple(python[1:]), None))


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """Write atomically (`sdk.files.atomic_file`)."""
    with atomic_file(path) as partial:
        torch.save({"format": CHECKPOINT_FORMAT, **checkpoint}, partial)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (tensors and plain data only)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt or foreign files
        raise SdkError(f"{path}: not a readable training checkpoint ({exc}); delete it to start over") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise SdkError(f"{path}: not a training checkpoint of format {CHECKPOINT_FORMAT}")
    return checkpoint
