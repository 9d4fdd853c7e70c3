"""The analytical NPU model against cycle counts computed by hand.

A small array makes partial tiles and several tiles visible: R x C = 8 x 4 at 2 GHz with 4 vector
lanes. The tiny model (tests/data/tiny_model.json): hidden 64, MLP 128, 4 heads and 2 KV heads of
16, vocab 100, Llama-style (RMSNorm, SiLU-gated MLP, rope, no biases). --fp 16: 2 bytes/element.
GEMM cycles = ceil(K/R) * ceil(N/C) * (2R + C + M - 2); latency = max(cycles / f, bytes / B).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from inference_serving.inputs.hardware import Hardware, load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.errors import InputError
from inference_serving.perf.npu import NpuProvider
from inference_serving.perf.provider import build_provider

DATA = Path(__file__).resolve().parent / "data"
SMALL = Hardware(name="SMALL", provider="npu", memory_gib=1.0, memory_bw_gbps=1000.0, link_bw_gbps=10.0,
                 array_rows=8, array_cols=4, clock_ghz=2.0, vector_lanes=4)


def npu(bandwidth: float = 1000.0, model: str = "tiny_model.json", hardware: Hardware = SMALL) -> NpuProvider:
    return NpuProvider(load_model(str(DATA / model)), dataclasses.replace(hardware, memory_bw_gbps=bandwidth), 16)


def test_gemm_tiling_compute_bound():
    # q_proj, 10 tokens: K=64, N=64 -> 8 x 16 tiles of (16 + 4 + 10 - 2) = 28 cycles
    assert npu().gemm_cycles(10, 64, 64) == 8 * 16 * 28 == 3584
    assert npu().latency_ns("q_proj", 10) == 3584 / 2  # memory: (4096 + 640 + 640) * 2 B / 1000 GB/s = 10.8 ns


def test_gemm_memory_bound():
    # at 1 GB/s the same q_proj moves (64*64 weights + 10*64 in + 10*64 out) * 2 bytes in 10752 ns
    assert npu(bandwidth=1.0).latency_ns("q_proj", 10) == (64 * 64 + 640 + 640) * 2 == 10752


def test_partial_tiles_and_tensor_parallel_shards():
    perf = npu()
    # lm_head, 2 requests: K=64, N=100 -> 8 x 25 tiles (the last one 0-filled) of 16+4+2-2 = 20 cycles
    assert perf.latency_ns("lm_head", 2) == 8 * 25 * 20 / 2
    # k_proj at tp 2: one KV head of 16 per shard -> K=64, N=16: 8 x 4 tiles of 16+4+3-2 = 21
    assert perf.latency_ns("k_proj", 3, tp=2) == 8 * 4 * 21 / 2
    # o_proj at tp 2 splits its input: K=32, N=64 -> 4 x 16 tiles
    assert perf.latency_ns("o_proj", 3, tp=2) == 4 * 16 * 21 / 2
    # down_proj at tp 4: K=128/4=32, N=64
    assert perf.latency_ns("down_proj", 1, tp=4) == 4 * 16 * 19 / 2


def test_vector_layers():
    perf = npu()
    # RMSNorm over 10 tokens x 64: 4 ops each on 4 lanes = 640 cycles at 2 GHz
    assert perf.latency_ns("input_layernorm", 10) == 4 * 10 * 64 / 4 / 2 == 320
    # gated act_fn at tp 2: 64 features per shard, 4 ops per output element
    assert perf.latency_ns("act_fn", 10, tp=2) == 4 * 10 * 64 / 4 / 2
    # rope, 3 new tokens: (4 + 2) heads x 16 rotated elements per token, 3 ops each
    assert perf.latency_ns("rope", 3, kv_cache=5) == 3 * (3 * 6 * 16) / 4 / 2 == 108
    # embedding: a gather, pure memory: rows in and out (2 * 10 * 64 * 2 B) plus 10 int32 token ids
    assert npu(bandwidth=2.0).latency_ns("embedding", 10) == (2 * 10 * 64 * 2 + 40) / 2 == 1300


def test_attention_gemms_with_gqa_and_softmax():
    perf = npu()
    # 3 new tokens after 5 cached: L = 8 keys; 4 query heads over 2 KV heads -> g = 2, 6 streamed rows
    # QK^T per KV head: K=d=16, N=L=8 -> 2 x 2 tiles of (16+4+6-2)=24 = 96 cycles
    # PV   per KV head: K=L=8, N=d=16 -> 1 x 4 tiles of 24 = 96 cycles; two KV heads: 384
    # softmax: 5 ops x 4 heads x 3 queries x 8 keys / 4 lanes = 120 cycles
    array, vector = perf.attention_cycles(3, 5, 1)
    assert (array, vector) == (2 * (96 + 96), 120)
    assert perf.latency_ns("attn", 3, kv_cache=5) == (384 + 120) / 2 == 252
    # memory side: Q and output 2*3*4*16, K/V read 2*8*2*16, new K/V written 2*3*2*16 elements
    assert npu(bandwidth=1.0).latency_ns("attn", 3, kv_cache=5) == (384 + 512 + 192) * 2


def test_attention_head_shards():
    # tp 2: 2 query heads, 1 KV head (g = 2): decode with 7 cached, L = 8
    # QK^T: 2 x 2 tiles of (16+4+2-2)=20 -> 80; PV: 1 x 4 tiles -> 80; softmax 5*2*1*8/4 = 20
    assert npu().attention_cycles(1, 7, 2) == (160, 20)


def test_layernorm_biases_and_no_rope_for_learned_positions(tmp_path):
    opt = tmp_path / "tiny_opt.json"
    opt.write_text('{"model_type": "opt", "hidden_size": 64, "ffn_dim": 128, "num_hidden_layers": 2, '
                   '"num_attention_heads": 4, "vocab_size": 100, "max_position_embeddings": 512}')
    perf = NpuProvider(load_model(str(opt)), dataclasses.replace(SMALL, memory_bw_gbps=1.0), 16)
    assert perf.latency_ns("rope", 5) == 0
    # LayerNorm: 7 ops per element; memory (2 * 2 * 64 + 2 * 64 weights) * 2 B = 768 ns at 1 GB/s
    assert perf.latency_ns("post_layernorm", 2) == max(7 * 2 * 64 / 4 / 2, (2 * 2 * 64 + 128) * 2) == 768
    # fc1 with bias: (64*128 + 128 + 1*64 + 1*128) * 2 bytes
    assert perf.latency_ns("fc1", 1) == (64 * 128 + 128 + 64 + 128) * 2
    # embedding adds the learned positions: a third row of 64 per token, 1 add per element
    assert perf.latency_ns("embedding", 1) == 3 * 64 * 2 + 4


def test_paper_npu_file_and_fp_width():
    hw = load_hardware("NPU")
    assert (hw.array_rows, hw.array_cols, hw.clock_ghz, hw.memory_bw_gbps, hw.link_bw_gbps) == (128, 128, 1.0, 936, 64)
    perf = NpuProvider(load_model("meta-llama/Llama-3.1-8B"), hw, 16)
    # decode q_proj of Llama-3.1-8B: 32 x 32 tiles of (256 + 128 + 1 - 2) = 383 cycles at 1 GHz; its
    # 4096 x 4096 weights take 33.6 MB / 936 GB/s = 35.9 us: compute-bound by filling the array
    assert perf.latency_ns("q_proj", 1) == 32 * 32 * 383
    # a 2048-token prefill is compute-bound too: 1024 tiles x (382 + 2048)
    assert perf.latency_ns("q_proj", 2048) == 1024 * (382 + 2048)
    fp32 = NpuProvider(load_model("meta-llama/Llama-3.1-8B"), hw, 32)
    assert fp32.latency_ns("embedding", 1) == pytest.approx((2 * 4096 * 4 + 4) / 936, abs=1)


def test_unknown_layer_and_zero_tokens():
    perf = npu()
    assert perf.latency_ns("q_proj", 0) == 0
    with pytest.raises(InputError, match="unknown layer 'conv'"):
        perf.latency_ns("conv", 1)
    with pytest.raises(InputError, match="missing 'array_rows' .required for provider npu"):
        build_provider(load_model(str(DATA / "tiny_model.json")), dataclasses.replace(SMALL, array_rows=None), 16)
