"""What `python -m export` is asked to do: a model, formats, precisions and an output folder, validated."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdk.errors import SdkError

FORMATS: tuple[str, ...] = ("onnx", "tflite", "coreml")
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
GRAPH_SETS: tuple[str, ...] = ("all", "sender", "receiver")
BUNDLE_PLATFORMS: dict[str, str] = {"android": "tflite", "ios": "coreml"}  # platform -> the format its app runs


class ExportError(SdkError):
    """A bad export request, a failed conversion, or an export folder that does not verify."""


def parse_choices(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """"onnx,tflite" -> ("onnx", "tflite"); ExportError naming the unknown value and the choices."""
    values = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if not values:
        raise ExportError(f"no {what} given; choose from {', '.join(allowed)}")
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise ExportError(f"unknown {what} {', '.join(map(repr, unknown))}; choose from {', '.join(allowed)}")
    return values


@dataclass(frozen=True)
class ExportRequest:
    """model: "default", a shipped model name or a model folder (`sdk.load_model`); out: the export
    folder; output_size: the side of the rendered frames (None: the model's default output size);
    calibration: what int8 calibrates on (None: see `export.int8`); graphs: which of the model's
    graphs ("all", "sender": the keypoint encoder, none for a face-prior "prior" model, whose
    sender needs only the prior file; "receiver": the source encoder and the generator); bundle:
    also lay the exported files out for an app ("android" | "ios", `export.bundle`) in
    `bundle_dir` (None: ``out/<bundle>``), which needs the platform's format at one precision."""
    model: str
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    out: Path
    output_size: int | None = None
    calibration: Path | None = None
    graphs: str = "all"
    bundle: str | None = None
    bundle_dir: Path | None = None

    def __post_init__(self) -> None:
        for value in self.formats:
            if value not in FORMATS:
                raise ExportError(f"unknown format {value!r}; choose from {', '.join(FORMATS)}")
        for value in self.precisions:
            if value not in PRECISIONS:
                raise ExportError(f"unknown precision {value!r}; choose from {', '.join(PRECISIONS)}")
        if not self.formats or not self.precisions:
            raise ExportError("an export needs at least one format and one precision")
        if self.graphs not in GRAPH_SETS:
            raise ExportError(f"unknown --graphs {self.graphs!r}; choose from {', '.join(GRAPH_SETS)}")
        if self.bundle is not None:
            if self.bundle not in BUNDLE_PLATFORMS:
                raise ExportError(f"unknown --bundle {self.bundle!r}; choose from {', '.join(BUNDLE_PLATFORMS)}")
            if BUNDLE_PLATFORMS[self.bundle] not in self.formats:
                raise ExportError(f"--bundle {self.bundle} ships {BUNDLE_PLATFORMS[self.bundle]} graphs: add "
                                  f"--format {BUNDLE_PLATFORMS[self.bundle]}")
            if len(self.precisions) != 1:
                raise ExportError(f"--bundle {self.bundle} ships one precision, got {', '.join(self.precisions)}")

    @property
    def bundle_root(self) -> Path | None:
        """Where the app bundle goes (None without --bundle)."""
        if self.bundle is None:
            return None
        return self.bundle_dir if self.bundle_dir is not None else Path(self.out) / self.bundle
