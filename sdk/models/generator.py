"""Occlusion-aware generator (FOMM §3.3) with cross-modal depth attention (DaGAN, DaGAN++).

Split at the export boundary: `encode_source` runs once per avatar (appearance encoder, depth
encoder, attention queries); `render` runs per frame (dense motion, warping, attention, decoder,
composite).

- fomm: warp the bottleneck features, residual bottleneck, up blocks to full resolution.
- dagan: as fomm, with one attention block on the warped bottleneck features.
- dagan++: warp the features of every encoder scale, refine each with attention, and feed them
  to the decoder as skip connections (upsample, concatenate, fuse) — geometry-enhanced
  multi-layer generation.

Composite head (`CompositeConfig`, every named config): the decoder works at the internal
resolution R, the frame comes out at S = m·R. Beside the image, the decoder's last features give
a soft mask, and

    frame = mask ⊙ warp(portrait (S²), flow upsampled to S²) + (1 − mask) ⊙ upsample(decoded)

so the portrait's own pixels carry the detail and the network paints only what a warp cannot
show (mouth interior, blinks, disoccluded cheek and hair), as MobilePortrait fuses a warped image
with a small network's output.

Prior and hybrid configs (`SemanticConfig`): the dense motion takes the prior's keypoints (then
any learned ones), and `render` also takes the expression code (N, E), which scales and shifts the
features of the first `modulated_stages` decoder stages (`ExpressionModulation`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import CrossModalAttention
from .blocks import ConvNormAct, DownBlock, ResBlock, UpBlock
from .config import ModelConfig
from .dense_motion import DenseMotion
from .expression_modulation import ExpressionModulation
from .motion import Keypoints, resize_deformation, warp


@dataclass(frozen=True)
class SourceFeatures:
    """What `render` needs from the source, computed once per avatar.

    appearance: encoder features that `render` warps, finest first: (N, C_s, H/2^s, W/2^s) for every
        scale s = 0..D (dagan++), or only the bottleneck s = D (fomm, dagan); D = num_down_blocks.
    depth_queries: one attention query (N, d, q, q) per attention block in the same order, None for fomm.
    """
    appearance: tuple[Tensor, ...]
    depth_queries: tuple[Tensor, ...] | None


@dataclass(frozen=True)
class GeneratorOutput:
    prediction: Tensor  # (N, 3, S, S) in [0, 1]: the frame, at the output size (= decoded without composite)
    decoded: Tensor  # (N, 3, R, R) in [0, 1]: the decoder's image at the internal resolution
    composite_mask: Tensor | None  # (N, 1, S, S) in [0, 1]: weight of the warped portrait; None without composite
    deformation: Tensor  # (N, h, w, 2) at the motion resolution
    occlusion: Tensor  # (N, 1, h, w)
    mask: Tensor  # (N, K+1, h, w) the dense motion's keypoint weights
    sparse_deformed: Tensor  # (N, K+1, 3, h, w) (visualisation)
    source_image: Tensor  # (N, 3, R, R) the input, kept for `deformed`

    @property
    def deformed(self) -> Tensor:
        """(N, 3, R, R) the source warped by the dense flow, for visualisation.

        Computed on request so that the per-frame render path does not pay for it.
        """
        side = self.source_image.shape[-1]
        grid = self.deformation if self.deformation.shape[1] == side else resize_deformation(
            self.deformation, side, side)
        return warp(self.source_image, grid)


def upsample_to(image: Tensor, side: int) -> Tensor:
    """Bilinear resize (N, C, h, w) -> (N, C, side, side); the identity at the same size (fixed at export)."""
    if image.shape[-1] == side:
        return image
    return F.interpolate(image, size=(side, side), mode="bilinear", align_corners=False)


class Generator(nn.Module):
    """source (N, 3, H, W), source_depth (N, 1, H, W) | None, kp_source, kp_driving (N, K, ...) with
    K = cfg.motion_keypoints [, expression (N, E) for prior and hybrid configs] -> GeneratorOutput."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        gen = cfg.generator
        self.uses_depth = gen.attention is not None
        self.skip_decoder = gen.attention_placement == "every_scale"
        depth_levels = gen.num_down_blocks
        self.dense_motion = DenseMotion(cfg)
        self.first = ConvNormAct(3, gen.channels(0), gen.first_kernel_size)
        self.down = nn.ModuleList(DownBlock(gen.channels(i), gen.channels(i + 1)) for i in range(depth_levels))
        bottleneck = gen.channels(depth_levels)
        self.bottleneck = nn.Sequential(*(ResBlock(bottleneck) for _ in range(gen.num_bottleneck_blocks)))
        if self.skip_decoder:
            # Up to scale i, concatenate the refined skip of scale i, fuse in one conv.
            self.up = nn.ModuleList(ConvNormAct(gen.channels(i + 1) + gen.channels(i), gen.channels(i))
                                    for i in range(depth_levels))
        else:
            self.up = nn.ModuleList(UpBlock(gen.channels(i + 1), gen.channels(i)) for i in range(depth_levels))
        self.final = nn.Conv2d(gen.channels(0), 3, gen.final_kernel_size, padding=gen.final_kernel_size // 2)
        self.composite_head: nn.Conv2d | None = None
        if cfg.composite is not None:
            size = cfg.composite.mask_kernel_size
            self.composite_head = nn.Conv2d(gen.channels(0), 1, size, padding=size // 2)
            reset_composite_head(self.composite_head, cfg.composite.mask_bias)

        self.depth_first: nn.Module | None = None
        self.depth_down = nn.ModuleList()
        self.attention = nn.ModuleList()
        self.attention_scales: list[int] = []
        if gen.attention is not None:
            # Depth encoder: same structure as the appearance encoder (DaGAN appendix A.2).
            self.depth_first = ConvNormAct(1, gen.channels(0), gen.first_kernel_size)
            self.depth_down = nn.ModuleList(DownBlock(gen.channels(i), gen.channels(i + 1))
                                            for i in range(depth_levels))
            for scale, _, _ in cfg.attention_sites():
                self.attention_scales.append(scale)
                self.attention.append(CrossModalAttention(gen.channels(scale), gen.channels(scale),
                                                          cfg.resolution // 2 ** scale, gen.attention))
        self.warped_scales = list(range(depth_levels + 1)) if self.skip_decoder else [depth_levels]
        # Face-prior configs take the expression code; with no modulated stage (the ablation's
        # "prior keypoints" arm) it is taken and unused.
        self.takes_expression = cfg.semantic is not None
        self.expression_modulation: ExpressionModulation | None = None
        if cfg.semantic is not None and cfg.semantic.modulated_stages:
            # Decoder stage j: the bottleneck (j = 0), then up block D - j; coarsest first.
            stage_channels = [gen.channels(depth_levels - j) for j in range(cfg.semantic.modulated_stages)]
            self.expression_modulation = ExpressionModulation(cfg.semantic.expression_dims, cfg.semantic.hidden,
                                                              stage_channels)
        self.resolution = cfg.resolution
        self.motion_resolution = cfg.motion_resolution

    def encode_source(self, source: Tensor, source_depth: Tensor | None = None) -> SourceFeatures:
        """source (N, 3, H, W), source_depth (N, 1, H, W) normalised | None -> SourceFeatures."""
        if self.uses_depth != (source_depth is not None):
            raise ValueError("this generator " + ("needs" if self.uses_depth else "takes no") + " source depth")
        features = [self.first(source)]
        for block in self.down:
            features.append(block(features[-1]))
        queries = None
        if source_depth is not None:
            depth_features = [self.depth_first(source_depth)]
            for block in self.depth_down:
                depth_features.append(block(depth_features[-1]))
            queries = tuple(attention.query(depth_features[scale])
                            for attention, scale in zip(self.attention, self.attention_scales))
        return SourceFeatures(tuple(features[scale] for scale in self.warped_scales), queries)

    def render(self, source_features: SourceFeatures, kp_source: Keypoints, kp_driving: Keypoints,
               source_image: Tensor, portrait: Tensor | None = None, expression: Tensor | None = None
               ) -> GeneratorOutput:
        """Per-frame path: SourceFeatures, keypoints (N, K, ...), source_image (N, 3, R, R) at the
        internal resolution, portrait (N, 3, S, S) at the output size (composite head only; None:
        the source image, S = R), expression (N, E) relative to the anchor (prior and hybrid
        configs only) -> GeneratorOutput."""
        if (expression is None) == self.takes_expression:
            raise ValueError("this generator " + ("is" if self.takes_expression else "is not")
                             + " driven by an expression code")
        motion = self.dense_motion(source_image, kp_driving, kp_source)
        warped = []
        for scale, features in zip(self.warped_scales, source_features.appearance):
            side = self.resolution // 2 ** scale
            warped.append(warp(features, self._grid_at(motion.deformation, side))
                          * self._occlusion_at(motion.occlusion, side))
        decoded, mask_logits = self.decode(warped, source_features.depth_queries, expression)
        prediction, composite_mask = decoded, None
        if mask_logits is not None:
            portrait = source_image if portrait is None else portrait
            side = portrait.shape[-1]
            warped_portrait = warp(portrait, self._grid_at(motion.deformation, side))
            prediction, composite_mask = self.composite(decoded, mask_logits, warped_portrait)
        elif portrait is not None and portrait.shape[-1] != self.resolution:
            raise ValueError(f"this generator has no composite head: it renders at {self.resolution}² only")
        return GeneratorOutput(prediction, decoded, composite_mask, motion.deformation, motion.occlusion,
                               motion.mask, motion.sparse_deformed, source_image)

    def decode(self, warped: list[Tensor], depth_queries: tuple[Tensor, ...] | None,
               expression: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Warped features (one per warped scale, finest first) [+ attention queries] [+ expression
        (N, E)] -> image (N, 3, R, R) in [0, 1], composite mask logits (N, 1, R, R) (None without
        the composite head)."""
        if depth_queries is not None:
            warped = [attention(query, features) for attention, query, features
                      in zip(self.attention, depth_queries, warped)]
        modulation = () if expression is None or self.expression_modulation is None else self.expression_modulation(expression)
        x = self.bottleneck(warped[-1])
        if modulation:
            x = ExpressionModulation.modulate(x, modulation[0])
        for stage, i in enumerate(reversed(range(len(self.up))), start=1):
            if self.skip_decoder:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
                x = self.up[i](torch.cat([x, warped[i]], dim=1))
            else:
                x = self.up[i](x)
            if stage < len(modulation):
                x = ExpressionModulation.modulate(x, modulation[stage])
        mask_logits = None if self.composite_head is None else self.composite_head(x)
        return torch.sigmoid(self.final(x)), mask_logits

    @staticmethod
    def composite(decoded: Tensor, mask_logits: Tensor, warped_portrait: Tensor) -> tuple[Tensor, Tensor]:
        """decoded (N, 3, R, R), mask logits (N, 1, R, R), warped portrait (N, 3, S, S) -> frame
        (N, 3, S, S), mask (N, 1, S, S). The logits are upsampled before the sigmoid, so the seam
        stays as sharp at S² as the network drew it at R²."""
        side = warped_portrait.shape[-1]
        mask = torch.sigmoid(upsample_to(mask_logits, side))
        generated = upsample_to(decoded, side)
        return generated + mask * (warped_portrait - generated), mask

    # Feature sizes are static (from the config), so these branches are fixed at export.
    def _grid_at(self, deformation: Tensor, side: int) -> Tensor:
        """(N, h, w, 2) at the motion resolution -> (N, side, side, 2)."""
        if side == self.motion_resolution:
            return deformation
        return resize_deformation(deformation, side, side)

    def _occlusion_at(self, occlusion: Tensor, side: int) -> Tensor:
        """(N, 1, h, w) at the motion resolution -> (N, 1, side, side)."""
        if side == self.motion_resolution:
            return occlusion
        return F.interpolate(occlusion, size=(side, side), mode="bilinear", align_corners=False)

    def forward(self, source: Tensor, source_depth: Tensor | None, kp_source: Keypoints,
                kp_driving: Keypoints, portrait: Tensor | None = None, expression: Tensor | None = None
                ) -> GeneratorOutput:
        return self.render(self.encode_source(source, source_depth), kp_source, kp_driving, source, portrait,
                           expression)


def reset_composite_head(head: nn.Conv2d, bias: float) -> None:
    """The composite head's initial state: small weights and `bias`, so a model given the head
    after training (`--init` from weights saved without it) starts from an even blend."""
    nn.init.normal_(head.weight, std=1e-3)
    nn.init.constant_(head.bias, bias)
