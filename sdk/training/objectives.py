"""Training objectives: one forward per network and step, so DistributedDataParallel sees one graph.

- `DepthObjective`: the self-supervised depth loss of a target frame and its neighbours.
- `GeneratorObjective`: the generator-side losses of a (source, driving) pair; for models driven
  by the face prior, with the pair's `SelfReenactmentInputs` (prior keypoints, expression code).
- `DiscriminatorObjective`: the least-squares discriminator loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..models import DepthNet, Discriminator, GeneratorOutput, Keypoints, PoseNet, TalkingHeadModel
from ..models.semantic_inputs import concat_keypoints
from ..models.talking_head import to_internal
from .losses import (DepthLossOutput, DepthLossWeights, LossWeights, RandomTransform, depth_loss,
                     discriminator_adversarial_loss, equivariance_losses, feature_matching_loss,
                     generator_adversarial_loss, keypoint_distance_loss, mask_decisiveness_loss,
                     reconstruction_loss)
from .self_reenactment import SelfReenactmentInputs

@dataclass
class DepthStepOutput:
    loss: DepthLossOutput
    depth: Tensor  # (N, 1, H, W) finest depth of the target
    uncertainty: Tensor | None  # (N, 1, H, W) of the first reference pair (DaGAN++)


class DepthObjective(nn.Module):
    """target (N, 3, H, W), references (N, R, 3, H, W) -> DepthStepOutput (self-supervised loss)."""

    def __init__(self, depth_net: DepthNet, pose_net: PoseNet, weights: DepthLossWeights):
        super().__init__()
        self.depth_net = depth_net
        self.pose_net = pose_net
        self.weights = weights

    def forward(self, target: Tensor, references: Tensor) -> DepthStepOutput:
        depths = self.depth_net(target)
        poses = [self.pose_net(target, references[:, r]) for r in range(references.shape[1])]
        loss = depth_loss(target, references, depths, poses, self.weights)
        return DepthStepOutput(loss, depths[0].detach(), None if poses[0].uncertainty is None
                               else poses[0].uncertainty.detach())


@dataclass
class GeneratorStepOutput:
    total: Tensor  # weighted sum to minimise
    terms: dict[str, Tensor]  # unweighted, detached
    source_depth: Tensor | None  # (N, 1, H, W) normalised
    kp_source: Keypoints
    kp_driving: Keypoints
    generated: GeneratorOutput
    real_patch: Tensor | None  # what the discriminator saw of the real frame (GAN steps only)
    fake_patch: Tensor | None  # ... and of the generated frame, detached


class GeneratorObjective(nn.Module):
    """source, driving (N, 3, S, S) -> GeneratorStepOutput: the generator-side losses.

    The networks see both frames averaged down to the internal resolution R; the source at S is
    the portrait the composite head warps, and the reconstruction and GAN terms compare frames at S.

    The depth net is frozen (eval mode, no gradients). The discriminator, when given, is the
    caller's, with its parameters frozen for this step; it only passes gradients to the image.

    Prior and hybrid models take `prior` (the pair's prior keypoints and expression code): the
    generator is driven by the prior's keypoints (then, for hybrid, the detector's) and the code;
    the equivariance and keypoint distance terms apply to learned keypoints only; pairs without a
    usable mesh (`prior.valid` 0) weigh nothing in any term (their coverage is zeroed).
    """

    def __init__(self, model: TalkingHeadModel, weights: LossWeights):
        super().__init__()
        self.model = model
        self.weights = weights
        if model.depth_net is not None:
            model.depth_net.requires_grad_(False)

    def train(self, mode: bool = True) -> GeneratorObjective:
        super().train(mode)
        if self.model.depth_net is not None:
            self.model.depth_net.eval()
        return self

    def forward(self, source: Tensor, driving: Tensor, transform: RandomTransform,
                discriminator: Discriminator | None = None, coverage: Tensor | None = None,
                patch: Patch | None = None, regions: Tensor | None = None,
                prior: SelfReenactmentInputs | None = None) -> GeneratorStepOutput:
        """source, driving (N, 3, S, S) at the output size (S = R without the composite head);
        coverage (N, 1, S, S) of the driving crop (None: all of it is real); `patch`: where the
        discriminator looks (None: the whole frame); regions (N, 1, S, S): the driving frame's
        mouth and eyes, reconstructed once more on their own and left out of the mask's
        decisiveness term (None: no such term); prior: the face prior's inputs (prior and hybrid
        models only)."""
        model, weights = self.model, self.weights
        if (prior is None) != (model.cfg.semantic is None):
            raise ValueError(f"{model.cfg.name} " + ("needs" if prior is None else "takes no") + " face prior inputs")
        resolution = model.cfg.resolution
        portrait = source
        source, driving_small = to_internal(source, resolution), to_internal(driving, resolution)
        with torch.no_grad():
            source_depth = model.estimate_depth(source)
            driving_depth = model.estimate_depth(driving_small)
        learned = model.kp_detector is not None
        if learned:
            kp_source = model.kp_detector(source, source_depth)
            kp_driving = model.kp_detector(driving_small, driving_depth)
        if prior is None:
            generated = model.generator(source, source_depth, kp_source, kp_driving, portrait)
        else:
            valid = prior.valid.view(-1, 1, 1, 1)
            coverage = valid.expand(-1, 1, *driving.shape[-2:]) if coverage is None else coverage * valid
            kp_learned = (kp_source, kp_driving) if learned else (None, None)
            kp_source = concat_keypoints(prior.kp_source, kp_learned[0])
            kp_driving = concat_keypoints(prior.kp_driving, kp_learned[1])
            generated = model.generator(source, source_depth, kp_source, kp_driving, portrait, prior.expression)

        terms = {"reconstruction": reconstruction_loss(generated.prediction, driving, weights.pyramid_scales,
                                                       coverage)}
        if regions is not None and weights.region_reconstruction > 0:
            terms["region_reconstruction"] = reconstruction_loss(
                generated.prediction, driving, weights.region_scales,
                regions if coverage is None else regions * coverage)
        if generated.composite_mask is not None:
            # Not over the mouth and eyes: there the mask must stay free to hand pixels to the
            # generator (a saturated sigmoid passes the region loss no gradient).
            decisive = coverage if regions is None else (1 - regions) * (1 if coverage is None else coverage)
            terms["composite_mask"] = mask_decisiveness_loss(generated.composite_mask, decisive)
            terms["decoded_reconstruction"] = reconstruction_loss(
                generated.decoded, driving_small, weights.pyramid_scales,
                None if coverage is None else to_internal(coverage, resolution))
        if learned:
            # The learned keypoints only (hybrid: the prior's come from the mesh, equivariant by construction).
            kp_source_learned, kp_driving_learned = (kp_source, kp_driving) if prior is None else kp_learned
            # Equivariance on RGB-D: image and depth move together (DaGAN++'s T(I || D)).
            rgbd = driving_small if driving_depth is None else torch.cat([driving_small, driving_depth], dim=1)
            transformed = transform.warp_image(rgbd)
            kp_transformed = model.kp_detector(transformed[:, :3],
                                               None if driving_depth is None else transformed[:, 3:])
            terms["equivariance_value"], terms["equivariance_jacobian"] = equivariance_losses(
                kp_driving_learned, kp_transformed, transform)
            terms["keypoint_distance"] = (
                keypoint_distance_loss(kp_source_learned.value, weights.keypoint_distance_threshold)
                + keypoint_distance_loss(kp_driving_learned.value, weights.keypoint_distance_threshold))
        real_patch = fake_patch = None
        if discriminator is not None:
            kp = kp_driving.detach() if discriminator.use_kp else None
            real_patch = discriminator_view(driving, coverage, patch)
            fake_patch = discriminator_view(generated.prediction, coverage, patch)
            fake = discriminator(fake_patch, kp)
            with torch.no_grad():
                real = discriminator(real_patch, kp)
            terms["generator_gan"] = generator_adversarial_loss([o.prediction for o in fake])
            terms["feature_matching"] = feature_matching_loss([o.features for o in real], [o.features for o in fake])
        total = sum(getattr(weights, name) * value for name, value in terms.items())
        terms = {name: value.detach() for name, value in terms.items()}
        terms["total"] = total.detach()
        return GeneratorStepOutput(total, terms, source_depth, kp_source.detach(), kp_driving.detach(), generated,
                                   real_patch, None if fake_patch is None else fake_patch.detach())


@dataclass(frozen=True)
class Patch:
    """A square window of the output frame, in pixels: rows top..top+size, columns left..left+size."""
    top: int
    left: int
    size: int


def random_patch(output_size: int, patch_size: int) -> Patch | None:
    """A uniformly placed `patch_size`² window of an `output_size`² frame (torch's generator), or
    None when the patch would be the whole frame."""
    if patch_size >= output_size:
        return None
    top, left = (int(v) for v in torch.randint(output_size - patch_size + 1, (2,)))
    return Patch(top, left, patch_size)


def discriminator_view(image: Tensor, coverage: Tensor | None, patch: Patch | None) -> Tensor:
    """What the discriminator sees of a frame (N, 3, S, S): the patch, with the pixels outside the
    source frame blacked out in real and generated frames alike (so neither stripes nor their
    absence tell them apart)."""
    if coverage is not None:
        image = image * coverage
    if patch is not None:
        image = image[..., patch.top:patch.top + patch.size, patch.left:patch.left + patch.size]
    return image


class DiscriminatorObjective(nn.Module):
    """real, fake (N, 3, H, W), kp | None -> least-squares discriminator loss (scalar)."""

    def __init__(self, discriminator: Discriminator):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real: Tensor, fake: Tensor, kp: Keypoints | None) -> Tensor:
        real_out = self.discriminator(real, kp)
        fake_out = self.discriminator(fake, kp)
        return discriminator_adversarial_loss([o.prediction for o in real_out], [o.prediction for o in fake_out])
