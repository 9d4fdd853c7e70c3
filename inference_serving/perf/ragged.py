"""Ragged decode batches: how much longer a decode-attention kernel takes on mixed context lengths
than on the same requests all at their mean context (a streaming model of the GPU's SMs)."""
from __future__ import annotations

# Streaming multiprocessors per GPU, from NVIDIA's datasheets / architecture whitepapers.
SM_COUNT = {"a100_sxm": 108, "h100_sxm": 132, "h200_sxm": 132, "b200_sxm": 148, "gb200": 148,
            "l40s": 142, "rtx_pro_6000_server": 188}


def _streaming_time(contexts: list[float], streams_per_request: int, sms: int) -> float:
    """Time (in units of one SM-share of bandwidth) to stream every request's KV cache when the
    device bandwidth is shared equally by the active streams and one stream can draw at most one
    SM's share: with at least `sms` streams the device is saturated, with fewer it is not."""
    time, done, active = 0.0, 0.0, streams_per_request * len(contexts)
    for context in sorted(contexts):
        time += (context - done) * max(active, sms)
        done = context
        active -= streams_per_request
    return time


def ragged_slowdown(contexts: list[int], kv_heads: int, sms: int | None) -> float:
    """How much longer a decode-attention kernel takes on these contexts than on the same number of
    requests all at the mean context. One stream per request and KV head (each KV head's cache is
    read once per step); unknown SM count: no correction."""
    if not sms or len(contexts) < 2 or min(contexts) == max(contexts):
        return 1.0
    mean = sum(contexts) / len(contexts)
    return _streaming_time(contexts, kv_heads, sms) / _streaming_time([mean] * len(contexts), kv_heads, sms)
