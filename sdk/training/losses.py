"""Training losses of both stages: the self-supervised depth net and the keypoint generator.

Conventions follow `sdk.media`: images float32 in [0, 1], NCHW; keypoints (N, K, 2) in [-1, 1],
x first; Jacobians (N, K, 2, 2). Every loss computes in float32 whatever the autocast dtype of
its inputs (SSIM's constants and the squared GAN terms underflow or overflow in float16), and
those built on matrix products run with autocast off (`full_precision`).

Generator stage (DaGAN §3.5, FOMM):
- `reconstruction_loss`: L1 + (1 − SSIM) on an image pyramid at scales 1, ½, ¼, ⅛ of the output
  (the composite frame at the output size), weighted by the crop's coverage. The papers use
  a VGG-19 perceptual loss on the same pyramid; no pretrained network can be downloaded where the
  SDK trains (offline machines, PyPI only), so the SDK deliberately uses no VGG and replaces the
  feature distance with pixel L1 plus structural dissimilarity.
- `mask_decisiveness_loss`: the composite mask is pushed to 0 or 1 (each pixel from one source).
- `generator_adversarial_loss` / `discriminator_adversarial_loss`: least-squares GAN, per scale.
- `feature_matching_loss`: L1 between discriminator features of real and generated images.
- `RandomTransform` + `equivariance_losses`: FOMM's equivariance of keypoint values and Jacobians
  under a random affine + thin-plate-spline warp.
- `keypoint_distance_loss`: pairs of keypoints closer than 0.2 are penalised (DaGAN eq. 13).

Depth stage (DaGAN §3.2, DaGAN++ §III-B, monodepth2):
- `depth_warp`: backproject the target's pixels with its depth and the predicted intrinsics,
  move them into the reference camera, project, and bilinearly sample the reference.
- `photometric_error`: α (1 − SSIM) / 2 + (1 − α) L1 per pixel, α = 0.85.
- `depth_loss`: per-pixel minimum reprojection error over the references, auto-mask of static
  pixels, DaGAN++ uncertainty weighting, edge-aware smoothness on mean-normalised disparity.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.motion import Keypoints, invert_2x2, make_coordinate_grid

PYRAMID_SCALES: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)

_Function = TypeVar("_Function", bound=Callable)


def full_precision(function: _Function) -> _Function:
    """Run `function` with autocast off: its matrix products (projections, coordinate warps) then
    stay in float32 inside a mixed-precision step, where they would otherwise run in float16."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            for device_type in ("cuda", "cpu"):
                if torch.is_autocast_enabled(device_type):
                    stack.enter_context(torch.autocast(device_type, enabled=False))
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class LossWeights:
    """Generator-stage loss weights; defaults are DaGAN's (λ_P = 10 per pyramid scale, λ_G = 1,
    λ_E = 10 for values and for Jacobians, λ_D = 10) and FOMM's feature matching weight (10)."""
    reconstruction: float = 10.0
    generator_gan: float = 1.0
    discriminator_gan: float = 1.0
    feature_matching: float = 10.0
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 10.0
    keypoint_distance: float = 10.0
    keypoint_distance_threshold: float = 0.2
    pyramid_scales: tuple[float, ...] = PYRAMID_SCALES
    # Composite head only: `mask_decisiveness_loss`. Without it the mask settles near 0.8 over the
    # face, and the blend with the blurry decoded image halves the detail (sharpness ratio 0.53
    # against 0.92 for the warp alone, at the same PSNR, measured at step 1000 of the shipped run).
    composite_mask: float = 1.0
    # Composite head only: the decoded image at R against the driving frame at R, so that it stays a
    # usable fill wherever the decisive mask may need it (with the mask loss alone it went unused and
    # drifted in colour within 300 steps, leaving the mouth interior to the warp).
    decoded_reconstruction: float = 10.0
    # The driving frame's mouth and eyes (`region_mask` of its mesh) get the reconstruction loss
    # again, normalised over those pixels alone: they are ~3% of the frame, so the whole-frame mean
    # let the mask hand them to the warped portrait, which cannot open a mouth or close an eye
    # (the shipped step-2,500 model: mouth landmark distance 0.40x the still frame's, no teeth).
    region_reconstruction: float = 10.0
    region_scales: tuple[float, ...] = (1.0, 0.5, 0.25)


@dataclass(frozen=True)
class DepthLossWeights:
    """Depth-stage weights: DaGAN++'s λ1 (photometric), λ2 (smoothness), λ3 (log-uncertainty).

    `ssim_alpha` is monodepth2's 0.85 (the DaGAN++ notes quote 0.8). With λ1 = λ3 the
    uncertainty that minimises `e / U + log U` at a pixel is exactly its photometric error e.
    """
    photometric: float = 1.0
    smoothness: float = 1e-3
    uncertainty: float = 1.0
    ssim_alpha: float = 0.85
    auto_mask: bool = True


# ----------------------------------------------------------------------------------------------
# Image similarity


def image_pyramid(image: Tensor, scales: Sequence[float] = PYRAMID_SCALES) -> list[Tensor]:
    """(N, C, H, W) -> [(N, C, H·s, W·s) for s in scales] by area averaging (anti-aliased)."""
    levels = []
    for scale in scales:
        if scale == 1.0:
            levels.append(image)
        else:
            size = (max(1, round(image.shape[2] * scale)), max(1, round(image.shape[3] * scale)))
            levels.append(F.interpolate(image, size=size, mode="area"))
    return levels


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per-pixel SSIM (N, C, H, W) of two images (N, C, H, W) over 3×3 windows (monodepth2).

    Reflection padding keeps the output at the input size; identical images give exactly 1.
    """
    x, y = x.float(), y.float()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    y = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x = F.avg_pool2d(x, 3, 1)
    mu_y = F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x * mu_x
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y * mu_y
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (sigma_x + sigma_y + c2)
    return numerator / denominator


@full_precision
def reconstruction_loss(prediction: Tensor, target: Tensor, scales: Sequence[float] = PYRAMID_SCALES,
                        weight: Tensor | None = None) -> Tensor:
    """Σ over pyramid scales of mean |p − t| + mean (1 − SSIM(p, t)); images (N, 3, H, W) -> scalar.

    `weight` (N, 1, H, W) in [0, 1], e.g. the crop's coverage of the source frame, turns both means
    into weighted means, so pixels the data made up (repeated edges) teach nothing. Stands in for
    the papers' VGG pyramid perceptual loss: the SDK has no pretrained VGG (see the module docstring).
    """
    total = prediction.new_zeros((), dtype=torch.float32)
    weights = [None] * len(scales) if weight is None else image_pyramid(weight.float(), scales)
    for p, t, w in zip(image_pyramid(prediction.float(), scales), image_pyramid(target.float(), scales), weights):
        l1, dissimilarity = (p - t).abs(), 1.0 - ssim(p, t)
        if w is None:
            total = total + l1.mean() + dissimilarity.mean()
        else:
            norm = (w.sum() * p.shape[1]).clamp_min(1e-6)
            total = total + (l1 * w).sum() / norm + (dissimilarity * w).sum() / norm
    return total


@full_precision
def mask_decisiveness_loss(mask: Tensor, weight: Tensor | None = None) -> Tensor:
    """mean 4 m (1 − m) of a composite mask (N, 1, H, W) in [0, 1]: 1 at m = ½, 0 at 0 and 1.

    A blend m·a + (1 − m)·b keeps only m² of a's detail energy; this pushes each pixel to take
    one source, the warped portrait or the decoded image, and leaves which to the other losses.
    `weight` (N, 1, H, W) as for `reconstruction_loss`.
    """
    penalty = 4 * mask.float() * (1 - mask.float())
    if weight is None:
        return penalty.mean()
    return (penalty * weight).sum() / weight.sum().clamp_min(1e-6)


def psnr(prediction: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB per image: (N, C, H, W) x2 in [0, 1] -> (N,)."""
    mse = (prediction.float() - target.float()).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


# ----------------------------------------------------------------------------------------------
# Adversarial


def generator_adversarial_loss(fake_predictions: Sequence[Tensor]) -> Tensor:
    """Least-squares generator loss Σ_scales mean (1 − D(G))²; predictions (N, 1, h, w) per scale."""
    return sum(((1.0 - p.float()) ** 2).mean() for p in fake_predictions)


def discriminator_adversarial_loss(real_predictions: Sequence[Tensor], fake_predictions: Sequence[Tensor]) -> Tensor:
    """Least-squares discriminator loss Σ_scales mean (1 − D(x))² + mean D(G)²."""
    return sum(((1.0 - r.float()) ** 2).mean() + (f.float() ** 2).mean()
               for r, f in zip(real_predictions, fake_predictions, strict=True))


def feature_matching_loss(real_features: Sequence[Sequence[Tensor]], fake_features: Sequence[Sequence[Tensor]]) -> Tensor:
    """Σ over scales and layers of mean |D_l(x) − D_l(G)| (pix2pixHD); real features are targets.

    Both arguments: one list of feature maps (N, C_l, h_l, w_l) per discriminator scale.
    """
    total = torch.zeros((), device=fake_features[0][0].device)
    for real_scale, fake_scale in zip(real_features, fake_features, strict=True):
        for real, fake in zip(real_scale, fake_scale, strict=True):
            total = total + (real.detach().float() - fake.float()).abs().mean()
    return total


# ----------------------------------------------------------------------------------------------
# Keypoints


class RandomTransform:
    """A random smooth warp T of [-1, 1] coordinates per batch item (FOMM's equivariance transform).

    T(z) = A z + b + Σ_p c_p φ(‖z − q_p‖₁), φ(r) = r² log r: an affine map with Gaussian noise of
    std `sigma_affine` around the identity plus a thin-plate-spline term on a `points_tps`² grid of
    control points q_p with Gaussian coefficients c_p (N, P, 2) of std `sigma_tps` (FOMM adds one
    coefficient to both coordinates; here each coordinate has its own, a strictly richer warp).
    Parameters are drawn on the CPU from `generator` (the global one by default), so a seeded run
    draws the same transforms on any device.
    """

    def __init__(self, batch_size: int, sigma_affine: float = 0.05, sigma_tps: float = 0.005,
                 points_tps: int = 5, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None):
        theta = torch.randn(batch_size, 2, 3, generator=generator) * sigma_affine + torch.eye(2, 3)
        self.theta = theta.to(device)  # (N, 2, 3)
        self.control_points = make_coordinate_grid(points_tps, points_tps).view(1, -1, 2).to(device)  # (1, P, 2)
        self.control_params = (torch.randn(batch_size, points_tps ** 2, 2, generator=generator)
                               * sigma_tps).to(device)  # (N, P, 2)

    def _radial(self, coordinates: Tensor) -> tuple[Tensor, Tensor]:
        """L1 offsets to the control points (N, M, P, 2) and their norms r (N, M, P)."""
        offsets = coordinates[:, :, None, :] - self.control_points[:, None, :, :]
        return offsets, offsets.abs().sum(-1)

    @full_precision
    def warp_coordinates(self, coordinates: Tensor) -> Tensor:
        """T(z) for coordinates (N, M, 2) -> (N, M, 2)."""
        coordinates = coordinates.float()
        affine = coordinates @ self.theta[:, :, :2].transpose(1, 2) + self.theta[:, None, :, 2]
        _, r = self._radial(coordinates)
        basis = r ** 2 * torch.log(r + 1e-6)  # (N, M, P)
        return affine + basis @ self.control_params

    @full_precision
    def jacobian(self, coordinates: Tensor) -> Tensor:
        """∂T/∂z at coordinates (N, M, 2) -> (N, M, 2, 2), row i = output coordinate i (analytic)."""
        coordinates = coordinates.float()
        offsets, r = self._radial(coordinates)
        d_basis = 2 * r * torch.log(r + 1e-6) + r ** 2 / (r + 1e-6)  # φ'(r), (N, M, P)
        d_basis_dz = d_basis[..., None] * torch.sign(offsets)  # ∂φ/∂z_j, (N, M, P, 2)
        tps = torch.einsum("npi,nmpj->nmij", self.control_params, d_basis_dz)
        return self.theta[:, None, :, :2] + tps

    @full_precision
    def warp_image(self, image: Tensor) -> Tensor:
        """The transformed image I_T(z) = I(T(z)): (N, C, H, W) -> (N, C, H, W), reflection padding.

        Works on any channel count (RGB, or RGB-D concatenated so image and depth move together).
        """
        n, _, h, w = image.shape
        grid = make_coordinate_grid(h, w, image.device).view(1, h * w, 2).expand(n, -1, -1)
        grid = self.warp_coordinates(grid).view(n, h, w, 2).to(image.dtype)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


@full_precision
def equivariance_losses(kp: Keypoints, kp_transformed: Keypoints, transform: RandomTransform) -> tuple[Tensor, Tensor]:
    """FOMM's equivariance losses (value, jacobian), each a scalar.

    `kp` is detected on an image, `kp_transformed` on `transform.warp_image(image)`. A point z of
    the transformed image shows the original at T(z), so the keypoints must satisfy
    kp ≈ T(kp_T) (value loss: mean |kp − T(kp_T)|) and J ≈ ∇T(kp_T) J_T (Jacobian loss:
    mean |1 − J⁻¹ ∇T(kp_T) J_T|, compared relative to J so its scale is free).
    """
    value = (kp.value.float() - transform.warp_coordinates(kp_transformed.value)).abs().mean()
    mapped = transform.jacobian(kp_transformed.value) @ kp_transformed.jacobian.float()
    relative = invert_2x2(kp.jacobian.float()) @ mapped
    eye = torch.eye(2, device=relative.device).view(1, 1, 2, 2)
    jacobian = (eye - relative).abs().mean()
    return value, jacobian


@full_precision
def keypoint_distance_loss(value: Tensor, threshold: float = 0.2) -> Tensor:
    """Penalise keypoints (N, K, 2) closer than `threshold` to each other -> scalar.

    DaGAN (eq. 13) counts 1 − sign(‖x_i − x_j‖ − β) over pairs, which has no gradient; this is its
    differentiable hinge: mean over pairs i ≠ j of max(0, β − ‖x_i − x_j‖₂). Zero exactly when every
    pair is at least β apart, positive exactly when the paper's count is.
    """
    k = value.shape[1]
    first, second = torch.triu_indices(k, k, offset=1, device=value.device)
    offsets = value.float()[:, first] - value.float()[:, second]
    distance = torch.sqrt((offsets * offsets).sum(-1) + 1e-12)
    return F.relu(threshold - distance).mean()


# ----------------------------------------------------------------------------------------------
# Depth


class PoseLike(Protocol):
    """What the depth loss reads from the pose net's output (`sdk.models.PoseOutput`)."""
    axisangle: Tensor  # (N, 3)
    translation: Tensor  # (N, 3)
    intrinsics: Tensor  # (N, 3, 3), pixels of the full-resolution image
    uncertainty: Tensor | None  # (N, 1, H, W), positive


@full_precision
def rotation_from_axisangle(axisangle: Tensor) -> Tensor:
    """Rodrigues: axis-angle (N, 3) (direction = axis, norm = angle in radians) -> rotation (N, 3, 3)."""
    angle = axisangle.norm(dim=1, keepdim=True)  # (N, 1)
    axis = axisangle / (angle + 1e-7)
    x, y, z = axis.unbind(1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).view(-1, 3, 3)
    sin, cos = torch.sin(angle)[:, :, None], torch.cos(angle)[:, :, None]
    eye = torch.eye(3, device=axisangle.device, dtype=axisangle.dtype).expand_as(skew)
    return eye + sin * skew + (1 - cos) * (skew @ skew)


@full_precision
def pose_matrix(axisangle: Tensor, translation: Tensor) -> Tensor:
    """Rigid transform (N, 4, 4) [R | t] from axis-angle (N, 3) and translation (N, 3)."""
    matrix = torch.eye(4, device=axisangle.device, dtype=axisangle.dtype).repeat(axisangle.shape[0], 1, 1)
    matrix[:, :3, :3] = rotation_from_axisangle(axisangle)
    matrix[:, :3, 3] = translation
    return matrix


@full_precision
def depth_warp(reference: Tensor, depth: Tensor, pose: Tensor, intrinsics: Tensor) -> Tensor:
    """Reconstruct the target view from a reference frame through depth and camera motion.

    reference (N, C, H, W); depth (N, 1, H, W) of the target view; pose (N, 4, 4) moving points
    from the target camera into the reference camera; intrinsics (N, 3, 3) in pixels of H, W.
    Each target pixel p is backprojected to X = D(p) K⁻¹ p̃, moved to R X + t, projected with K
    and the reference is sampled there (bilinear, border padding) -> (N, C, H, W). An identity
    pose returns the reference unchanged. DaGAN eq. (3)-(4).
    """
    n, _, h, w = reference.shape
    if depth.shape[-2:] != (h, w):
        raise ValueError(f"depth {tuple(depth.shape)} must match the reference size {(h, w)}")
    depth, pose, intrinsics = depth.float(), pose.float(), intrinsics.float()
    ys, xs = torch.meshgrid(torch.arange(h, device=depth.device, dtype=torch.float32),
                            torch.arange(w, device=depth.device, dtype=torch.float32), indexing="ij")
    pixels = torch.stack([xs, ys, torch.ones_like(xs)]).view(1, 3, h * w)  # homogeneous, (1, 3, HW)
    rays = torch.linalg.inv(intrinsics) @ pixels  # (N, 3, HW)
    points = rays * depth.view(n, 1, h * w)
    moved = pose[:, :3, :3] @ points + pose[:, :3, 3:]
    projected = intrinsics @ moved
    xy = projected[:, :2] / projected[:, 2:].clamp_min(1e-7)  # (N, 2, HW) in pixels
    grid = torch.stack([xy[:, 0] / max(w - 1, 1), xy[:, 1] / max(h - 1, 1)], dim=-1) * 2 - 1
    grid = grid.view(n, h, w, 2)
    return F.grid_sample(reference.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


def photometric_error(prediction: Tensor, target: Tensor, alpha: float = 0.85) -> Tensor:
    """α (1 − SSIM) / 2 + (1 − α) |p − t| averaged over channels: (N, C, H, W) x2 -> (N, 1, H, W)."""
    dissimilarity = ((1.0 - ssim(prediction, target)) / 2).clamp(0, 1)
    l1 = (prediction.float() - target.float()).abs()
    return (alpha * dissimilarity + (1 - alpha) * l1).mean(1, keepdim=True)


def smoothness_loss(disparity: Tensor, image: Tensor) -> Tensor:
    """Edge-aware smoothness of disparity (N, 1, h, w) guided by the image (N, 3, h, w) -> scalar.

    The disparity is divided by its per-image mean first (monodepth2), so the loss cannot be
    lowered by shrinking the whole map.
    """
    disparity = disparity.float()
    disparity = disparity / (disparity.mean(dim=(2, 3), keepdim=True) + 1e-7)
    image = image.float()
    grad_disp_x = (disparity[:, :, :, :-1] - disparity[:, :, :, 1:]).abs()
    grad_disp_y = (disparity[:, :, :-1, :] - disparity[:, :, 1:, :]).abs()
    grad_img_x = (image[:, :, :, :-1] - image[:, :, :, 1:]).abs().mean(1, keepdim=True)
    grad_img_y = (image[:, :, :-1, :] - image[:, :, 1:, :]).abs().mean(1, keepdim=True)
    return (grad_disp_x * torch.exp(-grad_img_x)).mean() + (grad_disp_y * torch.exp(-grad_img_y)).mean()


@dataclass
class DepthLossOutput:
    """Result of `depth_loss`.

    total: the weighted scalar to minimise; terms: unweighted scalars for logging (detached);
    auto_mask (N, 1, H, W): 1 where the warped reference beat the static one (finest scale);
    warped (N, R, 3, H, W): the references warped into the target view (finest scale, detached).
    """
    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    auto_mask: Tensor | None = None
    warped: Tensor | None = None


def _accumulate(terms: dict[str, Tensor], name: str, value: Tensor) -> None:
    terms[name] = terms.get(name, 0) + value.detach()


@full_precision
def depth_loss(target: Tensor, references: Tensor, depths: Sequence[Tensor], poses: Sequence[PoseLike],
               weights: DepthLossWeights = DepthLossWeights()) -> DepthLossOutput:
    """Self-supervised depth loss of one target frame and R reference frames.

    target (N, 3, H, W); references (N, R, 3, H, W); depths: the depth net's maps of the target,
    finest first, (N, 1, H/2^s, W/2^s); poses: R pose-net outputs for (target, reference r).

    At every scale the depth map is upsampled to H, W (monodepth2), each reference is warped into
    the target view, and the per-pixel photometric error e is the minimum over references
    (occlusion handling). The auto-mask keeps pixels where that beats the error of the unwarped
    references (static background, a still camera: DaGAN++'s setting). DaGAN++ then weights the
    photometric error with the uncertainty U of the chosen reference's pose-net output:
    λ1 e / U + λ3 log U. The notes write "λ1 M U L_pe + λ3 log U" and say that pixels of reliable
    rigid motion get a small uncertainty and hence a large weight, and that U learns to normalise
    the photometric error; only the aleatoric form e / U + log U (optimum U = e) does both — read
    literally, U·e + log U has no minimum and drives U to 0. The log U term is masked like the
    error it normalises (on masked pixels it would drive U to 0). Without uncertainty the term is
    λ1 e. The edge-aware smoothness of mean-normalised disparity 1/D at each scale's own resolution
    is weighted λ2 / 2^s; the total is the mean over scales.
    """
    n, num_refs, _, h, w = references.shape
    if len(poses) != num_refs:
        raise ValueError(f"got {len(poses)} poses for {num_refs} references")
    target = target.float()
    references = references.float()
    transforms = [pose_matrix(p.axisangle.float(), p.translation.float()) for p in poses]
    identity_error = torch.cat([photometric_error(references[:, r], target, weights.ssim_alpha)
                                for r in range(num_refs)], dim=1).amin(1, keepdim=True)
    uncertainty = None
    if poses[0].uncertainty is not None:
        uncertainty = torch.cat([p.uncertainty.float() for p in poses], dim=1)  # (N, R, H, W)
        if uncertainty.shape[-2:] != (h, w):
            uncertainty = F.interpolate(uncertainty, size=(h, w), mode="bilinear", align_corners=False)

    total = target.new_zeros(())
    logged: dict[str, Tensor] = {}
    finest_mask = finest_warped = None
    for scale, depth in enumerate(depths):
        depth = depth.float()
        full = depth if depth.shape[-2:] == (h, w) else F.interpolate(depth, size=(h, w), mode="bilinear",
                                                                       align_corners=False)
        warped = torch.stack([depth_warp(references[:, r], full, transforms[r], poses[r].intrinsics)
                              for r in range(num_refs)], dim=1)  # (N, R, 3, H, W)
        errors = torch.cat([photometric_error(warped[:, r], target, weights.ssim_alpha)
                            for r in range(num_refs)], dim=1)  # (N, R, H, W)
        error, chosen = errors.min(1, keepdim=True)
        if weights.auto_mask:
            mask = (error < identity_error).float()
        else:
            mask = torch.ones_like(error)
        pixels = mask.sum().clamp_min(1.0)
        if uncertainty is not None:
            u = uncertainty.gather(1, chosen)
            log_u = torch.log(u)
            per_pixel = weights.photometric * error / u + weights.uncertainty * log_u
            _accumulate(logged, "log_uncertainty", (mask * log_u).sum() / pixels)
        else:
            per_pixel = weights.photometric * error
        photometric = (mask * per_pixel).sum() / pixels
        image = target if scale == 0 else F.interpolate(target, size=depth.shape[-2:], mode="area")
        smooth = smoothness_loss(1.0 / depth, image)
        total = total + photometric + weights.smoothness * smooth / 2 ** scale
        _accumulate(logged, "photometric", (mask * error).sum() / pixels)
        _accumulate(logged, "smoothness", smooth)
        _accumulate(logged, "auto_mask", mask.mean())
        if scale == 0:
            finest_mask, finest_warped = mask.detach(), warped.detach()
    scales = len(depths)
    total = total / scales
    terms = {name: value / scales for name, value in logged.items()}
    terms["total"] = total.detach()
    return DepthLossOutput(total, terms, finest_mask, finest_warped)
