"""Errors of the compression tools; all are `sdk.SdkError`s, so `python -m quantization` reports them cleanly."""
from __future__ import annotations

from sdk.errors import SdkError


class QuantizationError(SdkError):
    """A compression step cannot run on the given model, options or files."""


class MissingDependencyError(QuantizationError):
    """An optional package a step needs (nncf, onnx, onnxruntime, matplotlib) is not installed."""
