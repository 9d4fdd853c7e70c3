"""Device memory of one NPU: its share of the weights, then KV blocks.

Each NPU holds its share of the weights first (its pipeline stage's layers, split over the
tensor-parallel group). The rest of `--npu_mem` is cut into blocks of `block_size` tokens; a
block holds the K and V of those tokens for the NPU's layers and KV heads (shard.py's rule), so
all NPUs have the same number of blocks and a KV manager counts blocks once for the whole cluster.
Widths come from the run's Precision: the projection matrices at the weight format, every other
parameter at --fp's, the blocks at the KV format.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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


def matrix_parameters(model: ModelConfig) -> int:
    """Weights of one decoder layer's projection matrices (biases not included)."""
    return sum(fan_in * fan_out for fan_in, fan_out in model.linear_shapes().values())


def stage_weight_bytes(model: ModelConfig, precision: int | Precision, tp: int, pp: int) -> list[int]:
    """Weights of each pipeline stage on one of its NPUs (embedding on the first, head on the last):
    every parameter at --fp's width, less what the narrower format of the projection matrices saves
    (nothing when they share --fp's width)."""
    precision = as_precision(precision)
    e, saved = precision.fp_bits // 8, (precision.fp_bits - precision.weight_bits) // 8
    sizes = []
    for stage in range(pp):
        layers = (stage + 1) * model.num_layers // pp - stage * model.num_layers // pp
        params = layers * model.layer_parameters()
        if stage == 0:
            params += model.embedding_parameters()
        if stage == pp - 1:
            params += model.lm_head_parameters() + model.norm_parameters
        sizes.append(ceil_div(params, tp) * e - ceil_div(layers * matrix_parameters(model), tp) * saved)
    return sizes


def memory_layout(model: ModelConfig, precision: int | Precision, tp: int, pp: int, npu_mem_gib: float,
                  block_size: int) -> MemoryLayout:
    """`precision`: a Precision, or --fp's bits for every format."""
    precision = as_precision(precision)
    layers_per_npu = ceil_div(model.num_layers, pp)
    block_bytes = block_size * 2 * layers_per_npu * shard(model, tp).kv_size * precision.kv_bits // 8
    return MemoryLayout(max(stage_weight_bytes(model, precision, tp, pp)), block_bytes,
                        int(npu_mem_gib * GIB), block_size)
