"""Scheduler: which requests run in the next iteration (Orca-style iteration-level batching).

Each call to `schedule(now)` forms one batch from requests that are not already in flight (under
pipeline parallelism several batches are in flight at once, one per stage at most):
  1. running requests decode one token each, oldest first; when their KV blocks do not fit, the
     most recently admitted running request is evicted to host memory (it may be the request
     itself), as in the paper and vLLM;
  2. if nothing was evicted, evicted requests come back (oldest admission first) while they fit;
  3. if no request is left in host memory, arrived requests join first-come-first-served while
     their prompt's blocks fit; the prompt is processed whole in one iteration (initiation phase).
`max_batch` caps the requests of a batch. With `skip_prefill` (`--gen`) a new request arrives
with its prompt already in the KV cache and only generates.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .memory import KVCache
from .trace import BatchEntry
from .workload import Request


@dataclass
class RequestState:
    request: Request
    cached: int = 0
    generated: int = 0
    admitted_ns: int | None = None
    first_token_ns: int | None = None
    end_ns: int | None = None
    admission: int = -1
    in_flight: bool = False

    @property
    def id(self) -> int:
        return self.request.id

    @property
    def done(self) -> bool:
        return self.end_ns is not None


@dataclass
class Batch:
    id: int
    entries: list[BatchEntry]
    states: list[RequestState]
    evict_bytes: int = 0
    load_bytes: int = 0
    evicted: list[int] = field(default_factory=list)
    reloaded: list[int] = field(default_factory=list)
    start_ns: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens processed: the new tokens of requests in their initiation phase."""
        return sum(e.new_tokens for e in self.entries if e.cached_tokens == 0)

    def describe(self) -> str:
        prefill = [s.id for s, e in zip(self.states, self.entries) if e.cached_tokens == 0]
        decode = [s.id for s, e in zip(self.states, self.entries) if e.cached_tokens > 0]
        return f"prefill {prefill} decode {decode}"


class OrcaScheduler:
    def __init__(self, requests: list[Request], kv: KVCache, max_batch: int = 0, skip_prefill: bool = False):
        self.states = [RequestState(r) for r in requests]
        self.pending = deque(sorted(self.states, key=lambda s: (s.request.arrival_ns, s.id)))
        self.waiting: deque[RequestState] = deque()
        self.running: list[RequestState] = []
        self.swapped: list[RequestState] = []
        self.kv = kv
        self.max_batch = max_batch or len(requests) or 1
        self.skip_prefill = skip_prefill
        self.admissions = 0
        self.batches = 0
        self.unfinished = len(requests)

    def next_arrival(self) -> int | None:
        return self.pending[0].request.arrival_ns if self.pending else None

    def _arrive(self, now: int) -> None:
        while self.pending and self.pending[0].request.arrival_ns <= now:
            self.waiting.append(self.pending.popleft())

    def schedule(self, now: int) -> Batch | None:
        self._arrive(now)
        batch = Batch(self.batches, [], [], start_ns=now)
        evicted_any = self._schedule_running(batch)
        if not evicted_any:
            self._schedule_swapped(batch)
        if not self.swapped:
            self._schedule_waiting(batch, now)
        if not batch.entries:
            return None
        self.batches += 1
        for state in batch.states:
            state.in_flight = True
        return batch

    def _add(self, batch: Batch, state: RequestState, new_tokens: int) -> None:
        batch.entries.append(BatchEntry(state.id, new_tokens, state.cached))
        batch.states.append(state)

    def _schedule_running(self, batch: Batch) -> bool:
        queue = deque(s for s in self.running if not s.in_flight)
        evicted_any = False
        while queue and len(batch.entries) < self.max_batch:
            state = queue.popleft()
            while self.kv.extra_blocks(state.id, state.cached + 1) > self.kv.free_blocks:
                victim = queue.pop() if queue else state
                self._evict(batch, victim)
                evicted_any = True
                if victim is state:
                    break
            else:
                self.kv.grow(state.id, state.cached + 1)
                self._add(batch, state, 1)
        return evicted_any

    def _evict(self, batch: Batch, state: RequestState) -> None:
        batch.evict_bytes += self.kv.evict(state.id)
        batch.evicted.append(state.id)
        self.running.remove(state)
        self.swapped.append(state)

    def _schedule_swapped(self, batch: Batch) -> None:
        self.swapped.sort(key=lambda s: s.admission)
        while self.swapped and len(batch.entries) < self.max_batch:
            state = self.swapped[0]
            held = self.kv.host[state.id]
            growth = max(0, self.kv.blocks_for(state.cached + 1) - held)
            if held + growth > self.kv.free_blocks:
                return
            self.swapped.pop(0)
            batch.load_bytes += self.kv.reload(state.id)
            batch.reloaded.append(state.id)
            self.kv.grow(state.id, state.cached + 1)
            self.running.append(state)
            self._add(batch, state, 1)

    def _schedule_waiting(self, batch: Batch, now: int) -> None:
        while self.waiting and len(batch.entries) < self.max_batch:
            state = self.waiting[0]
            prompt = state.request.input_tokens
            tokens = prompt + 1 if self.skip_prefill else prompt
            if self.kv.blocks_for(tokens) > self.kv.free_blocks:
                return
            self.waiting.popleft()
            self.kv.grow(state.id, tokens)
            state.admitted_ns, state.admission = now, self.admissions
            self.admissions += 1
            self.running.append(state)
            if self.skip_prefill:
                state.cached = prompt
                self._add(batch, state, 1)
            else:
                self._add(batch, state, prompt)

    def complete(self, batch: Batch, now: int) -> list[RequestState]:
        """Applies a finished iteration; returns the requests that finished with it."""
        finished = []
        for state, entry in zip(batch.states, batch.entries):
            state.in_flight = False
            state.cached = entry.cached_tokens + entry.new_tokens
            state.generated += 1
            if state.first_token_ns is None:
                state.first_token_ns = now
            if state.generated >= state.request.output_tokens:
                state.end_ns = now
                self.kv.free(state.id)
                self.running.remove(state)
                self.unfinished -= 1
                finished.append(state)
        return finished
