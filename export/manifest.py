"""`export.json`: what an export folder holds — the model, and one entry per format × precision × graph."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from .request import ExportError

MANIFEST_FILE = "export.json"
Status = Literal["ok", "failed"]


@dataclass(frozen=True)
class ExportEntry:
    """One exported graph: its file (relative to the folder), size, export time, status and sha256."""
    format: str
    precision: str
    graph: str
    path: str
    status: Status
    bytes: int = 0
    seconds: float = 0.0
    sha256: str = ""
    error: str = ""


@dataclass
class ExportManifest:
    """model_source: what --model was; model_id / model_sha256: `sdk.runtime.model_sha256` identity."""
    model_source: str
    model_id: str
    model_sha256: str
    bitstream_version: int
    sdk_version: str
    entries: list[ExportEntry] = field(default_factory=list)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / MANIFEST_FILE
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, directory: Path) -> ExportManifest:
        path = Path(directory) / MANIFEST_FILE
        if not Path(directory).is_dir():
            raise ExportError(f"{directory}: no such export folder")
        if not path.is_file():
            raise ExportError(f"{directory}: not an export folder (no {MANIFEST_FILE}); run `python -m export` first")
        try:
            data = json.loads(path.read_text())
            entries = [ExportEntry(**entry) for entry in data.pop("entries")]
            return cls(**data, entries=entries)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ExportError(f"{path}: corrupt or not written by `python -m export` ({exc})") from exc

    def groups(self) -> dict[tuple[str, str], list[ExportEntry]]:
        """Entries by (format, precision), in export order."""
        grouped: dict[tuple[str, str], list[ExportEntry]] = {}
        for entry in self.entries:
            grouped.setdefault((entry.format, entry.precision), []).append(entry)
        return grouped
