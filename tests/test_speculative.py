"""Speculative decoding: tokens, KV and step times of hand-derived cases (tiny model, linear CSV profile).

Step time in vLLM mode (tests/test_serving.py has the profile): embedding + 2 layers x (10 rows of
100 + 10 T, rope 50 and attn 200 + kv + 5 t per request) + final_layernorm + lm_head (100 + 10 per
logit position) + sampler (3 passes reading and writing positions x 100 fp32 logits at 200 GB/s).
"""
from __future__ import annotations

import pytest

from inference_serving.config.options import config_from_mapping
from inference_serving.errors import InputError
from inference_serving.inputs.workload import Request
from inference_serving.perf.precision import Precision
from inference_serving.serving.kv.layout import MemoryLayout, memory_layout
from inference_serving.serving.kv.prefix_cache import PrefixCacheKV
from inference_serving.serving.kv.sizing import VllmMemory
from inference_serving.serving.speculative import Acceptance, SpecConfig, SpeculativeVllmPolicy, spec_config, \
    with_draft
from test_serving import DATA, by_id, run
from test_precision import tiny


def row(t: int) -> int:
    return 100 + 10 * t


def layer(t: int, attention: list[tuple[int, int]]) -> int:
    """One decoder layer over t tokens with (new, cached) attention entries."""
    return 10 * row(t) + sum(50 + 200 + kv + 5 * new for new, kv in attention)


def step_ns(t: int, attention: list[tuple[int, int]], positions: int, sampler: bool = True) -> int:
    sampler_ns = 3 * 2 * 4 * positions * 100 // 200 if sampler else 0
    return row(t) + 2 * layer(t, attention) + row(t) + row(positions) + sampler_ns


def policy(shapes, rates, k, blocks=100, budget=100) -> SpeculativeVllmPolicy:
    requests = [Request(i, inp, out, arr) for i, (inp, out, arr) in enumerate(shapes)]
    layout = MemoryLayout(weight_bytes=0, block_bytes=1, capacity_bytes=blocks, block_size=4)
    s = SpeculativeVllmPolicy(requests, PrefixCacheKV(layout, blocks, caching=False), 16, budget,
                              VllmMemory(blocks, 0, 0, 0, 1))
    s.speculate(SpecConfig(k, rates, 0, "ngram"))
    return s


def step(s: SpeculativeVllmPolicy, now: int = 0):
    batch = s.schedule(now)
    shapes = [(e.request_id, e.new_tokens, e.cached_tokens, e.draft_tokens) for e in batch.entries]
    s.complete(batch, now + 1)
    return shapes


def test_all_accepted_advances_by_k_plus_one_and_stops_at_the_output():
    s = policy([(5, 6, 0)], (1.0, 1.0), k=2)
    assert step(s) == [(0, 5, 0, 0)] and s.states[0].generated == 1
    assert step(s) == [(0, 3, 5, 2)]                      # the last token and 2 drafts verified
    assert (s.states[0].generated, s.states[0].cached) == (4, 8)
    assert step(s) == [(0, 2, 8, 1)]                      # one draft only: 2 tokens remain
    assert s.states[0].done and s.states[0].generated == 6 and s.kv.used_blocks == 0
    assert (s.stats.drafted, s.stats.accepted, s.stats.steps) == (3, 3, 2)


def test_rejected_tokens_release_their_blocks():
    s = policy([(3, 5, 0)], (0.0,) * 3, k=3, blocks=10)
    step(s)
    assert s.kv.used_blocks == 1                          # 3 prompt tokens
    batch = s.schedule(1)
    assert [(e.new_tokens, e.cached_tokens, e.draft_tokens) for e in batch.entries] == [(4, 3, 3)]
    assert s.kv.used_blocks == 2                          # 7 tokens while verifying
    s.complete(batch, 2)
    assert (s.states[0].generated, s.states[0].cached, s.kv.used_blocks) == (2, 4, 1)


def test_acceptance_per_position_and_the_token_budget():
    s = policy([(4, 9, 0)], (1.0, 1.0, 0.0), k=3)
    step(s)
    assert step(s) == [(0, 4, 4, 3)] and s.states[0].generated == 1 + 3   # 2 accepted + 1
    budget = policy([(4, 9, 0)], (1.0,), k=3, budget=2)
    step(budget), step(budget)
    assert step(budget) == [(0, 2, 4, 1)]                 # 1 + 1 draft fit the 2-token budget


def test_draws_are_seeded():
    draws = [Acceptance((0.6,) * 4, seed=7).accepted(4) for _ in range(2)]
    stream = Acceptance((0.6,) * 4, seed=7)
    assert draws[0] == draws[1] and [stream.accepted(4) for _ in range(50)] != [draws[0]] * 50


def test_ngram_run_exact_times(tmp_path):
    rows, lines = run(tmp_path, [(5, 6, 0)], scheduler="vllm", engine_overhead=0, spec_tokens=2,
                      spec_acceptance=(1.0,))
    prefill = step_ns(5, [(5, 0)], 1)
    # 1 + 2 drafts over 5 cached: the decode kernel over 5 + 1 + 2 keys (kv 7), 3 logit positions
    verify_2 = step_ns(3, [(1, 7)], 3)
    verify_1 = step_ns(2, [(1, 9)], 2)
    assert (prefill, verify_2, verify_1) == (3972, 3550, 3312)
    r = by_id(rows)[0]
    assert (r["TTFT"], r["end_time"], r["TPOT"]) == (prefill, prefill + verify_2 + verify_1,
                                                     (verify_2 + verify_1) // 5)
    assert "speculative decoding:     3/3 draft tokens accepted (1.000), 2.500 tokens per verification step" in lines


def test_draft_model_passes_are_priced(tmp_path):
    """The tiny model drafts for itself: the same profile, no sampler row; its first pass of a step has
    the target's shape, its further passes one token each."""
    rows, _ = run(tmp_path, [(5, 6, 0)], scheduler="vllm", engine_overhead=0, spec_tokens=2,
                  spec_acceptance=(1.0,), spec_draft=str(DATA / "tiny_model.json"))
    steps = [step_ns(5, [(5, 0)], 1) + step_ns(5, [(5, 0)], 1, sampler=False),
             step_ns(3, [(1, 7)], 3) + step_ns(3, [(1, 7)], 3, sampler=False) + step_ns(1, [(1, 8)], 1, sampler=False),
             step_ns(2, [(1, 9)], 2) + step_ns(2, [(1, 9)], 2, sampler=False)]
    assert steps == [3972 + 3960, 3550 + 3514 + 3056, 3312 + 3288]
    r = by_id(rows)[0]
    assert (r["TTFT"], r["end_time"]) == (steps[0], sum(steps))


def test_draft_model_memory():
    layout = memory_layout(tiny(), 16, 1, 1, 1.0, 4)
    both = with_draft(layout, tiny(), Precision(16), 1)
    assert (both.weight_bytes, both.block_bytes) == (2 * layout.weight_bytes, 2 * layout.block_bytes)


@pytest.mark.parametrize("flags, words", [
    ({"spec_acceptance": "0.5"}, "--spec-acceptance needs --spec-tokens"),
    ({"spec_tokens": 2, "spec_acceptance": "0.5"}, "needs --scheduler vllm"),
    ({"spec_tokens": 2, "scheduler": "vllm"}, "needs --spec-acceptance"),
    ({"spec_tokens": 3, "scheduler": "vllm", "spec_acceptance": "0.9,0.8"}, "2 probabilities for --spec-tokens 3"),
])
def test_flags_that_cannot_act_are_refused(flags, words):
    with pytest.raises(InputError, match=words):
        spec_config(config_from_mapping(flags))


def test_acceptance_must_be_probabilities():
    with pytest.raises(InputError, match="within"):
        config_from_mapping({"spec_acceptance": "0.5,1.5"})
