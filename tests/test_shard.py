"""One tensor-parallel shard rule (vLLM's) for every provider and the memory layout."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from inference_serving.errors import InputError
from inference_serving.inputs.hardware import load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.perf.npu import NpuProvider
from inference_serving.perf.shard import shard
from inference_serving.serving.kv.layout import memory_layout

REPO = Path(__file__).resolve().parent.parent
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"   # 32 heads, 8 KV heads of 128, MLP 14336, vocab 128256


def test_kv_heads_divided_when_tp_divides_them():
    part = shard(load_model(LLAMA_8B), 4)
    assert (part.heads, part.kv_heads, part.intermediate) == (8, 2, 3584)
    assert part.linear("q_proj") == (4096, 8 * 128)
    assert part.linear("k_proj") == (4096, 2 * 128)
    assert part.linear("o_proj") == (8 * 128, 4096)
    assert part.linear("down_proj") == (3584, 4096)
    assert part.linear("lm_head") == (4096, 128256 // 4)


def test_kv_heads_replicated_when_tp_is_a_multiple():
    part = shard(load_model(LLAMA_8B), 16)
    assert (part.heads, part.kv_heads) == (2, 1)
    assert part.linear("v_proj") == (4096, 128)


@pytest.mark.parametrize("heads, kv_heads, tp, words", [
    (32, 8, 3, "does not divide the 32 attention heads"),
    (12, 4, 6, "neither divides nor is a multiple of the 4 KV heads"),
    (12, 4, 3, "neither divides nor is a multiple of the 4 KV heads"),
])
def test_other_degrees_are_refused(heads, kv_heads, tp, words):
    model = dataclasses.replace(load_model(LLAMA_8B), num_heads=heads, num_kv_heads=kv_heads, head_dim=4096 // heads)
    with pytest.raises(InputError, match=words):
        shard(model, tp)


def test_memory_layout_allocates_the_shape_the_provider_prices():
    """TP 16 on 8 KV heads: one replicated KV head per rank, in the KV block and in the k/v GEMMs."""
    model = load_model(LLAMA_8B)
    layout = memory_layout(model, 16, tp=16, pp=1, npu_mem_gib=80, block_size=16)
    assert layout.block_bytes == 16 * 2 * 32 * 1 * 128 * 2   # tokens, K+V, layers, KV heads per rank, dim, bytes
    npu = NpuProvider(model, load_hardware("NPU"), 16)
    k, n = 4096, 128
    tiles = -(-k // 128) * -(-n // 128)
    compute_ns = tiles * (2 * 128 + 128 + 1 - 2) / 1.0        # one token through a 128x128 array at 1 GHz
    memory_ns = (k * n + k + n) * 2 / 936                     # weights, input, output at 936 GB/s
    assert npu.latency_ns("k_proj", 1, tp=16) == round(max(compute_ns, memory_ns))


def test_main_refuses_a_degree_the_heads_do_not_divide():
    done = subprocess.run([sys.executable, "main.py", "--npu_num", "3", "--req_num", "1"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "tensor-parallel degree 3" in done.stderr
