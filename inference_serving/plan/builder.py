"""Trace generator: one iteration's batch as a plan of layers priced by the performance provider.

Every request's attention rows form one Attention item, priced for the whole batch at once (the graph
builder may give the k-th request's rows to one NPU of the group: selective batching). KV-cache swaps
come first as rows whose weight_size is the bytes moved by each NPU; then the per-step engine
overhead, the embedding, the decoder block, the head.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..inputs.model import ModelConfig
from ..perf.provider import PerfProvider
from .iteration import EVICT_ROW, LOAD_ROW, OVERHEAD_ROW, TOKEN_ID_BYTES, Attention, Comm, Kind, Row, Trace


NO_NS = np.zeros(0, np.int64)


@dataclass
class TraceBuilder:
    """Builds iteration traces for one model on one parallel layout."""

    model: ModelConfig
    perf: PerfProvider
    fp_bits: int
    tp: int = 1
    pp: int = 1
    selective_attention: bool = True  # False: vLLM-style, attention heads split over the TP group
    engine_overhead_ns: int = 0
    sampler_bw_gbps: float = 0.0  # device memory bandwidth for the sampler row; 0 = no sampler row
    _layer_rows: dict = field(default_factory=dict)  # tokens -> (embedding, rows before attention, after)
    _head_rows: dict = field(default_factory=dict)   # (tokens, requests) -> head rows

    @property
    def elem(self) -> int:
        return self.fp_bits // 8

    def build(self, request_ids: list[int], new_tokens: list[int], cached_tokens: list[int], evict_bytes: int = 0,
              load_bytes: int = 0) -> Trace:
        """The plan of an iteration in which request k processes new_tokens[k] tokens on top of
        cached_tokens[k]; the rows that depend only on the batch's token and request counts are built
        once per count (the paper's computation reuse)."""
        tokens, requests = sum(new_tokens), len(request_ids)
        if tokens not in self._layer_rows:
            self._layer_rows[tokens] = (self._embedding(tokens), *self._layer(tokens))
        embedding, before, after = self._layer_rows[tokens]
        head = self._head_rows.get((tokens, requests))
        if head is None:
            head = self._head_rows[(tokens, requests)] = self._head(tokens, requests)
        attention = self._attention(request_ids, new_tokens, cached_tokens)
        return Trace(swaps=self._swap_rows(evict_bytes, load_bytes), embedding=embedding,
                     block=[*before, attention, *after], stage_layers=self.stage_layers, head=head,
                     tp=self.tp, batch_requests=requests,
                     kind=Kind.SELECTIVE if self.selective_attention else Kind.SHARDED, overhead=self._overhead)

    @cached_property
    def stage_layers(self) -> list[int]:
        layers = self.model.num_layers
        return [(stage + 1) * layers // self.pp - stage * layers // self.pp for stage in range(self.pp)]

    @cached_property
    def _overhead(self) -> Row | None:
        return Row(OVERHEAD_ROW, self.engine_overhead_ns) if self.engine_overhead_ns else None

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

    def _linear(self, name: str, tokens: int, all_reduce: bool = False) -> Row:
        fan_in, fan_out = self.model.linear_shapes()[name]
        e = self.elem
        weight = self.model.projection_parameters(name) * e
        output = tokens * fan_out * e
        comm = (Comm.ALL_REDUCE, output) if all_reduce and self.tp > 1 else (Comm.NONE, 0)
        return Row(name, self._latency(name, tokens), tokens * fan_in * e, weight, output, *comm)

    def _attention(self, request_ids: list[int], new_tokens: list[int], cached: list[int]) -> Attention:
        """rope and attention of every request: whole heads on one NPU each (selective batching),
        each request on its own; or this rank's share of the heads, the decoding requests in one
        batched kernel after the others (vLLM)."""
        decoding = new_tokens.count(1)
        if not self.selective_attention and 0 < decoding < len(new_tokens):
            # prefills (and prompt chunks) first, then the decoding requests, each in batch order
            order = [k for k, n in enumerate(new_tokens) if n > 1] + [k for k, n in enumerate(new_tokens) if n == 1]
            request_ids, new_tokens, cached = ([column[k] for k in order] for column in (request_ids, new_tokens, cached))
        new, kv = np.array(new_tokens, np.int64), np.array(cached, np.int64)
        if self.selective_attention:
            (rope, attn), batched = self.perf.attention_ns(new, kv, 1), 0
        else:
            rope, attn, batched = self._sharded_attention(new, kv, decoding)
        m, e = self.model, self.elem
        return Attention(tuple(request_ids), new, kv, rope, attn, (m.q_size + m.kv_size) * e, m.kv_size * e,
                         m.q_size * e, batched)

    def _sharded_attention(self, new: np.ndarray, kv: np.ndarray, decoding: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The first requests (prompts) priced on their own, the last `decoding` in one batched kernel."""
        prefill = len(new) - decoding
        rope, attn = self.perf.attention_ns(new[:prefill], kv[:prefill], self.tp) if prefill else (NO_NS, NO_NS)
        overlap = int(attn.sum()) if prefill else 0
        batched = self.perf.decode_attention_ns(kv[prefill:], self.tp, overlap) if decoding else 0
        return rope, attn, batched

    def _layer(self, tokens: int) -> tuple[tuple[Row, ...], tuple[Row, ...]]:
        """A decoder layer's rows before and after its attention."""
        m = self.model
        norm_weight = m.norm_parameters
        before = (self._elementwise("input_layernorm", tokens, m.hidden_size, norm_weight),
                  self._linear("q_proj", tokens), self._linear("k_proj", tokens), self._linear("v_proj", tokens))
        after = [self._linear("o_proj", tokens, all_reduce=True),
                 self._elementwise("post_layernorm", tokens, m.hidden_size, norm_weight)]
        for name in m.mlp_layers():
            if name == "act_fn":
                after.append(self._elementwise("act_fn", tokens, m.intermediate_size))
            else:
                after.append(self._linear(name, tokens, all_reduce=name in ("down_proj", "fc2")))
        return before, tuple(after)

    def _head(self, tokens: int, requests: int) -> list[Row]:
        m, e = self.model, self.elem
        norm_weight = m.norm_parameters
        lm_weight = m.vocab_size * m.hidden_size * e
        # Only the last token of each request reaches the LM head.
        rows = [self._elementwise("final_layernorm", tokens, m.hidden_size, norm_weight),
                Row("lm_head", self._latency("lm_head", requests), requests * m.hidden_size * e, lm_weight,
                    requests * m.vocab_size * e)]
        if self.sampler_bw_gbps:
            rows.append(self._sampler(requests))
        return rows

    def _sampler(self, requests: int) -> Row:
        """Sampling from the logits, memory bound: the logits are converted to fp32, turned into
        probabilities and sampled, three passes that each read and write requests x vocab fp32
        values (bytes / GB/s = ns)."""
        logits = requests * self.model.vocab_size
        return Row("sampler", round(3 * 2 * 4 * logits / self.sampler_bw_gbps), logits * self.elem, 0,
                   requests * TOKEN_ID_BYTES)
