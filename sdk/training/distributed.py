"""Device choice and multi-process training with `torchrun` (DistributedDataParallel).

`torchrun --nproc_per_node N -m sdk train ...` starts N processes with RANK, LOCAL_RANK and
WORLD_SIZE set; `setup` then joins the process group (gloo on CPU, nccl on CUDA, one GPU per
process). Without those variables the run is a single process and nothing here communicates.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import SdkError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process runs: rank among world_size processes and its torch device."""
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) logs, writes samples and saves."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """"auto" | "cpu" | "cuda" -> a torch device (cuda:local_rank for cuda)."""
    if choice not in DEVICES:
        raise SdkError(f"unknown device {choice!r}; expected one of {', '.join(DEVICES)}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise SdkError("device 'cuda' was requested but no CUDA device is available (this torch build: "
                       f"{torch.__version__})")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise SdkError(f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                       "start at most one process per GPU")
    return torch.device("cuda", local_rank)


def setup(device_choice: str) -> DistributedContext:
    """Join the torchrun process group if there is one; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if world_size > 1:
        if rank != 0:
            logging.getLogger("sdk").setLevel(logging.WARNING)  # rank 0 speaks for the run
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        log.info("process %d of %d on %s", rank, world_size, device)
    return DistributedContext(rank, local_rank, world_size, device)


def teardown(ctx: DistributedContext) -> None:
    if ctx.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, ctx: DistributedContext) -> nn.Module:
    """DistributedDataParallel around `module` in a multi-process run, else `module` itself."""
    if not ctx.is_distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def gather(value: Any, ctx: DistributedContext) -> list[Any]:
    """Every rank's `value`, in rank order (a one-element list in a single process)."""
    if not ctx.is_distributed:
        return [value]
    values: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(values, value)
    return values


def barrier(ctx: DistributedContext) -> None:
    if ctx.is_distributed:
        dist.barrier()
