"""A decoder-only transformer's architecture numbers and every size derived from them.

Every size the simulator uses (weights, KV cache, per-layer tensors) is derived here from the
config and the element width (`--fp` bits), so each fact about a model lives in one place.

A mixture-of-experts model (`num_experts` > 0) replaces the MLP of every layer after its first
`first_dense_layers` with a router (a hidden -> num_experts projection), `num_experts` gated
experts of `moe_intermediate_size` features each, of which every token passes through
`experts_per_token`, and `shared_experts` experts that every token passes through (DeepSeek's,
held as one MLP of shared_experts x moe_intermediate_size features, as Hugging Face and vLLM do).
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
    num_experts: int = 0            # routed experts of an MoE layer; 0: a dense model
    experts_per_token: int = 0      # top-k: routed experts each token is sent to
    moe_intermediate_size: int = 0  # features of one routed expert's MLP
    shared_experts: int = 0         # experts every token passes through (DeepSeek's n_shared_experts)
    first_dense_layers: int = 0     # leading layers that keep the dense MLP (DeepSeek's first_k_dense_replace)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def is_moe_layer(self, layer: int) -> bool:
        """Whether decoder layer `layer` (0-based) has experts instead of the dense MLP."""
        return self.is_moe and layer >= self.first_dense_layers

    @property
    def shared_intermediate_size(self) -> int:
        return self.shared_experts * self.moe_intermediate_size

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
        if self.is_moe:
            expert, shared = self.moe_intermediate_size, self.shared_intermediate_size
            shapes.update(router=(h, self.num_experts), expert_gate_proj=(h, expert), expert_up_proj=(h, expert),
                          expert_down_proj=(expert, h))
            if shared:
                shapes.update(shared_gate_proj=(h, shared), shared_up_proj=(h, shared), shared_down_proj=(shared, h))
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

    def _parameters(self, names: tuple[str, ...]) -> int:
        return sum(self.projection_parameters(name) for name in names)

    def attention_parameters(self) -> int:
        """q/k/v/o, their biases, the layer's two norms and the q/k norms."""
        qk_norm_params = 2 * self.head_dim if self.qk_norm else 0
        return self._parameters(("q_proj", "k_proj", "v_proj", "o_proj")) + 2 * self.norm_parameters + qk_norm_params

    def moe_parameters(self) -> int:
        """An MoE layer's router, routed experts and shared experts."""
        expert = self._parameters(("expert_gate_proj", "expert_up_proj", "expert_down_proj"))
        shared = self._parameters(("shared_gate_proj", "shared_up_proj", "shared_down_proj")) if self.shared_experts else 0
        return self.projection_parameters("router") + self.num_experts * expert + shared

    def layer_parameters(self, layer: int = 0) -> int:
        """Parameters of decoder layer `layer`: its attention and norms, then its dense MLP or its experts."""
        if self.is_moe_layer(layer):
            return self.attention_parameters() + self.moe_parameters()
        return self.attention_parameters() + self._parameters(tuple(n for n in self.mlp_layers() if n != "act_fn"))

    def embedding_parameters(self) -> int:
        position_rows = self.max_position_embeddings + self.position_offset
        positions = position_rows * self.hidden_size if self.learned_positions else 0
        return self.vocab_size * self.hidden_size + positions

    def lm_head_parameters(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def total_parameters(self) -> int:
        layers = sum(self.layer_parameters(layer) for layer in range(self.num_layers))
        return self.embedding_parameters() + layers + self.norm_parameters + self.lm_head_parameters()

    def kv_bytes_per_token(self, fp_bits: int) -> int:
        """K and V of one token over all layers."""
        return 2 * self.num_layers * self.kv_size * fp_bits // 8
