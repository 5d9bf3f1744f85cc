"""The audio-to-code model on disk: a directory with `config.json`, `weights.safetensors`, `weights.sha256`.

The layout of `sdk.checkpoint`'s model directories (weights fp16 when shipped, never pickle; the
sha256 file, checked before anything is parsed, written last so an interrupted save never
leaves a checksum that matches), with `{"kind": "audio_to_code", "config": AudioModelConfig,
"metadata": {...}}` in config.json. The metadata records the face prior the expression targets
were coded with (`prior_sha256`): a prior whose digest differs is refused by `check_prior`.

`load_audio_model("default")` reads `sdk/assets/audio/`; anything else is a directory path.
Every failure is a `ModelLoadError`.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CHECKSUM_FILE, CONFIG_FILE, WEIGHTS_FILE
from ..errors import ModelLoadError
from ..files import atomic_file, file_sha256, verified_sha256, write_bytes_atomic
from ..models.audio_to_code import AudioModelConfig, AudioToCodeModel

AUDIO_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "audio"
KIND = "audio_to_code"


def save_audio_model(model: AudioToCodeModel, directory: str | Path, half: bool = True,
                     metadata: dict[str, Any] | None = None) -> Path:
    """Write `model` to `directory` (created); fp16 weights unless `half=False`."""
    from safetensors.torch import save_file

    from .. import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    tensors = {key: (value.to(dtype) if value.is_floating_point() else value).detach().cpu().contiguous()
               for key, value in model.state_dict().items()}
    info = {"dtype": str(dtype).removeprefix("torch."), "parameters": sum(p.numel() for p in model.parameters()),
            "sdk_version": __version__, "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **(metadata or {})}
    (directory / CHECKSUM_FILE).unlink(missing_ok=True)
    with atomic_file(directory / WEIGHTS_FILE) as partial:
        save_file(tensors, str(partial))
    document = {"kind": KIND, "config": model.config.to_dict(), "metadata": info}
    write_bytes_atomic(directory / CONFIG_FILE, (json.dumps(document, indent=2) + "\n").encode())
    write_bytes_atomic(directory / CHECKSUM_FILE, f"{file_sha256(directory / WEIGHTS_FILE)}  {WEIGHTS_FILE}\n".encode())
    return directory


def resolve_audio_model(name_or_path: str | Path = "default") -> Path:
    return AUDIO_MODEL_DIR if str(name_or_path) == "default" else Path(name_or_path)


def load_audio_model(name_or_path: str | Path = "default", device: str | torch.device = "cpu") -> AudioToCodeModel:
    """Load and verify a model saved by `save_audio_model` (fp32, eval mode); `.metadata` holds its info."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = resolve_audio_model(name_or_path)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE, CHECKSUM_FILE) if not (directory / name).is_file()]
    if missing:
        hint = " (train one with `python -m sdk train audio`)" if str(name_or_path) == "default" else ""
        raise ModelLoadError(f"{directory}: no audio-to-code model here, missing {', '.join(missing)}{hint}")
    actual = verified_sha256(directory / WEIGHTS_FILE, directory / CHECKSUM_FILE, "the weights are")
    try:
        document = json.loads((directory / CONFIG_FILE).read_text())
        if document.get("kind") != KIND:
            raise ValueError(f"holds a {document.get('kind')!r} model, expected {KIND!r}")
        config = AudioModelConfig.from_dict(document["config"])
        metadata = dict(document.get("metadata") or {})
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{directory / CONFIG_FILE}: invalid ({exc})") from exc
    try:
        tensors = load_file(str(directory / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{directory / WEIGHTS_FILE}: not a readable safetensors file ({exc})") from exc
    model = AudioToCodeModel(config)
    expected = model.state_dict()
    if set(expected) != set(tensors) or any(tensors[k].shape != expected[k].shape for k in expected):
        raise ModelLoadError(f"{directory}: weights do not match {CONFIG_FILE} "
                             f"({len(set(expected) ^ set(tensors))} keys differ)")
    model.load_state_dict({key: value.to(expected[key].dtype) for key, value in tensors.items()})
    model.metadata = {**metadata, "sha256": actual}
    return model.to(device).eval()


def check_prior(model: AudioToCodeModel, prior_sha256: str | None) -> None:
    """Refuse a face prior other than the one the model's expression targets were coded with."""
    expected = getattr(model, "metadata", {}).get("prior_sha256")
    if expected and prior_sha256 and expected != prior_sha256:
        raise ModelLoadError(f"the audio model was trained on face prior {expected[:12]}, this prior is "
                             f"{prior_sha256[:12]}: its expression codes would mean other shapes")
