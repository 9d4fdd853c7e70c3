"""The serving loop: scheduler -> trace -> graph -> engine -> clock, one iteration at a time.

One engine runs every NPU of the cluster: each instance (instance.py) its own NPUs, and the KV
transfers of a disaggregated cluster on their own ports (cluster/disaggregation.py). The tick at
which an iteration's last NPU finishes becomes its instance's clock. Under pipeline parallelism
(`pp` stages of `tp` NPUs) up to one batch per stage of an instance is in flight: as soon as the
first stage is free a new batch enters it, and each later stage takes its part of a batch when it
has finished the previous one. Requests reach the instances through the run's arrivals
(arrivals.py); with several instances they are routed at the tick they arrive.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..backend.base import BACKENDS, EngineSetup
from ..backend.engine_config import SystemConfig, write_configs
from ..errors import EngineError, InputError
from ..plan import chain
from ..plan.chakra import IterationGraph, build_graph
from ..plan.chain import GroupChain
from ..plan.text_trace import write_trace
from ..report.metrics import Metrics
from .arrivals import Arrivals
from .instance import Instance
from .request import Batch
from .step_group import StepGroup


def _scratch_root() -> str | None:
    """A memory-backed folder for the per-iteration files where there is one."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@dataclass
class RunOptions:
    system: SystemConfig
    engine_binary: Path
    backend: str = "step"
    engine_timeout_s: float = 120.0
    engine_spin_us: int = 0
    keep_traces: Path | None = None
    reuse: bool = True
    verbose: bool = False
    span_file: Path | None = None  # the engine appends every node's start/end here (--chrome-trace)


class Simulation:
    def __init__(self, groups: list[StepGroup], arrivals: Arrivals, options: RunOptions, metrics: Metrics,
                 log=print, transfers=None) -> None:
        self.groups, self.arrivals, self.opt = groups, arrivals, options
        self.instances = [rank for group in groups for rank in group.ranks]
        instances = self.instances
        self.metrics, self.log = metrics, log
        self.transfers = transfers  # the KV transfers of a disaggregated cluster (cluster/disaggregation.py)
        self.owner = {npu: instance for instance in instances for npu in instance.npus}
        self.npus = options.system.npus
        self.routed = len(instances) > 1  # requests are routed at the tick they arrive
        self.engine_behind = False
        self.now = 0

    @property
    def graph_hits(self) -> int:
        return sum(instance.graph_hits for instance in self.instances)

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
                                self.opt.engine_timeout_s, self.npus, self.opt.span_file, self.opt.engine_spin_us,
                                collapse=self.opt.reuse)
            self.engine = BACKENDS.get(self.opt.backend)(setup)
            try:
                self._loop()
                self.engine.close()
            except BaseException:
                self.engine.kill()
                raise
            for instance in self.instances:
                _check_memory_released(instance)
        finally:
            if not self.opt.keep_traces:
                shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the loop ------------------------------------------------------------------------
    def _loop(self) -> None:
        while self.arrivals.unfinished:
            if self.routed:
                self.arrivals.route(self.now)
            if self._launch_any():
                continue
            if not self._in_flight():
                self._wait_for_arrival()
                continue
            wake = self.routed or any(instance.first_stage_free() for instance in self.instances)
            event = self.engine.step(self.arrivals.next_arrival() if wake else None)
            self.now = max(self.now, event.tick)
            if event.kind == "done":
                self._finished(event.npus)
        for line in self.metrics.flush_throughput():
            self.log(line)

    def _launch_any(self) -> bool:
        """Starts the next step of every group of instances whose first stages are free and that has one."""
        launched = False
        for group in self.groups:
            batches = group.schedule(self.now) if group.free() else None
            for rank, batch in zip(group.ranks, batches or ()):
                self._launch(rank, batch)
            launched = launched or batches is not None
        return launched

    def _in_flight(self) -> bool:
        return any(instance.batches for instance in self.instances) or bool(self.transfers and self.transfers.busy)

    def _wait_for_arrival(self) -> None:
        arrival = self.arrivals.next_arrival()
        if arrival is None:
            stuck = [s.id for s in self.arrivals.states if not s.done]
            raise InputError(f"requests {stuck[:10]} can never be scheduled (KV cache too small for them); "
                             f"raise --npu_mem or use more NPUs")
        self.now = max(self.now, arrival)
        self._sync_engine_clock()

    def _sync_engine_clock(self) -> None:
        self.engine.advance(self.now)
        self.engine_behind = False

    def _launch(self, instance: Instance, batch: Batch) -> None:
        trace = batch.plan = instance.builder.build(batch.entries, batch.evict_bytes, batch.load_bytes,
                                                    batch.tier_moves)
        on_pipe = self._on_pipe(instance, trace)
        self.metrics.batch_started(batch, self.now)
        self._log_batch_start(instance, batch)
        reusable = self._graph_reuse_possible(instance)
        # an iteration alone on the instance is timed by its plan, else by its graph (equal plans: equal graphs)
        keys = [chain.plan_key(trace)] if reusable and on_pipe else []
        if keys and keys[0] in instance.graph_cache:
            self._reuse_graph(instance, keys, batch)
            return
        if on_pipe:
            graph = chain.build_graph(trace, merge=self.opt.reuse, first_npu=instance.first_npu,
                                      measured_all_reduce=instance.measured_all_reduce and self.opt.span_file is None)
        else:
            graph = instance.graph_builder(trace, merge=self.opt.reuse, first_npu=instance.first_npu)
        if reusable:
            keys.append(graph.digest)
            if keys[-1] in instance.graph_cache:
                self._reuse_graph(instance, keys, batch)
                return
        if self.engine_behind:
            self._sync_engine_clock()
        if isinstance(graph, IterationGraph):
            graph.write(self.workdir / instance.batch_prefix(batch.id))
            instance.file_batches.add(batch.id)
        if self.opt.keep_traces:
            write_trace(trace, self.workdir / f"{instance.batch_prefix(batch.id)}.txt")
        instance.batches[batch.id] = batch
        instance.cache_keys[batch.id] = keys
        instance.unfinished_npus[batch.id] = set(instance.npus)
        ready = []
        for npu in instance.npus:
            queue = instance.queues[npu]
            if queue.idle:
                queue.current = batch.id
                ready.append(npu)
            else:
                queue.queued.append((batch.id, graph))
        self._start(instance, batch.id, graph, ready)

    def _on_pipe(self, instance: Instance, trace) -> bool:
        """Whether the iteration's chains go to the engine on the pipe (plan/chain.py), else as ET files
        (chakra.py, or the instance's own graph builder): files with --keep-traces, engines
        without `chain`, and plans the chain command cannot spell."""
        return (not self.opt.keep_traces and self.engine.supports_chain
                and instance.graph_builder is build_graph and chain.supports(trace))

    def _start(self, instance: Instance, batch_id: int, graph, npus: list[int]) -> None:
        """Starts the batch's chains on these idle NPUs, stage by stage; a whole stage's group is offered
        for folding where its graph has a group chain and its senders folded (_fold_offer)."""
        if isinstance(graph, IterationGraph):
            self.engine.load(self.workdir / instance.batch_prefix(batch_id), npus)
            return
        previous = None  # the group chain offered for the stage before, in this call
        for stage, stage_npus in instance.by_stage(npus):
            group = graph.stage_groups[stage] if self.opt.reuse and len(stage_npus) == instance.tp else None
            offer = group is not None and self._fold_offer(instance, batch_id, stage, group, previous)
            previous = group if offer else None
            if offer:
                self.engine.chain(graph.listing(group.chain), stage_npus, instance.fold_answer(batch_id, stage, group),
                                  after=offer == "after")
                continue
            for shared, chain_ in graph.shared(stage, stage_npus):
                self.engine.chain(graph.listing(chain_), shared)

    def _fold_offer(self, instance: Instance, batch_id: int, stage: int, group: GroupChain,
                    previous: GroupChain | None) -> bool | str:
        """Whether the stage's group chain is offered for folding: "after" where the stage before was just
        offered (the engine folds it only if that one folded). A folded group's receives are exact only
        from senders folded alike (astra-sim/README.md, `chain ... fold`); a chain that is not every rank's
        own (slowest_ranks) must fold, so it follows only a stage whose fold is certain (such a chain: its
        collectives are all-reduces of the measured table) or one the engine said it folded."""
        if stage == 0:
            return True
        if previous is not None and (group.own or not previous.own):
            return "after"
        folds = instance.stage_folds.get(batch_id, {})
        if stage - 1 in folds and folds[stage - 1] is None:
            self.engine.settle()  # its answer is still on the way
        return bool(folds.get(stage - 1))

    def _graph_reuse_possible(self, instance: Instance) -> bool:
        """An iteration identical to an earlier one, alone on an idle cluster, takes the same time (so
        only a cluster of one instance skips the engine)."""
        return (self.opt.reuse and self.engine.supports_reuse and instance.pp == 1 and not instance.batches
                and not self.routed and self.transfers is None
                and self.opt.span_file is None)  # a reused iteration has no engine spans

    def _reuse_graph(self, instance: Instance, keys: list, batch: Batch) -> None:
        """The iteration takes the time its last key found (its plan, where that was found first, keeps it too)."""
        instance.graph_hits += 1
        self.engine_behind = True
        duration = instance.graph_cache[keys[-1]]
        instance.graph_cache[keys[0]] = duration
        self.now += duration
        self._complete(instance, batch)

    def _finished(self, npus: tuple[int, ...]) -> None:
        by_owner: dict[int, tuple[Instance, list[int]]] = {}
        ports = []
        for npu in npus:
            instance = self.owner.get(npu)
            if instance is None:
                ports.append(npu)
            else:
                by_owner.setdefault(id(instance), (instance, []))[1].append(npu)
        if ports:
            self.transfers.done(self.engine, ports, self.now)
        for instance, done in by_owner.values():
            self._instance_finished(instance, done)

    def _instance_finished(self, instance: Instance, npus: list[int]) -> None:
        completed = []
        for npu in npus:
            batch_id = instance.queues[npu].current
            instance.queues[npu].current = None
            remaining = instance.unfinished_npus[batch_id]
            remaining.discard(npu)
            if not remaining:
                completed.append(batch_id)
        for batch_id in completed:
            del instance.unfinished_npus[batch_id]
            instance.stage_folds.pop(batch_id, None)
            batch = instance.batches.pop(batch_id)
            for key in instance.cache_keys.pop(batch_id):
                instance.graph_cache[key] = self.now - batch.start_ns
            self._complete(instance, batch)
            if batch_id in instance.file_batches:
                instance.file_batches.discard(batch_id)
                if not self.opt.keep_traces:
                    for npu in instance.npus:
                        (self.workdir / f"{instance.batch_prefix(batch_id)}.{npu}.et").unlink(missing_ok=True)
        self._start_queued(instance, npus)

    def _start_queued(self, instance: Instance, npus: list[int]) -> None:
        by_batch: dict[int, tuple[object, list[int]]] = {}
        for npu in npus:
            queue = instance.queues[npu]
            if queue.current is None and queue.queued:
                batch_id, graph = queue.queued.popleft()
                queue.current = batch_id
                by_batch.setdefault(batch_id, (graph, []))[1].append(npu)
        for batch_id, (graph, ready) in by_batch.items():
            self._start(instance, batch_id, graph, ready)

    def _complete(self, instance: Instance, batch: Batch) -> None:
        finished = instance.scheduler.complete(batch, self.now)
        ended = instance.scheduler.feed.ended(finished)
        for line in self.metrics.batch_finished(batch, ended, self.now, instance):
            self.log(line)
        where = f"{instance.name}: " if self.routed else ""
        done = "prefilled" if instance.role == "prefill" else "finished"
        self.log(f"[{self.now / 1e9:.6f} s] {where}iteration {batch.id} done in {self.now - batch.start_ns} ns: "
                 f"{batch.describe()}" + (f", {done} {[s.id for s in finished]}" if finished else ""))
        if self.transfers is not None:
            self.transfers.start_due(self.engine, self.now)

    def _log_batch_start(self, instance: Instance, batch: Batch) -> None:
        if not self.opt.verbose:
            return
        at = f"[{self.now / 1e9:.6f} s] " + (f"{instance.name}: " if self.routed else "")
        if batch.evicted:
            self.log(f"{at}evict requests {batch.evicted} to host memory: "
                     f"{batch.evict_bytes} B per NPU (MEM_STORE)")
        if batch.preempted:
            self.log(f"{at}preempt requests {batch.preempted}: KV freed, to be recomputed")
        if batch.reloaded:
            self.log(f"{at}reload requests {batch.reloaded} from host memory: "
                     f"{batch.load_bytes} B per NPU (MEM_LOAD)")
        for move in batch.tier_moves:
            self.log(f"{at}KV blocks {'from' if move.load else 'to'} memory tier {move.name}: "
                     f"{move.nbytes} B per NPU ({'MEM_LOAD' if move.load else 'MEM_STORE'})")
        kv = instance.kv
        self.log(f"{at}KV cache: {kv.used_blocks}/{kv.total_blocks} blocks in use, "
                 f"{kv.device_bytes_in_use()} B per NPU")


def _check_memory_released(instance: Instance) -> None:
    kv = instance.kv
    if kv.used_blocks or kv.swapped_requests() or kv.device_bytes_in_use() != kv.layout.weight_bytes:
        raise EngineError(f"internal: {kv.used_blocks} KV blocks still allocated after the run")
