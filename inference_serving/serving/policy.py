"""The scheduling-policy interface: which requests run in the next iteration.

A policy owns the request queues (waiting, running) and its KV manager, and reads the requests that
reach it from its feed (arrivals.py: an Inbox of the run's Arrivals; given a plain list of
requests it makes its own); the serving loop calls `schedule(now)` for the next batch and
`complete(batch, now)` when its iteration ends. A policy declares its traits, which
the run assembles around it: how attention is laid out over a tensor-parallel group, its default
block size, whether it runs pipeline stages, and the flags only it reads (another policy's are
refused, flag_use.py). New policies are one file and one line in POLICIES.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from typing import ClassVar

from ..config.run_config import RunConfig
from ..inputs.model_config import ModelConfig
from ..inputs.workload import Request
from ..plan.iteration import BatchEntry
from ..registry import Registry
from .arrivals import Arrivals, Inbox
from .kv.layout import MemoryLayout
from .kv.pool import KVManager
from .request import Batch, RequestState

DUMMY_REQUEST = -1  # the request id of a dummy batch's one token

POLICIES = Registry("scheduler", "--scheduler", {
    "orca": ".serving.orca:OrcaPolicy",
    "vllm": ".serving.vllm:VllmPolicy",
})


class SchedulingPolicy(ABC):
    selective_attention: ClassVar[bool]      # True: each request's attention on one rank of the group
    default_block_size: ClassVar[int]
    supports_pipeline: ClassVar[bool]
    own_flags: ClassVar[tuple[str, ...]]     # flags that only this policy reads
    trust: ClassVar[str]                     # which questions its numbers answer (the run's header says it)
    kv: KVManager

    def __init__(self, feed: Inbox | list[Request], kv: KVManager) -> None:
        self.feed = feed if isinstance(feed, Inbox) else Arrivals(feed).inboxes[0]
        self.by_id: dict[int, RequestState] = {}   # the requests it admitted
        self.waiting: deque[RequestState] = deque()
        self.running: list[RequestState] = []
        self.kv = kv
        self.batches = 0
        self.in_flight: dict[int, Batch] = {}      # the batches it issued that have not completed, by id
        self.admissions = 0

    @classmethod
    @abstractmethod
    def build(cls, feed: Inbox, model: ModelConfig, layout: MemoryLayout, config: RunConfig) -> "SchedulingPolicy":
        """The policy with its KV manager, sized for this run (`feed.arrivals.requests` is the workload)."""

    @property
    def states(self) -> list[RequestState]:
        """Every request of the run."""
        return self.feed.arrivals.states

    @property
    def unfinished(self) -> int:
        return self.feed.arrivals.unfinished

    def next_arrival(self) -> int | None:
        return self.feed.arrivals.next_arrival()

    def kv_config(self) -> dict:
        """The KV capacity this run uses, for its effective configuration."""
        return {"kv_blocks": self.kv.total_blocks}

    def schedule(self, now: int) -> Batch | None:
        """The next batch, or None when nothing can run now."""
        self.waiting.extend(self.feed.due(now))
        batch = Batch(self.batches, [], [], start_ns=now)
        self._fill(batch, now)
        if not batch.entries:
            return None
        batch.tier_moves = self.kv.take_tier_moves()
        return self._issue(batch)

    def dummy_batch(self, now: int) -> Batch:
        """A step without requests: one token's forward pass, which a data-parallel rank without work
        runs so that the other ranks' MoE collectives have all their members (step_group.py)."""
        return self._issue(Batch(self.batches, [BatchEntry(DUMMY_REQUEST, 1, 0)], [], start_ns=now))

    def _issue(self, batch: Batch) -> Batch:
        """The batch goes to the engine: the next batch takes the next id, and it is in flight until it completes."""
        self.batches += 1
        self.in_flight[batch.id] = batch
        return batch

    @abstractmethod
    def _fill(self, batch: Batch, now: int) -> None:
        """Adds this iteration's requests to `batch` (allocating their KV blocks)."""

    def complete(self, batch: Batch, now: int) -> list[RequestState]:
        """Applies a finished iteration: what the step computed is cached, each request has the tokens
        it sampled, and those that reached their last token end here (their feed frees their KV
        blocks). Returns the requests that finished with it."""
        del self.in_flight[batch.id]
        finished: list[RequestState] = []
        sampled, sampled_by = 0, self._sampled
        for state, entry in zip(batch.states, batch.entries):
            state.cached = entry.cached_tokens + entry.new_tokens
            tokens = sampled_by(state, entry)
            if not tokens:
                continue
            sampled += tokens
            generated = state.generated = state.generated + tokens
            if state.first_token_ns is None:
                state.first_token_ns = now
            if generated >= state.request.output_tokens:
                self._end(state, now)
                finished.append(state)
        batch.sampled += sampled
        return finished

    def _sampled(self, state: RequestState, entry: BatchEntry) -> int:
        """The tokens the step sampled for the request (`state.cached` counts what it computed): one."""
        return 1

    def _admit(self, state: RequestState, now: int) -> None:
        """A request's first admission: its queuing delay ends."""
        if state.admission < 0:
            state.admission, state.instance_admitted_ns = self.admissions, now
            self.admissions += 1
            self.by_id[state.id] = state
        if state.admitted_ns is None:
            state.admitted_ns = now
        self.running.append(state)

    def _end(self, state: RequestState, now: int) -> None:
        """The request's last token: it ends here."""
        state.end_ns = now
        self.running.remove(state)
        self.feed.finished(state, now, self.kv)


def policy_class(name: str) -> type[SchedulingPolicy]:
    return POLICIES.get(name)
