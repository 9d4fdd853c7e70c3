"""Analytical NPU: a weight-stationary systolic array, a vector unit and device memory (roofline).

The paper evaluates an NPU with a 128x128 systolic array at 1 GHz, 936 GB/s of device memory and
64 GB/s NPU-to-NPU links (hardware/NPU.yaml). Symbols: R x C array (`array_rows` x `array_cols`),
clock f GHz, V vector lanes, memory bandwidth B GB/s (= bytes/ns), e = fp bits / 8 bytes per activation
element, w and c the bytes of a weight and of a KV-cache element (--weight-dtype, --kv-dtype; e by default).

GEMM  (M x K activations times a K x N weight; M = tokens).  The array holds one R x C tile of the
      weight (K along rows, N along columns): ceil(K/R) * ceil(N/C) tiles, each costing
          R            cycles to fill the tile's weights (one array row per cycle),
        + M            cycles to stream the M activation rows through it,
        + R + C - 2    cycles of skew and drain until the last partial sum leaves the array;
      compute = ceil(K/R) * ceil(N/C) * (2R + C + M - 2) cycles (no overlap between tiles; a partial
      edge tile occupies the array as long as a full one). The array does one multiply-add per PE
      per cycle at any width. Memory traffic: weight K*N at w (+ N bias at e) + input M*K + output M*N at e.
Vector unit: V element operations per cycle; an op of n element operations takes ceil(n / V) cycles.
      Operations per element: RMSNorm 4 (square, accumulate, scale, weight), LayerNorm 7 (mean,
      subtract, square, accumulate, scale, weight, bias), gated act_fn 4 per output (SiLU's exp, add,
      divide, times up), plain act_fn 3, rope 3 per rotated element (x cos, rotate(x) sin, add),
      softmax 5 per score (max, subtract, exp, sum, divide), learned positions 1 per embedding element.
Attention of one request: t new tokens after c cached, L = c + t keys, Hq query heads and Hk KV
      heads of this shard, head size d, g = ceil(Hq/Hk) query heads per KV head. Per KV head, the g
      heads' queries stream together against the stationary keys and values (GQA shares the tile):
      Hk * (GEMM(M=g*t, K=d, N=L) + GEMM(M=g*t, K=L, N=d)) array cycles, then softmax over
      Hq * t * L scores on the vector unit, in sequence (no fused attention kernel; every query sees
      all L keys, the causal mask saves nothing). Scores stay on chip. Memory: Q and output
      2*t*Hq*d at e, cached and new K and V read 2*L*Hk*d and the new K and V written 2*t*Hk*d at c.
Every layer: latency = max(compute cycles / f, bytes / B) ns -- the roofline of its own op.
Sharding (tp) by shard.py's rule: column-parallel projections split N, row-parallel ones K,
attention its heads (KV heads divided or replicated), act_fn its features; norms, the embedding and
an MoE router see the whole hidden state; routed experts are GEMMs of the tokens routed to each
(PerfProvider.moe_ns). Models with learned positions (OPT, GPT-3) have no rotary embedding: rope 0.
"""
from __future__ import annotations

import math

from ..errors import InputError
from ..inputs.hardware import Hardware
from ..inputs.model_config import ModelConfig
from .layers import ACTIVATIONS, LAYERS, NORMS, PROJECTIONS
from .precision import Precision, as_precision
from .provider import PerfProvider
from .shard import shard

TOKEN_ID_BYTES = 4
RMSNORM_OPS = 4
LAYERNORM_OPS = 7
GATED_ACT_OPS = 4
ACT_OPS = 3
ROPE_OPS = 3
SOFTMAX_OPS = 5
POSITION_ADD_OPS = 1



class NpuProvider(PerfProvider):
    """Layer latencies of a systolic-array NPU from its array shape, clock and memory bandwidth."""

    def __init__(self, model: ModelConfig, hardware: Hardware, precision: int | Precision) -> None:
        super().__init__()
        self.model = model
        self.rows, self.cols = hardware.array_rows, hardware.array_cols
        self.clock_ghz = hardware.clock_ghz
        self.lanes = hardware.vector_lanes or hardware.array_cols
        self.bandwidth = hardware.memory_bw_gbps  # GB/s = bytes per ns
        precision = as_precision(precision)
        self.elem = precision.fp_bits / 8
        self.weight_elem = precision.weight_bits / 8
        self.kv_elem = precision.kv_bits / 8

    # --- building blocks ----------------------------------------------------------------------

    def gemm_cycles(self, m: int, k: int, n: int) -> int:
        """Weight-stationary tiling: per R x C weight tile, fill R + stream M + drain R + C - 2."""
        tiles = math.ceil(k / self.rows) * math.ceil(n / self.cols)
        return tiles * (2 * self.rows + self.cols + m - 2)

    def vector_cycles(self, operations: float) -> int:
        return math.ceil(operations / self.lanes)

    def roofline_ns(self, cycles: float, elements: float, extra_bytes: float = 0.0) -> float:
        """max(compute, memory): cycles at the clock against `elements` activations (+ extra bytes) at
        the bandwidth."""
        return max(cycles / self.clock_ghz, (elements * self.elem + extra_bytes) / self.bandwidth)

    # --- layers ---------------------------------------------------------------------------------

    def _linear_ns(self, layer: str, tokens: int, tp: int) -> float:
        k, n = shard(self.model, tp).linear(layer)
        bias = n if self.model.has_bias and layer != "lm_head" else 0
        return self.roofline_ns(self.gemm_cycles(tokens, k, n), bias + tokens * k + tokens * n,
                                k * n * self.weight_elem)

    def _embedding_ns(self, tokens: int) -> float:
        h = self.model.hidden_size
        elements = 2 * tokens * h  # gathered rows in, hidden states out
        ops = 0
        if self.model.learned_positions:
            elements += tokens * h
            ops = POSITION_ADD_OPS * tokens * h
        return self.roofline_ns(self.vector_cycles(ops), elements, tokens * TOKEN_ID_BYTES)

    def _norm_ns(self, tokens: int) -> float:
        h = self.model.hidden_size
        layer_norm = self.model.has_bias
        ops = (LAYERNORM_OPS if layer_norm else RMSNORM_OPS) * tokens * h
        weights = 2 * h if layer_norm else h
        return self.roofline_ns(self.vector_cycles(ops), 2 * tokens * h + weights)

    def _act_ns(self, layer: str, tokens: int, tp: int) -> float:
        features = shard(self.model, tp).act_features(layer)
        if self.model.gated_mlp:
            return self.roofline_ns(self.vector_cycles(GATED_ACT_OPS * tokens * features), 3 * tokens * features)
        return self.roofline_ns(self.vector_cycles(ACT_OPS * tokens * features), 2 * tokens * features)

    def _rope_ns(self, tokens: int, tp: int) -> float:
        if self.model.learned_positions:
            return 0.0
        d = self.model.head_dim
        part = shard(self.model, tp)
        rotated = tokens * (part.heads + part.kv_heads) * d
        # q and k read and written; cos and sin of each position (d/2 values each) read
        return self.roofline_ns(self.vector_cycles(ROPE_OPS * rotated), 2 * rotated + tokens * d)

    def attention_cycles(self, tokens: int, kv_cache: int, tp: int) -> tuple[int, int]:
        """(array cycles of QK^T and PV, vector cycles of softmax) for one request."""
        d, keys = self.model.head_dim, kv_cache + tokens
        q_heads, kv_heads = shard(self.model, tp).heads, shard(self.model, tp).kv_heads
        streamed = math.ceil(q_heads / kv_heads) * tokens
        array = kv_heads * (self.gemm_cycles(streamed, d, keys) + self.gemm_cycles(streamed, keys, d))
        return array, self.vector_cycles(SOFTMAX_OPS * q_heads * tokens * keys)

    def _attention_ns(self, tokens: int, kv_cache: int, tp: int) -> float:
        d, keys = self.model.head_dim, kv_cache + tokens
        q_heads, kv_heads = shard(self.model, tp).heads, shard(self.model, tp).kv_heads
        array, vector = self.attention_cycles(tokens, kv_cache, tp)
        kv_bytes = (2 * keys * kv_heads * d + 2 * tokens * kv_heads * d) * self.kv_elem
        return self.roofline_ns(array + vector, 2 * tokens * q_heads * d, kv_bytes)

    def _latency_ns(self, layer: str, tokens: int, kv_cache: int, tp: int) -> float:
        if layer not in LAYERS:
            raise InputError(f"unknown layer '{layer}' for the NPU perf model; known: {', '.join(sorted(LAYERS))}")
        if tokens == 0:
            return 0.0
        if layer in PROJECTIONS:
            return self._linear_ns(layer, tokens, tp)
        if layer in NORMS:
            return self._norm_ns(tokens)
        if layer == "embedding":
            return self._embedding_ns(tokens)
        if layer in ACTIVATIONS:
            return self._act_ns(layer, tokens, tp)
        if layer == "rope":
            return self._rope_ns(tokens, tp)
        return self._attention_ns(tokens, kv_cache, tp)
