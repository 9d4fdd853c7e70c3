"""The iteration plan: one batch's layers as objects, handed from the trace builder to the graph builder.

A plan keeps the repeated decoder block once (the paper's computation reuse). Its items are `Row`s
(one layer: compute ns on one NPU of its tensor-parallel group, already sharded by the provider;
sizes in bytes of the whole, unsharded layer; a collective after it) and one `Attention`: every
request's attention rows as columns, which the graph builder sums per NPU (the k-th request may go to
one NPU of the group: selective batching) and spells out as `AttentionGroup`s (one request's rows)
where it needs them. text_trace.py writes a plan in the original tool's 11-column text format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import numpy as np

TOKEN_ID_BYTES = 4  # token ids enter and leave the device as int32
EVICT_ROW = "vllm_evict_kv"     # KV moved to host memory (weight_size: bytes per NPU)
LOAD_ROW = "vllm_load_kv"       # KV brought back from host memory
OVERHEAD_ROW = "engine_overhead"


class Comm(str, Enum):
    """The collective that follows a row (its text-format spelling as the value)."""

    NONE = "NONE"
    ALL_REDUCE = "ALLREDUCE"


class Kind(str, Enum):
    """How attention is laid out over a tensor-parallel group (the text format's first word)."""

    SELECTIVE = "ORCA"    # each request's attention, all heads, on one rank
    SHARDED = "VLLM"      # every rank runs its share of the heads of every request


@dataclass(frozen=True)
class Row:
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


@dataclass(frozen=True)
class AttentionGroup:
    """The rope and attention rows of one request."""

    request_id: int
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Attention:
    """The rope and attention rows of every request in one layer, in plan order, as columns (int64
    arrays but for the ids): pricing and summing a batch of hundreds of requests is a few array
    operations. The first len(rope_ns) requests are priced on their own; the others decode in one
    batched kernel of `batched_ns`, shared out in proportion to each one's context (cached + 1), each
    request's rows still separate. Sizes per token in bytes: `qk_bytes` of q and k together,
    `kv_bytes` of k (or v), `q_bytes` of q."""

    request_ids: tuple[int, ...]
    new_tokens: np.ndarray
    cached_tokens: np.ndarray
    rope_ns: np.ndarray
    attn_ns: np.ndarray
    qk_bytes: int
    kv_bytes: int
    q_bytes: int
    batched_ns: int = 0
    _rank_sums: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def rows_ns(self) -> tuple[np.ndarray, np.ndarray]:
        """(rope, attention) ns of every request, the batched kernel's share included."""
        priced = len(self.rope_ns)
        if priced == len(self.request_ids):
            return self.rope_ns, self.attn_ns
        weights = np.cumsum(self.cached_tokens[priced:] + 1)
        cumulative = self.batched_ns * weights // int(weights[-1])
        shares = cumulative.copy()
        shares[1:] -= cumulative[:-1]
        return (np.concatenate([self.rope_ns, np.zeros(len(shares), np.int64)]),
                np.concatenate([self.attn_ns, shares]))

    def rank_ns(self, rank: int, tp: int) -> int:
        """Compute of the requests one rank of `tp` runs (the k-th request on rank k mod tp)."""
        key = (rank, tp)
        if key not in self._rank_sums:
            if tp == 1:
                priced = int(self.rope_ns.sum()) + int(self.attn_ns.sum()) if len(self.rope_ns) else 0
                total = priced + self.batched_ns
            else:
                rope, attn = self.rows_ns
                total = int(rope[rank::tp].sum()) + int(attn[rank::tp].sum())
            self._rank_sums[key] = total
        return self._rank_sums[key]

    def first_busy_row(self, rank: int, tp: int) -> str:
        """Name of the first row with compute among the rank's requests (names a merged node)."""
        rope, attn = (values[rank::tp] for values in self.rows_ns)
        busy = np.flatnonzero(rope + attn)
        return "" if not len(busy) else "rope" if rope[busy[0]] else "attn"

    def groups(self) -> list[AttentionGroup]:
        """Each request's rows: rope over its new q and k, attention reading its whole KV cache."""
        out = []
        rope, attn = self.rows_ns
        for i, request_id in enumerate(self.request_ids):
            t, cached = int(self.new_tokens[i]), int(self.cached_tokens[i])
            qk, kv_cache = t * self.qk_bytes, (cached + t) * 2 * self.kv_bytes
            out.append(AttentionGroup(request_id, (
                Row("rope", int(rope[i]), qk, 0, qk),
                Row("attn", int(attn[i]), qk + t * self.kv_bytes, kv_cache, t * self.q_bytes))))
        return out


@dataclass
class Trace:
    """An iteration's plan: KV swaps, engine overhead, embedding, the decoder block (repeated once per
    layer), head. Stage s of the pipeline runs `stage_layers[s]` layers; the embedding belongs to the
    first stage, the head to the last."""

    swaps: list[Row]
    embedding: Row
    block: list[Row | Attention]
    stage_layers: list[int]
    head: list[Row]
    tp: int
    batch_requests: int
    kind: Kind = Kind.SELECTIVE
    overhead: Row | None = None  # per-step engine work outside the model, before the first layer

    @property
    def selective_attention(self) -> bool:
        return self.kind is Kind.SELECTIVE

    @property
    def pp(self) -> int:
        return len(self.stage_layers)

    @property
    def leading(self) -> list[Row]:
        return [*self.swaps, *([self.overhead] if self.overhead else [])]
