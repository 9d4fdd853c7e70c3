"""The KV-manager interface: one block pool per NPU, counted once for the cluster (every NPU holds the
same number of blocks). Implementations: host_swap.py (evicted requests keep their blocks in host
memory) and prefix_cache.py (vLLM's pool: recompute on preemption, shared prompt blocks)."""
from __future__ import annotations

from abc import ABC, abstractmethod

from ...inputs.workload import Request
from ...perf.shard import ceil_div
from .layout import MemoryLayout


class KVManager(ABC):
    """Blocks of `layout.block_size` tokens, `total_blocks` of them, `used_blocks` held by requests."""

    def __init__(self, layout: MemoryLayout, total_blocks: int) -> None:
        self.layout, self.total_blocks, self.used_blocks = layout, total_blocks, 0
        self.prefix_queries = 0   # prefix-cache lookups, and those that found at least one block
        self.prefix_hits = 0
        self.prefix_query_tokens = 0  # tokens looked up, and those found in cached blocks
        self.prefix_hit_tokens = 0

    @property
    def free_blocks(self) -> int:
        return self.total_blocks - self.used_blocks

    def blocks_for(self, tokens: int) -> int:
        return ceil_div(tokens, self.layout.block_size)

    def device_bytes_in_use(self) -> int:
        return self.layout.weight_bytes + self.used_blocks * self.layout.block_bytes

    def cached_prefix(self, request: Request, tokens: int) -> list:
        """Keys of the request's leading blocks already in the cache (none without a prefix cache)."""
        return []

    def cached_prefix_blocks(self, request: Request, tokens: int) -> int:
        """How many leading blocks are cached, without counting a lookup (for routers)."""
        return 0

    def take_tier_moves(self) -> list:
        """The memory-tier moves (plan.iteration.TierMove) of the step being formed (none without tiers)."""
        return []

    def swapped_requests(self) -> int:
        """Requests whose blocks are in host memory (none without a host tier)."""
        return 0

    @abstractmethod
    def can_allocate(self, request: Request, tokens: int, reuse: list = ()) -> bool:
        """Whether the request can hold `tokens` tokens (with `reuse` cached blocks) now."""

    @abstractmethod
    def allocate(self, request: Request, tokens: int, reuse: list = ()) -> None:
        """Grows the request's blocks to hold `tokens` tokens."""

    @abstractmethod
    def free(self, request_id: int) -> None:
        """Releases every device block of the request."""
