"""The serving loop: scheduler -> trace -> graph -> engine -> clock, one iteration at a time.

The engine runs every NPU's graph; the tick at which an iteration's last NPU finishes becomes
the scheduler's clock. Under pipeline parallelism (`npu_group` stages of `npu_num/npu_group`
NPUs) up to one batch per stage is in flight: as soon as the first stage is free a new batch
enters it, and each later stage takes its part of a batch when it has finished the previous one.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..backend.base import BACKENDS, EngineSetup
from ..backend.engine_config import SystemConfig, write_configs
from ..errors import EngineError, InputError
from ..plan.builder import TraceBuilder
from ..plan import chain
from ..plan.chakra import IterationGraph, build_graph
from ..plan.text_trace import write_trace
from ..report.metrics import Metrics
from .policy import SchedulingPolicy
from .request import Batch


def _scratch_root() -> str | None:
    """A memory-backed folder for the per-iteration files where there is one."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@dataclass
class RunOptions:
    tp: int
    pp: int
    system: SystemConfig
    engine_binary: Path
    backend: str = "step"
    engine_timeout_s: float = 120.0
    keep_traces: Path | None = None
    reuse: bool = True
    verbose: bool = False
    span_file: Path | None = None  # the engine appends every node's start/end here (--chrome-trace)
    graph_builder: Callable[..., IterationGraph] = build_graph  # plan -> engine graph (plan/pim_graph.py)


@dataclass
class NpuQueue:
    """What one NPU runs now and what waits for it (later stages of queued batches)."""

    current: int | None = None
    queued: deque = field(default_factory=deque)

    @property
    def idle(self) -> bool:
        return self.current is None and not self.queued


class Simulation:
    def __init__(self, scheduler: SchedulingPolicy, builder: TraceBuilder, options: RunOptions,
                 metrics: Metrics, log=print) -> None:
        self.scheduler, self.builder, self.kv, self.opt = scheduler, builder, scheduler.kv, options
        self.metrics, self.log = metrics, log
        self.npus = options.tp * options.pp
        self.queues = [NpuQueue() for _ in range(self.npus)]
        self.batches: dict[int, Batch] = {}
        self.unfinished_npus: dict[int, set[int]] = {}
        self.graph_cache: dict[bytes, int] = {}
        self.digests: dict[int, bytes | None] = {}
        self.graph_hits = 0
        self.engine_behind = False
        self.now = 0

    # -- setup and teardown -------------------------------------------------------------
    def run(self) -> None:
        """Runs in a private temporary folder, or straight in the --keep-traces folder, which stays."""
        if self.opt.keep_traces:
            self.workdir = self.opt.keep_traces
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="llmservingsim-", dir=_scratch_root()))
        try:
            setup = EngineSetup(self.opt.engine_binary, write_configs(self.opt.system, self.workdir), self.workdir,
                                self.opt.engine_timeout_s, self.npus, self.opt.span_file)
            self.engine = BACKENDS.get(self.opt.backend)(setup)
            try:
                self._loop()
                self.engine.close()
            except BaseException:
                self.engine.kill()
                raise
            self._check_memory_released()
        finally:
            if not self.opt.keep_traces:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _check_memory_released(self) -> None:
        if self.kv.used_blocks or self.kv.swapped_requests() or \
                self.kv.device_bytes_in_use() != self.kv.layout.weight_bytes:
            raise EngineError(f"internal: {self.kv.used_blocks} KV blocks still allocated after the run")

    # -- the loop ------------------------------------------------------------------------
    def _loop(self) -> None:
        while self.scheduler.unfinished:
            if self._first_stage_free() and self._launch_next():
                continue
            if not self.batches:
                self._wait_for_arrival()
                continue
            limit = self.scheduler.next_arrival() if self._first_stage_free() else None
            event = self.engine.step(limit)
            self.now = max(self.now, event.tick)
            if event.kind == "done":
                self._finished(event.npus)
        for line in self.metrics.flush_throughput():
            self.log(line)

    def _first_stage_free(self) -> bool:
        return len(self.batches) < self.opt.pp and all(self.queues[n].idle for n in range(self.opt.tp))

    def _wait_for_arrival(self) -> None:
        arrival = self.scheduler.next_arrival()
        if arrival is None:
            stuck = [s.id for s in self.scheduler.states if not s.done]
            raise InputError(f"requests {stuck[:10]} can never be scheduled (KV cache too small for them); "
                                  f"raise --npu_mem or use more NPUs")
        self.now = max(self.now, arrival)
        self._sync_engine_clock()

    def _sync_engine_clock(self) -> None:
        self.engine.advance(self.now)
        self.engine_behind = False

    def _launch_next(self) -> bool:
        batch = self.scheduler.schedule(self.now)
        if batch is None:
            return False
        trace = batch.plan = self.builder.build(batch.entries, batch.evict_bytes, batch.load_bytes, batch.tier_moves)
        if self._on_pipe(trace):
            graph = chain.build_graph(trace, merge=self.opt.reuse)
        else:
            graph = self.opt.graph_builder(trace, merge=self.opt.reuse)
        self.metrics.batch_started(batch, self.now)
        self._log_batch_start(batch)
        digest = graph.digest if self._graph_reuse_possible() else None
        if digest in self.graph_cache:
            self._reuse_graph(digest, batch)
            return True
        if self.engine_behind:
            self._sync_engine_clock()
        if isinstance(graph, IterationGraph):
            graph.write(self.workdir / f"batch{batch.id}")
        if self.opt.keep_traces:
            write_trace(trace, self.workdir / f"batch{batch.id}.txt")
        self.batches[batch.id] = batch
        self.digests[batch.id] = digest
        self.unfinished_npus[batch.id] = set(range(self.npus))
        ready = []
        for npu in range(self.npus):
            queue = self.queues[npu]
            if queue.idle:
                queue.current = batch.id
                ready.append(npu)
            else:
                queue.queued.append((batch.id, graph))
        self._start(batch.id, graph, ready)
        return True

    def _on_pipe(self, trace) -> bool:
        """Whether the iteration's chains go to the engine on the pipe (plan/chain.py), else as ET files
        (chakra.py, or the run's own graph builder): files with --keep-traces, engines
        without `chain`, and plans the chain command cannot spell."""
        return (not self.opt.keep_traces and self.engine.supports_chain
                and self.opt.graph_builder is build_graph and chain.supports(trace))

    def _start(self, batch_id: int, graph, npus: list[int]) -> None:
        """Starts the batch's chains on these idle NPUs; a whole foldable group is offered for folding."""
        if isinstance(graph, IterationGraph):
            self.engine.load(self.workdir / f"batch{batch_id}", npus)
            return
        fold = self.opt.reuse and graph.foldable and len(npus) == self.npus
        for group, chain in graph.shared(npus):
            self.engine.chain(graph.listing(chain), group, fold)

    def _graph_reuse_possible(self) -> bool:
        """An iteration identical to an earlier one, alone on an idle cluster, takes the same time."""
        return (self.opt.reuse and self.engine.supports_reuse and self.opt.pp == 1 and not self.batches
                and self.opt.span_file is None)  # a reused iteration has no engine spans

    def _reuse_graph(self, digest: str, batch: Batch) -> None:
        self.graph_hits += 1
        self.engine_behind = True
        self.now += self.graph_cache[digest]
        self._complete(batch)

    def _finished(self, npus: tuple[int, ...]) -> None:
        completed = []
        for npu in npus:
            batch_id = self.queues[npu].current
            self.queues[npu].current = None
            remaining = self.unfinished_npus[batch_id]
            remaining.discard(npu)
            if not remaining:
                completed.append(batch_id)
        for batch_id in completed:
            del self.unfinished_npus[batch_id]
            batch = self.batches.pop(batch_id)
            digest = self.digests.pop(batch_id)
            if digest is not None:
                self.graph_cache[digest] = self.now - batch.start_ns
            self._complete(batch)
            if not self.opt.keep_traces:
                for npu in range(self.npus):
                    (self.workdir / f"batch{batch_id}.{npu}.et").unlink(missing_ok=True)
        self._start_queued(npus)

    def _start_queued(self, npus: tuple[int, ...]) -> None:
        by_batch: dict[int, tuple[object, list[int]]] = {}
        for npu in npus:
            queue = self.queues[npu]
            if queue.current is None and queue.queued:
                batch_id, graph = queue.queued.popleft()
                queue.current = batch_id
                by_batch.setdefault(batch_id, (graph, []))[1].append(npu)
        for batch_id, (graph, ready) in by_batch.items():
            self._start(batch_id, graph, ready)

    def _complete(self, batch: Batch) -> None:
        finished = self.scheduler.complete(batch, self.now)
        interval_lines = self.metrics.batch_finished(batch, finished, self.now)
        for line in interval_lines:
            self.log(line)
        self.log(f"[{self.now / 1e9:.6f} s] iteration {batch.id} done in {self.now - batch.start_ns} ns: "
                 f"{batch.describe()}" + (f", finished {[s.id for s in finished]}" if finished else ""))

    def _log_batch_start(self, batch: Batch) -> None:
        if not self.opt.verbose:
            return
        if batch.evicted:
            self.log(f"[{self.now / 1e9:.6f} s] evict requests {batch.evicted} to host memory: "
                     f"{batch.evict_bytes} B per NPU (MEM_STORE)")
        if batch.preempted:
            self.log(f"[{self.now / 1e9:.6f} s] preempt requests {batch.preempted}: KV freed, to be recomputed")
        if batch.reloaded:
            self.log(f"[{self.now / 1e9:.6f} s] reload requests {batch.reloaded} from host memory: "
                     f"{batch.load_bytes} B per NPU (MEM_LOAD)")
        for move in batch.tier_moves:
            self.log(f"[{self.now / 1e9:.6f} s] KV blocks {'from' if move.load else 'to'} memory tier {move.name}: "
                     f"{move.nbytes} B per NPU ({'MEM_LOAD' if move.load else 'MEM_STORE'})")
        self.log(f"[{self.now / 1e9:.6f} s] KV cache: {self.kv.used_blocks}/{self.kv.total_blocks} blocks in use, "
                 f"{self.kv.device_bytes_in_use()} B per NPU")
