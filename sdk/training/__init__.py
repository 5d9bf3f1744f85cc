"""Training: the self-supervised depth stage and the generator stage (`python -m sdk train ...`).

- `trainer`: `DepthTrainConfig` / `train_depth`, `GeneratorTrainConfig` / `train_generator`, `TrainResult`
- `losses`: every loss term and `LossWeights` / `DepthLossWeights`
- `cli`: `add_train_verb` for the `python -m sdk` parser

Names load lazily so that building the command-line parser does not import torch.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "DepthTrainConfig": "sdk.training.trainer",
    "GeneratorTrainConfig": "sdk.training.trainer",
    "TrainConfig": "sdk.training.trainer",
    "TrainResult": "sdk.training.trainer",
    "train_depth": "sdk.training.trainer",
    "train_generator": "sdk.training.trainer",
    "LossWeights": "sdk.training.losses",
    "DepthLossWeights": "sdk.training.losses",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sdk.training' has no attribute {name!r}")


__all__ = list(_LAZY)
