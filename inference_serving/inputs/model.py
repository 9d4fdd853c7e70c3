"""Model architectures: HF-config-style JSON files in model_configs/ turned into layer sizes.

Every size the simulator uses (weights, KV cache, per-layer tensors) is derived here from the
config and the element width (`--fp` bits), so each fact about a model lives in one place.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config.types import MAX_DIMENSION
from ..errors import InputError
from ..paths import MODEL_CONFIG_DIR


@dataclass(frozen=True)
class ModelConfig:
    """The architecture numbers of a decoder-only transformer."""

    name: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    gated_mlp: bool          # gate/up/down (Llama, Qwen) or fc1/fc2 (OPT, GPT-3)
    has_bias: bool           # OPT and GPT-3 carry biases on every projection
    learned_positions: bool  # OPT and GPT-3 add a position-embedding table
    tie_word_embeddings: bool
    qk_norm: bool = False    # Qwen3 normalises q and k per head (an RMSNorm of head_dim weights each)
    position_offset: int = 0  # OPT's position table has 2 rows beyond max_position_embeddings

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of every projection of one decoder layer."""
        h, inter = self.hidden_size, self.intermediate_size
        shapes = {
            "q_proj": (h, self.q_size),
            "k_proj": (h, self.kv_size),
            "v_proj": (h, self.kv_size),
            "o_proj": (self.q_size, h),
        }
        if self.gated_mlp:
            shapes.update(gate_proj=(h, inter), up_proj=(h, inter), down_proj=(inter, h))
        else:
            shapes.update(fc1=(h, inter), fc2=(inter, h))
        return shapes

    def mlp_layers(self) -> list[str]:
        return ["gate_proj", "up_proj", "act_fn", "down_proj"] if self.gated_mlp else ["fc1", "act_fn", "fc2"]

    def projection_parameters(self, name: str) -> int:
        """Weights of one projection, with its bias where the model has biases."""
        fan_in, fan_out = self.linear_shapes()[name]
        return fan_in * fan_out + (fan_out if self.has_bias else 0)

    @property
    def norm_parameters(self) -> int:
        """One hidden-size norm: RMSNorm scale, or LayerNorm scale and bias."""
        return 2 * self.hidden_size if self.has_bias else self.hidden_size

    def layer_parameters(self) -> int:
        """Parameters of one decoder layer (projections, their biases, two norms, q/k norms)."""
        params = sum(self.projection_parameters(name) for name in self.linear_shapes())
        qk_norm_params = 2 * self.head_dim if self.qk_norm else 0
        return params + 2 * self.norm_parameters + qk_norm_params

    def embedding_parameters(self) -> int:
        position_rows = self.max_position_embeddings + self.position_offset
        positions = position_rows * self.hidden_size if self.learned_positions else 0
        return self.vocab_size * self.hidden_size + positions

    def lm_head_parameters(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def total_parameters(self) -> int:
        return (self.embedding_parameters() + self.num_layers * self.layer_parameters()
                + self.norm_parameters + self.lm_head_parameters())

    def weight_bytes(self, fp_bits: int) -> int:
        return self.total_parameters() * fp_bits // 8

    def kv_bytes_per_token(self, fp_bits: int) -> int:
        """K and V of one token over all layers."""
        return 2 * self.num_layers * self.kv_size * fp_bits // 8


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
    Qwen3's per-head q/k norms, OPT's position offset of 2, and whether embeddings are tied
    when `tie_word_embeddings` is absent (tied for OPT/GPT, untied for Llama/Qwen).
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
    return ModelConfig(
        name=name,
        num_layers=_required(cfg, path, "num_hidden_layers", "n_layer"),
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=_optional(cfg, path, "head_dim", hidden // heads),
        intermediate_size=_required(cfg, path, "intermediate_size", "ffn_dim", "n_inner"),
        vocab_size=_required(cfg, path, "vocab_size"),
        max_position_embeddings=_required(cfg, path, "max_position_embeddings", "n_positions"),
        gated_mlp=gated,
        has_bias=not gated,
        learned_positions=not gated,
        tie_word_embeddings=_switch(cfg, path, "tie_word_embeddings", not gated),
        qk_norm=model_type == "qwen3",
        position_offset=2 if model_type == "opt" else 0,
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
