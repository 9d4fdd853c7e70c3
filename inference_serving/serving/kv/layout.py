"""Device memory of one NPU: its share of the weights, then KV blocks.

Each NPU holds its share of the weights first (its pipeline stage's layers, split over the
tensor-parallel group). The rest of `--npu_mem` is cut into blocks of `block_size` tokens; a
block holds the K and V of those tokens for the NPU's layers and KV heads (shard.py's rule), so
all NPUs have the same number of blocks and a KV manager counts blocks once for the whole cluster.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...inputs.model_config import ModelConfig
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


def stage_weight_bytes(model: ModelConfig, fp_bits: int, tp: int, pp: int) -> list[int]:
    """Weights of each pipeline stage on one of its NPUs (embedding on the first, head on the last); an
    MoE layer's router is replicated on every rank, the rest split (perf/experts.py: both expert
    layouts hold 1/tp of the experts' weights per rank)."""
    e = fp_bits // 8
    sizes = []
    for stage in range(pp):
        layers = range(stage * model.num_layers // pp, (stage + 1) * model.num_layers // pp)
        params = sum(model.layer_parameters(layer) for layer in layers)
        replicated = sum(model.projection_parameters("router") for layer in layers if model.is_moe_layer(layer))
        if stage == 0:
            params += model.embedding_parameters()
        if stage == pp - 1:
            params += model.lm_head_parameters() + model.norm_parameters
        sizes.append((ceil_div(params - replicated, tp) + replicated) * e)
    return sizes


def memory_layout(model: ModelConfig, fp_bits: int, tp: int, pp: int, npu_mem_gib: float,
                  block_size: int) -> MemoryLayout:
    e = fp_bits // 8
    layers_per_npu = ceil_div(model.num_layers, pp)
    block_bytes = block_size * 2 * layers_per_npu * shard(model, tp).kv_size * e
    return MemoryLayout(max(stage_weight_bytes(model, fp_bits, tp, pp)), block_bytes,
                        int(npu_mem_gib * GIB), block_size)
