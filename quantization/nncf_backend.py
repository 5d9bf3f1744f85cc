"""NNCF, imported so that its ONNX post-training quantization runs with this project's pins.

nncf 3.4.0's ONNX backend declares a dataclass field as ``onnx.TensorProto.DataType | np.dtype``
(nncf/onnx/quantization/quantizer_parameters.py). Python 3.11 evaluates that annotation when the
module is imported, and protobuf's `EnumTypeWrapper` has no ``|``, so the import fails
(TypeError: unsupported operand type(s) for |). `load_nncf` gives `EnumTypeWrapper` a ``|`` for
that one import only, then takes it away; nothing else in NNCF's ONNX backend needs it (checked
by the tests, which quantize a model end to end).

NNCF's torch backend compiles a C++ extension on first use (cached in ~/.cache/torch_extensions);
its default 60 s limit is too short on a loaded 2-core machine, so it is raised here unless set.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import typing
from types import ModuleType

from .errors import MissingDependencyError

NNCF_VERSION = "3.4.0"
EXTENSION_TIMEOUT_ENV = "NNCF_EXTENSION_LOAD_TIMEOUT"
EXTENSION_TIMEOUT_SECONDS = "900"


@contextlib.contextmanager
def _enum_wrapper_union() -> typing.Iterator[None]:
    from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

    if "__or__" in vars(EnumTypeWrapper):  # a protobuf that supports it already
        yield
        return
    EnumTypeWrapper.__or__ = lambda self, other: typing.Any  # only read as an annotation
    try:
        yield
    finally:
        del EnumTypeWrapper.__or__


def load_nncf() -> ModuleType:
    """`import nncf` with its ONNX backend importable (see the module docstring)."""
    os.environ.setdefault(EXTENSION_TIMEOUT_ENV, EXTENSION_TIMEOUT_SECONDS)
    try:
        nncf = importlib.import_module("nncf")
    except ImportError as exc:
        raise MissingDependencyError(f"INT8 quantization and pruning need nncf=={NNCF_VERSION}: "
                                     "pip install -e '.[compress]'") from exc
    with _enum_wrapper_union():
        importlib.import_module("nncf.onnx.quantization.quantizer_parameters")
    return nncf
