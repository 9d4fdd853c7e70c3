"""One tensor-parallel shard of a model: the shapes one rank of a TP group holds, by vLLM's rule.

Used by every provider, the profiler and the memory layout, so a run prices and allocates the
same shapes. vLLM (0.19, `vllm/config` parallel checks and `QKVParallelLinear`) requires the
attention heads to be divisible by the TP degree; KV heads are divided over the ranks when TP
divides them, and replicated (one per rank) when TP is a multiple of them; any other degree is
refused. Column-parallel projections split their output features, row-parallel ones their input
features; the MLP's intermediate features must divide too (vLLM's `divide` asserts it). The LM head's
vocabulary is split in ceil(vocab / tp) rows (vLLM pads the vocabulary instead; the padding is
a few rows). Pipeline stages are refused when there are more of them than decoder layers. An MoE
layer's router is replicated on every rank; its experts' rule (split like the MLP, or whole experts
per rank) is perf/experts.py's.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..errors import InputError
from ..inputs.model_config import ModelConfig
from .layers import ROW_PARALLEL


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def check_tensor_parallel(model: ModelConfig, tp: int) -> None:
    """vLLM's divisibility rules for a TP degree; one-line InputError naming what does not divide."""
    if model.num_heads % tp:
        raise InputError(f"tensor-parallel degree {tp} (--npu_num / --npu_group) does not divide the "
                         f"{model.num_heads} attention heads of {model.name}; use a divisor of {model.num_heads}")
    kv = model.num_kv_heads
    if (tp <= kv and kv % tp) or (tp > kv and tp % kv):
        raise InputError(f"tensor-parallel degree {tp} neither divides nor is a multiple of the {kv} KV heads "
                         f"of {model.name}; use a divisor or a multiple of {kv}")
    if model.intermediate_size % tp:
        raise InputError(f"tensor-parallel degree {tp} does not divide the MLP's {model.intermediate_size} "
                         f"features of {model.name}")


def check_pipeline_parallel(model: ModelConfig, pp: int) -> None:
    """Every pipeline stage holds at least one decoder layer (vLLM partitions the layers over the stages)."""
    if pp > model.num_layers:
        raise InputError(f"--npu_group {pp}: more pipeline stages than the {model.num_layers} decoder layers of "
                         f"{model.name}; use at most {model.num_layers}")


@dataclass(frozen=True)
class Shard:
    """What one rank of a `tp`-way group holds of `model` (a TP degree already checked)."""

    model: ModelConfig
    tp: int

    @property
    def heads(self) -> int:
        return self.model.num_heads // self.tp

    @property
    def kv_heads(self) -> int:
        """KV heads per rank: divided, or one replica when there are more ranks than KV heads."""
        return max(1, self.model.num_kv_heads // self.tp)

    @property
    def intermediate(self) -> int:
        return self.model.intermediate_size // self.tp

    def act_features(self, layer: str) -> int:
        """Output features of this rank's part of an activation (act_fn, shared_act_fn, expert_act_fn)."""
        if layer == "act_fn":
            return self.intermediate
        return self.linear(layer.replace("act_fn", "gate_proj"))[1]

    @property
    def q_size(self) -> int:
        return self.heads * self.model.head_dim

    @property
    def kv_size(self) -> int:
        return self.kv_heads * self.model.head_dim

    def linear(self, layer: str) -> tuple[int, int]:
        """(in, out) features of this rank's part of a projection (K, N of its GEMM)."""
        m = self.model
        if layer == "lm_head":
            return m.hidden_size, ceil_div(m.vocab_size, self.tp)
        fan_in, fan_out = m.linear_shapes()[layer]
        if layer == "router":
            return fan_in, fan_out
        if layer in ("k_proj", "v_proj"):
            return fan_in, self.kv_size
        if layer in ROW_PARALLEL:
            return fan_in // self.tp, fan_out
        return fan_in, fan_out // self.tp


@lru_cache(maxsize=None)
def shard(model: ModelConfig, tp: int) -> Shard:
    """The shard of a degree that vLLM accepts (InputError otherwise)."""
    check_tensor_parallel(model, tp)
    return Shard(model, tp)
