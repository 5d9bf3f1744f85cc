"""Frame metrics: the papers' reenactment protocol (L1, SSIM, AKD, identity distance; PSNR:
sdk.training.losses), and issue 11's sharpness ratio and mouth / eye landmark distances.

Images are float tensors (N, 3, H, W) in [0, 1] unless stated otherwise.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..face import MESH_REGIONS, FaceLandmarker
from ..media import resize_image

# AKD is measured in pixels at this side, as in the papers (256² crops).
AKD_RESOLUTION = 256


def l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image on the [0, 1] scale: (N,)."""
    return (prediction - target).abs().flatten(1).mean(1)


@lru_cache(maxsize=4)
def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernel = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    return (kernel[:, None] * kernel[None, :]).expand(3, 1, size, size).contiguous()


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image with the standard 11×11 Gaussian window (σ 1.5): (N,)."""
    window = _gaussian_window().to(prediction)
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=3)

    mu_p, mu_t = blur(prediction), blur(target)
    var_p = blur(prediction * prediction) - mu_p ** 2
    var_t = blur(target * target) - mu_t ** 2
    cov = blur(prediction * target) - mu_p * mu_t
    value = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2))
    return value.flatten(1).mean(1)


def laplacian_variance(image: np.ndarray) -> float:
    """Sharpness of an RGB uint8 image: the variance of the Laplacian of its grey image."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@lru_cache(maxsize=1)
def mesh_regions() -> dict[str, np.ndarray]:
    """Indices into the 478-point mesh of the lips ("mouth", 40 points) and of both eye contours
    ("eyes", 32 points)."""
    return {"mouth": MESH_REGIONS["lips"],
            "eyes": np.concatenate([MESH_REGIONS["left_eye"], MESH_REGIONS["right_eye"]])}


class KeypointDistance:
    """AKD: mean distance in pixels at 256² between the face meshes of two frames.

    Uses all 478 points of the bundled MediaPipe face mesh (the papers use 68 points from a
    different landmark model, so absolute values are not comparable with theirs; ratios against
    a baseline measured the same way are); the mouth and eye landmark distances are the same
    mean over the `mesh_regions` points only. Frames where the mesh finds no face are counted,
    not scored.
    """

    def __init__(self) -> None:
        self.landmarker = FaceLandmarker()
        self.regions = mesh_regions()

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """(478, 2) landmarks in pixels at 256² of an RGB uint8 square image, or None."""
        points = self.landmarker.from_image(resize_image(image, AKD_RESOLUTION, AKD_RESOLUTION))
        return None if points is None else points[:, :2]

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray, points: np.ndarray | None = None) -> float:
        """Mean distance between (478, 2) landmarks, over `points` (indices) when given."""
        if points is not None:
            a, b = a[points], b[points]
        return float(np.linalg.norm(a - b, axis=1).mean())

    def close(self) -> None:
        self.landmarker.close()


def _dlib_model_dir() -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or importlib.util.find_spec("dlib") is None:
        return None
    # The package's own __init__ needs pkg_resources, gone from new setuptools; only its files are used.
    return Path(spec.submodule_search_locations[0]) / "models"


class IdentityDistance:
    """Distance between dlib's 128-d face descriptors (ResNet, LFW 99.38 %); < 0.6 = same person.

    Available when the `eval` extra is installed (dlib-bin, face-recognition-models, which ship
    the weights); `IdentityDistance.available()` says whether it is.
    """

    NAME = "dlib face_recognition_resnet_model_v1 (face-recognition-models 0.3.0)"

    def __init__(self) -> None:
        import dlib

        models = _dlib_model_dir()
        if models is None:
            raise RuntimeError("identity distance needs the 'eval' extra: pip install -e '.[eval]'")
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self.dlib = dlib

    @staticmethod
    def available() -> bool:
        return _dlib_model_dir() is not None

    def descriptor(self, image: np.ndarray) -> np.ndarray | None:
        """128-d descriptor of the face in an RGB uint8 crop, or None when dlib finds no face."""
        if image.shape[0] < AKD_RESOLUTION:
            image = cv2.resize(image, (AKD_RESOLUTION, AKD_RESOLUTION), interpolation=cv2.INTER_LINEAR)
        image = np.ascontiguousarray(image)  # dlib takes C-ordered arrays only (rendered frames are transposed views)
        faces = self.detector(image, 1)
        if not faces:
            return None
        shape = self.shape(image, max(faces, key=lambda r: r.area()))
        return np.asarray(self.encoder.compute_face_descriptor(image, shape), dtype=np.float32)

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b))
