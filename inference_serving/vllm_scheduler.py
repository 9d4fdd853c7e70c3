"""Scheduler policy of vLLM's V1 engine (as of vLLM 0.19): token budget, chunked prefill,
preemption by recompute, prefix caching.

Each step (`schedule`):
  1. running requests, in order (decodes and unfinished prefill chunks alike), each take
     min(tokens still to compute, budget left) tokens; when their KV blocks cannot be allocated,
     the last request of the running list (the most recently admitted) is preempted: its blocks
     are freed and it goes back to the front of the waiting queue, to be recomputed from scratch;
     if that request is the one being scheduled, the loop stops;
  2. if nobody was preempted, waiting requests join first-come-first-served while budget, blocks
     and `max_num_seqs` allow; their prompt may be cut into a chunk that fits the budget, and
     full prompt blocks already in the prefix cache count as computed.
A request samples a token in a step that computes its last known token (the end of its prompt,
or its latest output token).
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from .memory import BlockPool, MemoryLayout
from .scheduler import Batch, RequestState, record_sampled_token
from .trace import BatchEntry
from .workload import Request


@dataclass
class PrefixCachingBlocks(BlockPool):
    """vLLM's block pool: full prompt blocks are identified by the hash of all tokens up to their
    end and shared between requests; a freed hashed block stays cached (least recently freed is
    reused first) until its space is needed."""

    layout: MemoryLayout
    total_blocks: int
    caching: bool = True
    refs: dict = field(default_factory=dict)            # block key -> requests holding it
    cached_free: OrderedDict = field(default_factory=OrderedDict)  # hashed blocks with no holder, LRU first
    owned: dict = field(default_factory=dict)           # request id -> list of block keys
    used_blocks: int = 0
    peak_blocks: int = 0
    hits: int = 0
    queries: int = 0
    _next_unique: int = 0
    _hashes: dict = field(default_factory=dict)         # request id -> its prompt's block hashes

    host: dict = field(default_factory=dict)  # recompute policy: nothing ever goes to host memory

    def prompt_hashes(self, request: Request) -> list[int]:
        """Chained hashes of the full blocks of a prompt with known token ids (computed once)."""
        if not self.caching or request.token_ids is None:
            return []
        hashes = self._hashes.get(request.id)
        if hashes is None:
            size, hashes, previous = self.layout.block_size, [], 0
            for start in range(0, len(request.token_ids) - size + 1, size):
                previous = hash((previous, request.token_ids[start:start + size]))
                hashes.append(previous)
            self._hashes[request.id] = hashes
        return hashes

    def cached_prefix(self, request: Request, num_tokens: int) -> list[int]:
        """Leading prompt blocks found in the cache; at least one token is always left to compute."""
        usable = (num_tokens - 1) // self.layout.block_size
        found = []
        for key in self.prompt_hashes(request)[:usable]:
            if key not in self.refs and key not in self.cached_free:
                break
            found.append(key)
        self.queries += 1
        self.hits += bool(found)
        return found

    def can_allocate(self, request_id: int, tokens: int, reuse: list[int] = ()) -> bool:
        held = len(self.owned.get(request_id, ())) + len(reuse)
        fresh = max(0, self.blocks_for(tokens) - held)
        reused_from_free = sum(1 for key in reuse if key in self.cached_free)
        return fresh + reused_from_free <= self.free_blocks

    def allocate(self, request: Request, tokens: int, reuse: list[int] = ()) -> None:
        blocks = self.owned.setdefault(request.id, [])
        for key in reuse:
            self._hold(key)
            blocks.append(key)
        hashes = self.prompt_hashes(request)
        while len(blocks) < self.blocks_for(tokens):
            index = len(blocks)
            key = hashes[index] if index < len(hashes) and hashes[index] not in self.refs else None
            if key is None:
                key, self._next_unique = ("unique", self._next_unique), self._next_unique + 1
            self._make_room()
            self.cached_free.pop(key, None)
            self.refs[key] = 1
            self.used_blocks += 1
            blocks.append(key)
        self._note_peak()

    def _hold(self, key) -> None:
        if key in self.refs:
            self.refs[key] += 1
            return
        del self.cached_free[key]
        self.refs[key] = 1
        self.used_blocks += 1

    def _make_room(self) -> None:
        """Evicts the least recently freed cached block when every free block holds cached data."""
        if self.used_blocks + len(self.cached_free) >= self.total_blocks and self.cached_free:
            self.cached_free.popitem(last=False)

    def free(self, request_id: int) -> None:
        for key in reversed(self.owned.pop(request_id, [])):
            self.refs[key] -= 1
            if self.refs[key] == 0:
                del self.refs[key]
                self.used_blocks -= 1
                if not isinstance(key, tuple):
                    self.cached_free[key] = None



class VllmScheduler:
    def __init__(self, requests: list[Request], blocks: PrefixCachingBlocks, max_num_seqs: int,
                 max_num_batched_tokens: int) -> None:
        self.states = [RequestState(r) for r in requests]
        self.pending = deque(sorted(self.states, key=lambda s: (s.request.arrival_ns, s.id)))
        self.waiting: deque[RequestState] = deque()
        self.running: list[RequestState] = []
        self.kv = blocks
        self.max_num_seqs = max_num_seqs
        self.budget = max_num_batched_tokens
        self.batches = 0
        self.admissions = 0
        self.preemptions = 0
        self.unfinished = len(requests)

    def next_arrival(self) -> int | None:
        return self.pending[0].request.arrival_ns if self.pending else None

    @staticmethod
    def _known_tokens(state: RequestState) -> int:
        return state.request.input_tokens + state.generated

    def schedule(self, now: int) -> Batch | None:
        while self.pending and self.pending[0].request.arrival_ns <= now:
            self.waiting.append(self.pending.popleft())
        batch = Batch(self.batches, [], [], start_ns=now)
        budget = self._schedule_running(batch, self.budget)
        if not batch.preempted:
            self._schedule_waiting(batch, budget, now)
        if not batch.entries:
            return None
        self.batches += 1
        return batch

    def _add(self, batch: Batch, state: RequestState, tokens: int) -> None:
        batch.entries.append(BatchEntry(state.id, tokens, state.cached))
        batch.states.append(state)

    def _schedule_running(self, batch: Batch, budget: int) -> int:
        index = 0
        while index < len(self.running) and budget > 0:
            state = self.running[index]
            tokens = min(self._known_tokens(state) - state.cached, budget)
            while not self.kv.can_allocate(state.id, state.cached + tokens):
                victim = self.running.pop()
                self._preempt(batch, victim)
                if victim is state:
                    return budget
            self.kv.allocate(state.request, state.cached + tokens)
            self._add(batch, state, tokens)
            budget -= tokens
            index += 1
        return budget

    def _preempt(self, batch: Batch, state: RequestState) -> None:
        """Recompute policy: the KV is dropped and rebuilt later from the prompt and outputs so far."""
        self.kv.free(state.id)
        state.cached = 0
        self.waiting.appendleft(state)
        batch.preempted.append(state.id)
        self.preemptions += 1

    def _schedule_waiting(self, batch: Batch, budget: int, now: int) -> None:
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            state = self.waiting[0]
            known = self._known_tokens(state)
            prefix = self.kv.cached_prefix(state.request, known)
            computed = len(prefix) * self.kv.layout.block_size
            tokens = min(known - computed, budget)
            if not self.kv.can_allocate(state.id, computed + tokens, prefix):
                return
            self.waiting.popleft()
            self.kv.allocate(state.request, computed + tokens, prefix)
            state.cached = computed
            if state.admitted_ns is None:
                state.admitted_ns, state.admission = now, self.admissions
                self.admissions += 1
            self.running.append(state)
            self._add(batch, state, tokens)
            budget -= tokens

    def complete(self, batch: Batch, now: int) -> list[RequestState]:
        finished: list[RequestState] = []
        for state, entry in zip(batch.states, batch.entries):
            state.cached = entry.cached_tokens + entry.new_tokens
            if state.cached >= self._known_tokens(state):  # not a chunk short of the prompt's end
                record_sampled_token(self, batch, state, now, finished)
        return finished


def kv_blocks_from_memory(layout: MemoryLayout, gpu_memory_utilization: float, activation_bytes: int) -> int:
    """vLLM's KV capacity: the utilisation share of device memory, less weights and the
    activation peak of a forward pass at the token budget."""
    usable = int(layout.capacity_bytes * gpu_memory_utilization) - layout.weight_bytes - activation_bytes
    return max(0, usable // layout.block_bytes)
