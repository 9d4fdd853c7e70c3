"""KV-cache manager: vLLM-style paging on every NPU, with a host tier for evicted requests.

Each NPU holds its share of the weights first (its pipeline stage's layers, split over the
tensor-parallel group). The rest of `--npu_mem` is cut into blocks of `block_size` tokens; a
block holds the K and V of those tokens for the NPU's layers and KV heads, so all NPUs have the
same number of blocks and the manager counts blocks once for the whole cluster. Blocks are
allocated as sequences grow; an evicted request's blocks move to host memory and come back
before it runs again.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .model import ModelConfig

GIB = 2**30


class MemoryFitError(ValueError):
    """The model or a request cannot fit in device memory."""


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


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
    """Weights of each pipeline stage on one of its NPUs (embedding on the first, head on the last)."""
    e = fp_bits // 8
    sizes = []
    for stage in range(pp):
        layers = (stage + 1) * model.num_layers // pp - stage * model.num_layers // pp
        params = layers * model.layer_parameters()
        if stage == 0:
            params += model.embedding_parameters()
        if stage == pp - 1:
            params += model.lm_head_parameters() + model.norm_parameters
        sizes.append(ceil_div(params, tp) * e)
    return sizes


def memory_layout(model: ModelConfig, fp_bits: int, tp: int, pp: int, npu_mem_gib: float,
                  block_size: int) -> MemoryLayout:
    e = fp_bits // 8
    layers_per_npu = ceil_div(model.num_layers, pp)
    kv_heads_per_npu = ceil_div(model.num_kv_heads, tp)  # fewer KV heads than ranks: replicated
    block_bytes = block_size * 2 * layers_per_npu * kv_heads_per_npu * model.head_dim * e
    return MemoryLayout(max(stage_weight_bytes(model, fp_bits, tp, pp)), block_bytes,
                        int(npu_mem_gib * GIB), block_size)


class BlockPool:
    """What every KV-cache manager shares: a layout, `total_blocks` and `used_blocks` (each NPU
    holds the same number of blocks, so the pool is counted once for the cluster)."""

    layout: MemoryLayout
    total_blocks: int
    used_blocks: int
    peak_blocks: int

    @property
    def free_blocks(self) -> int:
        return self.total_blocks - self.used_blocks

    def blocks_for(self, tokens: int) -> int:
        return ceil_div(tokens, self.layout.block_size)

    def device_bytes_in_use(self) -> int:
        return self.layout.weight_bytes + self.used_blocks * self.layout.block_bytes

    def _note_peak(self) -> None:
        self.peak_blocks = max(self.peak_blocks, self.used_blocks)


@dataclass
class KVCache(BlockPool):
    """The host-tier manager: evicted requests keep their blocks in host memory."""

    layout: MemoryLayout
    device: dict[int, int] = field(default_factory=dict)   # request id -> blocks on device
    host: dict[int, int] = field(default_factory=dict)     # request id -> blocks in host memory
    peak_blocks: int = 0
    used_blocks: int = 0  # sum of `device`, kept as a count because it is read every step

    def __post_init__(self) -> None:
        self.total_blocks = self.layout.num_blocks

    def extra_blocks(self, request_id: int, tokens: int) -> int:
        """Blocks a request on device still needs to hold `tokens` tokens."""
        return max(0, self.blocks_for(tokens) - self.device.get(request_id, 0))

    def grow(self, request_id: int, tokens: int) -> None:
        needed = self.extra_blocks(request_id, tokens)
        if needed > self.free_blocks:
            raise MemoryFitError(f"internal: request {request_id} needs {needed} blocks, {self.free_blocks} free")
        self.device[request_id] = self.device.get(request_id, 0) + needed
        self.used_blocks += needed
        self._note_peak()

    def evict(self, request_id: int) -> int:
        """Moves a request's blocks to host memory; returns the bytes each NPU stores."""
        blocks = self.device.pop(request_id)
        self.used_blocks -= blocks
        self.host[request_id] = blocks
        return blocks * self.layout.block_bytes

    def reload(self, request_id: int) -> int:
        """Brings an evicted request back; returns the bytes each NPU loads."""
        blocks = self.host.pop(request_id)
        if blocks > self.free_blocks:
            raise MemoryFitError(f"internal: reloading request {request_id} needs {blocks} blocks")
        self.device[request_id] = blocks
        self.used_blocks += blocks
        self._note_peak()
        return blocks * self.layout.block_bytes

    def free(self, request_id: int) -> None:
        self.used_blocks -= self.device.pop(request_id, 0)
