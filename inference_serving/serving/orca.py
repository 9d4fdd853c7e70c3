"""Orca-style iteration-level batching (the paper's policy), with a host tier for evicted requests.

Each call to `schedule(now)` forms one batch from requests that are not already in flight (under
pipeline parallelism several batches are in flight at once, one per stage at most):
  1. running requests decode one token each, oldest first; when their KV blocks do not fit, the
     most recently admitted running request is evicted to host memory (it may be the request
     itself), as in the paper and vLLM;
  2. if nothing was evicted, evicted requests come back (oldest admission first) while they fit;
  3. if no request is left in host memory, arrived requests join first-come-first-served while
     their prompt's blocks fit; the prompt is processed whole in one iteration (initiation phase).
`max_batch` caps the requests of a batch. With `skip_prefill` (`--gen`) a new request arrives
with its prompt already in the KV cache and only generates, as does a request whose prompt's KV
a prefill instance computed (cluster/disaggregation.py).
"""
from __future__ import annotations

from collections import deque

from ..config.run_config import RunConfig
from ..inputs.model_config import ModelConfig
from ..inputs.workload import Request
from .arrivals import Inbox
from .kv.host_swap import HostSwapKV
from .kv.layout import MemoryLayout
from .policy import SchedulingPolicy
from .request import Batch, RequestState


class OrcaPolicy(SchedulingPolicy):
    """The paper's iteration-level batching: whole prompts, eviction of KV to host memory."""

    selective_attention = True
    default_block_size = 8
    supports_pipeline = True
    own_flags = ("max_batch", "gen")
    trust = ("the paper's policy: each request's attention on one rank, timed as batch-1 kernels; for reproducing "
             "the paper and comparing systems, not for the latency of a vLLM deployment")
    kv: HostSwapKV

    def __init__(self, feed: Inbox | list[Request], kv: HostSwapKV, max_batch: int = 0, skip_prefill: bool = False):
        super().__init__(feed, kv)
        self.max_batch = max_batch or len(self.feed.arrivals.requests) or 1
        self.skip_prefill = skip_prefill

    @classmethod
    def build(cls, feed: Inbox, model: ModelConfig, layout: MemoryLayout, config: RunConfig) -> "OrcaPolicy":
        return cls(feed, HostSwapKV(layout), config.max_batch, skip_prefill=config.gen)

    def _fill(self, batch: Batch, now: int) -> None:
        evicted_any = self._schedule_running(batch)
        if not evicted_any:
            self._schedule_swapped(batch)
        if not self.kv.swapped_requests():
            self._schedule_waiting(batch, now)

    def _schedule_running(self, batch: Batch) -> bool:
        busy = {state for issued in self.in_flight.values() for state in issued.states}  # in a pipeline stage
        queue = deque(s for s in self.running if s not in busy) if busy else deque(self.running)
        kv, block_size, entries = self.kv, self.kv.layout.block_size, batch.entries
        evicted_any = False
        while queue and len(entries) < self.max_batch:
            state = queue.popleft()
            if state.cached % block_size:  # the next token fits the last block
                batch.add(state, 1)
                continue
            while not kv.can_allocate(state.request, state.cached + 1):
                victim = queue.pop() if queue else state
                self._evict(batch, victim)
                evicted_any = True
                if victim is state:
                    break
            else:
                kv.allocate(state.request, state.cached + 1)
                batch.add(state, 1)
        return evicted_any

    def _evict(self, batch: Batch, state: RequestState) -> None:
        batch.evict_bytes += self.kv.swap_out(state.id)
        batch.evicted.append(state.id)
        self.running.remove(state)

    def _schedule_swapped(self, batch: Batch) -> None:
        """Evicted requests (their blocks are in the KV manager's host tier) come back, oldest admission first."""
        swapped = sorted((self.by_id[i] for i in self.kv.swapped_ids()), key=lambda s: s.admission)
        for state in swapped:
            if len(batch.entries) >= self.max_batch:
                return
            held = self.kv.swapped_blocks(state.id)
            growth = max(0, self.kv.blocks_for(state.cached + 1) - held)
            if held + growth > self.kv.free_blocks:
                return
            batch.load_bytes += self.kv.swap_in(state.id)
            batch.reloaded.append(state.id)
            self.kv.allocate(state.request, state.cached + 1)
            self.running.append(state)
            batch.add(state, 1)

    def _schedule_waiting(self, batch: Batch, now: int) -> None:
        while self.waiting and len(batch.entries) < self.max_batch:
            state = self.waiting[0]
            prompt = state.request.input_tokens
            computed = self.skip_prefill or state.cached >= prompt  # cached: KV received (disaggregation)
            tokens = prompt + 1 if computed else prompt
            if not self.kv.can_allocate(state.request, tokens):
                return
            self.waiting.popleft()
            self.kv.allocate(state.request, tokens)
            self._admit(state, now)
            if computed:
                state.cached = prompt
                batch.add(state, 1)
            else:
                batch.add(state, prompt)
