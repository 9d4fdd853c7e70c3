"""Performance model on the measured per-operator GPU latencies of `aiconfigurator-core`.

The package ships latency tables measured on real GPUs (GEMM, context and generation
attention, all-reduce) per system, serving framework and version, and a compiled engine that
interpolates between measured shapes. This provider builds one aiconfigurator operation per
(layer, tp) and asks that engine for its latency at the requested shape. See
docs/perf_aiconfigurator.md for the layer-to-operation mapping and the measured call cost.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import aiconfigurator_core
import yaml
from aiconfigurator_core.sdk import attention_lanes, common, perf_database
from aiconfigurator_core.sdk import operations as aic_ops
from aiconfigurator_core.sdk.engine import EngineHandle, build_ops_json
from aiconfigurator_core.sdk.operations.attention import resolved_lane_order_for_op

from .model import ModelConfig
from .perf_model import PerfModel, PerfModelError

SYSTEMS_DIR = Path(aiconfigurator_core.__file__).resolve().parent / "systems"

# User-facing hardware names of the package's systems (SXM / server variants).
HARDWARE_ALIASES = {
    "A100": "a100_sxm",
    "H100": "h100_sxm",
    "H200": "h200_sxm",
    "B200": "b200_sxm",
    "B300": "b300_sxm",
    "GB200": "gb200",
    "GB300": "gb300",
    "L40S": "l40s",
    "RTXPRO6000": "rtx_pro_6000_server",
    "B60": "b60",
}

# vLLM first: the serving system we validate against.
BACKEND_PREFERENCE = ("vllm", "sglang", "trtllm")

COLUMN_PARALLEL = {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "fc1"}
ROW_PARALLEL = {"o_proj", "down_proj", "fc2"}
NORMS = {"input_layernorm", "post_layernorm", "final_layernorm"}
LAYERS = COLUMN_PARALLEL | ROW_PARALLEL | NORMS | {"lm_head", "attn", "rope", "act_fn", "embedding"}

MS_TO_NS = 1e6

# Beyond this KV length one engine call for decode attention takes 0.1-0.3 ms instead of ~5 us;
# there the engine is sampled on a grid of 2**GRID_BITS points per octave and interpolated.
DECODE_GRID_FROM = 32768
GRID_BITS = 8


def _not_package_notice(record: logging.LogRecord) -> bool:
    """Drop two one-off package notices: MLA/DSA fallback tables (no layer here reads them) and
    attention-lane defaults missing for a GPU (the engine then takes the table's first lane)."""
    return not str(record.msg).startswith(("Loading low-fidelity fallback rows", "resolve_attention_lane_order:"))


logging.getLogger(perf_database.__name__).addFilter(_not_package_notice)
logging.getLogger(attention_lanes.__name__).addFilter(_not_package_notice)


@dataclass(frozen=True)
class HardwareSpec:
    """One GPU of a package system, as its system YAML describes it."""

    name: str                 # user-facing name, e.g. "H100"
    system: str               # package system name, e.g. "h100_sxm"
    memory_bytes: int         # device memory
    memory_gb: float          # device memory in GiB (2**30 bytes): 80.0 for an H100 80GB
    memory_bw_gbps: float     # device memory bandwidth, GB/s (1e9 bytes/s)
    link_bw_gbps: float       # intra-node interconnect per GPU, one direction, GB/s
    num_gpus_per_node: int
    bf16_tflops: float        # dense tensor-core peak, TFLOP/s
    fp8_tflops: float | None  # None where the GPU has no FP8 tensor cores


def _normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _system_yaml(system: str) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((SYSTEMS_DIR / f"{system}.yaml").read_text(), Loader=loader)


@lru_cache(maxsize=1)
def _measured_systems() -> tuple[str, ...]:
    """Package systems whose data folder holds GEMM and attention measurements."""
    systems = []
    for path in sorted(SYSTEMS_DIR.glob("*.yaml")):
        if not (SYSTEMS_DIR / "data" / path.stem).is_dir():
            continue  # the package's non-system YAMLs (version slots, lane defaults, ...)
        data_dir = SYSTEMS_DIR / _system_yaml(path.stem)["data_dir"]
        if (data_dir / "gemm").is_dir() and (data_dir / "attention").is_dir():
            systems.append(path.stem)
    return tuple(systems)


def _display_name(system: str) -> str:
    for alias, target in HARDWARE_ALIASES.items():
        if target == system:
            return alias
    return system


def supported_hardware() -> list[str]:
    """User-facing names of every system with measured data (package names also accepted)."""
    return [_display_name(system) for system in _measured_systems()]


def _resolve_system(hardware: str) -> str:
    """Package system name for a user-facing or package hardware name (case-insensitive)."""
    wanted = _normalize(hardware)
    for system in _measured_systems():
        if wanted in (_normalize(system), _normalize(_display_name(system))):
            return system
    raise PerfModelError(
        f"unknown hardware '{hardware}' for the aiconfigurator perf model; "
        f"supported: {', '.join(supported_hardware())}"
    )


def hardware_spec(hardware: str) -> HardwareSpec:
    """Memory, bandwidths and peak FLOPs of one GPU from the package's system YAML."""
    system = _resolve_system(hardware)
    spec = _system_yaml(system)
    gpu, node = spec["gpu"], spec["node"]
    fp8_flops = gpu.get("fp8_tc_flops")
    return HardwareSpec(
        name=_display_name(system),
        system=system,
        memory_bytes=int(gpu["mem_capacity"]),
        memory_gb=gpu["mem_capacity"] / 2**30,
        memory_bw_gbps=gpu["mem_bw"] / 1e9,
        link_bw_gbps=node["intra_node_bw"] / 1e9,
        num_gpus_per_node=int(node["num_gpus_per_node"]),
        bf16_tflops=gpu["bfloat16_tc_flops"] / 1e12,
        fp8_tflops=fp8_flops / 1e12 if fp8_flops else None,
    )


def _quant_modes(fp_bits: int) -> tuple[common.GEMMQuantMode, common.KVCacheQuantMode, common.FMHAQuantMode]:
    """(GEMM, KV-cache, attention-math) quant modes for `--fp`; attention math is measured in bf16 only."""
    if fp_bits == 16:
        return common.GEMMQuantMode.bfloat16, common.KVCacheQuantMode.bfloat16, common.FMHAQuantMode.bfloat16
    if fp_bits == 8:
        return common.GEMMQuantMode.fp8, common.KVCacheQuantMode.fp8, common.FMHAQuantMode.bfloat16
    raise PerfModelError(f"the aiconfigurator perf model has measurements for --fp 16 and --fp 8, not --fp {fp_bits}")


@lru_cache(maxsize=None)
def _load_database(system: str) -> perf_database.PerfDatabase:
    """The measurement database of the first backend in BACKEND_PREFERENCE that has one."""
    for backend in BACKEND_PREFERENCE:
        if perf_database.get_version_slots(system, backend) is None:
            continue
        database = perf_database.get_database(system, backend, "current")
        if database is not None:
            return database
    raise PerfModelError(f"aiconfigurator-core has no measurement table for system '{system}'")


@lru_cache(maxsize=None)
def _engine_for(system: str) -> EngineHandle:
    """A model-less engine bound to the system's tables; evaluates ad-hoc operation lists."""
    database = _load_database(system)
    return EngineHandle.for_database(database, systems_path=database.systems_root)


# Streaming multiprocessors per GPU, from NVIDIA's datasheets / architecture whitepapers.
SM_COUNT = {"a100_sxm": 108, "h100_sxm": 132, "h200_sxm": 132, "b200_sxm": 148, "gb200": 148,
            "l40s": 142, "rtx_pro_6000_server": 188}


def _streaming_time(contexts: list[float], streams_per_request: int, sms: int) -> float:
    """Time (in units of one SM-share of bandwidth) to stream every request's KV cache when the
    device bandwidth is shared equally by the active streams and one stream can draw at most one
    SM's share: with at least `sms` streams the device is saturated, with fewer it is not."""
    time, done, active = 0.0, 0.0, streams_per_request * len(contexts)
    for context in sorted(contexts):
        time += (context - done) * max(active, sms)
        done = context
        active -= streams_per_request
    return time


def ragged_slowdown(contexts: list[int], kv_heads: int, sms: int | None) -> float:
    """How much longer a decode-attention kernel takes on these contexts than on the same number of
    requests all at the mean context. One stream per request and KV head (each KV head's cache is
    read once per step); unknown SM count: no correction."""
    if not sms or len(contexts) < 2 or min(contexts) == max(contexts):
        return 1.0
    mean = sum(contexts) / len(contexts)
    return _streaming_time(contexts, kv_heads, sms) / _streaming_time([mean] * len(contexts), kv_heads, sms)


class AIConfiguratorPerfModel(PerfModel):
    """Layer latencies from aiconfigurator-core's measured per-operator data of one GPU."""

    def __init__(self, model: ModelConfig, hardware: str, fp_bits: int) -> None:
        super().__init__()
        self.model = model
        self.spec = hardware_spec(hardware)
        self.gemm_quant, self.kv_quant, self.fmha_quant = _quant_modes(fp_bits)
        self._database = _load_database(self.spec.system)
        self._engine = _engine_for(self.spec.system)
        self.table = f"{self._database.backend} {self._database.version}"
        self._ops_json: dict[tuple[str, int, bool], str] = {}
        self._decode_grid: dict[tuple[int, int], float] = {}
        self._batched_decode: dict[tuple[int, int, int], tuple[float, float]] = {}
        self._check_measured()

    def _check_measured(self) -> None:
        """Fail at construction, not mid-run, when this GPU lacks data for the quant modes."""
        for layer, tokens in (("q_proj", 128), ("attn", 128), ("attn", 1)):
            self._latency_ns(layer, tokens, 128, 1)

    # --- operations -------------------------------------------------------------------------

    def _gemm_shape(self, layer: str, tp: int) -> tuple[int, int]:
        """(n, k) of the projection's GEMM on one tensor-parallel shard."""
        if layer == "lm_head":
            return math.ceil(self.model.vocab_size / tp), self.model.hidden_size
        fan_in, fan_out = self.model.linear_shapes()[layer]
        if layer in ("k_proj", "v_proj"):
            return self._kv_heads(tp) * self.model.head_dim, fan_in
        if layer in ROW_PARALLEL:
            return fan_out, math.ceil(fan_in / tp)
        return math.ceil(fan_out / tp), fan_in

    def _kv_heads(self, tp: int) -> int:
        """KV heads per shard; with more shards than KV heads each shard keeps one replica."""
        return max(1, self.model.num_kv_heads // tp)

    def _attention_op(self, tp: int, prefill: bool):
        """Attention of this shard's heads, on the kernel lane the serving framework picks by default."""
        heads, kv_heads = math.ceil(self.model.num_heads / tp), self._kv_heads(tp)
        shape = {"head_size": self.model.head_dim, "use_qk_norm": self.model.qk_norm}
        if prefill:
            op = aic_ops.ContextAttention("attn", 1, heads, kv_heads, self.kv_quant, self.fmha_quant, **shape)
            table = "_context_attention_data"
        else:
            op = aic_ops.GenerationAttention("attn", 1, heads, kv_heads, self.kv_quant, **shape)
            table = "_generation_attention_data"
        op._lane_order = resolved_lane_order_for_op(self._database, table)
        return op

    def _elementwise_op(self, layer: str, tp: int):
        """Memory-bound op moving (dim_in + dim_out) bf16 values per token."""
        h = self.model.hidden_size
        if layer == "embedding":
            return aic_ops.Embedding(layer, 1, self.model.vocab_size, h)
        if layer in NORMS:
            # vLLM fuses the residual add into RMSNorm: reads x and residual, writes both.
            return aic_ops.ElementWise(layer, 1, 2 * h, 2 * h)
        if layer == "act_fn":
            inter = math.ceil(self.model.intermediate_size / tp)
            return aic_ops.ElementWise(layer, 1, (2 if self.model.gated_mlp else 1) * inter, inter)
        # rope on one decode token: rotate q and k of this shard in place.
        rotated = (math.ceil(self.model.num_heads / tp) + self._kv_heads(tp)) * self.model.head_dim
        return aic_ops.ElementWise(layer, 1, rotated, rotated)

    def _operation(self, layer: str, tp: int, prefill: bool):
        """The aiconfigurator operation that models `layer` on one tensor-parallel shard."""
        if layer in COLUMN_PARALLEL or layer in ROW_PARALLEL or layer == "lm_head":
            n, k = self._gemm_shape(layer, tp)
            return aic_ops.GEMM(layer, 1, n, k, self.gemm_quant)
        if layer == "attn":
            return self._attention_op(tp, prefill)
        if layer == "allreduce":
            # One bf16 value per "token": the message of `x` tokens is 2 * x bytes.
            return aic_ops.CustomAllReduce(layer, 1, 1, tp)
        return self._elementwise_op(layer, tp)

    def _op_json(self, layer: str, tp: int, prefill: bool) -> str:
        key = (layer, tp, prefill)
        if key not in self._ops_json:
            self._ops_json[key] = build_ops_json([self._operation(layer, tp, prefill)])
        return self._ops_json[key]

    # --- evaluation -------------------------------------------------------------------------

    def _evaluate_ms(
        self, layer: str, tp: int, *, prefill: bool, s: int, prefix: int = 0, x: int | None = None, batch: int = 1
    ) -> float:
        """The engine's latency in ms of `layer` at sequence length `s` (`x` tokens for token-wise ops)."""
        ops_json = self._op_json(layer, tp, prefill)
        try:
            ((_, latency_ms, _, _),) = self._engine.evaluate_ops_json(
                ops_json, is_context=prefill, batch_size=batch, s=s, prefix=prefix, x=x
            )
        except Exception as error:  # the engine raises several types; all mean "no answer"
            raise PerfModelError(
                f"aiconfigurator ({self.spec.system}, {self.table}) cannot evaluate {layer} "
                f"(s={s}, prefix={prefix}, tp={tp}): {str(error).splitlines()[0]}"
            ) from None
        return latency_ms

    def _attention_ms(self, tokens: int, kv_cache: int, tp: int) -> float:
        """Attention of one request: prefill of `tokens` after `kv_cache` cached, or one decode step."""
        if tokens == 1:
            return self._decode_attention_ms(kv_cache + 1, tp)
        fresh = self._evaluate_ms("attn", tp, prefill=True, s=tokens)
        if kv_cache == 0:
            return fresh
        # The engine scales the full-prompt kernel time by the new tokens' share of the causal
        # work, which drops the kernel's fixed cost for short chunks; more keys never cost less.
        return max(fresh, self._evaluate_ms("attn", tp, prefill=True, s=tokens, prefix=kv_cache))

    def _decode_attention_ms(self, kv_len: int, tp: int) -> float:
        """Decode attention over `kv_len` keys; long contexts go through the interpolation grid."""
        if kv_len <= DECODE_GRID_FROM:
            return self._evaluate_ms("attn", tp, prefill=False, s=kv_len)
        spacing = 1 << (kv_len.bit_length() - 1 - GRID_BITS)
        below = kv_len - kv_len % spacing
        weight = (kv_len - below) / spacing
        low = self._decode_grid_ms(below, tp)
        return low if weight == 0 else (1 - weight) * low + weight * self._decode_grid_ms(below + spacing, tp)

    def _decode_grid_ms(self, kv_len: int, tp: int) -> float:
        key = (kv_len, tp)
        if key not in self._decode_grid:
            self._decode_grid[key] = self._evaluate_ms("attn", tp, prefill=False, s=kv_len)
        return self._decode_grid[key]

    def _latency_ns(self, layer: str, tokens: int, kv_cache: int, tp: int) -> float:
        if layer not in LAYERS:
            raise PerfModelError(
                f"unknown layer '{layer}' for the aiconfigurator perf model; known: {', '.join(sorted(LAYERS))}"
            )
        if tokens == 0:
            return 0.0
        if layer == "attn":
            return self._attention_ms(tokens, kv_cache, tp) * MS_TO_NS
        if layer == "rope" and tokens > 1:
            return 0.0  # the engine's context attention already includes applying RoPE and the KV write
        return self._evaluate_ms(layer, tp, prefill=True, s=tokens, x=tokens) * MS_TO_NS

    def decode_attention_ns(self, kv_caches: list[int], tp: int, overlap_ns: int = 0) -> int:
        """The batch's decode attention as one kernel plus one rotary-embedding pass over its tokens.

        The table measures batches whose requests share one context length; a real batch is
        ragged. We take the table at the batch's mean context and scale it by
        `ragged_slowdown`: the same bytes take longer when short requests finish early and too few
        long ones are left to keep every SM streaming. Prefill attention of the same step
        (`overlap_ns`) runs in the same kernel and fills that idle tail."""
        if not kv_caches:
            return 0
        batch = len(kv_caches)
        contexts = [kv + 1 for kv in kv_caches]
        mean_context = round(sum(contexts) / batch)
        key = (batch, mean_context, tp)
        if key not in self._batched_decode:
            attention = self._evaluate_ms("attn", tp, prefill=False, s=mean_context, batch=batch)
            rope = self._evaluate_ms("rope", tp, prefill=True, s=batch, x=batch)
            self._batched_decode[key] = (attention * MS_TO_NS, rope * MS_TO_NS)
        attention_ns, rope_ns = self._batched_decode[key]
        slowdown = ragged_slowdown(contexts, self._kv_heads(tp), SM_COUNT.get(self.spec.system))
        return round(max(attention_ns * slowdown - overlap_ns, attention_ns) + rope_ns)

    def collective_table(self, tp: int) -> dict | None:
        from .collectives import collective_table  # it imports this module
        return collective_table(self.spec.system, tp)

    def allreduce_ns(self, num_bytes: int, tp: int) -> float:
        """All-reduce of `num_bytes` bf16 data over `tp` GPUs, from the backend's measured all-reduce table."""
        if tp == 1 or num_bytes == 0:
            return 0.0
        values = math.ceil(num_bytes / 2)
        return self._evaluate_ms("allreduce", tp, prefill=True, s=values, x=values) * MS_TO_NS
