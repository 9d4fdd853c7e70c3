"""The performance-provider interface: the latency of one layer on one NPU for a given shape.

Providers are built from (model, hardware, precision: perf/precision.py) and registered under the name a hardware
file's `provider` key uses (registry.py); `PerfProvider.latency_ns` caches every answer per shape,
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

from ..inputs.hardware import Hardware, check_provider_fields
from ..inputs.model_config import ModelConfig
from .precision import Precision
from .registry import PROVIDERS


class PerfProvider(ABC):
    """Latency provider with a per-shape cache; subclasses implement `_latency_ns`."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int, int], int] = {}
        self.lookups = 0
        self.hits = 0

    @classmethod
    def build(cls, model: ModelConfig, hardware: Hardware, precision: int | Precision) -> "PerfProvider":
        return cls(model, hardware, precision)

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

    @abstractmethod
    def _latency_ns(self, layer: str, tokens: int, kv_cache: int, tp: int) -> float:
        """Latency in ns of `layer` for this shape on one NPU."""

    def decode_attention_ns(self, kv_caches: list[int], tp: int, overlap_ns: int = 0) -> int:
        """rope and attention of one decode step of a whole batch (one request per entry, each
        with its cached tokens), heads split by tp; `overlap_ns` of prefill attention runs in the
        same kernel. Providers with a batched kernel model override this; by default the
        requests' single-request latencies add up."""
        return sum(self.latency_ns("rope", 1, kv, tp) + self.latency_ns("attn", 1, kv, tp) for kv in kv_caches)

    def collective_table(self, tp: int) -> dict | None:
        """Measured collective times for the engine (astra-sim/README.md, "Measured collective table"),
        or None: the engine times every collective on the nominal link."""
        return None


def build_provider(model: ModelConfig, hardware: Hardware, precision: int | Precision) -> PerfProvider:
    """The provider the hardware names, built for this model and precision (a Precision, or --fp's
    bits for every format)."""
    cls = PROVIDERS.get(hardware.provider)
    check_provider_fields(hardware)
    return cls.build(model, hardware, precision)
