"""FlashAttention-2's schedule of CTAs of one kind (fa2.py) by events of equal time at once: the same numbers.

fa2._one_kind_s moves one CTA at a time through a heap. Its greedy schedule is in whole tiles
(integers), whatever the rate, and many CTAs end at the same tile (the same tiles started together):
here a heap holds each distinct end once, with how many CTAs end then, one step starts as many CTAs as
end, and the schedule is kept per exact input (a decode step's CTAs change only when a request's
context crosses a tile). It is then timed stretch by stretch with the same operations in the same order
as the reference; a stretch of no tiles adds `0 / rate = 0.0`, which leaves the sum as it is, so it is
skipped. The results are equal bit for bit (tests/test_fa2.py compares them).
"""
from __future__ import annotations

import heapq
from collections import Counter
from functools import lru_cache

TILE_SCHEDULES = 4096  # tile schedules kept (a decode step's CTAs change only when a request crosses a tile)


@lru_cache(maxsize=TILE_SCHEDULES)
def tile_schedule(tiles: tuple[int, ...], slots: int) -> tuple[int, tuple[tuple[int, int], ...]]:
    """CTAs of `tiles` tiles (each > 0) started in order on the first of `slots` slots to free up:
    (when the last CTA starts, ((when a slot frees for good, how many), ... ascending)), in tiles."""
    free = Counter(tiles[:slots])  # end -> slots freeing then
    times = list(free)
    heapq.heapify(times)
    last_start, position = 0, min(slots, len(tiles))
    while position < len(tiles):
        now = heapq.heappop(times)
        count = free.pop(now)
        started = tiles[position:position + count]
        position += len(started)
        last_start = now
        if len(started) < count:
            free[now] = count - len(started)
            heapq.heappush(times, now)
        for length, n in Counter(started).items():
            end = now + length
            if end not in free:
                heapq.heappush(times, end)
            free[end] = free.get(end, 0) + n
    return last_start, tuple(sorted(free.items()))


def one_kind_s(tiles: list[int], slots: int, rate) -> float:
    """fa2._one_kind_s: the schedule in tiles, then each stretch at `rate(CTAs running)` tiles/s."""
    if not tiles:
        return 0.0
    last_start, ends = tile_schedule(tuple(tiles), slots)
    running = sum(count for _, count in ends)
    elapsed = last_start / rate(running)
    before = last_start
    for end, count in ends:
        if end != before:
            elapsed += (end - before) / rate(running)
        before, running = end, running - count
    return elapsed
