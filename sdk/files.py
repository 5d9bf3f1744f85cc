"""The one atomic file writer (a reader never sees half a file or half a folder) and the one file checksum.

A file is written to a temporary name in the same folder (same file system, so the final
`os.replace` is atomic) and moved over its destination only once it is complete; on any error the
temporary is removed and the destination is untouched. Written files get mode 0644 (mkstemp and
safetensors make them private; models, graphs and the prior are meant to be shipped).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ModelLoadError


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside `path` for the block to write; it replaces `path` when the
    block ends normally."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """`data` to `path` via `atomic_file`; returns `path`."""
    with atomic_file(path) as partial:
        partial.write_bytes(data)
    return Path(path)


def replace_directory(final: Path, write: Callable[[Path], Any]) -> Path:
    """Rebuild folder `final` via `write(temporary)`, then swap it in; returns `final`.

    The temporary keeps `final`'s suffix (Core ML insists on `.mlpackage`). At worst `final` is
    briefly absent while the old copy is moved aside; it is never half written.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.stem}.partial{final.suffix}")
    previous = final.with_name(f".{final.stem}.old{final.suffix}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        write(temporary)
        shutil.rmtree(previous, ignore_errors=True)
        if final.exists():
            os.replace(final, previous)
        os.replace(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    shutil.rmtree(previous, ignore_errors=True)
    return final


def verified_sha256(path: Path, checksum_file: Path, what: str) -> str:
    """The file's SHA-256, checked against the first word of `checksum_file` (`sha256sum`'s
    format); ModelLoadError when they differ, naming `what` (e.g. "the weights")."""
    recorded = checksum_file.read_text().split()
    actual = file_sha256(path)
    if not recorded or recorded[0].lower() != actual:
        raise ModelLoadError(f"{path}: sha256 checksum mismatch (file is {actual}, {checksum_file.name} says "
                             f"{recorded[0] if recorded else 'nothing'}); {what} corrupt or modified")
    return actual


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (shipped models, graphs, the face prior)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
