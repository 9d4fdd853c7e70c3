"""A decoder-only transformer's architecture numbers and every size derived from them.

Every size the simulator uses (weights, KV cache, per-layer tensors) is derived here from the
config and the element width (`--fp` bits), so each fact about a model lives in one place.
"""
from __future__ import annotations

from dataclasses import dataclass


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

    def kv_bytes_per_token(self, fp_bits: int) -> int:
        """K and V of one token over all layers."""
        return 2 * self.num_layers * self.kv_size * fp_bits // 8
