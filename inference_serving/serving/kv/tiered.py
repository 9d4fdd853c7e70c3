"""vLLM's prefix cache over memory tiers (`--kv-tiers`): cached blocks evicted from the device are
demoted to the tiers instead of dropped, and a prefix found in a tier is reloaded before the prefill.

Freed prompt blocks stay cached on the device as before (least recently freed first out); when their
space is needed the block goes to the first tier (a MEM_STORE of its bytes to that tier in the step
that needs the space), and capacity pressure cascades down the tiers (tier_store.py; moves between
tiers are the host's and take no device time). A prefix lookup finds blocks on the device or in any
tier; each found in a tier takes a device block and is loaded from its tier in the step that admits
the request (one MEM_LOAD per tier and step, of all its blocks' bytes), before the step's compute.
"""
from __future__ import annotations

from collections import Counter

from ...config.run_config import RunConfig
from ...errors import InputError
from ...inputs.workload import Request
from ...plan.iteration import TierMove
from .layout import MemoryLayout
from .prefix_cache import PrefixCacheKV
from .tier_store import TierStore


def check_tiers(config: RunConfig, requests: list[Request]) -> None:
    """--kv-tiers acts only where the prefix cache does."""
    if not config.kv_tiers:
        return
    if config.scheduler != "vllm":
        raise InputError("--kv-tiers needs --scheduler vllm (the tiers hold its prefix cache's blocks)")
    if not any(r.token_ids is not None for r in requests):
        raise InputError("--kv-tiers holds prefix-cache blocks, but the dataset has no token_ids "
                         "(use a .jsonl dataset with the prompts' token ids)")


def prefix_cache(layout: MemoryLayout, blocks: int, caching: bool, config: RunConfig) -> PrefixCacheKV:
    """vLLM's block pool, over the tiers of --kv-tiers when there are some."""
    if not config.kv_tiers:
        return PrefixCacheKV(layout, blocks, caching)
    return TieredPrefixCacheKV(layout, blocks, caching, TierStore(config.kv_tiers, layout.block_bytes, config.npu_num))


class TieredPrefixCacheKV(PrefixCacheKV):
    def __init__(self, layout: MemoryLayout, total_blocks: int, caching: bool, store: TierStore) -> None:
        super().__init__(layout, total_blocks, caching)
        self.store = store
        self._moves: Counter = Counter()   # (tier index, load?) -> blocks moved in the step being formed

    def _cached(self, key) -> bool:
        return super()._cached(key) or self.store.find(key) is not None

    def allocate(self, request: Request, tokens: int, reuse: list = ()) -> None:
        for key in reuse:  # the reused device blocks are not the ones evicted to make room for the others
            if key in self.cached_free:
                self.cached_free.move_to_end(key)
        super().allocate(request, tokens, reuse)

    def _hold(self, key) -> None:
        if key in self.refs or key in self.cached_free:
            super()._hold(key)
            return
        self._moves[self.store.take(key), True] += 1
        self._take_block(key)

    def _take_block(self, key) -> None:
        self.store.discard(key)
        super()._take_block(key)

    def _evict(self, key) -> None:
        self.store.demote(key)
        self._moves[0, False] += 1

    def take_tier_moves(self) -> list[TierMove]:
        """The step's stores to the first tier and loads from each tier, one move each; counts the
        loads' engine time."""
        moves = []
        for (index, load), blocks in sorted(self._moves.items(), key=lambda item: (item[0][1], item[0][0])):
            tier, nbytes = self.store.tiers[index], blocks * self.layout.block_bytes
            if load:
                self.store.stats[index].load_ns += tier.transfer_ns(nbytes)
            moves.append(TierMove(index + 1, tier.name, load, nbytes))
        self._moves.clear()
        return moves
