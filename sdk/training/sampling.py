"""Deterministic, resumable data order for step-based training.

Every training sample is a pure function of (seed, step, rank, position in the batch): which
dataset item it is (a seeded permutation per pass over the data) and the random draws inside the
item (frame choice, flips, colour jitter, made under a seeded fork of torch's generator). A run
resumed at step s therefore sees exactly the batches an uninterrupted run would, whatever the
number of DataLoader workers.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Dataset, Sampler

_SEED_MULTIPLIER = 1_000_003  # a prime: (seed, counter) pairs map to distinct seeds in practice


def derived_seed(seed: int, counter: int) -> int:
    """A 63-bit seed for draw number `counter` of a run seeded with `seed`."""
    return (seed * _SEED_MULTIPLIER + counter) % (2 ** 63)


class StepSampler(Sampler[tuple[int, int]]):
    """Infinite sampler yielding (dataset index, item seed) from `start_step` on.

    Rank r of a world of W processes takes, at step s, the global samples
    g = (s·W + r)·B + b for b < B; sample g is element g mod n of the permutation of pass g // n
    (n = dataset length), so ranks never overlap within a step and every pass covers the dataset.
    """

    def __init__(self, length: int, seed: int, batch_size: int, rank: int = 0, world_size: int = 1,
                 start_step: int = 0):
        if length <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.length = length
        self.seed = seed
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.start_step = start_step

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch))
        return torch.randperm(self.length, generator=generator)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = self.start_step
        epoch, permutation = -1, torch.empty(0, dtype=torch.long)
        while True:
            for position in range(self.batch_size):
                sample = (step * self.world_size + self.rank) * self.batch_size + position
                if sample // self.length != epoch:
                    epoch = sample // self.length
                    permutation = self._permutation(epoch)
                yield int(permutation[sample % self.length]), derived_seed(self.seed + 1, sample)
            step += 1


class SeededItems(Dataset):
    """Wraps a dataset whose items draw from torch's global generator: item (index, seed) is
    `dataset[index]` drawn under `torch.manual_seed(seed)` in a fork of the generator, leaving
    the caller's random state untouched."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]
