"""The face prior as one versioned, checksummed file: `face_prior.safetensors` + `face_prior.sha256`.

- `face_prior.safetensors`: tensors `canonical` (478, 3), `weights` (478,), `basis.components`
  (E, 478, 3), `basis.energy` (E,), `controls.units` (M,), `controls.to_coefficients` (M, E),
  `controls.from_coefficients` (E, M); its header metadata holds `format` ("sdk-face-prior"),
  `version` (FORMAT_VERSION) and `info`, a JSON object: components, total_energy,
  residual_limit, the controls' names and ranges, and the fit data summary (`fit`).
- `face_prior.sha256`: ``<hex digest>  face_prior.safetensors`` (sha256sum format), checked
  before anything is parsed.

`load_prior("default")` reads `sdk/assets/prior/`; otherwise a directory holding the two files or
the .safetensors path. A missing, corrupt, foreign or wrong-version file, or one whose digest is
not `expected_sha256` (the prior a model was trained with), is a `ModelLoadError`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from ..files import atomic_file, file_sha256, verified_sha256
from ..face.landmarks import NUM_LANDMARKS
from .basis import ExpressionBasis
from .controls import CONTROL_SPECS, ControlMap

PRIOR_DIR = Path(__file__).resolve().parent.parent / "assets" / "prior"
PRIOR_FILE = "face_prior.safetensors"
CHECKSUM_FILE = "face_prior.sha256"
FORMAT = "sdk-face-prior"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FacePrior:
    """Everything the sender and receiver need to turn meshes into codes and codes into keypoints.

    canonical (478, 3) the neutral face in the canonical frame (`sdk.prior.canonical`);
    weights (478,) Procrustes weights; basis: the expression basis (E components);
    controls: the named controls' maps; residual_limit: weighted RMS distance (canonical units)
    of the rigid points from the canonical face above which a mesh is not trusted;
    metadata: the file's `info` (fit summary); sha256: digest of the file it was loaded from or
    saved to (None for a prior fitted in memory).
    """

    canonical: np.ndarray
    weights: np.ndarray
    basis: ExpressionBasis
    controls: ControlMap
    residual_limit: float
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.canonical.shape != (NUM_LANDMARKS, 3) or self.weights.shape != (NUM_LANDMARKS,):
            raise ValueError(f"canonical {self.canonical.shape} / weights {self.weights.shape} are not of "
                             f"a {NUM_LANDMARKS}-point mesh")
        if self.controls.to_coefficients.shape[1] != self.basis.size:
            raise ValueError(f"controls map {self.controls.to_coefficients.shape[1]} coefficients, the basis "
                             f"has {self.basis.size}")

    @property
    def components(self) -> int:
        """E, the number of expression coefficients."""
        return self.basis.size

    def apply_controls(self, coefficients: np.ndarray, values: dict[str, float]) -> np.ndarray:
        """`ControlMap.apply`: coefficients (E',) relative to a neutral with named controls set."""
        return self.controls.apply(coefficients, values)


def save_prior(prior: FacePrior, directory: str | Path, half: bool = True) -> Path:
    """Write `prior` to `directory` (created); basis components in fp16 when `half`. Returns the
    .safetensors path; the digest is in the .sha256 file beside it."""
    from safetensors.numpy import save_file


    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    components = prior.basis.components.astype(np.float16 if half else np.float32)
    tensors = {
        "canonical": prior.canonical.astype(np.float32),
        "weights": prior.weights.astype(np.float32),
        "basis.components": components,
        "basis.energy": prior.basis.energy.astype(np.float32),
        "controls.units": prior.controls.units.astype(np.float32),
        "controls.to_coefficients": prior.controls.to_coefficients.astype(np.float32),
        "controls.from_coefficients": prior.controls.from_coefficients.astype(np.float32),
    }
    info = {
        **prior.metadata,
        "components": prior.components,
        "total_energy": prior.basis.total_energy,
        "residual_limit": prior.residual_limit,
        "controls": [{"name": spec.name, "feature": spec.feature, "low": spec.low, "high": spec.high,
                      "unit": spec.unit} for spec in CONTROL_SPECS],
        "dtype": str(components.dtype),
    }
    metadata = {"format": FORMAT, "version": str(FORMAT_VERSION), "info": json.dumps(info)}
    # Tensors first, checksum last: an interrupted save never leaves a checksum that matches.
    (directory / CHECKSUM_FILE).unlink(missing_ok=True)
    with atomic_file(directory / PRIOR_FILE) as partial:
        save_file({key: np.ascontiguousarray(value) for key, value in tensors.items()}, partial, metadata=metadata)
    (directory / CHECKSUM_FILE).write_text(f"{file_sha256(directory / PRIOR_FILE)}  {PRIOR_FILE}\n")
    return directory / PRIOR_FILE


def resolve_prior_path(name_or_path: str | Path = "default") -> Path:
    """The .safetensors file meant by "default", a directory or a file path."""
    if str(name_or_path) == "default":
        return PRIOR_DIR / PRIOR_FILE
    path = Path(name_or_path)
    return path / PRIOR_FILE if path.is_dir() else path


def load_prior(name_or_path: str | Path = "default", expected_sha256: str | None = None) -> FacePrior:
    """Load and verify a prior written by `save_prior` (arrays as float64)."""
    from safetensors import SafetensorError, safe_open


    path = resolve_prior_path(name_or_path)
    checksum = path.with_suffix(".sha256")
    for required in (path, checksum):
        if not required.is_file():
            raise ModelLoadError(f"{required}: no such face prior file (fit one with `python -m sdk prior fit`)")
    actual = verified_sha256(path, checksum, "the prior is")
    if expected_sha256 is not None and actual != expected_sha256.lower():
        raise ModelLoadError(f"{path}: face prior {actual[:12]} is not the one the model was trained with "
                             f"({expected_sha256[:12]}); use that prior file")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key).astype(np.float64) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from exc
    if header.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not a face prior file (format {header.get('format')!r})")
    if header.get("version") != str(FORMAT_VERSION):
        raise ModelLoadError(f"{path}: face prior format version {header.get('version')}, this SDK reads "
                             f"version {FORMAT_VERSION}; refit it with `python -m sdk prior fit`")
    try:
        info = json.loads(header["info"])
        basis = ExpressionBasis(tensors["basis.components"], tensors["basis.energy"], float(info["total_energy"]))
        controls = ControlMap(tensors["controls.units"], tensors["controls.to_coefficients"],
                              tensors["controls.from_coefficients"])
        names = [entry["name"] for entry in info["controls"]]
        if names != [spec.name for spec in CONTROL_SPECS]:
            raise ValueError(f"controls {names} are not this SDK's")
        return FacePrior(tensors["canonical"], tensors["weights"], basis, controls, float(info["residual_limit"]),
                         info, actual)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: invalid face prior ({exc})") from exc
