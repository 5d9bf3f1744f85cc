"""A frozen pretrained speech front end for the ablation: openWakeWord 0.4.0's two ONNX graphs.

The `openwakeword==0.4.0` wheel (PyPI) ships `resources/models/melspectrogram.onnx` (16 kHz
samples at int16 scale -> 32-bin log-mel, 10 ms hop) and `embedding_model.onnx` (76 mel frames,
760 ms -> a 96-d speech embedding: the openWakeWord author's re-implementation of Google's
`speech_embedding` TF-Hub module). Licenses, read from the wheel (METADATA, LICENSE): the code is
Apache-2.0; "all of the included pre-trained models" are CC BY-NC-SA 4.0 (non-commercial,
share-alike). So they are only an ablation arm here, never a default, never shipped, never
vendored: this module reads them from an installed package (`pip install openwakeword==0.4.0`,
found without importing it, which would pull scikit-learn) or from a folder given explicitly,
and anything trained on them inherits the non-commercial terms (our models are evaluation and
development only anyway, because of the training data).

    OpenWakeWordFeatures().frame_embeddings(samples, frames) -> (frames, 96) float32

one embedding per 25 fps frame, of the 76 mel frames centred on it (silence past the ends).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from .features import FRAME_RATE

MEL_FILE, EMBEDDING_FILE = "melspectrogram.onnx", "embedding_model.onnx"
WINDOW = 76  # mel frames per embedding
EMBEDDING_DIMS = 96
LICENSE_NOTE = "openWakeWord 0.4.0 pretrained models: CC BY-NC-SA 4.0 (code Apache-2.0)"


def find_models(directory: str | Path | None = None) -> Path:
    """The folder holding the two graphs: `directory`, or the installed package's resources."""
    if directory is None:
        spec = importlib.util.find_spec("openwakeword")
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError("the openWakeWord front end needs `pip install openwakeword==0.4.0` (or a folder "
                                 f"with {MEL_FILE} and {EMBEDDING_FILE}); its models are CC BY-NC-SA 4.0")
        directory = Path(list(spec.submodule_search_locations)[0]) / "resources" / "models"
    directory = Path(directory)
    missing = [name for name in (MEL_FILE, EMBEDDING_FILE) if not (directory / name).is_file()]
    if missing:
        raise ModelLoadError(f"{directory}: no {', '.join(missing)} (openWakeWord 0.4.0's resources/models)")
    return directory


class OpenWakeWordFeatures:
    """The two frozen graphs on ONNX Runtime, one thread each."""

    def __init__(self, directory: str | Path | None = None):
        import onnxruntime

        folder = find_models(directory)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.mel = onnxruntime.InferenceSession(str(folder / MEL_FILE), options, providers=["CPUExecutionProvider"])
        self.embedding = onnxruntime.InferenceSession(str(folder / EMBEDDING_FILE), options,
                                                      providers=["CPUExecutionProvider"])

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """(N,) float in [-1, 1] -> (M, 32), in the scale the embedding graph was trained on."""
        pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype(np.float32)[None]
        mel = self.mel.run(None, {self.mel.get_inputs()[0].name: pcm})[0]
        return mel.reshape(-1, mel.shape[-1]) / 10.0 + 2.0  # the affine openWakeWord documents for this graph

    def frame_embeddings(self, samples: np.ndarray, frames: int, batch: int = 256) -> np.ndarray:
        """(frames, 96): per 25 fps frame, the embedding of the 76 mel frames centred on its centre time."""
        padding = np.zeros(16_000, np.float32)  # 1 s of silence each side: every window is full
        mel = self.log_mel(np.concatenate([padding, np.asarray(samples, np.float32), padding]))
        hop_s = 0.01
        centres = np.round(((np.arange(frames) + 0.5) / FRAME_RATE + 1.0) / hop_s).astype(int)
        starts = np.clip(centres - WINDOW // 2, 0, len(mel) - WINDOW)
        windows = np.stack([mel[start:start + WINDOW] for start in starts])[..., None].astype(np.float32)
        name = self.embedding.get_inputs()[0].name
        out = [self.embedding.run(None, {name: windows[i:i + batch]})[0].reshape(-1, EMBEDDING_DIMS)
               for i in range(0, len(windows), batch)]
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIMS), np.float32)
