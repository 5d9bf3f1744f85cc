"""`export.json`: what an export folder holds — the model, the output size, which of the model's
graphs it is meant to hold (`--graphs`), one entry per format × precision × graph, and for models
driven by the face prior the prior file their graphs are driven by."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from sdk.runtime.graphs import GRAPH_NAMES

from .files import PRIOR_PATH, graph_path, path_sha256
from .request import FORMATS, PRECISIONS, ExportError

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


@dataclass(frozen=True)
class PriorEntry:
    """The face prior file of the folder (`files.PRIOR_PATH`, with its `.sha256` beside it)."""
    path: str
    sha256: str
    bytes: int


@dataclass
class ExportManifest:
    """model_source: what --model was; model_id / model_sha256: `sdk.runtime.model_sha256` identity;
    output_size: the side of the frames every graph of the folder renders (`graph_specs(cfg, output_size)`);
    graphs: the graphs every format × precision should have (the model's, or those `--graphs` chose;
    folders written before it: all three); face_prior: the prior file of face-prior models."""
    model_source: str
    model_id: str
    model_sha256: str
    bitstream_version: int
    sdk_version: str
    output_size: int
    entries: list[ExportEntry] = field(default_factory=list)
    graphs: list[str] = field(default_factory=lambda: list(GRAPH_NAMES))
    face_prior: PriorEntry | None = None

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
            if isinstance(data, dict) and "entries" in data and "output_size" not in data:
                raise ExportError(f"{path}: written before export folders recorded their output size; "
                                  "export again into a new folder")
            entries = [ExportEntry(**entry) for entry in data.pop("entries")]
            prior = data.pop("face_prior", None)
            manifest = cls(**data, entries=entries, face_prior=None if prior is None else PriorEntry(**prior))
            manifest._check()
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ExportError(f"{path}: corrupt or not written by `python -m export` ({exc})") from exc
        return manifest

    def _check(self) -> None:
        """ValueError unless the fields have the types and values `python -m export` writes (so that
        the commands reading a foreign or edited export.json fail here, with its name)."""
        for name in ("model_source", "model_id", "model_sha256", "sdk_version"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} {getattr(self, name)!r} is not a string")
        for name in ("bitstream_version", "output_size"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} {getattr(self, name)!r} is not an integer")
        if not isinstance(self.graphs, list) or any(graph not in GRAPH_NAMES for graph in self.graphs):
            raise ValueError(f"graphs {self.graphs!r} are not some of {', '.join(GRAPH_NAMES)}")
        prior = self.face_prior
        if prior is not None and (prior.path != str(PRIOR_PATH) or not isinstance(prior.sha256, str)
                                  or not isinstance(prior.bytes, int)):
            raise ValueError(f"face prior {prior} is not {PRIOR_PATH} with its sha256 and size")
        for entry in self.entries:
            if entry.format not in FORMATS or entry.precision not in PRECISIONS or entry.graph not in GRAPH_NAMES:
                raise ValueError(f"unknown format, precision or graph in {entry}")
            if (entry.status not in ("ok", "failed") or not isinstance(entry.sha256, str)
                    or not isinstance(entry.bytes, int) or not isinstance(entry.seconds, (int, float))):
                raise ValueError(f"bad status, sha256, bytes or seconds in {entry}")
            if not isinstance(entry.path, str) or Path(entry.path) != graph_path(Path(), entry.format,
                                                                                  entry.precision, entry.graph):
                raise ValueError(f"path {entry.path!r} is not where {entry.format} {entry.precision} "
                                 f"{entry.graph} belongs")

    def groups(self) -> dict[tuple[str, str], list[ExportEntry]]:
        """Entries by (format, precision), in export order."""
        grouped: dict[tuple[str, str], list[ExportEntry]] = {}
        for entry in self.entries:
            grouped.setdefault((entry.format, entry.precision), []).append(entry)
        return grouped


def incomplete(entries: list[ExportEntry], graphs: list[str]) -> str | None:
    """Why a format × precision group cannot run (a graph failed to export, or one of `graphs`, the
    folder's, is missing); None when complete."""
    failed = [entry.graph for entry in entries if entry.status != "ok"]
    if failed:
        return "export failed for " + ", ".join(failed)
    missing = [graph for graph in graphs if graph not in {entry.graph for entry in entries}]
    return "missing graphs " + ", ".join(missing) if missing else None


def damaged(directory: Path, entries: list[ExportEntry | PriorEntry]) -> str | None:
    """The first file of `entries` that is missing or differs from the sha256 recorded at export; None when intact."""
    for entry in entries:
        path = Path(directory) / entry.path
        if not path.exists():
            return f"{path}: missing"
        if path_sha256(path) != entry.sha256:
            return f"{path}: sha256 differs from export.json (file changed or damaged)"
    return None
