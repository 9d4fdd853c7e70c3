"""--weight-dtype and --kv-dtype: bytes by hand, block counts, the measured tables they select, refusals."""
from __future__ import annotations

from dataclasses import replace

import pytest

from inference_serving.config.options import config_from_mapping
from inference_serving.errors import InputError
from inference_serving.inputs.hardware import load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.perf.aiconfigurator import AIConfiguratorProvider
from inference_serving.perf.npu import NpuProvider
from inference_serving.perf.precision import Precision
from inference_serving.serving.kv.layout import GIB, memory_layout
from test_serving import DATA, run

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
# tests/data/tiny_model.json: 2 layers, hidden 64, 4 heads and 2 KV heads of 16, MLP 128, vocab 100, untied head.
TINY_MATRICES = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128   # q, k, v, o, gate, up, down: 36,864 per layer
TINY_OTHER = 2 * 2 * 64 + 100 * 64 + 100 * 64 + 64                # norms, embedding, head, final norm: 13,120


def tiny():
    return load_model(str(DATA / "tiny_model.json"))


def test_fp8_kv_halves_the_block_and_doubles_the_blocks():
    bf16 = memory_layout(tiny(), Precision(16), 1, 1, 1.0, 4)
    fp8 = memory_layout(tiny(), Precision(16, kv_dtype="fp8"), 1, 1, 1.0, 4)
    # 4 tokens x K and V x 2 layers x 2 KV heads x 16 x bytes
    assert (bf16.block_bytes, fp8.block_bytes) == (4 * 2 * 2 * 32 * 2, 4 * 2 * 2 * 32 * 1) == (1024, 512)
    weights = (2 * TINY_MATRICES + TINY_OTHER) * 2
    assert bf16.weight_bytes == fp8.weight_bytes == weights == 173_696
    assert bf16.num_blocks == (GIB - weights) // 1024 == 1_048_406
    assert fp8.num_blocks == (GIB - weights) // 512 == 2 * bf16.num_blocks == 2_096_812


@pytest.mark.parametrize("dtype", ["fp8", "int8"])
def test_one_byte_weights_shrink_the_matrices_only(dtype):
    layout = memory_layout(tiny(), Precision(16, weight_dtype=dtype), 1, 1, 1.0, 4)
    assert layout.weight_bytes == 2 * TINY_MATRICES * 1 + TINY_OTHER * 2 == 99_968
    assert layout.block_bytes == 1024  # the KV cache keeps --fp's width


def test_fp_alone_sets_every_format_as_before():
    for bits in (8, 16, 32):
        assert memory_layout(tiny(), Precision(bits), 2, 2, 1.0, 4) == memory_layout(tiny(), bits, 2, 2, 1.0, 4)
    assert Precision(8).weight == Precision(8).kv == "fp8" and Precision(16).kv == "bf16"


def test_a_run_with_fp8_kv_has_twice_the_blocks(tmp_path):
    rows, lines = run(tmp_path, [(4, 2, 0)], kv_dtype="fp8")
    assert "2096812 KV blocks of 4 tokens per NPU" in lines[0]   # the layout above, 1 GiB
    _, plain = run(tmp_path, [(4, 2, 0)])
    assert "1048406 KV blocks" in plain[0]
    assert rows  # the requests ran on the engine


def test_both_spellings_of_the_flags_and_their_choices():
    config = config_from_mapping({"kv_dtype": "fp8", "weight-dtype": "int8"})
    assert config.precision == Precision(16, "int8", "fp8")
    with pytest.raises(InputError, match="kv_dtype"):
        config_from_mapping({"kv-dtype": "int8"})


def test_npu_int8_weights_halve_a_memory_bound_gemm():
    # 128x128 array at 1 GHz, 1 GB/s: a 1-token q_proj of Llama-3.1-8B is memory bound
    hw = replace(load_hardware("NPU"), memory_bw_gbps=1.0)
    model = load_model(LLAMA_8B)
    bf16 = NpuProvider(model, hw, Precision(16)).latency_ns("q_proj", 1)
    int8 = NpuProvider(model, hw, Precision(16, weight_dtype="int8")).latency_ns("q_proj", 1)
    assert bf16 == 4096 * 4096 * 2 + 2 * 4096 * 2       # weights + input + output, ns at 1 B/ns
    assert int8 == 4096 * 4096 * 1 + 2 * 4096 * 2


def test_npu_fp8_kv_reads_half_the_cache():
    hw = replace(load_hardware("NPU"), memory_bw_gbps=1.0, clock_ghz=1e6)
    model = load_model(LLAMA_8B)
    q_and_out = 2 * 1 * 32 * 128 * 2
    kv = (2 * 1000 * 8 * 128 + 2 * 1 * 8 * 128)  # cached and new K and V read, new K and V written
    assert NpuProvider(model, hw, Precision(16)).latency_ns("attn", 1, 999) == q_and_out + kv * 2
    assert NpuProvider(model, hw, Precision(16, kv_dtype="fp8")).latency_ns("attn", 1, 999) == q_and_out + kv


@pytest.fixture(scope="module")
def llama():
    return load_model(LLAMA_8B)


def test_h100_fp8_kv_uses_the_fp8_kv_measurements(llama):
    h100 = load_hardware("H100")
    bf16 = AIConfiguratorProvider(llama, h100, Precision(16))
    fp8 = AIConfiguratorProvider(llama, h100, Precision(16, kv_dtype="fp8"))
    # the same GEMM tables; the batched decode kernel over an FP8 cache moves half the bytes
    assert fp8.latency_ns("q_proj", 64) == bf16.latency_ns("q_proj", 64)
    assert fp8.decode_attention_ns([4000] * 32, 1) < 0.75 * bf16.decode_attention_ns([4000] * 32, 1)
    weights_fp8 = AIConfiguratorProvider(llama, h100, Precision(16, weight_dtype="fp8"))
    assert weights_fp8.latency_ns("q_proj", 4096) < bf16.latency_ns("q_proj", 4096)


def test_formats_without_measurements_are_refused(llama):
    with pytest.raises(InputError, match="a100_sxm.*kv_quant: \"fp8\""):
        AIConfiguratorProvider(llama, load_hardware("A100"), Precision(16, kv_dtype="fp8"))
    with pytest.raises(InputError, match="int8_wo"):
        AIConfiguratorProvider(llama, load_hardware("H100"), Precision(16, weight_dtype="int8"))
