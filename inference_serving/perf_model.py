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
              heads, act_fn its intermediate features; norms and the embedding are not
              split (they see the whole hidden state of every token).
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


SHARDED_LAYERS = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                            "fc1", "fc2", "lm_head", "rope", "attn", "act_fn"})
ATTENTION_LAYERS = frozenset({"rope", "attn"})
CSV_COLUMNS = ("hardware", "model", "layer_name", "input", "kv_cache", "latency(ns)")


def _interpolate(points: list[tuple[int, float]], x: int) -> float:
    """Piecewise-linear latency over profiled sizes.

    Inside the profiled range: linear between the two neighbouring points. Below the smallest
    point: that point's latency (small shapes are dominated by fixed launch cost). Above the
    largest: scaled in proportion to the size (work grows linearly once the device is busy).
    """
    xs = [p[0] for p in points]
    if x <= xs[0]:
        return points[0][1]
    if x >= xs[-1]:
        return points[-1][1] * x / xs[-1] if xs[-1] > 0 else points[-1][1]
    hi = next(i for i, value in enumerate(xs) if value >= x)
    (x0, y0), (x1, y1) = points[hi - 1], points[hi]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class CsvPerfModel(PerfModel):
    """The original tool's profile format: `hardware,model,layer_name,input,kv_cache,latency(ns)`.

    Latencies are of the whole layer on one device (tensor-parallel degree 1). Non-attention
    layers are interpolated over `input` (tokens); `rope`/`attn` first over `kv_cache` within each
    profiled `input`, then over `input` (see `_interpolate` for the rule outside the range).
    Under tensor parallelism the sharded layers (SHARDED_LAYERS) take latency / tp.
    """

    def __init__(self, path: str, hardware: str, model_name: str) -> None:
        super().__init__()
        self.path = path
        self.table: dict[str, dict[int, list[tuple[int, float]]]] = self._read(path, hardware, model_name)

    @staticmethod
    def _read(path: str, hardware: str, model_name: str) -> dict[str, dict[int, list[tuple[int, float]]]]:
        import csv
        try:
            handle = open(path, newline="")
        except OSError as err:
            raise PerfModelError(f"{path}: cannot read the performance model ({err.strerror})") from None
        table: dict[str, dict[int, list[tuple[int, float]]]] = {}
        with handle:
            reader = csv.DictReader(handle)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise PerfModelError(f"{path}: missing column(s) {', '.join(missing)}; "
                                     f"expected header {','.join(CSV_COLUMNS)}")
            for line, row in enumerate(reader, start=2):
                if row["hardware"] != hardware or row["model"] != model_name:
                    continue
                try:
                    tokens, kv, latency = int(row["input"]), int(row["kv_cache"]), float(row["latency(ns)"])
                except (TypeError, ValueError):
                    raise PerfModelError(f"{path}:{line}: input and kv_cache must be integers and "
                                         f"latency(ns) a number") from None
                if tokens < 0 or kv < 0 or latency < 0:
                    raise PerfModelError(f"{path}:{line}: negative value")
                table.setdefault(row["layer_name"], {}).setdefault(tokens, []).append((kv, latency))
        if not table:
            raise PerfModelError(f"{path}: no rows for hardware '{hardware}' and model '{model_name}'")
        for by_tokens in table.values():
            for points in by_tokens.values():
                points.sort()
        return table

    def _latency_ns(self, layer: str, tokens: int, kv_cache: int, tp: int) -> float:
        if tokens == 0:
            return 0.0
        by_tokens = self.table.get(layer)
        if by_tokens is None:
            raise PerfModelError(f"{self.path}: no rows for layer '{layer}' "
                                 f"(profiled layers: {', '.join(sorted(self.table))})")
        key = kv_cache if layer in ATTENTION_LAYERS else 0
        per_tokens = sorted((t, _interpolate(points, key)) for t, points in by_tokens.items())
        latency = _interpolate(per_tokens, tokens)
        return latency / tp if layer in SHARDED_LAYERS else latency
