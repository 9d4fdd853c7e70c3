"""The summary's mean, median and percentile, computed float operation for float operation as numpy 2
computes them (`ndarray.mean`, `np.median`, `np.percentile` with its default linear method): the summary is
the same to the last bit, and a run does not import numpy (~0.1 s of a warm start).

Where each step comes from: numpy/_core/_methods.py `_mean` (a sum, then a division by the count), its
C sum loop (`pairwise_sum` in numpy/_core/src/umath/loops_utils.h.src, added to the identity 0.0),
numpy/lib/_function_base_impl.py `_median` (the mean of the middle one or two) and `_quantile`, `_lerp`.
tests/test_summary_stats.py compares them with numpy on random samples.
"""
from __future__ import annotations

import math

PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE: up to this many values are summed in 8 running sums
UNROLL = 8            # the 8 running sums of a block


def _pairwise_sum(values: list[float], start: int, count: int) -> float:
    """numpy's pairwise_sum of values[start:start + count]."""
    if count < UNROLL:
        total = -0.0  # numpy starts at -0.0 so that a sum of -0.0 stays -0.0
        for i in range(start, start + count):
            total += values[i]
        return total
    if count <= PAIRWISE_BLOCK:
        sums = values[start:start + UNROLL]
        whole = start + count - count % UNROLL
        for i in range(start + UNROLL, whole, UNROLL):
            for j in range(UNROLL):
                sums[j] += values[i + j]
        total = ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]))
        for i in range(whole, start + count):
            total += values[i]
        return total
    half = count // 2
    half -= half % UNROLL
    return _pairwise_sum(values, start, half) + _pairwise_sum(values, start + half, count - half)


def mean(values: list[float]) -> float:
    return (0.0 + _pairwise_sum(values, 0, len(values))) / len(values)


def median(ordered: list[float]) -> float:
    """Of values sorted ascending."""
    middle = len(ordered) // 2
    return mean(ordered[middle - 1:middle + 1] if len(ordered) % 2 == 0 else ordered[middle:middle + 1])


def percentile(ordered: list[float], q: int) -> float:
    """The q-th percentile (0-100) of values sorted ascending, interpolated linearly."""
    last = len(ordered) - 1
    virtual = last * (q / 100)
    if virtual >= last:
        below, low, high = -1.0, last, last  # numpy takes the last value (its index -1) for both
    else:
        low = math.floor(virtual)
        below, high = float(low), low + 1
    weight = virtual - below
    a, b = ordered[low], ordered[high]
    step = b - a  # numpy's _lerp: from the nearer end
    return b - step * (1 - weight) if weight >= 0.5 else a + step * weight
