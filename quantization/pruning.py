"""Pruning: structured channel pruning that rebuilds smaller convolutions, and NNCF's unstructured pruning.

Structured (`prune_channels`): a `ChannelGroup` is the output channels of one convolution (and
the BatchNorm after it) together with every convolution that reads them. The channels of a group
are ranked by their BatchNorm-scaled L1 norm (|γ_c| / σ_c · ‖W_c‖₁: what the channel adds to the
next layer after normalisation; plain ‖W_c‖₁ without a BatchNorm), the weakest `ratio` of them
are removed, and the producer, its BatchNorm and the consumers are rebuilt as smaller modules.
The graphs' inputs and outputs (and so `sdk.runtime.graph_specs`) do not change; the model's
`ModelConfig` no longer describes its widths, so a pruned model is saved with its `PruningPlan`
(`save_pruned` / `load_pruned`), not with `sdk.save_model`.

Groups found in a `TalkingHeadModel` (per part, `PRUNABLE_PARTS`), all on the per-frame path:
- "decoder": the generator's up convolutions (each read by the next up convolution, the last one by
  the final conv and by the composite head's mask conv, which read the same decoder features),
- "bottleneck": the inner convolution of every generator residual block,
- "dense_motion": the dense-motion hourglass's up convolutions (read by the next up block or the heads).

Unstructured (`prune_unstructured`): `nncf.prune` magnitude pruning (local or global) zeroes the
smallest weights of the chosen graph; dense kernels run them at the same speed, so what it buys
is a smaller compressed download (`weight_archive_bytes`).
"""
from __future__ import annotations

import copy
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sdk.models import TalkingHeadModel
from sdk.models.blocks import ResBlock

from .errors import QuantizationError

PRUNABLE_PARTS: tuple[str, ...] = ("decoder", "bottleneck", "dense_motion")
PLAN_FILE = "pruning.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass(frozen=True)
class ChannelGroup:
    """producer: conv path whose output channels are pruned; norm: its BatchNorm path or None;
    consumers: (conv path, index of the group's first channel among that conv's inputs)."""
    producer: str
    norm: str | None
    consumers: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class PruneConfig:
    """ratio: fraction of each group's channels removed; parts: which `PRUNABLE_PARTS`;
    channel_multiple: kept counts are rounded to a multiple of this (SIMD and INT8 kernels like
    multiples of 4); min_channels: never fewer than this."""
    ratio: float = 0.5
    parts: tuple[str, ...] = PRUNABLE_PARTS
    channel_multiple: int = 4
    min_channels: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise QuantizationError(f"pruning ratio must be in [0, 1), got {self.ratio}")
        unknown = sorted(set(self.parts) - set(PRUNABLE_PARTS))
        if unknown or not self.parts:
            raise QuantizationError(f"unknown pruning parts {unknown or '(none given)'}; "
                                    f"choose from {', '.join(PRUNABLE_PARTS)}")
        if self.channel_multiple < 1 or self.min_channels < 1:
            raise QuantizationError("channel_multiple and min_channels must be >= 1")


@dataclass
class PruningPlan:
    """What was pruned: the model config name, and per group the kept output channel indices."""
    config_name: str
    ratio: float
    parts: tuple[str, ...]
    kept: dict[str, list[int]] = field(default_factory=dict)  # producer path -> kept channels
    groups: list[ChannelGroup] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"config_name": self.config_name, "ratio": self.ratio, "parts": list(self.parts), "kept": self.kept,
                "groups": [{"producer": g.producer, "norm": g.norm, "consumers": [list(c) for c in g.consumers]}
                           for g in self.groups]}

    @classmethod
    def from_dict(cls, data: dict) -> PruningPlan:
        groups = [ChannelGroup(g["producer"], g["norm"], tuple((c[0], int(c[1])) for c in g["consumers"]))
                  for g in data["groups"]]
        return cls(data["config_name"], float(data["ratio"]), tuple(data["parts"]),
                   {key: [int(i) for i in value] for key, value in data["kept"].items()}, groups)


def channel_groups(model: TalkingHeadModel, parts: tuple[str, ...] = PRUNABLE_PARTS) -> list[ChannelGroup]:
    """The prunable groups of `model` in `parts` (see the module docstring)."""
    generator = model.generator
    groups: list[ChannelGroup] = []
    if "decoder" in parts:
        depth = len(generator.up)
        for i in range(depth):
            conv = f"generator.up.{i}.0" if generator.skip_decoder else f"generator.up.{i}.conv.0"
            norm = conv[:-1] + "1"
            if i:
                reader = f"generator.up.{i - 1}.0" if generator.skip_decoder else f"generator.up.{i - 1}.conv.0"
                readers = ((reader, 0),)
            else:  # the decoder's last features: the image and the composite mask are read from them
                readers = (("generator.final", 0),) + (
                    (("generator.composite_head", 0),) if generator.composite_head is not None else ())
            groups.append(ChannelGroup(conv, norm, readers))
    if "bottleneck" in parts:
        for name, module in generator.bottleneck.named_children():
            if isinstance(module, ResBlock):
                prefix = f"generator.bottleneck.{name}.body"
                groups.append(ChannelGroup(f"{prefix}.2", f"{prefix}.3", ((f"{prefix}.5", 0),)))
    if "dense_motion" in parts:
        hourglass = "generator.dense_motion.hourglass"
        for j in range(len(generator.dense_motion.hourglass.up)):
            readers = ((f"{hourglass}.up.{j - 1}.conv.0", 0),) if j else (
                ("generator.dense_motion.mask_head", 0), ("generator.dense_motion.occlusion_head", 0))
            groups.append(ChannelGroup(f"{hourglass}.up.{j}.conv.0", f"{hourglass}.up.{j}.conv.1", readers))
    return groups


def channel_importance(model: nn.Module, group: ChannelGroup) -> torch.Tensor:
    """(C,) importance of the producer's output channels: BatchNorm-scaled L1 norm of the filters."""
    conv = model.get_submodule(group.producer)
    importance = conv.weight.detach().abs().flatten(1).sum(1)
    if group.norm is not None:
        norm = model.get_submodule(group.norm)
        importance = importance * norm.weight.detach().abs() / torch.sqrt(norm.running_var + norm.eps)
    return importance


def prune_channels(model: TalkingHeadModel, config: PruneConfig = PruneConfig()) -> tuple[TalkingHeadModel, PruningPlan]:
    """A pruned copy of `model` (eval mode) and its plan; `model` is left as it is."""
    pruned = copy.deepcopy(model).eval()
    groups = channel_groups(pruned, config.parts)
    plan = PruningPlan(model.cfg.name, config.ratio, config.parts, groups=groups)
    for group in groups:
        channels = pruned.get_submodule(group.producer).out_channels
        keep = _kept_count(channels, config)
        order = torch.argsort(channel_importance(pruned, group), descending=True)[:keep]
        plan.kept[group.producer] = sorted(order.tolist())
    apply_plan(pruned, plan)
    return pruned, plan


def _kept_count(channels: int, config: PruneConfig) -> int:
    wanted = channels * (1.0 - config.ratio)
    rounded = max(config.channel_multiple, int(round(wanted / config.channel_multiple)) * config.channel_multiple)
    return min(channels, max(config.min_channels, rounded))


def apply_plan(model: nn.Module, plan: PruningPlan) -> None:
    """Rebuild the modules of every group of `plan` with only the kept channels (in place)."""
    for group in plan.groups:
        kept = torch.tensor(plan.kept[group.producer], dtype=torch.long)
        producer = model.get_submodule(group.producer)
        channels = producer.out_channels
        if len(kept) and (int(kept.min()) < 0 or int(kept.max()) >= channels):
            raise QuantizationError(f"pruning plan keeps channels {int(kept.min())}..{int(kept.max())} of "
                                    f"{group.producer}, which has {channels}")
        _replace(model, group.producer, _conv_subset(producer, out_index=kept))
        if group.norm is not None:
            _replace(model, group.norm, _norm_subset(model.get_submodule(group.norm), kept))
        for reader, offset in group.consumers:
            conv = model.get_submodule(reader)
            inputs = torch.arange(conv.in_channels)
            keep_inputs = torch.cat([inputs[:offset], offset + kept, inputs[offset + channels:]])
            _replace(model, reader, _conv_subset(conv, in_index=keep_inputs))


def _conv_subset(conv: nn.Conv2d, out_index: torch.Tensor | None = None, in_index: torch.Tensor | None = None) -> nn.Conv2d:
    if conv.groups != 1:
        raise QuantizationError("grouped convolutions are not pruned")
    weight = conv.weight.detach()
    bias = None if conv.bias is None else conv.bias.detach()
    if out_index is not None:
        weight = weight[out_index]
        bias = None if bias is None else bias[out_index]
    if in_index is not None:
        weight = weight[:, in_index]
    smaller = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                        conv.dilation, bias=bias is not None, padding_mode=conv.padding_mode)
    with torch.no_grad():
        smaller.weight.copy_(weight)
        if bias is not None:
            smaller.bias.copy_(bias)
    return smaller.to(conv.weight.device)


def _norm_subset(norm: nn.BatchNorm2d, index: torch.Tensor) -> nn.BatchNorm2d:
    smaller = nn.BatchNorm2d(len(index), norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    with torch.no_grad():
        if norm.affine:
            smaller.weight.copy_(norm.weight[index])
            smaller.bias.copy_(norm.bias[index])
        smaller.running_mean.copy_(norm.running_mean[index])
        smaller.running_var.copy_(norm.running_var[index])
    smaller.train(norm.training)
    return smaller.to(norm.weight.device if norm.affine else norm.running_mean.device)


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def save_pruned(model: TalkingHeadModel, plan: PruningPlan, directory: str | Path,
                metadata: dict | None = None) -> Path:
    """Write a pruned model: config.json (the unpruned config), pruning.json (the plan), fp32 weights."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(
        {"kind": "talking_head_pruned", "config": model.cfg.to_dict(), "metadata": metadata or {}}, indent=1) + "\n")
    (directory / PLAN_FILE).write_text(json.dumps(plan.to_dict(), indent=1) + "\n")
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    return directory


def load_pruned(directory: str | Path) -> TalkingHeadModel:
    """Rebuild a model written by `save_pruned` (eval mode, fp32, CPU); QuantizationError if it is not one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from sdk.models import ModelConfig

    directory = Path(directory)
    try:
        document = json.loads((directory / "config.json").read_text())
        if document.get("kind") != "talking_head_pruned":
            raise ValueError(f"kind is {document.get('kind')!r}, not 'talking_head_pruned'")
        cfg = ModelConfig.from_dict(document["config"])
        plan = PruningPlan.from_dict(json.loads((directory / PLAN_FILE).read_text()))
        model = TalkingHeadModel(cfg)
        apply_plan(model, plan)
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError, SafetensorError) as exc:
        raise QuantizationError(f"{directory}: not a pruned model written by save_pruned ({exc})") from exc
    model.metadata = dict(document.get("metadata") or {})
    return model.eval()


# ----------------------------------------------------------------------------------------------
# Unstructured


@dataclass(frozen=True)
class SparsityReport:
    mode: str
    ratio: float
    sparsity: float  # zero fraction of the pruned weight tensors
    weights_gzip_bytes: int  # fp16 weights, gzip: what a download costs
    dense_weights_gzip_bytes: int


def prune_unstructured(model: TalkingHeadModel, ratio: float, mode: str = "global") -> tuple[TalkingHeadModel, SparsityReport]:
    """A copy of `model` whose generator (per-frame graph) weights are magnitude-pruned by `nncf.prune`."""
    from sdk.runtime.graphs import build_graphs, example_inputs

    from .nncf_backend import load_nncf

    if mode not in ("local", "global"):
        raise QuantizationError(f"unknown unstructured pruning mode {mode!r}; expected local or global")
    if not 0.0 < ratio < 1.0:
        raise QuantizationError(f"unstructured pruning ratio must be in (0, 1), got {ratio}")
    nncf = load_nncf()
    pruned = copy.deepcopy(model).eval()
    graph = build_graphs(pruned)["generator"]
    prune_mode = (nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL if mode == "global"
                  else nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_LOCAL)
    wrapped = nncf.prune(graph, prune_mode, ratio=ratio, examples_inputs=example_inputs(pruned.cfg)["generator"])
    nncf.strip(wrapped, do_copy=False, strip_format=nncf.StripFormat.IN_PLACE)
    weights = [module.weight for module in pruned.generator.modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    report = SparsityReport(mode, ratio, zeros / max(total, 1), weight_archive_bytes(pruned),
                            weight_archive_bytes(model))
    return pruned, report


def weight_archive_bytes(model: nn.Module) -> int:
    """Size of the model's fp16 safetensors after gzip (level 9): the download a sparse model saves on."""
    from safetensors.torch import save

    state = {key: (value.half() if value.is_floating_point() else value).detach().cpu().contiguous()
             for key, value in model.state_dict().items()}
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as archive:
        archive.write(save(state))
    return len(buffer.getvalue())



# ----------------------------------------------------------------------------------------------
# Least-squares reconstruction of the layers that read pruned channels


GeneratorInputs = tuple[torch.Tensor, torch.Tensor | None, object, object]  # source, depth, kp_source, kp_driving


@torch.no_grad()
def reconstruct_readers(pruned: TalkingHeadModel, original: TalkingHeadModel, plan: PruningPlan,
                        inputs: GeneratorInputs, max_rows: int = 20000, ridge: float = 1e-3, seed: int = 0) -> dict[str, float]:
    """Refit every convolution that reads pruned channels so its output matches the unpruned model's.

    Channel pruning with linear reconstruction (He et al., 2017): for each reader, in the order the
    generator runs them, its input in the pruned model X (im2col patches) and its output in the
    original model Y give W = argmin ‖X W − Y‖² + ridge ‖W‖² (closed form on `max_rows` sampled
    positions). Readers run later see the refitted earlier ones. Returns the relative residual
    ‖XW − Y‖ / ‖Y‖ per reader.
    """
    readers = _call_order(pruned, {reader for group in plan.groups for reader, _ in group.consumers}, inputs)
    generator = torch.Generator().manual_seed(seed)
    residuals = {}
    for reader in readers:
        patches = _capture(pruned, reader, inputs, want_input=True)
        target = _capture(original, reader, inputs, want_input=False)
        if reader in plan.kept:  # a reader that is pruned itself: only its kept outputs are fitted
            target = target[:, plan.kept[reader]]
        conv = pruned.get_submodule(reader)
        columns = nn.functional.unfold(patches, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
        a = columns.transpose(1, 2).reshape(-1, columns.shape[1])  # (positions, C_in·k·k)
        y = target.flatten(2).transpose(1, 2).reshape(-1, target.shape[1])  # (positions, C_out)
        if conv.bias is not None:
            y = y - conv.bias  # the bias is kept; the weights absorb the rest
        rows = torch.randperm(a.shape[0], generator=generator)[:max_rows]
        a, y = a[rows].double(), y[rows].double()
        gram = a.T @ a
        gram += ridge * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=gram.dtype)
        solution = torch.linalg.solve(gram, a.T @ y)  # (C_in·k·k, C_out)
        residuals[reader] = float((a @ solution - y).norm() / y.norm().clamp_min(1e-12))
        conv.weight.copy_(solution.T.reshape(conv.weight.shape).to(conv.weight.dtype))
    return residuals


def _call_order(model: TalkingHeadModel, names: set[str], inputs: GeneratorInputs) -> list[str]:
    order: list[str] = []
    handles = [model.get_submodule(name).register_forward_hook(lambda module, args, out, name=name: order.append(name))
               for name in sorted(names)]
    try:
        model.generator(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return list(dict.fromkeys(order))


def _capture(model: TalkingHeadModel, name: str, inputs: GeneratorInputs, want_input: bool) -> torch.Tensor:
    captured: list[torch.Tensor] = []

    def hook(module, args, output):
        captured.append(args[0] if want_input else output)

    handle = model.get_submodule(name).register_forward_hook(hook)
    try:
        model.generator(*inputs)
    finally:
        handle.remove()
    return captured[0]


@torch.no_grad()
def generator_inputs(model: TalkingHeadModel, sources: torch.Tensor, drivers: torch.Tensor) -> GeneratorInputs:
    """(source, source depth, source keypoints, driving keypoints) of image batches (N, 3, R, R)."""
    depth = model.estimate_depth(sources)
    return sources, depth, model.kp_detector(sources, depth), model.kp_detector(drivers, model.estimate_depth(drivers))


def load_any_model(name_or_path: str | Path) -> TalkingHeadModel:
    """`sdk.load_model` (a shipped name or a checkpoint folder), or a pruned model folder (`save_pruned`).

    Anything else raises the SDK's ModelLoadError / QuantizationError naming the path.
    """
    from sdk.checkpoint import load_model

    path = Path(name_or_path)
    if (path / PLAN_FILE).is_file():
        return load_pruned(path)
    return load_model(name_or_path)
