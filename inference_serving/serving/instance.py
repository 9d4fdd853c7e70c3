"""One instance of the cluster: a model replica with its scheduling policy, trace builder and NPUs.

An instance owns `tp * pp` consecutive NPUs of the engine from `first_npu` on: stage s is NPUs
first_npu + s*tp .. first_npu + s*tp + tp - 1. The serving loop (loop.py) keeps, per instance, what
each of its NPUs runs now and what waits for it, the batches in flight, and the iterations it has
timed (for computation reuse).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ..plan.builder import TraceBuilder
from ..plan.chakra import IterationGraph, build_graph
from .policy import SchedulingPolicy
from .request import Batch


@dataclass
class NpuQueue:
    """What one NPU runs now and what waits for it (later stages of queued batches)."""

    current: int | None = None
    queued: deque = field(default_factory=deque)

    @property
    def idle(self) -> bool:
        return self.current is None and not self.queued


@dataclass
class Instance:
    name: str
    scheduler: SchedulingPolicy
    builder: TraceBuilder
    tp: int
    pp: int
    first_npu: int = 0
    role: str = "colocated"  # colocated, prefill or decode (cluster/disaggregation.py)
    graph_builder: Callable[..., IterationGraph] = build_graph  # plan -> engine graph (plan/pim_graph.py)
    file_prefix: str = ""    # before `batch<id>` in the names of its per-iteration files
    measured_all_reduce: bool = False  # the engine times its TP group's all-reduces by a measured table
    queues: dict[int, NpuQueue] = field(init=False)
    batches: dict[int, Batch] = field(init=False, default_factory=dict)
    unfinished_npus: dict[int, set[int]] = field(init=False, default_factory=dict)
    graph_cache: dict[bytes, int] = field(init=False, default_factory=dict)
    digests: dict[int, bytes | None] = field(init=False, default_factory=dict)
    file_batches: set[int] = field(init=False, default_factory=set)  # batches sent as ET files (to delete)
    graph_hits: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.queues = {npu: NpuQueue() for npu in self.npus}

    @property
    def npus(self) -> range:
        return range(self.first_npu, self.first_npu + self.tp * self.pp)

    @property
    def kv(self):
        return self.scheduler.kv

    def first_stage_free(self) -> bool:
        return len(self.batches) < self.pp and all(self.queues[npu].idle for npu in self.npus[:self.tp])

    def outstanding(self) -> int:
        """Requests it holds: handed to it and not yet ended (the routers' load measure)."""
        s = self.scheduler
        return len(s.feed.arrived) + len(s.waiting) + len(s.running) + s.kv.swapped_requests()

    def batch_prefix(self, batch_id: int) -> str:
        return f"{self.file_prefix}batch{batch_id}"
