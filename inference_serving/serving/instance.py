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

from ..errors import EngineError
from ..plan.builder import TraceBuilder
from ..plan.chain import GroupChain
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
    # iteration times by graph digest and by plan (chain.plan_key), of iterations alone on the instance
    graph_cache: dict[bytes | tuple, int] = field(init=False, default_factory=dict)
    cache_keys: dict[int, list] = field(init=False, default_factory=dict)  # per batch in flight, its keys there
    file_batches: set[int] = field(init=False, default_factory=set)  # batches sent as ET files (to delete)
    graph_hits: int = field(init=False, default=0)
    # per batch in flight, whether the engine folded each stage offered for folding (None: not answered yet)
    stage_folds: dict[int, dict[int, bool | None]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.queues = {npu: NpuQueue() for npu in self.npus}
        self._first_stage = [self.queues[npu] for npu in self.npus[:self.tp]]

    @property
    def npus(self) -> range:
        return range(self.first_npu, self.first_npu + self.tp * self.pp)

    @property
    def kv(self):
        return self.scheduler.kv

    def first_stage_free(self) -> bool:
        return len(self.batches) < self.pp and all(queue.idle for queue in self._first_stage)

    def outstanding(self) -> int:
        """Requests it holds: handed to it and not yet ended (the routers' load measure)."""
        s = self.scheduler
        return len(s.feed.arrived) + len(s.waiting) + len(s.running) + s.kv.swapped_requests()

    def by_stage(self, npus: list[int]) -> list[tuple[int, list[int]]]:
        """`npus` (ascending) grouped by pipeline stage: (stage, its NPUs among them)."""
        stages: dict[int, list[int]] = {}
        for npu in npus:
            stages.setdefault((npu - self.first_npu) // self.tp, []).append(npu)
        return list(stages.items())

    def fold_answer(self, batch_id: int, stage: int, group: GroupChain):
        """The callback that records whether the engine folded the batch's stage (a group chain that is not
        every rank's own is exact only folded: loop.py offers it only where the fold is certain)."""
        folds = self.stage_folds.setdefault(batch_id, {})
        folds[stage] = None

        def answer(folded: bool) -> None:
            if not folded and not group.own:
                raise EngineError(f"internal: the engine did not fold stage {stage} of {self.name}'s batch "
                                  f"{batch_id}, whose ranks differ")
            folds[stage] = folded
        return answer

    def batch_prefix(self, batch_id: int) -> str:
        return f"{self.file_prefix}batch{batch_id}"
