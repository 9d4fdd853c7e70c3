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

from ..config.run_config import RunConfig
from ..inputs.model_config import ModelConfig
from ..inputs.workload import Request
from ..plan.iteration import BatchEntry
from .arrivals import Inbox
from .kv.layout import MemoryLayout
from .kv.prefix_cache import PrefixCacheKV
from .kv.sizing import VllmMemory, vllm_memory
from .kv.tiered import prefix_cache
from .policy import SchedulingPolicy
from .request import Batch, RequestState


class VllmPolicy(SchedulingPolicy):
    """vLLM V1: token budget, chunked prefill, preemption by recompute, prefix caching."""

    selective_attention = False
    default_block_size = 16
    supports_pipeline = False
    supports_skip_prefill = False
    own_flags = ("max_num_seqs", "max_num_batched_tokens", "gpu_memory_utilization", "num_gpu_blocks",
                 "no_prefix_caching", "no_ragged", "no_mixed_unpacking", "no_sampler")
    trust = ("vLLM V1's policy, validated against a measured vLLM run (README Validation); for the latency and "
             "throughput of a vLLM deployment")
    kv: PrefixCacheKV

    def __init__(self, feed: Inbox | list[Request], kv: PrefixCacheKV, max_num_seqs: int,
                 max_num_batched_tokens: int, memory: VllmMemory) -> None:
        super().__init__(feed, kv)
        self.max_num_seqs = max_num_seqs
        self.budget = max_num_batched_tokens
        self.memory = memory
        self.preemptions = 0
        self.reuse = True  # skip allocating blocks a request holds already (_schedule_running)

    @classmethod
    def build(cls, feed: Inbox, model: ModelConfig, layout: MemoryLayout, config: RunConfig) -> "VllmPolicy":
        memory = vllm_memory(model, layout, config)
        caching = not config.no_prefix_caching and any(r.token_ids is not None for r in feed.arrivals.requests)
        kv = prefix_cache(layout, config.num_gpu_blocks or memory.blocks, caching, config)
        policy = cls(feed, kv, config.max_num_seqs, config.max_num_batched_tokens, memory)
        policy.reuse = not config.no_reuse
        return policy

    def kv_config(self) -> dict:
        return {**super().kv_config(), "derived_kv_blocks": self.memory.blocks}

    @staticmethod
    def _known_tokens(state: RequestState) -> int:
        return state.request.input_tokens + state.generated

    def _fill(self, batch: Batch, now: int) -> None:
        budget = self._schedule_running(batch, self.budget)
        if not batch.preempted:
            self._schedule_waiting(batch, budget, now)

    def _schedule_running(self, batch: Batch, budget: int) -> int:
        running, kv, add = self.running, self.kv, batch.add
        # a subclass that gives draft tokens (speculative.py) is asked for every request; this class gives none
        draft_tokens = self._draft_tokens if type(self)._draft_tokens is not VllmPolicy._draft_tokens else None
        reuse, owned, block_size = self.reuse, kv.owned, kv.layout.block_size
        for state in running:  # a preemption pops the list's tail, which the iteration then never reaches
            if budget <= 0:
                break
            cached = state.cached
            missing = state.request.input_tokens + state.generated - cached  # _known_tokens(state) - cached
            wanted = missing + draft_tokens(state) if draft_tokens else missing
            tokens = wanted if wanted < budget else budget
            needed = cached + tokens
            # a request holding the blocks for `needed` tokens already (ceil(needed / block_size) of them) is not
            # allocated: allocating them would be allowed and change nothing (with --no-reuse it is)
            holds = reuse and needed <= len(owned.get(state.id, ())) * block_size
            if not holds and not self._allocate_running(batch, state, needed):
                return budget
            add(state, tokens, tokens - missing if tokens > missing else 0)
            budget -= tokens
        return budget

    def _allocate_running(self, batch: Batch, state: RequestState, tokens: int) -> bool:
        """Grows a running request's blocks to hold `tokens` tokens, preempting the last running request
        while they do not fit; False when that was the request itself."""
        while not self.kv.can_allocate(state.request, tokens):
            victim = self.running.pop()
            self._preempt(batch, victim)
            if victim is state:
                return False
        self.kv.allocate(state.request, tokens)
        return True

    def _draft_tokens(self, state: RequestState) -> int:
        """Speculative tokens the request's step verifies besides its known tokens (none here)."""
        return 0

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
            computed = max(len(prefix) * self.kv.layout.block_size, state.cached)  # cached: KV received
            tokens = min(known - computed, budget)
            if not self.kv.can_allocate(state.request, computed + tokens, prefix):
                return
            self.waiting.popleft()
            self.kv.allocate(state.request, computed + tokens, prefix)
            state.cached = computed
            self._admit(state, now)
            batch.add(state, tokens)
            budget -= tokens

    def _sampled(self, state: RequestState, entry: BatchEntry) -> int:
        """A token once the step computed the request's last known token (a prompt chunk short of the
        prompt's end samples none)."""
        return 1 if state.cached >= state.request.input_tokens + state.generated else 0  # _known_tokens(state)
