"""The performance-provider interface: the latency of one layer on one NPU for a given shape.

Providers are built from (model, hardware, precision) and registered under the name a hardware
file's `provider` key uses (PROVIDERS); `PerfProvider.latency_ns` caches every answer per shape,
the paper's computation reuse.

Shape arguments (layer names in layers.py):
  tokens   -- tokens entering the layer in this iteration (sum over the batch), or, for
              `rope` and `attn`, the new tokens of one request (prompt or chunk length, 1 when
              decoding).
  kv_cache -- for `rope`/`attn` only: tokens of that request already in the KV cache.
  tp       -- the tensor-parallel degree whose shard this NPU runs (shard.py: the one rule).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..inputs.hardware import Hardware
from ..inputs.model import ModelConfig
from ..registry import Registry

PROVIDERS = Registry("performance provider", "--perf-model", {
    "aiconfigurator": ".perf.aiconfigurator:AIConfiguratorProvider",
    "npu": ".perf.npu:NpuProvider",
    "csv": ".perf.csv_provider:CsvProvider",
})


def provider_names() -> list[str]:
    return PROVIDERS.names()


class PerfProvider(ABC):
    """Latency provider with a per-shape cache; subclasses implement `_latency_ns`."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int, int], int] = {}
        self._decode_columns: dict[tuple[str, int], np.ndarray] = {}  # (layer, tp) -> ns by KV length, -1 unknown
        self.lookups = 0
        self.hits = 0

    @classmethod
    def build(cls, model: ModelConfig, hardware: Hardware, fp_bits: int) -> "PerfProvider":
        return cls(model, hardware, fp_bits)

    def latency_ns(self, layer: str, tokens: int, kv_cache: int = 0, tp: int = 1) -> int:
        key = (layer, tokens, kv_cache, tp)
        self.lookups += 1
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        value = round(self._latency_ns(layer, tokens, kv_cache, tp))
        self._cache[key] = value
        return value

    def persist(self) -> None:
        """Keeps what this run computed for later runs (providers with an on-disk answer cache)."""

    @abstractmethod
    def _latency_ns(self, layer: str, tokens: int, kv_cache: int, tp: int) -> float:
        """Latency in ns of `layer` for this shape on one NPU."""

    def attention_ns(self, new_tokens: np.ndarray, kv_caches: np.ndarray, tp: int) -> tuple[np.ndarray, np.ndarray]:
        """(rope, attn) ns of each request as its own kernel: latency_ns's answers for a whole batch
        (int64 arrays); the decoding requests' come from a column per layer indexed by KV length."""
        rope, attn = np.empty(len(new_tokens), np.int64), np.empty(len(new_tokens), np.int64)
        decoding = new_tokens == 1
        if decoding.all():
            return self._decode_ns("rope", kv_caches, tp), self._decode_ns("attn", kv_caches, tp)
        rope[decoding] = self._decode_ns("rope", kv_caches[decoding], tp)
        attn[decoding] = self._decode_ns("attn", kv_caches[decoding], tp)
        for i in np.flatnonzero(~decoding).tolist():
            tokens, kv = int(new_tokens[i]), int(kv_caches[i])
            rope[i], attn[i] = self.latency_ns("rope", tokens, kv, tp), self.latency_ns("attn", tokens, kv, tp)
        return rope, attn

    def _decode_ns(self, layer: str, kv_caches: np.ndarray, tp: int) -> np.ndarray:
        """latency_ns(layer, 1, kv, tp) for every kv of the array."""
        column = self._decode_columns.get((layer, tp))
        if len(kv_caches) == 0:
            return np.empty(0, np.int64)
        longest = int(kv_caches.max())
        if column is None or longest >= len(column):
            grown = np.full(max(2 * longest + 1, 1024), -1, np.int64)
            if column is not None:
                grown[:len(column)] = column
            column = self._decode_columns[(layer, tp)] = grown
        answers = column[kv_caches]
        unknown = sorted(set(kv_caches[answers < 0].tolist()))
        self.lookups += len(kv_caches) - len(unknown)
        self.hits += len(kv_caches) - len(unknown)
        for kv in unknown:
            column[kv] = self.latency_ns(layer, 1, kv, tp)
        return column[kv_caches] if unknown else answers

    def decode_attention_ns(self, kv_caches: np.ndarray, tp: int, overlap_ns: int = 0) -> int:
        """rope and attention of one decode step of a whole batch (one request per entry, each
        with its cached tokens), heads split by tp; `overlap_ns` of prefill attention runs in the
        same kernel. Providers with a batched kernel model override this; by default the
        requests' single-request latencies add up."""
        rope, attn = self.attention_ns(np.ones(len(kv_caches), np.int64), kv_caches, tp)
        return int(rope.sum() + attn.sum())


def build_provider(model: ModelConfig, hardware: Hardware, fp_bits: int) -> PerfProvider:
    """The provider the hardware names, built for this model and precision."""
    return PROVIDERS.get(hardware.provider).build(model, hardware, fp_bits)
