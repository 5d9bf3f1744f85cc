"""Typed model configurations: three variants (fomm, dagan, dagan++) at three sizes (tiny, mobile, paper).

`get_config("dagan++-mobile")` returns a frozen `ModelConfig`; `to_dict()` / `from_dict()` round-trip
it through JSON (checkpoints store it in `config.json`). Variants:

- ``fomm``: RGB keypoints, FOMM dense motion and generator, no depth and no attention (the baseline).
- ``dagan``: depth net, RGB+depth keypoints, cross-modal depth attention once at the bottleneck.
- ``dagan++``: as dagan, with attention at every encoder scale fed to the decoder as skip
  connections, and a per-pixel uncertainty head on the pose net.

Sizes: ``tiny`` (64², tests), ``mobile`` (128², the shipped default), ``paper`` (256², the papers'
widths): the internal resolution. Keypoints and dense motion run at ``resolution * motion_scale``
(FOMM's scale factor). Every named config has the composite head (`CompositeConfig`), so frames
come out at any multiple of the internal resolution; a checkpoint's config without one (saved
before the head existed) still loads and renders at its internal resolution.

Keypoint source (`keypoint_source`, seed 002 / issue 12): ``learned`` (every name above: the
keypoint detector's K = `num_kp`), ``prior`` (K keypoints of the face prior's mesh and an E-dim
expression code that modulates the decoder, `SemanticConfig`; no detector, `num_kp` = 0) or
``hybrid`` (the prior's keypoints plus `num_kp` learned ones). Named ``<name>-prior`` and
``<name>-hybrid`` (`SEMANTIC_CONFIG_NAMES`, e.g. ``dagan++-mobile-prior``): 15 prior keypoints, or
10 prior + 5 learned, so the dense motion sees 15 as in the learned configs and starts from their
weights (`--init`). Learned-keypoint configs serialise exactly as before these fields existed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Variant = Literal["fomm", "dagan", "dagan++"]
Size = Literal["tiny", "mobile", "paper"]
AttentionPlacement = Literal["none", "bottleneck", "every_scale"]
KeypointSource = Literal["learned", "prior", "hybrid"]
PriorJacobians = Literal["mesh", "identity"]

VARIANTS: tuple[str, ...] = ("fomm", "dagan", "dagan++")
SIZES: tuple[str, ...] = ("tiny", "mobile", "paper")
RESOLUTIONS: dict[str, int] = {"tiny": 64, "mobile": 128, "paper": 256}
CONFIG_NAMES: tuple[str, ...] = tuple(f"{variant}-{size}" for variant in VARIANTS for size in SIZES)
ATTENTION_BY_VARIANT: dict[str, str] = {"fomm": "none", "dagan": "bottleneck", "dagan++": "every_scale"}
KEYPOINT_SOURCES: tuple[str, ...] = ("learned", "prior", "hybrid")
PRIOR_JACOBIANS: tuple[str, ...] = ("mesh", "identity")
# Driven by the face prior: every learned config's "-prior" and "-hybrid" sibling.
SEMANTIC_CONFIG_NAMES: tuple[str, ...] = tuple(f"{name}-{source}" for name in CONFIG_NAMES
                                               for source in KEYPOINT_SOURCES[1:])
MODEL_NAMES: tuple[str, ...] = CONFIG_NAMES + SEMANTIC_CONFIG_NAMES  # everything `get_config` knows


@dataclass(frozen=True)
class DepthConfig:
    """Self-supervised depth net: a residual encoder of stride-2 stages and a U-Net decoder.

    The decoder predicts a sigmoid disparity at `num_scales` resolutions (full, 1/2, 1/4, ...),
    mapped to depth in [min_depth, max_depth] as monodepth2 does.
    """
    encoder_channels: tuple[int, ...]
    decoder_channels: tuple[int, ...]  # finest first, one per encoder stage
    blocks_per_stage: int
    num_scales: int = 4
    min_depth: float = 0.1
    max_depth: float = 100.0


@dataclass(frozen=True)
class PoseConfig:
    """Pose net over a (target, reference) pair: axis-angle, translation, intrinsics, uncertainty."""
    channels: tuple[int, ...]  # one stride-2 stage each
    blocks_per_stage: int
    uncertainty: bool  # DaGAN++ per-pixel uncertainty map


@dataclass(frozen=True)
class KeypointConfig:
    """FOMM hourglass keypoint detector at the motion resolution, soft-argmax plus Jacobians."""
    block_expansion: int
    max_features: int
    num_blocks: int
    temperature: float = 0.1
    head_kernel_size: int = 7


@dataclass(frozen=True)
class DenseMotionConfig:
    """FOMM dense motion: hourglass over K+1 deformed sources and keypoint heatmaps."""
    block_expansion: int
    max_features: int
    num_blocks: int
    kp_variance: float = 0.01
    head_kernel_size: int = 7


@dataclass(frozen=True)
class AttentionConfig:
    """Cross-modal attention: queries from source depth features, keys/values from warped features.

    Keys/values are average-pooled to at most `key_side`² tokens and queries to at most
    `query_side`² positions (the result is upsampled and added residually), so every attention map
    holds at most query_side² × key_side² entries whatever the image size.
    """
    key_side: int = 16
    query_side: int = 32
    qk_channels: int = 32


@dataclass(frozen=True)
class GeneratorConfig:
    """Encoder (first conv + `num_down_blocks` down blocks), warping, attention, decoder."""
    block_expansion: int
    max_features: int
    num_down_blocks: int
    num_bottleneck_blocks: int
    attention_placement: AttentionPlacement
    attention: AttentionConfig | None  # None when attention_placement is "none"
    first_kernel_size: int = 7
    final_kernel_size: int = 7

    def channels(self, scale: int) -> int:
        """Feature channels at encoder scale `scale` (0 = full resolution)."""
        return min(self.max_features, self.block_expansion * 2 ** scale)


@dataclass(frozen=True)
class CompositeConfig:
    """The composite head: the frame is the portrait warped at the output resolution where the
    predicted mask says so, and the upsampled decoded image elsewhere (mouth interior, blinks,
    disocclusions):

        frame = mask ⊙ warp(portrait at S², flow upsampled to S²) + (1 − mask) ⊙ upsample(decoded)

    `mask_kernel_size`: the one conv from the decoder's last features to the mask logits.
    `mask_bias`: the head's initial bias (0: half warp, half decoded until training says otherwise).
    """
    mask_kernel_size: int = 3
    mask_bias: float = 0.0


@dataclass(frozen=True)
class SemanticConfig:
    """What a prior or hybrid model takes from the face prior (`sdk.prior`), per frame.

    prior_keypoints: K mesh points, `sdk.prior.keypoint_indices(K)` (eyes and mouth first; a prefix
        of one priority list), the dense motion's first K keypoints, derived by the receiver from
        the avatar's own mesh moved by the driver's motion (`sdk.prior.AvatarRig`).
    expression_dims: E expression coefficients, relative to the anchor (`sdk.prior.relative_motion`),
        that modulate the decoder; a stream may send fewer, the rest count as zero (no change).
    jacobians: "mesh": each prior keypoint's 2x2 local affine from the mesh around it; "identity":
        none (every prior keypoint moves by translation only), the ablation's other arm.
    modulated_stages: decoder stages, coarsest first (the bottleneck, then each up block), whose
        features get a per-channel scale and shift from the code (`ExpressionModulation`).
    hidden: width of the modulation MLP.
    """
    prior_keypoints: int = 15
    expression_dims: int = 32
    jacobians: PriorJacobians = "mesh"
    modulated_stages: int = 3
    hidden: int = 64


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-scale patch discriminator (training only); `scales` are image scale factors."""
    block_expansion: int
    max_features: int
    num_blocks: int
    scales: tuple[float, ...]
    use_kp: bool = False  # keypoint heatmaps as extra input channels (FOMM option)
    spectral_norm: bool = True
    kp_variance: float = 0.01


@dataclass(frozen=True)
class ModelConfig:
    name: str
    variant: Variant
    size: Size
    resolution: int
    num_kp: int  # learned keypoints (the detector's K; 0 for the "prior" source)
    motion_scale: float  # keypoints and dense motion run at resolution * motion_scale
    depth: DepthConfig | None  # None for fomm
    pose: PoseConfig | None  # None for fomm (the pose net only trains the depth net)
    keypoint: KeypointConfig
    dense_motion: DenseMotionConfig
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    # None: the decoded image is the frame, at `resolution` (models saved before the composite head).
    composite: CompositeConfig | None = None
    keypoint_source: KeypointSource = "learned"
    semantic: SemanticConfig | None = None  # None exactly for "learned"

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError(f"invalid model config {self.name!r}: " + "; ".join(problems))

    @property
    def uses_depth(self) -> bool:
        return self.depth is not None

    @property
    def motion_keypoints(self) -> int:
        """Keypoints the dense motion blends: the prior's K first, then the `num_kp` learned ones."""
        return self.num_kp + (0 if self.semantic is None else self.semantic.prior_keypoints)

    @property
    def motion_resolution(self) -> int:
        return round(self.resolution * self.motion_scale)

    def check_output_size(self, size: int) -> int:
        """`size` if this model can render at it, else ValueError saying what it can.

        Without the composite head the frame is the decoded image, at `resolution` only; with it,
        any multiple of `resolution` (the portrait's own pixels are warped at that size).
        """
        if self.composite is None:
            if size != self.resolution:
                raise ValueError(f"{self.name} has no composite head: it renders at {self.resolution}² only, "
                                 f"not {size}²")
        elif size < self.resolution or size % self.resolution:
            raise ValueError(f"output size {size} is not a multiple of {self.name}'s internal resolution "
                             f"{self.resolution} (e.g. {self.resolution * 2} or {self.resolution * 4})")
        return size

    @property
    def default_output_size(self) -> int:
        """The output size renders use unless told otherwise: 2× the internal resolution with the
        composite head (the size it was trained at), else the internal resolution."""
        return self.resolution if self.composite is None else 2 * self.resolution

    @property
    def motion_downsample(self) -> int:
        """Integer average-pool factor from the image to the motion resolution."""
        return round(1 / self.motion_scale)

    def attention_sites(self) -> list[tuple[int, int, int]]:
        """(encoder scale, query positions, key tokens) of every attention block, finest first."""
        gen = self.generator
        if gen.attention is None:
            return []
        scales = (range(gen.num_down_blocks + 1) if gen.attention_placement == "every_scale"
                  else [gen.num_down_blocks])
        sites = []
        for scale in scales:
            side = self.resolution // 2 ** scale
            queries = min(side, gen.attention.query_side) ** 2
            keys = min(side, gen.attention.key_side) ** 2
            sites.append((scale, queries, keys))
        return sites

    def describe(self) -> str:
        """One line per fact a reader needs to place the model: sizes, motion and attention maps."""
        lines = [f"{self.name}: {self.variant} at {self.resolution}², {self.num_kp} keypoints, "
                 f"motion at {self.motion_resolution}²"]
        if self.semantic is not None:
            lines[0] = (f"{self.name}: {self.variant} at {self.resolution}², {self.semantic.prior_keypoints} prior + "
                        f"{self.num_kp} learned keypoints, motion at {self.motion_resolution}²")
            lines.append(f"expression code: {self.semantic.expression_dims} dims modulating "
                         f"{self.semantic.modulated_stages} decoder stages; prior Jacobians: {self.semantic.jacobians}")
        if self.depth is not None:
            lines.append(f"depth net: encoder {self.depth.encoder_channels}, {self.depth.num_scales} scales")
        for scale, queries, keys in self.attention_sites():
            side = self.resolution // 2 ** scale
            lines.append(f"attention at {side}² features: map {queries} queries × {keys} keys "
                         f"= {queries * keys} entries per image")
        if not self.attention_sites():
            lines.append("no attention")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.keypoint_source == "learned":
            # As before these fields existed: config.json files and the run checkpoints' config key
            # (`sdk.training.run.model_config_key`) of learned-keypoint models stay byte-identical.
            del data["keypoint_source"], data["semantic"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; raises ValueError naming unknown or missing fields."""
        return _build(cls, data, "config")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown fields {unknown}")
    nested = {"depth": DepthConfig, "pose": PoseConfig, "keypoint": KeypointConfig,
              "dense_motion": DenseMotionConfig, "generator": GeneratorConfig,
              "discriminator": DiscriminatorConfig, "attention": AttentionConfig,
              "composite": CompositeConfig, "semantic": SemanticConfig}
    values = {}
    for name, value in data.items():
        if name in nested and value is not None:
            value = _build(nested[name], value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _problems(cfg: ModelConfig) -> list[str]:
    problems = []
    gen = cfg.generator
    if cfg.variant not in VARIANTS:
        problems.append(f"variant must be one of {VARIANTS}")
    if (cfg.depth is None) != (cfg.variant == "fomm"):
        problems.append("depth must be None exactly for the fomm variant")
    if (cfg.pose is None) != (cfg.depth is None):
        problems.append("pose must be given exactly when depth is")
    if gen.attention_placement != ATTENTION_BY_VARIANT.get(cfg.variant):
        problems.append(f"{cfg.variant} needs attention_placement {ATTENTION_BY_VARIANT.get(cfg.variant)!r}")
    if (gen.attention is None) != (gen.attention_placement == "none"):
        problems.append("generator.attention must be None exactly when attention_placement is 'none'")
    if cfg.pose is not None and cfg.pose.uncertainty != (cfg.variant == "dagan++"):
        problems.append("pose.uncertainty is the dagan++ addition")
    if abs(1 / cfg.motion_scale - cfg.motion_downsample) > 1e-6:
        problems.append("motion_scale must be 1/integer")
    if cfg.motion_resolution % 2 ** max(cfg.keypoint.num_blocks, cfg.dense_motion.num_blocks):
        problems.append("motion resolution must be divisible by 2**num_blocks of the hourglasses")
    if cfg.resolution % 2 ** gen.num_down_blocks:
        problems.append("resolution must be divisible by 2**generator.num_down_blocks")
    if cfg.composite is not None and cfg.composite.mask_kernel_size % 2 == 0:
        problems.append("composite.mask_kernel_size must be odd")
    if cfg.depth is not None and cfg.resolution % 2 ** len(cfg.depth.encoder_channels):
        problems.append("resolution must be divisible by 2**len(depth.encoder_channels)")
    if cfg.depth is not None and len(cfg.depth.decoder_channels) != len(cfg.depth.encoder_channels):
        problems.append("depth decoder needs one width per encoder stage")
    if cfg.depth is not None and not 1 <= cfg.depth.num_scales <= len(cfg.depth.encoder_channels):
        problems.append("depth.num_scales must be within the decoder depth")
    if gen.attention is not None:
        for scale, _, _ in cfg.attention_sites():
            side = cfg.resolution // 2 ** scale
            for limit in (gen.attention.key_side, gen.attention.query_side):
                if side > limit and side % limit:
                    problems.append(f"{side}² features cannot be average-pooled to {limit}²")
    for scale in cfg.discriminator.scales:
        if abs(1 / scale - round(1 / scale)) > 1e-6:
            problems.append("discriminator scales must be 1/integer")
    return problems + _keypoint_problems(cfg)


def _keypoint_problems(cfg: ModelConfig) -> list[str]:
    if cfg.keypoint_source not in KEYPOINT_SOURCES:
        return [f"keypoint_source must be one of {KEYPOINT_SOURCES}"]
    if (cfg.semantic is None) != (cfg.keypoint_source == "learned"):
        return ["semantic must be given exactly when keypoint_source is 'prior' or 'hybrid'"]
    problems = []
    if cfg.keypoint_source == "prior" and cfg.num_kp != 0:
        problems.append("num_kp counts learned keypoints: 0 for keypoint_source 'prior'")
    if cfg.keypoint_source != "prior" and cfg.num_kp < 1:
        problems.append(f"keypoint_source {cfg.keypoint_source!r} needs num_kp >= 1 learned keypoints")
    if cfg.keypoint_source != "learned" and cfg.discriminator.use_kp:
        problems.append("a keypoint-conditioned discriminator (use_kp) takes learned keypoints only")
    semantic = cfg.semantic
    if semantic is not None:
        from ..prior.keypoints import MAX_KEYPOINTS  # numpy only; imported here to keep this module light

        if not 1 <= semantic.prior_keypoints <= MAX_KEYPOINTS:
            problems.append(f"semantic.prior_keypoints must be in [1, {MAX_KEYPOINTS}]")
        if semantic.expression_dims < 1 or semantic.hidden < 1:
            problems.append("semantic.expression_dims and semantic.hidden must be at least 1")
        if semantic.jacobians not in PRIOR_JACOBIANS:
            problems.append(f"semantic.jacobians must be one of {PRIOR_JACOBIANS}")
        if not 0 <= semantic.modulated_stages <= cfg.generator.num_down_blocks + 1:
            problems.append(f"semantic.modulated_stages must be in [0, {cfg.generator.num_down_blocks + 1}] "
                            "(the bottleneck and each up block)")
    return problems


def _generator(variant: str, block_expansion: int, max_features: int, num_down_blocks: int,
               num_bottleneck_blocks: int, attention: AttentionConfig, first_kernel_size: int,
               final_kernel_size: int) -> GeneratorConfig:
    placement = ATTENTION_BY_VARIANT[variant]
    return GeneratorConfig(block_expansion, max_features, num_down_blocks, num_bottleneck_blocks, placement,
                           None if placement == "none" else attention, first_kernel_size, final_kernel_size)


def _make(variant: str, size: str) -> ModelConfig:
    uses_depth = variant != "fomm"
    uncertainty = variant == "dagan++"
    if size == "tiny":
        depth = DepthConfig((8, 8, 16, 16), (4, 8, 8, 16), blocks_per_stage=1, num_scales=3)
        pose = PoseConfig((8, 16, 16, 32), blocks_per_stage=0, uncertainty=uncertainty)
        keypoint = KeypointConfig(8, 64, 3, head_kernel_size=3)
        dense = DenseMotionConfig(8, 64, 3, head_kernel_size=3)
        generator = _generator(variant, 8, 32, 2, 1, AttentionConfig(8, 16, 8), 3, 3)
        disc = DiscriminatorConfig(8, 64, 3, (1.0,))
        motion_scale = 0.25
    elif size == "mobile":
        depth = DepthConfig((16, 24, 32, 48, 64), (8, 16, 24, 32, 48), blocks_per_stage=1)
        pose = PoseConfig((16, 32, 64, 96, 128), blocks_per_stage=1, uncertainty=uncertainty)
        keypoint = KeypointConfig(24, 192, 4, head_kernel_size=3)
        dense = DenseMotionConfig(24, 192, 4, head_kernel_size=3)
        generator = _generator(variant, 16, 128, 3, 2, AttentionConfig(16, 32, 32), 7, 3)
        disc = DiscriminatorConfig(32, 256, 4, (1.0, 0.5))
        motion_scale = 0.25
    elif size == "paper":
        # ResNet18-style depth and pose encoders and monodepth2 decoder widths (DaGAN, appendix A.2);
        # FOMM's vox-256 widths for keypoints, dense motion and generator; DaGAN++ adds a third down block.
        depth = DepthConfig((64, 64, 128, 256, 512), (16, 32, 64, 128, 256), blocks_per_stage=2)
        pose = PoseConfig((64, 64, 128, 256, 512), blocks_per_stage=2, uncertainty=uncertainty)
        keypoint = KeypointConfig(32, 1024, 5)
        dense = DenseMotionConfig(64, 1024, 5)
        generator = _generator(variant, 64, 512, 3 if variant == "dagan++" else 2, 6,
                               AttentionConfig(16, 64, 64), 7, 7)
        disc = DiscriminatorConfig(64, 512, 4, (1.0, 0.5))
        motion_scale = 0.25
    else:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZES}")
    return ModelConfig(f"{variant}-{size}", variant, size, RESOLUTIONS[size], 15, motion_scale,
                       depth if uses_depth else None, pose if uses_depth else None,
                       keypoint, dense, generator, disc, CompositeConfig())


def _semantic(base: ModelConfig, source: str) -> ModelConfig:
    """`base` driven by the face prior: 15 prior keypoints ("prior") or 10 prior + 5 learned
    ("hybrid"), so the dense motion keeps `base`'s 15 keypoints and its weights' shapes."""
    prior_keypoints, learned = (15, 0) if source == "prior" else (10, 5)
    semantic = SemanticConfig(prior_keypoints=prior_keypoints, expression_dims=16 if base.size == "tiny" else 32,
                              modulated_stages=min(3, base.generator.num_down_blocks + 1))
    return dataclasses.replace(base, name=f"{base.name}-{source}", num_kp=learned, keypoint_source=source,
                               semantic=semantic)


def get_config(name: str) -> ModelConfig:
    """The named configuration, e.g. ``dagan++-mobile`` or ``dagan++-mobile-prior``; see `MODEL_NAMES`."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model config {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    if name in SEMANTIC_CONFIG_NAMES:
        base, source = name.rsplit("-", 1)
        return _semantic(get_config(base), source)
    variant, size = name.rsplit("-", 1)
    return _make(variant, size)
