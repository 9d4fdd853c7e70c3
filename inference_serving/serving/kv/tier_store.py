"""The KV blocks below device memory: one least-recently-used list per tier, fastest tier first.

A block is in one place at a time (device or one tier). A block demoted from the device enters the
first tier as its most recent block; a tier over capacity passes its least recently used block to the
next tier, and the last tier drops it. A block reloaded to the device leaves its tier. Capacities are
counted in blocks of the whole cluster: a block takes `block_bytes` on each of `copies` NPUs.

One store may serve several KV managers (the instances of a node sharing one host cache, LMCache
style): it keys blocks by their prefix hash only.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .tiers import Tier


@dataclass
class TierStats:
    """One tier's traffic, in blocks and bytes per NPU, and the engine time of its loads."""

    tier: Tier
    hits: int = 0          # prefix blocks reloaded from it
    bytes_in: int = 0      # demoted into it (from the device or the tier above)
    bytes_out: int = 0     # reloaded from it to the device
    evicted: int = 0       # blocks it passed to the tier below (the last tier: dropped)
    load_ns: int = 0       # engine time of its loads, summed over steps


class TierStore:
    def __init__(self, tiers: tuple[Tier, ...], block_bytes: int, copies: int) -> None:
        self.tiers, self.block_bytes = tiers, block_bytes
        self.slots = [t.capacity_bytes // (block_bytes * copies) for t in tiers]
        self.blocks = [OrderedDict() for _ in tiers]
        self.stats = [TierStats(t) for t in tiers]

    def find(self, key) -> int | None:
        """The index of the tier holding `key`, or None."""
        return next((i for i, blocks in enumerate(self.blocks) if key in blocks), None)

    def demote(self, key) -> None:
        """A block leaving the device; capacity pressure cascades down the tiers."""
        for index, blocks in enumerate(self.blocks):
            blocks[key] = None
            self.stats[index].bytes_in += self.block_bytes
            if len(blocks) <= self.slots[index]:
                return
            key, _ = blocks.popitem(last=False)
            self.stats[index].evicted += 1

    def take(self, key) -> int:
        """Removes a block that goes back to the device; returns its tier's index."""
        index = self.find(key)
        del self.blocks[index][key]
        self.stats[index].hits += 1
        self.stats[index].bytes_out += self.block_bytes
        return index

    def discard(self, key) -> None:
        """Forgets a block the device recomputed (its copy here is stale)."""
        index = self.find(key)
        if index is not None:
            del self.blocks[index][key]

    def summary(self, now: int) -> dict:
        out = {}
        for s in self.stats:
            prefix = f"kv_tier_{s.tier.name}"
            out.update({f"{prefix}_hit_blocks": s.hits, f"{prefix}_bytes_in": s.bytes_in,
                        f"{prefix}_bytes_out": s.bytes_out, f"{prefix}_load_s": s.load_ns / 1e9})
        return out

    def lines(self, now: int) -> list[str]:
        return [f"{'KV tier ' + s.tier.name + ':':26}{s.hits} block hits, {s.bytes_in} B in, {s.bytes_out} B out per "
                f"NPU, {s.load_ns / 1e6:.6f} ms loading, {s.evicted} blocks evicted"
                for s in self.stats]
