"""Device memory of one NPU: its share of the weights, then KV blocks.

Each NPU holds its share of the weights first (its pipeline stage's layers, split over the
tensor-parallel group). The rest of `--npu_mem` is cut into blocks of `block_size` tokens; a
block holds the K and V of those tokens for the NPU's layers and KV heads (shard.py's rule), so
all NPUs have the same number of blocks and a KV manager counts blocks once for the whole cluster.
Widths come from the run's Precision: the projection matrices at the weight format, every other
parameter at --fp's, the blocks at the KV format.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...inputs.model_config import ModelConfig
from ...perf.precision import Precision, as_precision
from ...perf.shard import ceil_div, shard

GIB = 2**30


@dataclass(frozen=True)
class MemoryLayout:
    """Bytes per NPU: the largest stage's weights and one KV block."""

    weight_bytes: int
    block_bytes: int
    capacity_bytes: int
    block_size: int

    @property
    def num_blocks(self) -> int:
        return max(0, (self.capacity_bytes - self.weight_bytes) // self.block_bytes)


def matrix_parameters(model: ModelConfig, layer: int = 0) -> int:
    """Weights of one decoder layer's projection matrices (biases, norms and an MoE router not included:
    the router stays in bf16)."""
    if model.is_moe_layer(layer):
        qk_norms = 2 * model.head_dim if model.qk_norm else 0
        return (model.layer_parameters(layer) - 2 * model.norm_parameters - qk_norms
                - model.projection_parameters("router"))
    shapes = model.linear_shapes()
    dense = ("q_proj", "k_proj", "v_proj", "o_proj", *(n for n in model.mlp_layers() if n != "act_fn"))
    return sum(shapes[name][0] * shapes[name][1] for name in dense)


def stage_weight_bytes(model: ModelConfig, precision: int | Precision, tp: int, pp: int, dp: int = 1) -> list[int]:
    """Weights of each pipeline stage on one of its NPUs (embedding on the first, head on the last):
    every parameter at --fp's width, less what the narrower format of the projection matrices saves
    (nothing when they share --fp's width); an MoE layer's router is replicated on every rank, the rest
    split (perf/experts.py: both expert layouts hold 1/tp of the experts' weights per rank, 1/(dp*tp)
    with `dp` data-parallel ranks, whose experts span them all)."""
    precision = as_precision(precision)
    e, saved = precision.fp_bits // 8, (precision.fp_bits - precision.weight_bits) // 8
    sizes = []
    for stage in range(pp):
        layers = range(stage * model.num_layers // pp, (stage + 1) * model.num_layers // pp)
        params = sum(model.layer_parameters(layer) for layer in layers)
        replicated = sum(model.projection_parameters("router") for layer in layers if model.is_moe_layer(layer))
        if stage == 0:
            params += model.embedding_parameters()
        if stage == pp - 1:
            params += model.lm_head_parameters() + model.norm_parameters
        matrices = sum(matrix_parameters(model, layer) for layer in layers)
        experts = sum(expert_parameters(model) for layer in layers if model.is_moe_layer(layer)) if dp > 1 else 0
        sizes.append((ceil_div(params - replicated - experts, tp) + ceil_div(experts, tp * dp) + replicated) * e
                     - (ceil_div(matrices - experts, tp) + ceil_div(experts, tp * dp)) * saved)
    return sizes


def expert_parameters(model: ModelConfig) -> int:
    """The routed experts' weights of one MoE layer."""
    return model.num_experts * sum(model.projection_parameters(name)
                                   for name in ("expert_gate_proj", "expert_up_proj", "expert_down_proj"))


def memory_layout(model: ModelConfig, precision: int | Precision, tp: int, pp: int, npu_mem_gib: float,
                  block_size: int, dp: int = 1) -> MemoryLayout:
    """`precision`: a Precision, or --fp's bits for every format."""
    precision = as_precision(precision)
    layers_per_npu = ceil_div(model.num_layers, pp)
    block_bytes = block_size * 2 * layers_per_npu * shard(model, tp).kv_size * precision.kv_bits // 8
    return MemoryLayout(max(stage_weight_bytes(model, precision, tp, pp, dp)), block_bytes,
                        int(npu_mem_gib * GIB), block_size)
