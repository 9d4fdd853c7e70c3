"""The mixture-of-experts fields of a Hugging Face config.json, as ModelConfig's MoE numbers.

Field names by family (each family's config.json as Hugging Face publishes it):

| number | Qwen3-MoE (`qwen3_moe`) | Mixtral (`mixtral`) | DeepSeek-MoE (`deepseek`) |
|---|---|---|---|
| routed experts | `num_experts` | `num_local_experts` | `n_routed_experts` |
| experts per token | `num_experts_per_tok` | `num_experts_per_tok` | `num_experts_per_tok` |
| expert width | `moe_intermediate_size` | none: `intermediate_size` | `moe_intermediate_size` |
| shared experts | none (0) | none (0) | `n_shared_experts` |
| leading dense layers | none (0) | none (0) | `first_k_dense_replace` |

Layouts we do not model are refused with one line naming the field: experts on only some layers
(`moe_layer_freq` or `decoder_sparse_step` other than 1, a non-empty `mlp_only_layers`),
Qwen2-MoE's gated shared expert (`shared_expert_intermediate_size`) and DeepSeek-V2/V3's latent
attention (`kv_lora_rank`).
"""
from __future__ import annotations

from pathlib import Path

from ..config.types import MAX_DIMENSION
from ..errors import InputError

EXPERT_COUNT_KEYS = ("num_experts", "num_local_experts", "n_routed_experts")


def _count(cfg: dict, path: Path, key: str, minimum: int, default: int) -> int:
    value = cfg.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_DIMENSION:
        raise InputError(f"{path}: '{key}' must be an integer from {minimum} to {MAX_DIMENSION}, got {value!r}")
    return value


def _refuse_partial_layouts(cfg: dict, path: Path) -> None:
    for key in ("moe_layer_freq", "decoder_sparse_step"):
        if cfg.get(key, 1) != 1:
            raise InputError(f"{path}: '{key}' {cfg[key]!r}: experts on every k-th layer only are not modelled "
                             f"(every layer after the first dense ones has experts)")
    if cfg.get("mlp_only_layers"):
        raise InputError(f"{path}: 'mlp_only_layers' {cfg['mlp_only_layers']!r}: dense layers among expert "
                         f"layers are not modelled")
    if cfg.get("shared_expert_intermediate_size"):
        raise InputError(f"{path}: 'shared_expert_intermediate_size': Qwen2-MoE's gated shared expert is not "
                         f"modelled")


def moe_fields(cfg: dict, path: Path, gated: bool, intermediate: int, layers: int) -> dict:
    """ModelConfig's MoE keyword arguments; empty for a dense model."""
    if cfg.get("kv_lora_rank") is not None:
        raise InputError(f"{path}: 'kv_lora_rank': multi-head latent attention (DeepSeek-V2/V3's MLA) is not modelled")
    key = next((k for k in EXPERT_COUNT_KEYS if cfg.get(k)), None)
    if key is None:
        return {}
    experts = _count(cfg, path, key, 1, 0)
    if not gated:
        raise InputError(f"{path}: '{key}': experts are modelled for gated (SwiGLU) MLPs only")
    _refuse_partial_layouts(cfg, path)
    top_k = _count(cfg, path, "num_experts_per_tok", 1, 0)
    if not 1 <= top_k <= experts:
        raise InputError(f"{path}: 'num_experts_per_tok' must be between 1 and the {experts} experts, got "
                         f"{cfg.get('num_experts_per_tok')!r}")
    dense = _count(cfg, path, "first_k_dense_replace", 0, 0)
    if dense >= layers:
        raise InputError(f"{path}: 'first_k_dense_replace' {dense} leaves none of the {layers} layers with experts")
    return {"num_experts": experts, "experts_per_token": top_k,
            "moe_intermediate_size": _count(cfg, path, "moe_intermediate_size", 1, intermediate),
            "shared_experts": _count(cfg, path, "n_shared_experts", 0, 0), "first_dense_layers": dense}


def dense_only(model, command: str) -> None:
    """Commands that build a model's layers themselves (the profiler, the ONNX writer) know no experts."""
    if model.is_moe:
        raise InputError(f"{command}: {model.name} is a mixture-of-experts model; {command} builds dense models only")
