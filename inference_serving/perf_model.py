"""Performance model: the latency of one layer on one NPU for a given shape.

Providers (profiled CSV, measured GPU operators, analytical NPU) implement `_latency_ns`;
`PerfModel.latency_ns` caches every answer per shape, the paper's computation reuse.

Layer names are those of the trace: embedding, input_layernorm, q_proj, k_proj, v_proj, rope,
attn, o_proj, post_layernorm, gate_proj, up_proj, act_fn, down_proj (fc1/fc2 for OPT-style
MLPs), final_layernorm, lm_head.

Shape arguments:
  tokens   -- tokens entering the layer in this iteration (sum over the batch), or, for
              `rope` and `attn`, the new tokens of one request (prompt or chunk length, 1 when
              decoding).
  kv_cache -- for `rope`/`attn` only: tokens of that request already in the KV cache.
  tp       -- the tensor-parallel shard this NPU runs: projections split their output (q/k/v,
              gate/up, fc1) or input (o_proj, down_proj, fc2) features by tp, attention its
              heads; norms, embedding and element-wise layers are not split (they see all
              tokens of the hidden state).
"""
from __future__ import annotations

from abc import ABC, abstractmethod


class PerfModelError(ValueError):
    """A performance model that cannot answer (bad file, unknown layer, unsupported shape)."""


class PerfModel(ABC):
    """Latency provider with a per-shape cache; subclasses implement `_latency_ns`."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int, int], int] = {}
        self.lookups = 0
        self.hits = 0

    def latency_ns(self, layer: str, tokens: int, kv_cache: int = 0, tp: int = 1) -> int:
        key = (layer, tokens, kv_cache, tp)
        self.lookups += 1
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        value = int(self._latency_ns(layer, tokens, kv_cache, tp))
        self._cache[key] = value
        return value

    @abstractmethod
    def _latency_ns(self, layer: str, tokens: int, kv_cache: int, tp: int) -> float:
        """Latency in ns of `layer` for this shape on one NPU."""
