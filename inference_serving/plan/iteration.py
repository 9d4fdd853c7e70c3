"""The iteration plan: one batch's layers as objects, handed from the trace builder to the graph builder.

A plan keeps the repeated decoder block once (the paper's computation reuse). Its items are `Row`s
(one layer: compute ns on one NPU of its tensor-parallel group, already sharded by the provider;
sizes in bytes of the whole, unsharded layer; a collective after it), `AttentionGroup`s (one
request's attention rows, which the graph builder may hand to one NPU of the group: selective
batching), `BatchedAttention` (the decoding requests' attention as one kernel) and `SelectiveAttention`
(the requests' attention groups as per-rank sums); those two make their per-request groups only when
read. text_trace.py writes a plan in the original tool's 11-column text format.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from functools import cached_property, lru_cache
from typing import Callable, NamedTuple

TOKEN_ID_BYTES = 4  # token ids enter and leave the device as int32
EVICT_ROW = "vllm_evict_kv"     # KV moved to host memory (weight_size: bytes per NPU)
LOAD_ROW = "vllm_load_kv"       # KV brought back from host memory
OVERHEAD_ROW = "engine_overhead"
TIER_STORE_ROW = "kv_store_"     # + tier name: KV blocks demoted to a memory tier (weight_size: bytes per NPU)
TIER_LOAD_ROW = "kv_load_"       # + tier name: KV blocks reloaded from a memory tier


class Comm(str, Enum):
    """The collective that follows a row (its text-format spelling as the value)."""

    NONE = "NONE"
    ALL_REDUCE = "ALLREDUCE"
    ALL_GATHER = "ALLGATHER"
    REDUCE_SCATTER = "REDUCESCATTER"


class Kind(str, Enum):
    """How attention is laid out over a tensor-parallel group (the text format's first word)."""

    SELECTIVE = "ORCA"    # each request's attention, all heads, on one rank
    SHARDED = "VLLM"      # every rank runs its share of the heads of every request


class Row(NamedTuple):
    """(A named tuple: rows are made for every step, and a tuple is several times quicker to make than a
    frozen dataclass.)"""

    name: str
    comp_ns: int = 0
    input_size: int = 0
    weight_size: int = 0
    output_size: int = 0
    comm: Comm = Comm.NONE
    comm_size: int = 0
    input_loc: str = "LOCAL"
    weight_loc: str = "LOCAL"
    output_loc: str = "LOCAL"
    memory_tier: int = 0  # swap rows: 0 = host memory (--remote_bw), k = the k-th of --kv-tiers
    on_pim: bool = False  # computed by the processing-in-memory units (plan/pim.py)

    @property
    def stores(self) -> bool:
        """A swap row that moves KV out of device memory (else it brings KV in)."""
        return self.name == EVICT_ROW or self.name.startswith(TIER_STORE_ROW)


class AttentionGroup(NamedTuple):
    """The rope and attention rows of one request (a named tuple, made for every request of every step)."""

    request_id: int
    rows: tuple[Row, ...]


class GroupsWhenRead:
    """An attention item of many requests whose AttentionGroups `make_groups` makes when something reads them
    (an unmerged chain, the text trace, PIM offloading): a merged chain reads only what equality compares."""

    make_groups: Callable[[], list[AttentionGroup]]

    @cached_property
    def groups(self) -> list[AttentionGroup]:
        return self.make_groups()

    @property
    def key(self) -> tuple:
        """What equality compares, without the groups' maker (chain.plan_key)."""
        return type(self), *map(self.__dict__.__getitem__, _compared(type(self)))


@dataclass(frozen=True)
class BatchedAttention(GroupsWhenRead):
    """The decode attention of many requests in one kernel on every rank (sharded layout): `comp_ns` in
    all, shared out by `make_groups` into each request's AttentionGroup, whose rows are plain compute
    (no collective, never on PIM units) summing to `comp_ns`."""

    comp_ns: int
    make_groups: Callable[[], list[AttentionGroup]] = field(compare=False, repr=False)


@dataclass(frozen=True)
class SelectiveAttention(GroupsWhenRead):
    """The attention of a batch's requests under selective batching, each request's rows whole on one rank:
    the k-th request of the run on rank (k + the groups before it) mod tp. `residues[j]` sums the requests
    k = j mod tp: (the name of the first of their rows with compute, the ns of all their rows), which is
    what a merged chain takes from them, since their rows are plain compute (no collective, never on PIM
    units). `count` requests in all."""

    count: int
    residues: tuple[tuple[str, int], ...]
    make_groups: Callable[[], list[AttentionGroup]] = field(compare=False, repr=False)


@lru_cache(maxsize=None)
def _compared(cls: type) -> tuple[str, ...]:
    """The names of the fields a dataclass's equality compares (a plan key reads them for every step)."""
    return tuple(f.name for f in fields(cls) if f.compare)


def with_groups(items: list) -> list:
    """`items` with every BatchedAttention and SelectiveAttention spelled out as its requests' AttentionGroups."""
    return [group for item in items for group in (item.groups if isinstance(item, GroupsWhenRead) else (item,))]


@dataclass(frozen=True)
class TierMove:
    """KV blocks moved between device memory and memory tier `tier` (1 = the first) in one step."""

    tier: int
    name: str
    load: bool
    nbytes: int  # per NPU

    def row(self) -> Row:
        prefix = TIER_LOAD_ROW if self.load else TIER_STORE_ROW
        return Row(prefix + self.name, weight_size=self.nbytes, weight_loc=self.name.upper(), memory_tier=self.tier)


class BatchEntry(NamedTuple):
    """One request's share of an iteration: `new_tokens` processed on top of `cached_tokens`, the last
    `draft_tokens` of them speculative tokens that the step verifies (serving/speculative.py). (A named
    tuple, made for every request of every step.)"""

    request_id: int
    new_tokens: int
    cached_tokens: int
    draft_tokens: int = 0


@dataclass
class Trace:
    """An iteration's plan: KV swaps, engine overhead, embedding, the decoder block (repeated once per
    layer), head. Stage s of the pipeline runs `stage_layers[s]` layers; the embedding belongs to the
    first stage, the head to the last. The model's first `first_layers` layers run `first_block`
    instead of `block` (the dense layers before a mixture-of-experts model's expert layers)."""

    swaps: list[Row]
    embedding: Row
    block: list[Row | AttentionGroup]
    stage_layers: list[int]
    head: list[Row]
    tp: int
    batch_requests: int
    kind: Kind = Kind.SELECTIVE
    overhead: Row | None = None  # per-step engine work outside the model, before the first layer
    first_block: list[Row | AttentionGroup] | None = None
    first_layers: int = 0
    draft: list[Row | AttentionGroup] = field(default_factory=list)  # a drafter's passes, after the head
    on_pim: bool = False  # some of the block's rows run on the PIM units (plan/pim.py sets it)

    @property
    def selective_attention(self) -> bool:
        return self.kind is Kind.SELECTIVE

    @property
    def pp(self) -> int:
        return len(self.stage_layers)

    def stage_blocks(self, stage: int) -> list[tuple[list[Row | AttentionGroup], int]]:
        """The blocks stage `stage` runs, in order, with how many layers each."""
        start = sum(self.stage_layers[:stage])
        layers = self.stage_layers[stage]
        first = min(max(self.first_layers - start, 0), layers)
        blocks = [(self.first_block, first), (self.block, layers - first)]
        return [(block, count) for block, count in blocks if count]

    @property
    def leading(self) -> list[Row]:
        return [*self.swaps, *([self.overhead] if self.overhead else [])]
