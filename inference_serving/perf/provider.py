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

A mixture-of-experts layer's routed experts are priced as a whole by `moe_ns` (perf/experts.py's
routing of one iteration's tokens).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ..config.types import MAX_DURATION_NS
from ..errors import InputError
from ..inputs.hardware import Hardware, check_provider_fields
from ..inputs.model_config import ModelConfig
from .experts import EXPERT_LAYERS, ExpertRouting
from .precision import Precision
from .registry import PROVIDERS


class PerfProvider(ABC):
    """Latency provider with a per-shape cache; subclasses implement `_latency_ns`."""

    fixed_flags: ClassVar[dict[str, str]] = {}  # flag -> why this provider's measurements fix its quantity
    # exact shortcuts in pricing (the compiled FlashAttention-2 schedule); False: the Python reference
    # (tests/test_exact_pricing.py; --no-reuse switches it off, simulate.build_instance)
    reuse = True

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int, int], int] = {}
        self._moe_cache: dict[ExpertRouting, int] = {}
        self.lookups = 0
        self.hits = 0
        self.ragged = True  # decode attention by a provider's kernel schedule of ragged batches (--no-ragged: off)
        self.mixed_unpacking = True  # ... with a mixed step's decodes unpacked (--no-mixed-unpacking: packed)

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
        value = self._latency_ns(layer, tokens, kv_cache, tp)
        if not 0 <= value <= MAX_DURATION_NS:  # nan included
            raise InputError(f"the performance model gives '{layer}' at {tokens} tokens a latency of {value:g} ns, "
                             f"outside [0, {MAX_DURATION_NS:g}] ns; check the bandwidth and clock it was given "
                             f"(--local_bw, the hardware file's memory_bw_gbps and clock_ghz, or the profiled CSV)")
        self._cache[key] = round(value)
        return self._cache[key]

    def persist(self) -> None:
        """Keeps what this run computed for later runs (providers with an on-disk answer cache)."""

    @abstractmethod
    def _latency_ns(self, layer: str, tokens: int, kv_cache: int, tp: int) -> float:
        """Latency in ns of `layer` for this shape on one NPU."""

    def decode_attention_ns(self, kv_caches: list[int], tp: int, prefills: list[tuple[int, int]] = ()) -> int:
        """rope and attention of one decode step of a whole batch (one request per entry, each
        with its cached tokens), heads split by tp; `prefills` (new tokens, cached tokens) are the
        step's prompt chunks, priced by their own rows. Providers with a batched kernel model
        override this; by default the requests' single-request latencies add up."""
        return sum(self.latency_ns("rope", 1, kv, tp) + self.latency_ns("attn", 1, kv, tp) for kv in kv_caches)

    def moe_ns(self, routing: ExpertRouting) -> int:
        """The routed experts of one MoE layer, on the rank that finishes last (cached per routing)."""
        cached = self._moe_cache.get(routing)
        if cached is None:
            cached = self._moe_cache[routing] = round(self._moe_ns(routing))
        return cached

    def _moe_ns(self, routing: ExpertRouting) -> float:
        """Each rank runs its experts one after the other, every expert with tokens as ordinary
        GEMMs (gate, up, activation, down) at the tokens routed to it; the slowest rank's sum.
        Providers with a measured fused MoE kernel override this."""
        return max(sum(self.latency_ns(layer, tokens, 0, routing.tp) for tokens in counts if tokens
                       for layer in EXPERT_LAYERS) for counts in routing.per_rank)

    def collective_table(self, tp: int, dp: int = 1) -> dict | None:
        """Measured collective times for the engine (astra-sim/README.md, "Measured collective table"),
        or None: the engine times every collective on the nominal link."""
        return None


def build_provider(model: ModelConfig, hardware: Hardware, precision: int | Precision) -> PerfProvider:
    """The provider the hardware names, built for this model and precision (a Precision, or --fp's
    bits for every format)."""
    cls = PROVIDERS.get(hardware.provider)
    check_provider_fields(hardware)
    return cls.build(model, hardware, precision)
