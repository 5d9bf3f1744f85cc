"""Counting multiply-accumulates of a forward pass, for the on-device budgets."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class _MacCounter(TorchFunctionMode):
    """Counts convolutions, linear layers and matrix products (the attention maps) as they run.

    Elementwise ops, pooling, softmax and grid_sample are left out: they are memory-bound and small
    next to the convolutions here.
    """

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in (F.conv2d, torch.conv2d):
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            # Each output element takes (C_in / groups) · kh · kw MACs.
            self.macs += out.numel() * weight[0].numel()
        elif func in (F.linear,):
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.macs += out.numel() * weight.shape[1]
        elif func in (torch.matmul, torch.bmm, torch.Tensor.__matmul__, torch.Tensor.matmul, torch.Tensor.bmm):
            self.macs += out.numel() * args[0].shape[-1]
        return out


def count_macs(fn: Callable[..., Any], inputs: tuple[Any, ...]) -> int:
    """MACs of one call `fn(*inputs)` (a module or any function of modules), under no_grad."""
    counter = _MacCounter()
    with torch.no_grad(), counter:
        fn(*inputs)
    return counter.macs


def count_params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(math.prod(p.shape) for p in module.parameters())
