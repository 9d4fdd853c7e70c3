"""Loading model architectures: HF-config-style JSON files in model_configs/ (or a path), or ONNX decoders."""
from __future__ import annotations

import json
from pathlib import Path

from ..config.types import MAX_DIMENSION
from ..errors import InputError
from ..paths import MODEL_CONFIG_DIR
from .model_config import ModelConfig
from .moe_config import moe_fields


def _config_path(name: str) -> Path:
    candidate = Path(name)
    if candidate.suffix == ".json" and candidate.is_file():
        return candidate
    path = MODEL_CONFIG_DIR / f"{name}.json"
    if path.is_file():
        return path
    known = ", ".join(available_models())
    raise InputError(f"--model_name: unknown model '{name}'; known models: {known} "
                     f"(or add model_configs/<name>.json, see README 'Adding a model')")


def available_models() -> list[str]:
    return sorted(str(p.relative_to(MODEL_CONFIG_DIR).with_suffix("")) for p in MODEL_CONFIG_DIR.rglob("*.json"))


def _required(cfg: dict, path: Path, *keys: str) -> int:
    for key in keys:
        if key in cfg:
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIMENSION:
                raise InputError(f"{path}: '{key}' must be a positive integer of at most {MAX_DIMENSION}, "
                                 f"got {value!r}")
            return value
    raise InputError(f"{path}: missing '{keys[0]}'")


def _optional(cfg: dict, path: Path, key: str, default: int) -> int:
    """A positive integer field that may be absent or null (then `default`)."""
    return default if cfg.get(key) is None else _required(cfg, path, key)


def _text(cfg: dict, path: Path, key: str, default: str) -> str:
    value = cfg.get(key, default)
    if not isinstance(value, str):
        raise InputError(f"{path}: '{key}' must be a text, got {value!r}")
    return value


def _switch(cfg: dict, path: Path, key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"{path}: '{key}' must be true or false, got {value!r}")
    return value


def _check_embedding_projection(cfg: dict, path: Path, hidden: int) -> None:
    """OPT-350m projects embeddings to a narrower width; that extra layer is not modelled."""
    width = cfg.get("word_embed_proj_dim", hidden)
    if width != hidden:
        raise InputError(f"{path}: word_embed_proj_dim {width!r} differs from hidden_size {hidden}; "
                         f"embedding projections (project_in/project_out) are not supported")


def config_from_dict(cfg: dict, name: str, path: Path) -> ModelConfig:
    """Read the HF field names (Llama/Qwen) and their OPT/GPT aliases.

    Facts HF keeps in model code rather than config.json are derived from `model_type`:
    Qwen3's (and Qwen3-MoE's) per-head q/k norms, OPT's position offset of 2, and whether embeddings
    are tied when `tie_word_embeddings` is absent (tied for OPT/GPT, untied for Llama/Qwen). The
    mixture-of-experts fields are read by moe_config.py.
    """
    hidden = _required(cfg, path, "hidden_size", "n_embd", "d_model")
    heads = _required(cfg, path, "num_attention_heads", "n_head")
    kv_heads = cfg.get("num_key_value_heads", heads)
    model_type = _text(cfg, path, "model_type", "llama")
    gated = model_type not in ("opt", "gpt3", "gpt2")
    if hidden % heads and "head_dim" not in cfg:
        raise InputError(f"{path}: hidden_size {hidden} is not divisible by num_attention_heads {heads}")
    if isinstance(kv_heads, bool) or not isinstance(kv_heads, int) or kv_heads <= 0 or heads % kv_heads:
        raise InputError(f"{path}: num_key_value_heads {kv_heads!r} must divide num_attention_heads {heads}")
    _check_embedding_projection(cfg, path, hidden)
    layers = _required(cfg, path, "num_hidden_layers", "n_layer")
    intermediate = _required(cfg, path, "intermediate_size", "ffn_dim", "n_inner")
    return ModelConfig(
        name=name,
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=_optional(cfg, path, "head_dim", hidden // heads),
        intermediate_size=intermediate,
        vocab_size=_required(cfg, path, "vocab_size"),
        max_position_embeddings=_required(cfg, path, "max_position_embeddings", "n_positions"),
        gated_mlp=gated,
        has_bias=not gated,
        learned_positions=not gated,
        tie_word_embeddings=_switch(cfg, path, "tie_word_embeddings", not gated),
        qk_norm=model_type in ("qwen3", "qwen3_moe"),
        position_offset=2 if model_type == "opt" else 0,
        **moe_fields(cfg, path, gated, intermediate, layers),
    )


def load_model(name: str) -> ModelConfig:
    """`name` is a key under model_configs/ (e.g. meta-llama/Llama-3.1-8B-Instruct), a .json path or
    an .onnx decoder model (onnx_model.py)."""
    if name.endswith(".onnx"):
        from .onnx_model import load_onnx_model
        return load_onnx_model(Path(name), name)
    path = _config_path(name)
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(f"{path}: not a readable JSON model config ({err})") from None
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: a model config must be a JSON object")
    return config_from_dict(cfg, name, path)
