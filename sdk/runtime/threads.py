"""Thread budgets: how many threads each per-frame stage may use, so that stages running at once fit the cores.

A live session computes on two threads at the same time: the sender (face mesh, then the
keypoint encoder, one after the other) and the generator. Left to their defaults, ONNX Runtime,
torch and OpenCV each start one thread per core, and their idle threads spin; two such stages
on two cores fight for them and each runs several times slower than alone. A `ThreadBudget`
says how many intra-op threads each graph gets; backends apply it per graph (ORT session
options, LiteRT interpreters, torch via `torch_threads` around each stage call).

torch's intra-op thread count is per calling thread under OpenMP, so `torch_threads` on the
sender thread does not change the generator thread's count.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

# A 128²-internal generator has too little work per op to share among many threads; past this
# the other stages and other programs get the cores (a design choice, not measured on this
# 2-core machine).
MAX_GENERATOR_THREADS = 4
# The keypoint encoder is small; a second thread pays off only where cores are plentiful.
ENCODER_SECOND_THREAD_FROM = 8


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under taskset or a container limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows: no affinity API
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadBudget:
    """Intra-op threads per stage.

    encoder: the keypoint encoder graph (the sender's per-frame network).
    generator: the generator graph and the source encoder (the receiver's).
    opencv: OpenCV's pool (crops, resizes, colour conversion), process-wide (`cv2.setNumThreads`).
    cores: the cores the budget was made for (`available_cores()`), recorded for stats.

    Not in the budget: MediaPipe runs the face mesh on its own graph threads, which its Python
    API does not let us size; the sender thread waits for each mesh result, so the mesh and the
    keypoint encoder never run at the same time.
    """

    encoder: int = 1
    generator: int = 1
    opencv: int = 1
    cores: int = field(default_factory=available_cores)

    def __post_init__(self) -> None:
        for name in ("encoder", "generator", "opencv", "cores"):
            if getattr(self, name) < 1:
                raise ValueError(f"ThreadBudget.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def auto(cls, cores: int | None = None) -> ThreadBudget:
        """The budget for `cores` (default: `available_cores()`).

        The sender and the generator run at once, and capture, MediaPipe's graph threads and the
        outputs need CPU too. So: the encoder gets 1 thread (2 from 8 cores); the generator gets
        what is left after one core for the sender and one for everything else, at least 1 and
        at most `MAX_GENERATOR_THREADS`; OpenCV 1. On 2 cores: 1, 1, 1 (each stage its own core).
        """
        cores = available_cores() if cores is None else cores
        if cores < 1:
            raise ValueError(f"cores must be >= 1, got {cores}")
        encoder = 2 if cores >= ENCODER_SECOND_THREAD_FROM else 1
        generator = max(1, min(MAX_GENERATOR_THREADS, cores - 2))
        return cls(encoder=encoder, generator=generator, opencv=1, cores=cores)

    @classmethod
    def uniform(cls, threads: int) -> ThreadBudget:
        """`threads` intra-op threads for every graph (what a plain `threads=N` means); OpenCV 1."""
        return cls(encoder=threads, generator=threads)

    def for_graph(self, graph: str) -> int:
        """The intra-op threads of one of `sdk.runtime.graphs.GRAPH_NAMES`."""
        return self.encoder if graph == "keypoint_encoder" else self.generator

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


Threads = int | ThreadBudget | None  # what backends take: N for every graph, a budget, or the runtime's default


def graph_threads(threads: Threads, graph: str) -> int | None:
    """The intra-op threads `threads` gives `graph` (None: leave the runtime's default)."""
    if threads is None or isinstance(threads, int):
        return threads
    return threads.for_graph(graph)


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` torch intra-op threads on the calling thread (None: unchanged),
    then restore the thread's previous count."""
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    if previous != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if previous != count:
            torch.set_num_threads(previous)
