"""The host-tier KV manager (the paper's, Orca scheduling): an evicted request's blocks move to host
memory and come back before it runs again."""
from __future__ import annotations

from ...errors import EngineError
from ...inputs.workload import Request
from .layout import MemoryLayout
from .pool import KVManager


class HostSwapKV(KVManager):
    def __init__(self, layout: MemoryLayout) -> None:
        super().__init__(layout, layout.num_blocks)
        self.device: dict[int, int] = {}   # request id -> blocks on device
        self.host: dict[int, int] = {}     # request id -> blocks in host memory

    def _extra_blocks(self, request_id: int, tokens: int) -> int:
        return max(0, self.blocks_for(tokens) - self.device.get(request_id, 0))

    def can_allocate(self, request: Request, tokens: int, reuse: list = ()) -> bool:
        return self._extra_blocks(request.id, tokens) <= self.free_blocks

    def allocate(self, request: Request, tokens: int, reuse: list = ()) -> None:
        needed = self._extra_blocks(request.id, tokens)
        if needed > self.free_blocks:
            raise EngineError(f"internal: request {request.id} needs {needed} blocks, {self.free_blocks} free")
        self.device[request.id] = self.device.get(request.id, 0) + needed
        self.used_blocks += needed

    def free(self, request_id: int) -> None:
        self.used_blocks -= self.device.pop(request_id, 0)

    def swapped_requests(self) -> int:
        return len(self.host)

    def swapped_ids(self) -> list[int]:
        return list(self.host)

    def swapped_blocks(self, request_id: int) -> int:
        return self.host[request_id]

    def swap_out(self, request_id: int) -> int:
        """Moves a request's blocks to host memory; returns the bytes each NPU stores."""
        blocks = self.device.pop(request_id)
        self.used_blocks -= blocks
        self.host[request_id] = blocks
        return blocks * self.layout.block_bytes

    def swap_in(self, request_id: int) -> int:
        """Brings an evicted request back; returns the bytes each NPU loads."""
        blocks = self.host.pop(request_id)
        if blocks > self.free_blocks:
            raise EngineError(f"internal: reloading request {request_id} needs {blocks} blocks")
        self.device[request_id] = blocks
        self.used_blocks += blocks
        return blocks * self.layout.block_bytes
