"""KV blocks demoted to memory tiers and reloaded from each: engine times by hand (tiny model, vllm).

Blocks of 4 tokens are 1024 B (tests/test_precision.py); 4 device blocks (--num_gpu_blocks 4); tiers of
1, 1 and 10 blocks. Three one-token-output requests, each alone: A (13 prompt tokens: 3 full blocks and
1 partial), B (13 other tokens), C (A's prompt). B's blocks push A's 3 cached blocks out of the device
LRU first: A2 to cpu, then A1 (A2 on to cxl), then A0 (A1 to cxl, A2 to ssd). C finds A0 in cpu, A1 in
cxl and A2 in ssd: one load from each before its one-token prefill, while B's blocks leave the device.
"""
from __future__ import annotations

import json

import pytest

from inference_serving.config.options import config_from_mapping
from inference_serving.errors import InputError
from inference_serving.serving.kv.tiers import DEFAULTS, Tier, TierList
from test_serving import by_id, run
from test_speculative import step_ns

BLOCK = 1024
TIERS = TierList().convert("cpu:0.000001,cxl:0.000001,ssd:0.00001", None, None)  # 1073, 1073, 10737 B: 1, 1, 10 blocks


def dataset(tmp_path):
    a, b = list(range(13)), list(range(100, 113))
    lines = [{"input_toks": 13, "output_toks": 1, "arrival_time_ns": t, "token_ids": ids}
             for ids, t in ((a, 0), (b, 10**6), (a, 2 * 10**6))]
    path = tmp_path / "prefix.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def transfer(tier: str, nbytes: int) -> int:
    bandwidth, latency = DEFAULTS[tier]
    return latency + int(nbytes / bandwidth)


def test_a_prefix_hit_reloads_from_each_tier(tmp_path):
    rows, lines = run(tmp_path, [], dataset=dataset(tmp_path), scheduler="vllm", num_gpu_blocks=4,
                      engine_overhead=0, kv_tiers=TIERS)
    prefill = step_ns(13, [(13, 0)], 1)
    store = transfer("cpu", 3 * BLOCK)                     # 100 + floor(3072 / 307.2)
    loads = [transfer("cpu", BLOCK), transfer("cxl", BLOCK), transfer("ssd", BLOCK)]
    assert (prefill, store, loads) == (5812, 110, [103, 266, 80137])   # ssd: 80000 + floor(1024 / 7.45)
    r = by_id(rows)
    assert r[0]["TTFT"] == prefill
    assert r[1]["TTFT"] == store + prefill                 # A's blocks demoted before B's prefill
    one_token = step_ns(1, [(1, 12)], 1)                   # the last prompt token over 12 reloaded
    assert r[2]["TTFT"] == store + sum(loads) + one_token
    tier_lines = [line for line in lines if line.startswith("KV tier")]
    assert tier_lines == [
        "KV tier cpu:              1 block hits, 6144 B in, 1024 B out per NPU, 0.000103 ms loading, 4 blocks evicted",
        "KV tier cxl:              1 block hits, 4096 B in, 1024 B out per NPU, 0.000266 ms loading, 2 blocks evicted",
        "KV tier ssd:              1 block hits, 2048 B in, 1024 B out per NPU, 0.080137 ms loading, 0 blocks evicted"]
    assert any("KV blocks from memory tier ssd: 1024 B per NPU (MEM_LOAD)" in line for line in lines)


def test_without_tiers_the_prefix_is_recomputed(tmp_path):
    rows, _ = run(tmp_path, [], dataset=dataset(tmp_path), scheduler="vllm", num_gpu_blocks=4, engine_overhead=0)
    assert by_id(rows)[2]["TTFT"] == step_ns(13, [(13, 0)], 1)


def test_tier_flag_defaults_and_overrides():
    config = config_from_mapping({"kv_tiers": "cpu:256,ssd:4096:13:80000"})
    assert config.kv_tiers == (Tier("cpu", 256.0, 307.2, 100), Tier("ssd", 4096.0, 13.0, 80000))
    for bad in ("gpu:1", "cpu:1,cpu:2", "cpu", "cpu:-1", "ssd:1:0", "cpu:1:2:3.5"):
        with pytest.raises(InputError, match="kv_tiers"):
            config_from_mapping({"kv_tiers": bad})


def test_tiers_are_refused_where_they_cannot_act(tmp_path):
    with pytest.raises(InputError, match="needs --scheduler vllm"):
        run(tmp_path, [], dataset=dataset(tmp_path), kv_tiers=TIERS)
    with pytest.raises(InputError, match="no token_ids"):
        run(tmp_path, [(4, 2, 0)], scheduler="vllm", kv_tiers=TIERS)
