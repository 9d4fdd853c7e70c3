"""vLLM's fused MoE kernel from aiconfigurator-core's measured MoE tables (`moe/vllm/<version>/moe_perf`).

The table times vLLM's fused MoE kernel on one rank of a group (its experts' gate/up GEMM, activation,
down GEMM and the top-k weighted sum; the router is a separate GEMM) for `num_tokens` tokens entering
the layer, routed `balanced` (every expert receives as many tokens), at the shapes the package
measured: (hidden size, moe_intermediate_size, top-k, experts, moe_tp_size, moe_ep_size) and dtype.
aiconfigurator-core 0.12.0 has Qwen3-30B-A3B's (2048, 768, 8, 128) and Mixtral-8x7B's
(4096, 14336, 2, 8) balanced on H100, H200, B200, B300, GB200, GB300, L40S and RTX PRO 6000 (A100's and
B60's tables have power-law rows only), no GPU's DeepSeek-MoE-16B's (2048, 1408, 6, 64); a shape or
distribution it lacks is priced expert by expert from the GEMM tables (PerfProvider.moe_ns).

Our routing (perf/expert_load.py) gives every rank a number of (token, expert) pairs; the rank with
the most finishes last, and we price it as the balanced table at the token count that gives every rank
that many pairs: T' = pairs x ranks / top-k, rounded (T' = T under a uniform load). Within a rank the
kernel is thus priced as if its experts were evenly loaded.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError
from ..inputs.model_config import ModelConfig
from .experts import ExpertRouting

if TYPE_CHECKING:
    from aiconfigurator_core.sdk import common

BALANCED = "balanced"  # the tables' distribution with equal tokens per expert


def moe_quant(fp_bits: int) -> common.MoEQuantMode:
    """The MoE table's dtype for `--fp`: bf16, or per-tensor FP8 (vLLM's FP8 MoE without block scales)."""
    from aiconfigurator_core.sdk import common  # the SDK only where an op is built (aiconfigurator.py)

    modes = {16: common.MoEQuantMode.bfloat16, 8: common.MoEQuantMode.fp8}
    if fp_bits not in modes:
        raise InputError(f"the aiconfigurator MoE tables are measured for --fp 16 and --fp 8, not --fp {fp_bits}")
    return modes[fp_bits]


def fused_moe_json(model: ModelConfig, tp: int, ranks: int, fp_bits: int) -> str:
    """The engine's op list of one MoE layer's experts: `ranks` expert-parallel ranks, each expert split `tp` ways."""
    from aiconfigurator_core.sdk import operations as aic_ops
    from aiconfigurator_core.sdk.engine import build_ops_json

    op = aic_ops.MoE("experts", 1, model.hidden_size, model.moe_intermediate_size, model.experts_per_token,
                     model.num_experts, tp, ranks, moe_quant(fp_bits), BALANCED, 1, True, True)
    return build_ops_json([op])


def balanced_tokens(routing: ExpertRouting, top_k: int) -> int:
    """Tokens that, routed evenly, give every rank as many pairs as the slowest rank has."""
    pairs = routing.slowest_pairs
    return max(1, round(pairs * routing.ranks / top_k)) if pairs else 0
