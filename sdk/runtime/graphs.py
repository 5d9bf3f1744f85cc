"""The on-device graphs of a `TalkingHeadModel`, with fixed shapes and flat, named tensor I/O.

These are the export units (ONNX, TFLite, Core ML) and what every runtime backend runs:

- ``keypoint_encoder`` (sender, per frame): image (R²) -> keypoints, jacobians (depth net included).
- ``source_encoder`` (receiver, once per avatar): image (R²) -> [depth], keypoints, jacobians, the
  encoder features the generator warps (``appearance_<s>``) and the attention queries
  (``depth_query_<i>``, dagan variants).
- ``generator`` (receiver, per frame): the source tensors plus the driving keypoints and
  jacobians -> image (dense motion, warping, attention, decoder, composite).

Models driven by the face prior (`cfg.semantic`, issue 12): the receiver derives the source and
driving keypoints of the K = `cfg.motion_keypoints` the dense motion blends from the avatar's
mesh (`sdk.prior.AvatarRig`, numpy, outside the graphs), so the source encoder outputs no
keypoints and the generator takes ``source_keypoints`` / ``source_jacobians`` as inputs from the
caller, like the driving ones, plus the expression code ``expression`` (1, E). A "prior" model
has no keypoint encoder (its sender sends the mesh's semantic code, `sdk.prior.SemanticEncoder`):
its graphs are the source encoder and the generator (`graph_names`). A "hybrid" model keeps the
keypoint encoder for its `num_kp` learned keypoints, and its source encoder outputs the avatar's
learned ones (``learned_keypoints`` / ``learned_jacobians``), which follow the prior's in the
generator's ``source_keypoints``. Learned-keypoint models' graphs are what they were.

A set of graphs is made for one output size S (`graph_specs(cfg, output_size)`): with the
composite head the generator also takes the portrait at S (``portrait``), upsamples the flow to
S², warps the portrait once and composites, so its ``image`` is at S; the source encoder still
takes the image at R (the portrait averaged down, `sdk.models.talking_head.to_internal`). Without
the head everything is at R and there is no ``portrait`` input.

Relative motion is not in any graph: `sdk.pipeline.TalkingHeadPipeline` computes the driving
keypoints from the code and hands them to the generator. Batch size is 1 everywhere.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import Keypoints, ModelConfig, SourceState, TalkingHeadModel
from ..models.blocks import downsample
from ..models.generator import SourceFeatures
from ..models.motion import invert_2x2, warp

GRAPH_NAMES: tuple[str, ...] = ("keypoint_encoder", "source_encoder", "generator")  # every graph, in order
SENDER_GRAPHS: tuple[str, ...] = ("keypoint_encoder",)
RECEIVER_GRAPHS: tuple[str, ...] = ("source_encoder", "generator")
# Bumped whenever the graphs' I/O or ops change, so caches of exported graphs are not reused across.
GRAPHS_VERSION = 3  # 3: output size, composite head (`portrait` input, `image` at S)

IMAGE_NORMALISATION = "RGB float32 in [0, 1], NCHW, at the model's internal resolution"
OUTPUT_IMAGE_NORMALISATION = "RGB float32 in [0, 1], NCHW, at the output size"
KEYPOINT_NORMALISATION = "keypoints in [-1, 1] image coordinates, x first"
JACOBIAN_NORMALISATION = "2x2 local affine Jacobian per keypoint, row-major"
DEPTH_NORMALISATION = "depth divided by its per-image maximum, in (0, 1]"
FEATURE_NORMALISATION = "opaque float32 features, passed unchanged from source_encoder to generator"
PRIOR_KEYPOINT_NORMALISATION = (KEYPOINT_NORMALISATION + "; the face prior's keypoints of the avatar's mesh "
                                "(sdk.prior.AvatarRig), then the learned ones (hybrid)")
LEARNED_KEYPOINT_NORMALISATION = (KEYPOINT_NORMALISATION + "; the avatar's learned keypoints (hybrid), which "
                                  "follow the prior's in the generator's source_keypoints")
EXPRESSION_NORMALISATION = ("expression coefficients of the face prior relative to the anchor "
                            "(sdk.prior.relative_motion); zero beyond the dimensions the stream carries")


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: fixed shape, float32, and what its values mean."""
    name: str
    shape: tuple[int, ...]
    meaning: str


@dataclass(frozen=True)
class GraphSpec:
    """A graph's name, its inputs and outputs in positional order, and the output size S of the
    set of graphs it belongs to (the side of the generator's frames)."""
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    output_size: int

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]


def _source_feature_specs(cfg: ModelConfig) -> list[TensorSpec]:
    """The generator's per-avatar inputs besides the image and keypoints, in positional order."""
    gen = cfg.generator
    scales = range(gen.num_down_blocks + 1) if gen.attention_placement == "every_scale" else [gen.num_down_blocks]
    specs = [TensorSpec(f"appearance_{scale}", (1, gen.channels(scale), cfg.resolution // 2 ** scale,
                                                cfg.resolution // 2 ** scale), FEATURE_NORMALISATION)
             for scale in scales]
    if gen.attention is not None:
        for index, (scale, _, _) in enumerate(cfg.attention_sites()):
            side = min(cfg.resolution // 2 ** scale, gen.attention.query_side)
            specs.append(TensorSpec(f"depth_query_{index}", (1, gen.attention.qk_channels, side, side),
                                    FEATURE_NORMALISATION))
    return specs


def graph_names(cfg: ModelConfig) -> tuple[str, ...]:
    """The graphs `cfg`'s model has, in `GRAPH_NAMES` order: all three, or for a "prior" model
    (no learned keypoints: its sender runs no network) the source encoder and the generator."""
    return GRAPH_NAMES if cfg.num_kp else RECEIVER_GRAPHS


def graph_specs(cfg: ModelConfig, output_size: int | None = None) -> dict[str, GraphSpec]:
    """The graphs' specs for `cfg` at `output_size` (None: `cfg.default_output_size`), keyed by
    graph name (`graph_names(cfg)`); ValueError for a size the model cannot render at.

    With the composite head the generator takes ``portrait`` (1, 3, S, S) after ``source_image``
    and its ``image`` is (1, 3, S, S); without it (S = R only) the graphs have no S-sized tensor.
    Models driven by the face prior: see the module docstring (no ``source_keypoints`` out of the
    source encoder; ``expression`` into the generator after ``driving_jacobians``).
    """
    size = cfg.check_output_size(cfg.default_output_size if output_size is None else output_size)
    r, k = cfg.resolution, cfg.num_kp
    image = TensorSpec("image", (1, 3, r, r), IMAGE_NORMALISATION)
    keypoints = TensorSpec("keypoints", (1, k, 2), KEYPOINT_NORMALISATION)
    jacobians = TensorSpec("jacobians", (1, k, 2, 2), JACOBIAN_NORMALISATION)
    source_outputs = [TensorSpec("depth", (1, 1, r, r), DEPTH_NORMALISATION)] if cfg.uses_depth else []
    if cfg.semantic is None:
        source_outputs += [TensorSpec("source_keypoints", keypoints.shape, keypoints.meaning),
                           TensorSpec("source_jacobians", jacobians.shape, jacobians.meaning)]
        motion = (keypoints, jacobians)
        expression = []
    else:
        if k:
            source_outputs += [TensorSpec("learned_keypoints", keypoints.shape, LEARNED_KEYPOINT_NORMALISATION),
                               TensorSpec("learned_jacobians", jacobians.shape, JACOBIAN_NORMALISATION)]
        motion = (TensorSpec("keypoints", (1, cfg.motion_keypoints, 2), PRIOR_KEYPOINT_NORMALISATION),
                  TensorSpec("jacobians", (1, cfg.motion_keypoints, 2, 2), JACOBIAN_NORMALISATION))
        expression = [TensorSpec("expression", (1, cfg.semantic.expression_dims), EXPRESSION_NORMALISATION)]
    source_outputs += _source_feature_specs(cfg)
    portrait = [] if cfg.composite is None else [TensorSpec("portrait", (1, 3, size, size), OUTPUT_IMAGE_NORMALISATION)]
    frame = image if cfg.composite is None else TensorSpec("image", (1, 3, size, size), OUTPUT_IMAGE_NORMALISATION)
    generator_inputs = (TensorSpec("source_image", image.shape, image.meaning),
                        *portrait,
                        *(TensorSpec(f"{role}_{spec.name}", spec.shape, spec.meaning)
                          for role in ("source", "driving") for spec in motion),
                        *expression,
                        *_source_feature_specs(cfg))
    specs = {
        "keypoint_encoder": GraphSpec("keypoint_encoder", (image,), (keypoints, jacobians), size),
        "source_encoder": GraphSpec("source_encoder", (image,), tuple(source_outputs), size),
        "generator": GraphSpec("generator", generator_inputs, (frame,), size),
    }
    return {name: specs[name] for name in graph_names(cfg)}


# (features, x, y, weight or None) -> features sampled at (x, y) times weight. See `row_gather_warp`.
Warp = Callable[[Tensor, Tensor, Tensor, Tensor | None], Tensor]
FEW_CHANNELS = 8  # below this `row_gather_warp` gathers channels-first columns (measured: 3 channels)


def grid_sample_warp(features: Tensor, x: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
    """`sdk.models.motion.warp` (bilinear, zero padding, align_corners=True) times `weight`.

    (N, C, H, W), x and y (N, Ho, Wo) in [-1, 1], weight (N, 1, Ho, Wo) or None -> (N, C, Ho, Wo).
    """
    warped = warp(features, torch.stack([x, y], dim=-1))
    return warped if weight is None else warped * weight


def row_gather_warp(features: Tensor, x: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
    """The same as `grid_sample_warp`, written as row gathers (for TFLite and INT8 ONNX).

    litert-torch decomposes F.grid_sample into per-element GATHER_ND and selects (~15× slower than
    this on XNNPACK at 16×128² features, measured here). Here the features, padded with one ring
    of zeros, become rows of C channels; each of the four neighbours of every output pixel is
    fetched as whole rows by one index_select and added in with its bilinear weight. The zero ring
    is the zero padding: coordinates are clamped to it, so no inside-the-image masks are needed.
    `weight` (the occlusion map) is folded into the four bilinear weights, one multiply per point
    rather than one per point and channel. One gather per neighbour summed as it comes is ~35 %
    faster in ONNX Runtime than one gather of all four followed by a weighted reduction, and than
    a batched (1×4)·(4×C) product; with few channels (the dense motion's 3) gathering columns of
    a channels-first map is ~25 % faster than gathering 3-wide rows.
    (N, C, H, W), x and y (N, Ho, Wo) in [-1, 1], weight (N, 1, Ho, Wo) or None -> (N, C, Ho, Wo).
    """
    n, c, h, w = features.shape
    ho, wo = x.shape[1:]
    # align_corners=True: -1 and 1 are the border pixel centres; -1 and w (h) are the zero ring.
    x = ((x + 1) * (0.5 * (w - 1))).clamp(-1, w)
    y = ((y + 1) * (0.5 * (h - 1))).clamp(-1, h)
    # A point on the far ring takes its left/top neighbour with weight 0 and the ring with weight 1.
    x_floor, y_floor = torch.floor(x).clamp(max=w - 1), torch.floor(y).clamp(max=h - 1)
    fx, fy = x - x_floor, y - y_floor
    top, bottom = 1 - fy, fy
    if weight is not None:
        top, bottom = top * weight.reshape(n, ho, wo), bottom * weight.reshape(n, ho, wo)
    padded_w = w + 2
    padded = F.pad(features, (1, 1, 1, 1))
    # Integer pixel arithmetic: a float row index would be inexact in fp16 graphs beyond 2048.
    first_row = (torch.arange(n, dtype=torch.int32) * ((h + 2) * padded_w)).reshape(n, 1, 1)
    index = ((y_floor.to(torch.int32) + 1) * padded_w + x_floor.to(torch.int32) + 1 + first_row).reshape(-1)
    # NaN coordinates (a singular Jacobian) cast to any integer: keep every gather inside the table.
    index = index.clamp(0, n * (h + 2) * padded_w - padded_w - 2)
    channels_last = c >= FEW_CHANNELS
    table = (padded.permute(0, 2, 3, 1).reshape(n * (h + 2) * padded_w, c) if channels_last
             else padded.transpose(0, 1).reshape(c, n * (h + 2) * padded_w))
    blended = None
    for offset, neighbour_weight in ((0, (1 - fx) * top), (1, fx * top),
                                     (padded_w, (1 - fx) * bottom), (padded_w + 1, fx * bottom)):
        if channels_last:
            term = torch.index_select(table, 0, index + offset) * neighbour_weight.reshape(-1, 1)
        else:
            term = torch.index_select(table, 1, index + offset) * neighbour_weight.reshape(1, -1)
        blended = term if blended is None else blended + term
    if channels_last:
        return blended.reshape(n, ho, wo, c).permute(0, 3, 1, 2)
    return blended.reshape(c, n, ho, wo).transpose(0, 1)


def keypoint_gaussians_planar(x: Tensor, y: Tensor, keypoints: Tensor, variance: float) -> Tensor:
    """`sdk.models.motion.keypoint_gaussians` on coordinate planes: x, y (h, w), keypoints (N, K, 2) -> (N, K, h, w).

    Offsets in separate x and y planes: runtimes broadcast a (N, K, 1, 1) keypoint over an (h, w)
    plane far faster than over a trailing axis of 2 (3-5× in ONNX Runtime here).
    """
    dx = x - keypoints[:, :, 0, None, None]
    dy = y - keypoints[:, :, 1, None, None]
    return torch.exp(-0.5 * (dx * dx + dy * dy) / variance)


def sparse_motions_planar(x: Tensor, y: Tensor, kp_driving: Keypoints, kp_source: Keypoints
                          ) -> tuple[Tensor, Tensor]:
    """`sdk.models.motion.sparse_motions` on coordinate planes: x, y (h, w) -> x, y (N, K+1, h, w), background first.

    kp_s + J_s J_d^-1 (z - kp_d), with the 2×2 product written out per coordinate (the model's
    batched matmul makes rank-6 tensors, which Core ML rejects).
    """
    n = kp_driving.value.shape[0]
    jacobian = kp_source.jacobian @ invert_2x2(kp_driving.jacobian)  # (N, K, 2, 2)
    dx = x - kp_driving.value[:, :, 0, None, None]  # (N, K, h, w)
    dy = y - kp_driving.value[:, :, 1, None, None]
    mapped_x = jacobian[:, :, 0, 0, None, None] * dx + jacobian[:, :, 0, 1, None, None] * dy \
        + kp_source.value[:, :, 0, None, None]
    mapped_y = jacobian[:, :, 1, 0, None, None] * dx + jacobian[:, :, 1, 1, None, None] * dy \
        + kp_source.value[:, :, 1, None, None]
    identity_x, identity_y = x.expand(n, 1, *x.shape), y.expand(n, 1, *y.shape)
    return torch.cat([identity_x, mapped_x], dim=1), torch.cat([identity_y, mapped_y], dim=1)


class KeypointEncoderGraph(nn.Module):
    """image (1, 3, R, R) -> keypoints (1, K, 2), jacobians (1, K, 2, 2)."""

    def __init__(self, model: TalkingHeadModel):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        code = self.model.encode(image)
        return code.value, code.jacobian


class SourceEncoderGraph(nn.Module):
    """image (1, 3, R, R) -> ([depth (1, 1, R, R)], source_keypoints, source_jacobians,
    appearance_<s> (1, C_s, R/2^s, R/2^s)..., [depth_query_<i> (1, d, q, q)...]).

    Face-prior models: no source keypoints (they come from the avatar's mesh); hybrid ones output
    the avatar's learned keypoints instead (``learned_keypoints``, ``learned_jacobians``)."""

    def __init__(self, model: TalkingHeadModel):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        if model.cfg.semantic is None:
            return source_state_tensors(model.prepare_source(image))
        # `TalkingHeadModel.prepare_source` without the rig: the mesh is the caller's (numpy).
        depth = model.estimate_depth(image)
        learned = None if model.kp_detector is None else model.kp_detector(image, depth)
        return _flat_source(depth, learned, model.generator.encode_source(image, depth))


class GeneratorGraph(nn.Module):
    """The generator spec's inputs, in its order (source_image (1, 3, R, R), [portrait (1, 3, S, S)],
    source_keypoints, source_jacobians, driving_keypoints, driving_jacobians, [expression (1, E)],
    appearance_<s>..., [depth_query_<i>...]) -> image (1, 3, S, S) in [0, 1].

    The per-frame path of `Generator.render` written with ops every target converts and runs
    fast: coordinates live in separate x and y planes (`sparse_motions_planar`), the K+1 motions
    sample the source in one warp, the occlusion map is folded into the warps, and the warp is
    `warp` (F.grid_sample by default, `row_gather_warp` for TFLite and INT8 ONNX). With the
    composite head the flow is upsampled to S² and the 3-channel portrait warped with the same
    `warp`, then `Generator.composite`. Same weights, same result as `TalkingHeadModel.render`
    (checked by the tests).
    """

    def __init__(self, model: TalkingHeadModel, warp: Warp = grid_sample_warp, output_size: int | None = None):
        super().__init__()
        self.model = model
        self.warp = warp
        spec = graph_specs(model.cfg, output_size)["generator"]
        self.input_names = spec.input_names
        # Static sides (from the config), so tracing sees Python ints, not tensor shapes.
        self.output_size = spec.output_size
        self.sides = [model.cfg.resolution // 2 ** scale for scale in model.generator.warped_scales]

    def forward(self, *inputs: Tensor) -> Tensor:
        named = dict(zip(self.input_names, inputs))
        gen = self.model.generator
        expression = named.get("expression")  # face-prior models only
        deformation_x, deformation_y, occlusion = self._dense_motion(
            named["source_image"], Keypoints(named["driving_keypoints"], named["driving_jacobians"]),
            Keypoints(named["source_keypoints"], named["source_jacobians"]))
        warped = [self.warp(named[f"appearance_{scale}"], *self._deformation_at(deformation_x, deformation_y, side),
                            gen._occlusion_at(occlusion, side))
                  for scale, side in zip(gen.warped_scales, self.sides)]
        queries = [named[name] for name in self.input_names if name.startswith("depth_query_")]
        decoded, mask_logits = gen.decode(warped, queries or None, expression)
        if mask_logits is None:
            return decoded
        warped_portrait = self.warp(named["portrait"],
                                    *self._deformation_at(deformation_x, deformation_y, self.output_size))
        return gen.composite(decoded, mask_logits, warped_portrait)[0]

    def _deformation_at(self, x: Tensor, y: Tensor, side: int) -> tuple[Tensor, Tensor]:
        """`Generator._grid_at` on planes: x, y (N, h, w) at the motion resolution -> (N, side, side) each."""
        if side == self.model.generator.motion_resolution:
            return x, y
        resized = F.interpolate(torch.stack([x, y], dim=1), size=(side, side), mode="bilinear", align_corners=True)
        return resized[:, 0], resized[:, 1]

    def _dense_motion(self, source: Tensor, kp_driving: Keypoints, kp_source: Keypoints
                      ) -> tuple[Tensor, Tensor, Tensor]:
        """`DenseMotion.forward` -> deformation x and y (N, h, w), occlusion (N, 1, h, w); tensors rank <= 5."""
        dm = self.model.generator.dense_motion
        small = downsample(source, dm.downsample_factor)
        n, c, h, w = small.shape
        motions = dm.num_kp + 1
        grid_x, grid_y = dm.grid[..., 0], dm.grid[..., 1]
        heatmaps = (keypoint_gaussians_planar(grid_x, grid_y, kp_driving.value, dm.kp_variance)
                    - keypoint_gaussians_planar(grid_x, grid_y, kp_source.value, dm.kp_variance))
        heatmaps = torch.cat([torch.zeros_like(heatmaps[:, :1]), heatmaps], dim=1).unsqueeze(2)
        sparse_x, sparse_y = sparse_motions_planar(grid_x, grid_y, kp_driving, kp_source)  # (N, K+1, h, w)
        # Every motion samples the same small source: one warp at (K+1)·h × w points, no K+1 copies
        # (litert-torch also mis-converts a gather from the expanded copies).
        deformed = self.warp(small, sparse_x.reshape(n, motions * h, w), sparse_y.reshape(n, motions * h, w))
        deformed = deformed.reshape(n, c, motions, h, w).permute(0, 2, 1, 3, 4)
        hourglass = dm.hourglass(torch.cat([heatmaps, deformed], dim=2).reshape(n, motions * (c + 1), h, w))
        mask = torch.softmax(dm.mask_head(hourglass), dim=1)
        deformation_x, deformation_y = (mask * sparse_x).sum(dim=1), (mask * sparse_y).sum(dim=1)
        return deformation_x, deformation_y, torch.sigmoid(dm.occlusion_head(hourglass))


def _flat_source(depth: Tensor | None, keypoints: Keypoints | None, features: SourceFeatures) -> tuple[Tensor, ...]:
    """The source encoder's outputs in order: [depth], [keypoints, jacobians], appearance..., [queries...]."""
    return (*(() if depth is None else (depth,)),
            *(() if keypoints is None else (keypoints.value, keypoints.jacobian)),
            *features.appearance, *(features.depth_queries or ()))


def source_state_tensors(state: SourceState) -> tuple[Tensor, ...]:
    """A `SourceState` flattened in the source encoder's output order (face-prior models: the
    learned keypoints of a hybrid one, none of a prior one; the prior's come from the mesh)."""
    keypoints = state.keypoints if state.rigs is None else state.learned
    return _flat_source(state.depth, keypoints, state.features)


def generator_inputs(state: SourceState, kp_driving: Keypoints, specs: dict[str, GraphSpec],
                     expression: Tensor | None = None) -> tuple[Tensor, ...]:
    """The generator graph's inputs, in `specs["generator"]` order, for a torch `SourceState` (made
    at the specs' output size), driving keypoints and, for face-prior models, the expression (1, E)."""
    available = dict(zip(specs["source_encoder"].output_names, source_state_tensors(state)))
    available.update(source_image=state.image, portrait=state.portrait, source_keypoints=state.keypoints.value,
                     source_jacobians=state.keypoints.jacobian, driving_keypoints=kp_driving.value,
                     driving_jacobians=kp_driving.jacobian, expression=expression)
    return tuple(available[name] for name in specs["generator"].input_names)


def build_graphs(model: TalkingHeadModel, warp: Warp = grid_sample_warp, output_size: int | None = None
                 ) -> dict[str, nn.Module]:
    """The model's graph modules (`graph_names`) at `output_size` (None: the model's default),
    sharing `model`'s weights, keyed by graph name, in eval mode."""
    model.eval()
    modules = {"keypoint_encoder": lambda: KeypointEncoderGraph(model),
               "source_encoder": lambda: SourceEncoderGraph(model),
               "generator": lambda: GeneratorGraph(model, warp, output_size)}
    return {name: modules[name]().eval() for name in graph_names(model.cfg)}


def example_inputs(cfg: ModelConfig, seed: int = 0, output_size: int | None = None) -> dict[str, tuple[Tensor, ...]]:
    """Plausible inputs for tracing each graph at `output_size`: random images, keypoints near a
    grid, identity Jacobians, [expressions of a few units]."""
    generator = torch.Generator().manual_seed(seed)
    specs = graph_specs(cfg, output_size)
    inputs: dict[str, tuple[Tensor, ...]] = {}
    for name, spec in specs.items():
        tensors = []
        for tensor in spec.inputs:
            if tensor.name.endswith("jacobians"):
                value = torch.eye(2).expand(tensor.shape).clone()
            elif tensor.name.endswith("keypoints"):
                value = torch.rand(tensor.shape, generator=generator) * 1.6 - 0.8
            elif tensor.name == "expression":
                value = torch.randn(tensor.shape, generator=generator)
            else:
                value = torch.rand(tensor.shape, generator=generator)
            tensors.append(value)
        inputs[name] = tuple(tensors)
    return inputs
