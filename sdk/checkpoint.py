"""Saving and loading models: a directory with `config.json`, `weights.safetensors`, `weights.sha256`.

- `config.json`: {"kind": "talking_head" | "depth", "config": ModelConfig.to_dict(), "metadata": {...}}
  (metadata: model name, variant, dtype, parameter count, training steps and whatever the trainer adds).
- `weights.safetensors`: the state dict (fp16 for shipped models), never pickle.
- `weights.sha256`: ``<hex digest>  weights.safetensors`` (sha256sum format), checked before loading.

`load_model("default")` reads `sdk/assets/models/default/`; another bare name reads
`sdk/assets/models/NAME/`; anything else is a directory path. Every failure is a `ModelLoadError`.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from .errors import ModelLoadError
from .files import atomic_file, file_sha256, verified_sha256
from .models.config import ModelConfig
from .models.depth_net import DepthNet
from .models.macs import count_params
from .models.pose_net import PoseNet
from .models.talking_head import TalkingHeadModel

MODELS_DIR = Path(__file__).resolve().parent / "assets" / "models"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
CHECKSUM_FILE = "weights.sha256"


class DepthStage(NamedTuple):
    """A trained depth stage (`load_depth`): the depth and pose nets, their config and metadata."""
    depth_net: DepthNet
    pose_net: PoseNet
    config: ModelConfig
    metadata: dict[str, Any]


def save_model(model: TalkingHeadModel, directory: str | Path, half: bool = True,
               extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write `model` to `directory` (created if needed); fp16 weights unless `half=False`."""
    metadata = {"parameters": count_params(model), **(extra_metadata or {})}
    return _write(Path(directory), "talking_head", model.cfg, model.state_dict(), half, metadata)


def load_model(name_or_path: str | Path = "default", device: str | torch.device = "cpu") -> TalkingHeadModel:
    """Load a model saved by `save_model`, in eval mode, with fp32 weights on `device`."""
    directory = _resolve(name_or_path)
    cfg, metadata, tensors = _read(directory, "talking_head")
    model = TalkingHeadModel(cfg)
    _load_state(model, tensors, directory)
    model.metadata = metadata
    return model.to(device).eval()


def save_depth(depth_net: DepthNet, pose_net: PoseNet, cfg: ModelConfig, directory: str | Path,
               half: bool = False, extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write a trained depth stage so the generator stage can start from it (fp32 by default)."""
    state = {f"depth_net.{key}": value for key, value in depth_net.state_dict().items()}
    state.update({f"pose_net.{key}": value for key, value in pose_net.state_dict().items()})
    metadata = {"parameters": count_params(depth_net) + count_params(pose_net), **(extra_metadata or {})}
    return _write(Path(directory), "depth", cfg, state, half, metadata)


def load_depth(directory: str | Path, device: str | torch.device = "cpu") -> DepthStage:
    """Load a depth stage saved by `save_depth` (eval mode, fp32 on `device`)."""
    directory = Path(directory)
    cfg, metadata, tensors = _read(directory, "depth")
    stage = nn.Module()
    stage.depth_net = DepthNet(cfg)
    stage.pose_net = PoseNet(cfg)
    _load_state(stage, tensors, directory)
    stage.to(device).eval()
    return DepthStage(stage.depth_net, stage.pose_net, cfg, metadata)


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    path = Path(text)
    if path.is_dir():
        return path
    if "/" in text or os.sep in text:
        raise ModelLoadError(f"{text}: no such model directory")
    directory = MODELS_DIR / text
    if directory.is_dir():
        return directory
    installed = sorted(p.name for p in MODELS_DIR.iterdir() if p.is_dir()) if MODELS_DIR.is_dir() else []
    if text == "default":
        raise ModelLoadError(f"no default model is installed (expected {directory}/ with {CONFIG_FILE}, "
                             f"{WEIGHTS_FILE} and {CHECKSUM_FILE}); pass a model directory instead")
    raise ModelLoadError(f"{text}: no such model (installed: {', '.join(installed) or 'none'}; "
                         f"or pass a model directory)")


def _write(directory: Path, kind: str, cfg: ModelConfig, state: dict[str, torch.Tensor], half: bool,
           metadata: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    from . import __version__

    directory.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    tensors = {key: (value.to(dtype) if value.is_floating_point() else value).detach().cpu().contiguous()
               for key, value in state.items()}
    info = {"name": cfg.name, "variant": cfg.variant, "size": cfg.size, "resolution": cfg.resolution,
            "dtype": str(dtype).removeprefix("torch."), "sdk_version": __version__,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **metadata}
    # Weights first, checksum last: an interrupted save never leaves a checksum that matches.
    (directory / CHECKSUM_FILE).unlink(missing_ok=True)
    with atomic_file(directory / WEIGHTS_FILE) as partial:
        save_file(tensors, str(partial))
    (directory / CONFIG_FILE).write_text(
        json.dumps({"kind": kind, "config": cfg.to_dict(), "metadata": info}, indent=2) + "\n")
    (directory / CHECKSUM_FILE).write_text(f"{file_sha256(directory / WEIGHTS_FILE)}  {WEIGHTS_FILE}\n")
    return directory


def _read(directory: Path, kind: str) -> tuple[ModelConfig, dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE, CHECKSUM_FILE) if not (directory / name).is_file()]
    if missing:
        raise ModelLoadError(f"{directory}: missing {', '.join(missing)}")
    try:
        document = json.loads((directory / CONFIG_FILE).read_text())
        if document.get("kind") != kind:
            raise ValueError(f"holds a {document.get('kind')!r} checkpoint, expected {kind!r}")
        cfg = ModelConfig.from_dict(document["config"])
        metadata = dict(document.get("metadata") or {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{directory / CONFIG_FILE}: invalid ({exc})") from exc
    verified_sha256(directory / WEIGHTS_FILE, directory / CHECKSUM_FILE, "the weights are")
    try:
        tensors = load_file(str(directory / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{directory / WEIGHTS_FILE}: not a readable safetensors file ({exc})") from exc
    return cfg, metadata, tensors


def _load_state(module: nn.Module, tensors: dict[str, torch.Tensor], directory: Path) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    misshaped = sorted(f"{key} {tuple(tensors[key].shape)} vs {tuple(expected[key].shape)}"
                       for key in set(expected) & set(tensors) if tensors[key].shape != expected[key].shape)
    problems = [f"{label} keys: {_listing(keys)}" for label, keys in
                (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
    if problems:
        raise ModelLoadError(f"{directory}: weights do not match {CONFIG_FILE}; " + "; ".join(problems))
    module.load_state_dict({key: value.to(expected[key].dtype) for key, value in tensors.items()})


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
