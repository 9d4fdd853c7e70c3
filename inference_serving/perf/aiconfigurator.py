"""Provider on the measured per-operator GPU latencies of `aiconfigurator-core`.

This provider builds one aiconfigurator operation per (layer, tp) and asks the package's engine
for its latency at the requested shape. See docs/perf_aiconfigurator.md for the layer-to-operation
mapping and the measured call cost. Every table evaluation is kept in an answer cache on disk
(answer_cache.py) for later runs. An MoE layer's routed experts come from the measured fused MoE
kernel where the tables have the model's shape (aiconfigurator_moe.py).

The package's SDK is imported where a question is computed, not at module level: a warm start (every
question in the answer cache) does not pay for its imports.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..inputs.hardware import Hardware
from ..inputs.model_config import ModelConfig
from .aiconfigurator_moe import balanced_tokens, fused_moe_json
from .aiconfigurator_systems import (MS_TO_NS, database_table, engine_for, hardware_spec, load_database,
                                     package_version)
from .answer_cache import AnswerCache, source_digest
from .experts import ExpertRouting
from .fa2 import Fa2Gpu, Fa2Step, chunk_ctas, ctas_per_sm, runs_fa2
from .layers import ACTIVATIONS, LAYERS, NORMS, PROJECTIONS
from .precision import Precision, as_precision
from .provider import PerfProvider
from .shard import shard

if TYPE_CHECKING:
    from aiconfigurator_core.sdk.engine import EngineHandle

# Beyond this KV length one engine call for decode attention takes 0.1-0.3 ms instead of ~5 us;
# there the engine is sampled on a grid of 2**GRID_BITS points per octave and interpolated.
DECODE_GRID_FROM = 32768
GRID_BITS = 8
# Two prompts long enough that the context-attention kernel's fixed cost and causal tail are small beside
# its tiles, inside every vLLM context table's measured range: their difference gives the time per tile.
TILE_PROMPTS = (4096, 8192)


# weight and KV formats -> names of the package's quant modes (common.GEMMQuantMode, common.KVCacheQuantMode)
GEMM_MODES = {"bf16": "bfloat16", "fp8": "fp8", "int8": "int8_wo"}
KV_MODES = {"bf16": "bfloat16", "fp16": "bfloat16", "fp8": "fp8"}


def _quant_modes(precision: Precision) -> tuple[str, str]:
    """(GEMM, KV-cache) quant mode names of the weight and KV formats. Whether this GPU's tables hold
    them is checked at construction."""
    if precision.weight not in GEMM_MODES or precision.kv not in KV_MODES:
        flag = precision.weight_flag if precision.weight not in GEMM_MODES else precision.kv_flag
        raise InputError(f"the aiconfigurator perf model has measurements for --fp 16 and --fp 8, not {flag}")
    return GEMM_MODES[precision.weight], KV_MODES[precision.kv]


class AIConfiguratorProvider(PerfProvider):
    """Layer latencies from aiconfigurator-core's measured per-operator data of one GPU."""

    fixed_flags = {"local_bw": "its measured kernel times already include the GPU's memory bandwidth"}

    def __init__(self, model: ModelConfig, hardware: Hardware, precision: int | Precision,
                 system: str | None = None) -> None:
        """`system`: the package system whose tables price the layers [the hardware's own]."""
        super().__init__()
        self.model = model
        self.spec = hardware_spec(system or hardware.system or hardware.name)
        precision = as_precision(precision)
        self.gemm_quant, self.kv_quant = _quant_modes(precision)
        self.fp_bits = precision.fp_bits
        self.table = database_table(self.spec.system)
        code = source_digest(*Path(__file__).parent.glob("*.py"))
        self._answers = AnswerCache("aiconfigurator", (package_version(), code, self.spec.system, self.table,
                                                       repr(model), repr(precision)))
        self.fa2_gpu = fa2_gpu(hardware, model.head_dim, precision.kv_bits)  # None: no FlashAttention-2 schedule
        self._tile_s: dict[int, float] = {}
        self._fa2_steps: dict[tuple[int, bool, bool], Fa2Step] = {}
        self._ops_json: dict[tuple[str, int, bool], str] = {}
        self._decode_grid: dict[tuple[int, int], float] = {}
        self._batched_decode: dict[tuple[int, int, int], tuple[float, float]] = {}
        self._fused_moe: dict[tuple[int, int], str] = {}
        self._check_measured()

    @cached_property
    def _database(self):
        """The measurement database, loaded at the first question the answer cache cannot answer."""
        return load_database(self.spec.system)

    @cached_property
    def _engine(self) -> EngineHandle:
        return engine_for(self.spec.system)

    def _check_measured(self) -> None:
        """Fail at construction, not mid-run, when this GPU lacks data for the quant modes."""
        for layer, tokens in (("q_proj", 128), ("attn", 128), ("attn", 1)):
            self._latency_ns(layer, tokens, 128, 1)

    # --- operations -------------------------------------------------------------------------

    def _attention_op(self, tp: int, prefill: bool):
        """Attention of this shard's heads, on the kernel lane the serving framework picks by default;
        its math is measured in bf16 only."""
        from aiconfigurator_core.sdk import common
        from aiconfigurator_core.sdk import operations as aic_ops
        from aiconfigurator_core.sdk.operations.attention import resolved_lane_order_for_op

        kv_quant = common.KVCacheQuantMode[self.kv_quant]
        heads, kv_heads = shard(self.model, tp).heads, shard(self.model, tp).kv_heads
        shape = {"head_size": self.model.head_dim, "use_qk_norm": self.model.qk_norm}
        if prefill:
            op = aic_ops.ContextAttention("attn", 1, heads, kv_heads, kv_quant, common.FMHAQuantMode.bfloat16,
                                          **shape)
            table = "_context_attention_data"
        else:
            op = aic_ops.GenerationAttention("attn", 1, heads, kv_heads, kv_quant, **shape)
            table = "_generation_attention_data"
        op._lane_order = resolved_lane_order_for_op(self._database, table)
        return op

    def _elementwise_op(self, layer: str, tp: int):
        """Memory-bound op moving (dim_in + dim_out) bf16 values per token."""
        from aiconfigurator_core.sdk import operations as aic_ops

        h = self.model.hidden_size
        if layer == "embedding":
            return aic_ops.Embedding(layer, 1, self.model.vocab_size, h)
        if layer in NORMS:
            # vLLM fuses the residual add into RMSNorm: reads x and residual, writes both.
            return aic_ops.ElementWise(layer, 1, 2 * h, 2 * h)
        if layer in ACTIVATIONS:
            inter = shard(self.model, tp).act_features(layer)
            return aic_ops.ElementWise(layer, 1, (2 if self.model.gated_mlp else 1) * inter, inter)
        # rope on one decode token: rotate q and k of this shard in place.
        rotated = (shard(self.model, tp).heads + shard(self.model, tp).kv_heads) * self.model.head_dim
        return aic_ops.ElementWise(layer, 1, rotated, rotated)

    def _operation(self, layer: str, tp: int, prefill: bool):
        """The aiconfigurator operation that models `layer` on one tensor-parallel shard."""
        from aiconfigurator_core.sdk import common
        from aiconfigurator_core.sdk import operations as aic_ops

        if layer in PROJECTIONS:
            k, n = shard(self.model, tp).linear(layer)
            # vLLM keeps an MoE router unquantized (its gate has no quant_config), as the package's MoE models do
            quant = common.GEMMQuantMode["bfloat16" if layer == "router" else self.gemm_quant]
            return aic_ops.GEMM(layer, 1, n, k, quant)
        if layer == "attn":
            return self._attention_op(tp, prefill)
        return self._elementwise_op(layer, tp)

    def _op_json(self, layer: str, tp: int, prefill: bool) -> str:
        from aiconfigurator_core.sdk.engine import build_ops_json

        key = (layer, tp, prefill)
        if key not in self._ops_json:
            self._ops_json[key] = build_ops_json([self._operation(layer, tp, prefill)])
        return self._ops_json[key]

    # --- evaluation -------------------------------------------------------------------------

    def _evaluate_ms(
        self, layer: str, tp: int, *, prefill: bool, s: int, prefix: int = 0, x: int | None = None, batch: int = 1
    ) -> float:
        """The engine's latency in ms of `layer` at sequence length `s` (`x` tokens for token-wise ops),
        from the answer cache when it has been asked before."""
        return self._answer((layer, tp, prefill, s, prefix, x, batch),
                            lambda: self._engine_ms(layer, tp, prefill, s, prefix, x, batch))

    def _answer(self, question: tuple, compute):
        """The answer cache's answer to `question`, computed (and kept) when it has none."""
        answer = self._answers.get(question)
        if answer is None:
            answer = compute()
            self._answers.put(question, answer)
        return answer

    def persist(self) -> None:
        self._answers.save()

    def _engine_ms(self, layer: str, tp: int, prefill: bool, s: int, prefix: int, x: int | None, batch: int) -> float:
        ops_json = self._op_json(layer, tp, prefill)
        try:
            ((_, latency_ms, _, _),) = self._engine.evaluate_ops_json(
                ops_json, is_context=prefill, batch_size=batch, s=s, prefix=prefix, x=x
            )
        except Exception as error:  # the engine raises several types; all mean "no answer"
            raise InputError(
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
            raise InputError(
                f"unknown layer '{layer}' for the aiconfigurator perf model; known: {', '.join(sorted(LAYERS))}"
            )
        if tokens == 0:
            return 0.0
        if layer == "attn":
            return self._attention_ms(tokens, kv_cache, tp) * MS_TO_NS
        if layer == "rope" and tokens > 1:
            return 0.0  # the engine's context attention already includes applying RoPE and the KV write
        return self._evaluate_ms(layer, tp, prefill=True, s=tokens, x=tokens) * MS_TO_NS

    def decode_attention_ns(self, kv_caches: list[int], tp: int, prefills: list[tuple[int, int]] = ()) -> int:
        """The batch's decode attention plus one rotary-embedding pass over its tokens.

        The table measures batches whose requests share one context length; a real batch is ragged,
        and a step with prompt chunks (`prefills`: tokens, cached tokens) runs its decodes in the same
        kernel. On a GPU where vLLM runs FlashAttention 2, the schedule of that kernel's thread blocks
        (perf/fa2.py) prices both from the table's price at the mean context; elsewhere, or with
        `ragged` off, the decodes cost the table's price at their mean context."""
        if not kv_caches:
            return 0
        contexts = [kv + 1 for kv in kv_caches]
        attention_ns, rope_ns = self._table_decode_ns(contexts, tp)
        step = self._fa2_step(tp)
        if step is not None:
            table_s = attention_ns / 1e9
            seconds = step.mixed_s(contexts, list(prefills), table_s) if prefills else step.decode_s(contexts, table_s)
            attention_ns = seconds * 1e9
        return round(attention_ns + rope_ns)

    def _table_decode_ns(self, contexts: list[int], tp: int) -> tuple[float, float]:
        """The table's batched decode attention at the batch's mean context, and its rope pass."""
        batch = len(contexts)
        mean_context = round(sum(contexts) / batch)
        key = (batch, mean_context, tp)
        if key not in self._batched_decode:
            attention = self._evaluate_ms("attn", tp, prefill=False, s=mean_context, batch=batch)
            rope = self._evaluate_ms("rope", tp, prefill=True, s=batch, x=batch)
            self._batched_decode[key] = (attention * MS_TO_NS, rope * MS_TO_NS)
        return self._batched_decode[key]

    def _fa2_step(self, tp: int) -> Fa2Step | None:
        if self.fa2_gpu is None or not self.ragged:
            return None
        key = (tp, self.mixed_unpacking, self.reuse)
        if key not in self._fa2_steps:
            part = shard(self.model, tp)
            self._fa2_steps[key] = Fa2Step(self.fa2_gpu, part.heads, part.kv_heads, self.model.head_dim,
                                           self._tile_time_s(tp), unpacked_mixed=self.mixed_unpacking,
                                           native=self.reuse)
        return self._fa2_steps[key]

    def _tile_time_s(self, tp: int) -> float:
        """The context-attention kernel's time per K/V tile on one SM: the longer of TILE_PROMPTS less
        the shorter, over the tiles it adds (all query heads of the shard), times the SMs."""
        if tp not in self._tile_s:
            short, long = TILE_PROMPTS
            added_ms = (self._evaluate_ms("attn", tp, prefill=True, s=long)
                        - self._evaluate_ms("attn", tp, prefill=True, s=short))
            tiles = [sum(tiles for tiles, _ in chunk_ctas(s, 0, self.model.head_dim)) for s in TILE_PROMPTS]
            per_head = tiles[1] - tiles[0]
            self._tile_s[tp] = added_ms / 1e3 * self.fa2_gpu.sms / (shard(self.model, tp).heads * per_head)
        return self._tile_s[tp]

    def _fused_moe_json(self, tp: int, ranks: int) -> str:
        """The fused MoE op of this placement, built to ask the tables (a warm start finds their answers
        in the answer cache)."""
        key = (tp, ranks)
        if key not in self._fused_moe:
            self._fused_moe[key] = fused_moe_json(self.model, tp, ranks, self.fp_bits)
        return self._fused_moe[key]

    def _fused_moe_measured(self, tp: int, ranks: int) -> bool:
        """Whether the tables have the fused MoE op of this placement (the model's shape)."""
        return self._answer(("fused moe measured", tp, ranks), lambda: self._measures(self._fused_moe_json(tp, ranks)))

    def _measures(self, ops_json: str) -> bool:
        """Whether the tables hold the fused MoE op of `ops_json`."""
        from aiconfigurator_core.sdk.errors import PerfDataNotAvailableError

        try:
            self._engine.evaluate_ops_json(ops_json, is_context=True, batch_size=1, s=1, x=1)
        except PerfDataNotAvailableError:
            return False
        return True

    def _moe_ns(self, routing: ExpertRouting) -> float:
        """The measured fused MoE kernel at the slowest rank's balanced-equivalent tokens; expert by
        expert from the GEMM tables where the MoE tables lack the shape."""
        tp, ranks = routing.tp, routing.ranks
        if not self._fused_moe_measured(tp, ranks):
            return super()._moe_ns(routing)
        tokens = balanced_tokens(routing, self.model.experts_per_token)
        if tokens == 0:
            return 0.0
        return self._answer(("fused moe", tp, ranks, tokens), lambda: self._fused_moe_ms(tp, ranks, tokens)) * MS_TO_NS

    def _fused_moe_ms(self, tp: int, ranks: int, tokens: int) -> float:
        ((_, latency_ms, _, _),) = self._engine.evaluate_ops_json(self._fused_moe_json(tp, ranks), is_context=True,
                                                                  batch_size=1, s=tokens, x=tokens)
        return latency_ms

    def collective_table(self, tp: int, dp: int = 1) -> dict | None:
        """The measured collectives of what vLLM runs on this GPU (perf/collectives.py)."""
        (table,) = self._answer(("collective table", tp, dp), lambda: (self._measured_collectives(tp, dp),))
        return table

    def _measured_collectives(self, tp: int, dp: int) -> dict | None:
        from .collectives import collective_table  # reads the SDK's communication tables

        return collective_table(self.spec.system, tp, dp)


def fa2_gpu(hardware: Hardware, head_dim: int, kv_bits: int) -> Fa2Gpu | None:
    """The GPU facts the FlashAttention-2 schedule needs, where vLLM runs FA2 on it with this model:
    a 16-bit KV cache (FA2 reads no fp8 KV), and a hardware file that states the compute capability,
    SM count and L2 size. None otherwise."""
    facts = (hardware.compute_capability, hardware.sm_count, hardware.l2_mib)
    if kv_bits != 16 or None in facts or not runs_fa2(hardware.compute_capability):
        return None
    return Fa2Gpu(hardware.sm_count, ctas_per_sm(hardware.compute_capability, head_dim), round(hardware.l2_mib * 2**20))
