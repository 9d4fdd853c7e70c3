"""Trace generator: one iteration's batch as a plan of layers priced by the performance provider.

Each request's attention rows form an AttentionGroup (the graph builder may give them to one NPU of
the group: selective batching). KV-cache swaps (host memory, then the memory tiers) come first as rows
whose weight_size is the bytes moved by each NPU; then the per-step engine overhead, the embedding, the
decoder block, the head. A mixture-of-experts model's block has the MoE rows (moe_block.py) in place of
the MLP's; its leading dense layers, if any, run a block with the MLP.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import Callable

from ..inputs.model_config import ModelConfig
from ..perf.experts import ExpertPlan, expert_plan
from ..perf.precision import Precision, as_precision
from ..perf.provider import PerfProvider
from .iteration import (EVICT_ROW, LOAD_ROW, OVERHEAD_ROW, TOKEN_ID_BYTES, AttentionGroup, BatchedAttention,
                        BatchEntry, Comm, Kind, Row, SelectiveAttention, TierMove, Trace)
from .moe_block import MoeRows

NEW_TOKENS, DRAFT_TOKENS = attrgetter("new_tokens"), attrgetter("draft_tokens")  # of a BatchEntry


@dataclass
class TraceBuilder(MoeRows):
    """Builds iteration traces for one model on one parallel layout."""

    model: ModelConfig
    perf: PerfProvider
    precision: Precision | int  # the formats (perf/precision.py), or --fp's bits for all of them
    tp: int = 1
    pp: int = 1
    selective_attention: bool = True  # False: vLLM-style, attention heads split over the TP group
    engine_overhead_ns: int = 0
    sampler_bw_gbps: float = 0.0  # device memory bandwidth for the sampler row; 0 = no sampler row
    experts: ExpertPlan | None = None  # an MoE model's expert placement and load [tensor-parallel, uniform]
    drafter: Callable[[list[BatchEntry]], list[Row | AttentionGroup]] | None = None  # speculative decoding
    dp: int = 1          # data-parallel ranks stepping together (plan/moe_block.py); this builder is one's
    dp_tokens: int = 0   # the step's tokens on its busiest rank (serving/step_group.py sets it)
    reuse: bool = True   # the rows that depend on the token count alone made once per count (--no-reuse: off)
    _attention_cache: dict = field(default_factory=dict)
    _dense_cache: dict = field(default_factory=dict)
    _head_cache: dict = field(default_factory=dict)
    _rope_rows: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.precision = as_precision(self.precision)
        if self.model.is_moe and self.experts is None:
            self.experts = expert_plan(self.model, self.tp, False, "uniform")

    @property
    def elem(self) -> int:
        return self.precision.fp_bits // 8

    def build(self, entries: list[BatchEntry], evict_bytes: int = 0, load_bytes: int = 0,
              tier_moves: list[TierMove] = ()) -> Trace:
        tokens = sum(map(NEW_TOKENS, entries))
        overhead = Row(OVERHEAD_ROW, self.engine_overhead_ns) if self.engine_overhead_ns else None
        embedding, before, after, mlp = self._dense_rows(tokens)
        attention = [*before, *self._attention_items(entries), *after]
        block = attention + (self._moe_rows(tokens) if self.model.is_moe else mlp)
        first_block = attention + mlp if self.model.is_moe and self.model.first_dense_layers else None
        swaps = self._swap_rows(evict_bytes, load_bytes) + [move.row() for move in tier_moves]
        return Trace(swaps=swaps, embedding=embedding,
                     block=block, stage_layers=[self._stage_layer_count(s) for s in range(self.pp)],
                     head=self._head(tokens, len(entries) + sum(map(DRAFT_TOKENS, entries))), tp=self.tp,
                     batch_requests=len(entries), kind=Kind.SELECTIVE if self.selective_attention else Kind.SHARDED,
                     overhead=overhead, first_block=first_block, first_layers=self.model.first_dense_layers,
                     draft=self.drafter(entries) if self.drafter else [])

    def _stage_layer_count(self, stage: int) -> int:
        layers = self.model.num_layers
        return (stage + 1) * layers // self.pp - stage * layers // self.pp

    def _swap_rows(self, evict_bytes: int, load_bytes: int) -> list[Row]:
        rows = []
        if evict_bytes:
            rows.append(Row(EVICT_ROW, weight_size=evict_bytes, weight_loc="REMOTE"))
        if load_bytes:
            rows.append(Row(LOAD_ROW, weight_size=load_bytes, weight_loc="REMOTE"))
        return rows

    def _latency(self, layer: str, tokens: int, kv_cache: int = 0, tp: int | None = None) -> int:
        return self.perf.latency_ns(layer, tokens, kv_cache, self.tp if tp is None else tp)

    def _embedding(self, tokens: int) -> Row:
        h, e = self.model.hidden_size, self.elem
        return Row("embedding", self._latency("embedding", tokens), tokens * TOKEN_ID_BYTES,
                   self.model.embedding_parameters() * e, tokens * h * e, input_loc="REMOTE")

    def _elementwise(self, name: str, tokens: int, features: int, weight: int = 0) -> Row:
        size = tokens * features * self.elem
        return Row(name, self._latency(name, tokens), size, weight * self.elem, size)

    @cached_property
    def _linear_shapes(self) -> dict[str, tuple[int, int, int]]:
        """(in features, out features, weight bytes) of each projection."""
        e, bias, bits = self.elem, self.model.has_bias, self.precision.weight_bits
        return {name: (fan_in, fan_out, fan_in * fan_out * bits // 8 + (fan_out if bias else 0) * e)
                for name, (fan_in, fan_out) in self.model.linear_shapes().items()}

    def _linear(self, name: str, tokens: int, all_reduce: bool = False) -> Row:
        fan_in, fan_out, weight = self._linear_shapes[name]
        e = self.elem
        output = tokens * fan_out * e
        comm = (Comm.ALL_REDUCE, output) if all_reduce and self.tp > 1 else (Comm.NONE, 0)
        return Row(name, self._latency(name, tokens), tokens * fan_in * e, weight, output, *comm)

    @cached_property
    def _token_bytes(self) -> tuple[int, int, int, int]:
        """Per token: q and k bytes, k (or v) bytes and q bytes of activations, and K and V bits in the cache."""
        m, e = self.model, self.elem
        return (m.q_size + m.kv_size) * e, m.kv_size * e, m.q_size * e, 2 * m.kv_size * self.precision.kv_bits

    def _attention_rows(self, entry: BatchEntry, rope_ns: int, attn_ns: int) -> tuple[Row, Row]:
        qk_bytes, kv_bytes, q_bytes, kv_cache_bits = self._token_bytes
        t = entry.new_tokens
        qk = t * qk_bytes
        kv_cache = (entry.cached_tokens + t) * kv_cache_bits // 8
        return (self._rope_row(rope_ns, qk), Row("attn", attn_ns, qk + t * kv_bytes, kv_cache, t * q_bytes))

    def _rope_row(self, rope_ns: int, qk: int) -> Row:
        """The rope row (rows are immutable: one object per distinct row)."""
        key = (rope_ns, qk)
        row = self._rope_rows.get(key)
        if row is None:
            row = self._rope_rows[key] = Row("rope", rope_ns, qk, 0, qk)
        return row

    def _attention(self, entry: BatchEntry) -> AttentionGroup:
        """rope and attention of one request: whole heads on one NPU (selective batching), or this
        rank's share of the heads."""
        return AttentionGroup(entry.request_id, self._priced_attention(entry)[0])

    def _priced_attention(self, entry: BatchEntry) -> tuple[tuple[Row, Row], str, int]:
        """(a request's attention rows, the name of the first with compute or "", their ns), once per shape."""
        tp = 1 if self.selective_attention else self.tp
        key = (entry.new_tokens, entry.cached_tokens, tp)
        priced = self._attention_cache.get(key)
        if priced is None:
            rows = self._attention_rows(entry, self._latency("rope", entry.new_tokens, entry.cached_tokens, tp),
                                        self._latency("attn", entry.new_tokens, entry.cached_tokens, tp))
            timed = [row.name for row in rows if row.comp_ns]
            priced = self._attention_cache[key] = rows, timed[0] if timed else "", sum(row.comp_ns for row in rows)
        return priced

    def _selective_attention(self, entries: list[BatchEntry]) -> SelectiveAttention:
        """Every request's attention under selective batching, summed per rank residue (iteration.py)."""
        tp, known = self.tp, self._attention_cache.get
        names, sums = [""] * tp, [0] * tp
        # every request of every step: _priced_attention's key looked up here
        for k, (_, new_tokens, cached_tokens, _) in enumerate(entries):
            priced = known((new_tokens, cached_tokens, 1)) or self._priced_attention(entries[k])
            ns = priced[2]
            if ns:
                residue = k % tp
                sums[residue] += ns
                if not names[residue]:
                    names[residue] = priced[1]
        return SelectiveAttention(len(entries), tuple(zip(names, sums)),
                                  lambda: [self._attention(entry) for entry in entries])

    def _batched_decode_attention(self, decodes: list[BatchEntry], prefills: list[tuple[int, int]]) -> BatchedAttention:
        """One decode attention kernel for all decoding requests (sharing the kernel with the
        `prefills` chunks, new and cached tokens), its time shared out in proportion to each
        request's context (rows of one request still separate). A request verifying d draft tokens
        is one of them: its 1 + d queries read its KV cache once, cached + 1 + d keys."""
        keys_before_last = [d.cached_tokens + d.draft_tokens for d in decodes]
        total = self.perf.decode_attention_ns(keys_before_last, self.tp, prefills)
        return BatchedAttention(total, lambda: self._shared_out(decodes, keys_before_last, total))

    def _shared_out(self, decodes: list[BatchEntry], keys_before_last: list[int], total: int) -> list[AttentionGroup]:
        """Each decoding request's rows, its share of the kernel's `total` ns by context (the shares sum to it)."""
        weights = [keys + 1 for keys in keys_before_last]
        groups, spent, seen, whole = [], 0, 0, sum(weights)
        for entry, weight in zip(decodes, weights):
            seen += weight
            share = total * seen // whole - spent
            spent += share
            groups.append(AttentionGroup(entry.request_id, self._attention_rows(entry, 0, share)))
        return groups

    def _sharded_attention(self, entries: list[BatchEntry]) -> list[AttentionGroup | BatchedAttention]:
        """The heads of every request split over the group: each prompt chunk's own attention, the decodes'
        in one kernel."""
        decodes = [e for e in entries if e.new_tokens == 1 + e.draft_tokens]
        if not decodes:
            return [self._attention(entry) for entry in entries]
        # the others are chunks (a step computes at least a request's known token and its drafts)
        chunks = [e for e in entries if e.new_tokens > 1 + e.draft_tokens] if len(decodes) < len(entries) else []
        return [*map(self._attention, chunks),
                self._batched_decode_attention(decodes, [(e.new_tokens, e.cached_tokens) for e in chunks])]

    def _attention_items(self, entries: list[BatchEntry]) -> list:
        """A layer's attention: one SelectiveAttention, or the sharded layout's chunks and decode kernel."""
        if self.selective_attention:
            return [self._selective_attention(entries)]
        return self._sharded_attention(entries)

    def _dense_rows(self, tokens: int) -> tuple[Row, list[Row], list[Row], list[Row]]:
        """The rows that depend on the step's token count alone, made once per count: the embedding; a
        decoder layer's rows before its attention (norm, q/k/v) and after it up to the feed-forward part
        (o_proj, norm); the MLP's (none where every layer is a mixture of experts)."""
        rows = self._dense_cache.get(tokens) if self.reuse else None
        if rows is None:
            m = self.model
            norm_weight = m.norm_parameters
            before = [self._elementwise("input_layernorm", tokens, m.hidden_size, norm_weight),
                      self._linear("q_proj", tokens), self._linear("k_proj", tokens), self._linear("v_proj", tokens)]
            after = [self._linear("o_proj", tokens, all_reduce=True),
                     self._elementwise("post_layernorm", tokens, m.hidden_size, norm_weight)]
            mlp = self._mlp_rows(tokens) if not m.is_moe or m.first_dense_layers else []
            rows = self._embedding(tokens), before, after, mlp
            if self.reuse:
                self._dense_cache[tokens] = rows
        return rows

    def _mlp_rows(self, tokens: int) -> list[Row]:
        m, rows = self.model, []
        for name in m.mlp_layers():
            if name == "act_fn":
                rows.append(self._elementwise("act_fn", tokens, m.intermediate_size))
            else:
                rows.append(self._linear(name, tokens, all_reduce=name in ("down_proj", "fc2")))
        return rows

    def _head(self, tokens: int, positions: int) -> list[Row]:
        """The final norm, the LM head and the sampler, made once per shape."""
        if not self.reuse:
            return self._head_rows(tokens, positions)
        rows = self._head_cache.get((tokens, positions))
        if rows is None:
            rows = self._head_cache[tokens, positions] = self._head_rows(tokens, positions)
        return [*rows]

    def _head_rows(self, tokens: int, positions: int) -> list[Row]:
        m, e = self.model, self.elem
        norm_weight = m.norm_parameters
        lm_weight = m.vocab_size * m.hidden_size * e
        # Only the last token of each request reaches the LM head (and each draft token it verifies).
        rows = [self._elementwise("final_layernorm", tokens, m.hidden_size, norm_weight),
                Row("lm_head", self._latency("lm_head", positions), positions * m.hidden_size * e, lm_weight,
                    positions * m.vocab_size * e)]
        if self.sampler_bw_gbps:
            rows.append(self._sampler(positions))
        return rows

    def _sampler(self, requests: int) -> Row:
        """Sampling from the logits, memory bound: the logits are converted to fp32, turned into
        probabilities and sampled, three passes that each read and write requests x vocab fp32
        values (bytes / GB/s = ns)."""
        logits = requests * self.model.vocab_size
        return Row("sampler", round(3 * 2 * 4 * logits / self.sampler_bw_gbps), logits * self.elem, 0,
                   requests * TOKEN_ID_BYTES)
