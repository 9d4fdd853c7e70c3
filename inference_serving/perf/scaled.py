"""Performance model for a GPU that no aiconfigurator-core table has measured (`provider: scaled`).

A hardware file names a measured `sibling` of the same architecture (RTX 3090 -> A100: both Ampere)
and the GPU's own datasheet numbers. Every operator is priced by the sibling's measured tables at its
shape (AIConfiguratorProvider), then scaled by the datasheet ratio of what bounds it there:

  work      FLOPs F (tensor cores, in the op's dtype) and device-memory bytes B of the op
            at its shape: GEMM 2mnk FLOPs, weights + input + output bytes; attention 4 FLOPs per
            query-key pair and head dimension, Q, output and K/V bytes (functions below).
  roofline  T(gpu) = max(F / peak FLOP/s, B / memory bandwidth): an op whose
            intensity F/B is above both GPUs' ridge points (peak / bandwidth) gets the FLOP ratio,
            one below both the bandwidth ratio, one in between the ratio of its two bounds.
  fixed     the sibling's time of the same kernel at its smallest measured shape (launch and
            synchronisation, the same on either GPU); it is not scaled.
  time      target = fixed + (sibling - fixed) * T(target) / T(sibling).

Element-wise ops (norms, activation, rope, embedding) do no tensor-core work: their ratio is the
bandwidth ratio whatever their size. Collectives are not scaled: a scaled GPU's all-reduce runs on the
engine's link model of its own interconnect (`collective_table` is None). Nothing here is fitted: the
ratios are datasheet figures, the fixed times the sibling's own measurements. README "GPUs priced
from a measured sibling" reports how well this reproduces measured GPUs held out of the tables.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..inputs.hardware import Hardware
from ..inputs.model_config import ModelConfig
from .aiconfigurator import AIConfiguratorProvider
from .aiconfigurator_systems import hardware_spec
from .experts import ExpertRouting
from .layers import PROJECTIONS
from .provider import PerfProvider
from .precision import Precision, as_precision
from .shard import shard

# The smallest GEMM the tables measure (m = 1, n = k = 32): its time is the GEMM kernel's fixed cost.
FIXED_GEMM = "fixed_gemm"
SMALLEST_GEMM_NK = 32
BF16_BYTES = 2  # activations and attention outputs stay bf16 at --fp 8 (vLLM's FP8 checkpoints)
# weight format -> the tensor peak its GEMMs run at (int8 is weight-only: the math runs in bf16)
GEMM_DTYPES = {"bf16": "bf16", "fp8": "fp8", "int8": "bf16"}


@dataclass(frozen=True)
class Work:
    """What one op does: tensor FLOPs (of `dtype`) and device-memory bytes."""

    flops: float = 0.0
    memory_bytes: float = 0.0
    dtype: str = "bf16"


STREAMING = Work(memory_bytes=1.0)  # element-wise ops: only the bandwidth ratio matters, whatever the bytes


@dataclass(frozen=True)
class Datasheet:
    """The peaks a roofline needs: dense tensor TFLOP/s per dtype and memory GB/s."""

    name: str
    tflops: dict[str, float]
    memory_bw_gbps: float

    def roofline_s(self, work: Work) -> float:
        compute = work.flops / (self.tflops[work.dtype] * 1e12) if work.flops else 0.0
        return max(compute, work.memory_bytes / (self.memory_bw_gbps * 1e9))


def datasheet_of_hardware(hardware: Hardware) -> Datasheet:
    return Datasheet(hardware.name, dict(hardware.peak_tflops), hardware.memory_bw_gbps)


def datasheet_of_system(name: str) -> Datasheet:
    """A measured GPU's peaks as the package's system YAML states them (those its tables go with)."""
    spec = hardware_spec(name)
    peaks = {"bf16": spec.bf16_tflops, **({"fp8": spec.fp8_tflops} if spec.fp8_tflops else {})}
    return Datasheet(spec.name, peaks, spec.memory_bw_gbps)


def roofline_ratio(work: Work, target: Datasheet, sibling: Datasheet) -> float:
    """How much longer `work` takes on the target than on the sibling, by their rooflines."""
    return target.roofline_s(work) / sibling.roofline_s(work)


def scaled_ms(sibling_ms: float, fixed_ms: float, ratio: float) -> float:
    """The sibling's time with its size-dependent part scaled by `ratio` and its fixed part kept."""
    fixed = min(fixed_ms, sibling_ms)
    return fixed + (sibling_ms - fixed) * ratio


def is_gemm(layer: str) -> bool:
    return layer in PROJECTIONS


def gemm_work(m: int, n: int, k: int, weight_bytes: float, dtype: str) -> Work:
    """m x k activations times a k x n weight: weights and input in the GEMM's width, output in bf16."""
    return Work(flops=2.0 * m * n * k, memory_bytes=(n * k + m * k) * weight_bytes + m * n * BF16_BYTES,
                dtype=dtype)


def decode_attention_work(batch: int, context: int, q_heads: int, kv_heads: int, head_dim: int,
                          kv_bytes: float) -> Work:
    """One new token per request against `context` keys: QK^T and PV (2 FLOPs per multiply-add each),
    every request's K and V read once, its query read and output written."""
    flops = 4.0 * batch * context * q_heads * head_dim
    memory = batch * (2 * context * kv_heads * head_dim * kv_bytes + 2 * q_heads * head_dim * BF16_BYTES)
    return Work(flops=flops, memory_bytes=memory)


def prefill_attention_work(tokens: int, prefix: int, q_heads: int, kv_heads: int, head_dim: int,
                           kv_bytes: float) -> Work:
    """`tokens` new queries after `prefix` cached keys, causal: query i sees prefix + i + 1 keys.
    Bytes: queries and outputs, cached and new K/V read once, new K/V written."""
    pairs = tokens * prefix + tokens * (tokens + 1) / 2
    memory = (2 * tokens * q_heads * head_dim * BF16_BYTES
              + 2 * (prefix + tokens) * kv_heads * head_dim * kv_bytes + 2 * tokens * kv_heads * head_dim * kv_bytes)
    return Work(flops=4.0 * pairs * q_heads * head_dim, memory_bytes=memory)


class ScaledProvider(AIConfiguratorProvider):
    """The sibling's measured operators, each scaled to the target GPU by its roofline ratio."""

    fixed_flags = {}  # the target's bandwidth is a datasheet input: --local_bw scales the memory-bound ops

    def __init__(self, model: ModelConfig, hardware: Hardware, precision: int | Precision) -> None:
        precision = as_precision(precision)
        self.target = datasheet_of_hardware(hardware)
        self.sibling = datasheet_of_system(hardware.sibling)
        if precision.weight not in GEMM_DTYPES:
            raise InputError(f"the scaled perf model prices --fp 16 and --fp 8, not {precision.weight_flag}")
        self.gemm_dtype = GEMM_DTYPES[precision.weight]
        self.weight_bytes = precision.weight_bits / 8
        self.kv_bytes = precision.kv_bits / 8
        self._fixed: dict[tuple[str, int, bool], float] = {}
        for sheet in (self.target, self.sibling):
            if self.gemm_dtype not in sheet.tflops:
                raise InputError(f"{sheet.name}: no {self.gemm_dtype} tensor peak for {precision.weight_flag}")
        super().__init__(model, hardware, precision, system=hardware.sibling)
        self.table = f"{self.table} of {self.spec.name}, scaled to {hardware.name}"

    def collective_table(self, tp: int, dp: int = 1) -> dict | None:
        """The sibling's measured collectives belong to its interconnect: the link model instead."""
        return None

    def _moe_ns(self, routing: ExpertRouting) -> float:
        """The sibling's fused MoE kernel is not scaled as a whole: the experts are priced one by one as
        scaled GEMMs (PerfProvider.moe_ns)."""
        return PerfProvider._moe_ns(self, routing)

    def _operation(self, layer: str, tp: int, prefill: bool):
        if layer == FIXED_GEMM:
            from aiconfigurator_core.sdk import common
            from aiconfigurator_core.sdk import operations as aic_ops

            quant = common.GEMMQuantMode[self.gemm_quant]
            return aic_ops.GEMM(layer, 1, SMALLEST_GEMM_NK, SMALLEST_GEMM_NK, quant)
        return super()._operation(layer, tp, prefill)

    def _work(self, layer: str, tp: int, prefill: bool, s: int, prefix: int, x: int | None, batch: int) -> Work:
        """FLOPs and bytes of `layer` at the shape the engine is asked for."""
        if is_gemm(layer):
            k, n = shard(self.model, tp).linear(layer)
            if layer == "router":  # kept in bf16 at any --fp, as AIConfiguratorProvider prices it
                return gemm_work(x, n, k, BF16_BYTES, "bf16")
            return gemm_work(x, n, k, self.weight_bytes, self.gemm_dtype)
        if layer == "attn":
            part = shard(self.model, tp)
            heads = (part.heads, part.kv_heads, self.model.head_dim)
            if prefill:
                return prefill_attention_work(s, prefix, *heads, kv_bytes=self.kv_bytes)
            return decode_attention_work(batch, s, *heads, kv_bytes=self.kv_bytes)
        return STREAMING

    def fixed_ms(self, layer: str, tp: int, prefill: bool) -> float:
        """The sibling's time of this op's kernel at its smallest shape: the tables' smallest GEMM,
        attention of one token over one key (prefill: a one-token prompt), one value all-reduced,
        one token through an element-wise op."""
        key = (FIXED_GEMM, 1, True) if is_gemm(layer) else (layer, tp, prefill)
        if key not in self._fixed:
            self._fixed[key] = super()._evaluate_ms(key[0], key[1], prefill=key[2], s=1, x=1)
        return self._fixed[key]

    def _evaluate_ms(
        self, layer: str, tp: int, *, prefill: bool, s: int, prefix: int = 0, x: int | None = None, batch: int = 1
    ) -> float:
        measured = super()._evaluate_ms(layer, tp, prefill=prefill, s=s, prefix=prefix, x=x, batch=batch)
        ratio = roofline_ratio(self._work(layer, tp, prefill, s, prefix, x, batch), self.target, self.sibling)
        return scaled_ms(measured, self.fixed_ms(layer, tp, prefill), ratio)
