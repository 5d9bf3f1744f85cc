"""Training: the self-supervised depth stage and the generator stage (`python -m sdk train ...`).

- `trainer`: `train_depth`, `train_generator` (the shared loop)
- `config`: `DepthTrainConfig`, `GeneratorTrainConfig`, `TrainConfig`, `TrainResult`
- `objectives`, `stages`, `run`: the losses of one step, the two stages, the run's bookkeeping
- `losses`: every loss term and `LossWeights` / `DepthLossWeights`
- `cli`: `add_train_verb` for the `python -m sdk` parser

Names load lazily so that building the command-line parser does not import torch.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "DepthTrainConfig": "sdk.training.config",
    "GeneratorTrainConfig": "sdk.training.config",
    "TrainConfig": "sdk.training.config",
    "TrainResult": "sdk.training.config",
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
