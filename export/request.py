"""What `python -m export` is asked to do: a model, formats, precisions and an output folder, validated."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdk.errors import SdkError

FORMATS: tuple[str, ...] = ("onnx", "tflite", "coreml")
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


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
    calibration: what int8 calibrates on (None: see `export.int8`)."""
    model: str
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    out: Path
    output_size: int | None = None
    calibration: Path | None = None

    def __post_init__(self) -> None:
        for value in self.formats:
            if value not in FORMATS:
                raise ExportError(f"unknown format {value!r}; choose from {', '.join(FORMATS)}")
        for value in self.precisions:
            if value not in PRECISIONS:
                raise ExportError(f"unknown precision {value!r}; choose from {', '.join(PRECISIONS)}")
        if not self.formats or not self.precisions:
            raise ExportError("an export needs at least one format and one precision")
