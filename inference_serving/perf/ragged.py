"""Ragged decode batches: how much longer a decode-attention kernel takes on mixed context lengths
than on the same requests all at their mean context (a streaming model of the GPU's SMs)."""
from __future__ import annotations

import numpy as np

# Streaming multiprocessors per GPU, from NVIDIA's datasheets / architecture whitepapers.
SM_COUNT = {"a100_sxm": 108, "h100_sxm": 132, "h200_sxm": 132, "b200_sxm": 148, "gb200": 148,
            "l40s": 142, "rtx_pro_6000_server": 188}


def _streaming_time(ordered: np.ndarray, streams_per_request: int, sms: int) -> int:
    """Time (in units of one SM-share of bandwidth) to stream every request's KV cache when the
    device bandwidth is shared equally by the active streams and one stream can draw at most one
    SM's share: with at least `sms` streams the device is saturated, with fewer it is not. While
    the i-th shortest context streams its last part, the requests from the i-th on are active.
    Integer contexts (sorted) give an exact integer."""
    steps = ordered.copy()
    steps[1:] -= ordered[:-1]
    active = streams_per_request * np.arange(len(ordered), 0, -1, dtype=np.int64)
    return int(np.dot(steps, np.maximum(active, sms)))


def ragged_slowdown(contexts: np.ndarray, kv_heads: int, sms: int | None) -> float:
    """How much longer a decode-attention kernel takes on these contexts (int64 array) than on the
    same number of requests all at the mean context. One stream per request and KV head (each KV
    head's cache is read once per step); unknown SM count: no correction."""
    if not sms or len(contexts) < 2:
        return 1.0
    ordered = np.sort(contexts)
    if ordered[0] == ordered[-1]:
        return 1.0
    mean = int(ordered.sum()) / len(ordered)
    equal = mean * max(kv_heads * len(ordered), sms)  # every request streams for `mean` with all active
    return _streaming_time(ordered, kv_heads, sms) / equal
