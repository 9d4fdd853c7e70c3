"""provider scaled: a GPU priced from its measured sibling's tables by datasheet ratios, checked by hand."""
import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from inference_serving.errors import InputError
from inference_serving.inputs.hardware import load_hardware, read_hardware_file
from inference_serving.inputs.model import load_model
from inference_serving.perf.aiconfigurator import AIConfiguratorProvider
from inference_serving.perf.aiconfigurator_systems import hardware_spec
from inference_serving.perf.scaled import Datasheet, ScaledProvider, Work, roofline_ratio

REPO = Path(__file__).resolve().parent.parent
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
SCALED_GPUS = ("RTX3090", "RTX4090", "A10", "A40", "L4")

# Datasheet figures, as in hardware/RTX3090.yaml (GA102 whitepaper) and the package's a100_sxm.yaml.
RTX3090_TFLOPS, RTX3090_GBPS = 71, 936
A100_TFLOPS, A100_GBPS = 312, 2039


def within_rounding(got_ns: int, expected_ns: float, ratio: float) -> bool:
    """Times come back as whole ns: half a ns of the sibling's time (times ratio), of the fixed time
    (times ratio - 1) and of the answer add up to `ratio` ns of slack."""
    return abs(got_ns - expected_ns) <= ratio


@pytest.fixture(scope="module")
def llama():
    return load_model(LLAMA_8B)


@pytest.fixture(scope="module")
def a100(llama):
    return AIConfiguratorProvider(llama, load_hardware("A100"), 16)


@pytest.fixture(scope="module")
def rtx3090(llama):
    return ScaledProvider(llama, load_hardware("RTX3090"), 16)


@pytest.fixture(scope="module")
def a100_smallest_gemm_ns(tmp_path_factory):
    """The A100 table's smallest GEMM (1 token, 32 x 32 weight): the gate_proj of a 32-wide model."""
    path = tmp_path_factory.mktemp("model") / "narrow.json"
    path.write_text(json.dumps({"hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 1,
                                "num_attention_heads": 1, "head_dim": 128, "vocab_size": 32,
                                "max_position_embeddings": 4096}))
    return AIConfiguratorProvider(load_model(str(path)), load_hardware("A100"), 16).latency_ns("gate_proj", 1)


@pytest.mark.parametrize("name", SCALED_GPUS)
def test_shipped_files_load_and_price_llama(name, llama):
    hw = load_hardware(name)
    assert hw.provider == "scaled" and hw.sm_count > 0 and hw.peak_tflops["bf16"] > 0
    assert hardware_spec(hw.sibling).name in ("A100", "L40S")  # a measured GPU
    perf = ScaledProvider(llama, hw, 16)
    assert perf.fa2_gpu.sms == hw.sm_count and f"scaled to {name}" in perf.table  # the target's own SMs
    assert perf.latency_ns("q_proj", 1) > 0


def test_compute_bound_gemm_takes_the_flop_ratio(a100, rtx3090, a100_smallest_gemm_ns):
    # q_proj, 8192 tokens x 4096 -> 4096: 2*8192*4096*4096 FLOPs over (4096*4096 + 8192*4096)*2 B in
    # and 8192*4096*2 B out = 1638 FLOP/B, above both ridges (A100 312e12/2039e9 = 153, RTX 3090
    # 71e12/936e9 = 76): the part above the fixed GEMM time grows by 312/71.
    flops, moved = 2 * 8192 * 4096 * 4096, (4096 * 4096 + 8192 * 4096) * 2 + 8192 * 4096 * 2
    assert flops / moved > A100_TFLOPS * 1e12 / (A100_GBPS * 1e9) > RTX3090_TFLOPS * 1e12 / (RTX3090_GBPS * 1e9)
    sibling, fixed = a100.latency_ns("q_proj", 8192), a100_smallest_gemm_ns
    ratio = A100_TFLOPS / RTX3090_TFLOPS
    assert within_rounding(rtx3090.latency_ns("q_proj", 8192), fixed + (sibling - fixed) * ratio, ratio)


def test_memory_bound_decode_gemm_takes_the_bandwidth_ratio(a100, rtx3090, a100_smallest_gemm_ns):
    # q_proj at 1 token: 2*4096*4096 FLOPs over about 2*4096*4096 B: 1 FLOP/B, below both ridges.
    sibling, fixed = a100.latency_ns("q_proj", 1), a100_smallest_gemm_ns
    ratio = A100_GBPS / RTX3090_GBPS
    assert within_rounding(rtx3090.latency_ns("q_proj", 1), fixed + (sibling - fixed) * ratio, ratio)


def test_memory_bound_decode_attention_takes_the_bandwidth_ratio(a100, rtx3090):
    # One token over 4096 keys, 32 query / 8 KV heads of 128: 4*4096*32*128 FLOPs over the K and V
    # read, 2*4096*8*128*2 B: 4 FLOP/B. Fixed part: the same kernel over one key.
    sibling, fixed = a100.latency_ns("attn", 1, 4095), a100.latency_ns("attn", 1, 0)
    ratio = A100_GBPS / RTX3090_GBPS
    assert within_rounding(rtx3090.latency_ns("attn", 1, 4095), fixed + (sibling - fixed) * ratio, ratio)


def test_between_the_ridges_each_gpu_takes_its_own_bound():
    # 100 FLOP/B: compute-bound on the RTX 3090 (ridge 76), memory-bound on the A100 (ridge 153).
    work = Work(flops=100e9, memory_bytes=1e9)
    target = Datasheet("RTX3090", {"bf16": RTX3090_TFLOPS}, RTX3090_GBPS)
    sibling = Datasheet("A100", {"bf16": A100_TFLOPS}, A100_GBPS)
    assert roofline_ratio(work, target, sibling) == pytest.approx((100e9 / 71e12) / (1e9 / 2039e9))


def test_fp8_needs_fp8_peaks_on_both_gpus(llama):
    with pytest.raises(InputError, match="--fp 32"):
        ScaledProvider(llama, load_hardware("RTX4090"), 32)
    with pytest.raises(InputError, match="RTX3090: no fp8 tensor peak"):
        ScaledProvider(llama, load_hardware("RTX3090"), 8)
    assert ScaledProvider(llama, load_hardware("RTX4090"), 8).latency_ns("q_proj", 1) > 0


@pytest.mark.parametrize("drop, words", [("sibling", "missing 'sibling'"), ("peak_tflops", "missing 'peak_tflops'")])
def test_scaled_file_needs_sibling_and_peaks(tmp_path, drop, words):
    text = "provider: scaled\nsibling: A100\nsm_count: 82\npeak_tflops: {bf16: 71}\n" \
           "memory_gib: 24\nmemory_bw_gbps: 936\nlink_bw_gbps: 32\n"
    path = tmp_path / "gpu.yaml"
    path.write_text("".join(line + "\n" for line in text.splitlines() if not line.startswith(drop)))
    with pytest.raises(InputError, match=words):
        read_hardware_file(path)
    path.write_text(text.replace("bf16", "fp8"))
    with pytest.raises(InputError, match="gpu: no bf16 tensor peak for --fp 16"):
        ScaledProvider(load_model(LLAMA_8B), read_hardware_file(path), 16)


def test_seed_readme_command_runs_end_to_end(tmp_path):
    """The original README's example (hardware RTX3090), with fewer requests and the CSV in tmp."""
    out = tmp_path / "example_run.csv"
    cmd = [sys.executable, "main.py", "--model_name", LLAMA_8B, "--hardware", "RTX3090", "--npu_num", "1",
           "--npu_group", "1", "--npu_mem", "40", "--remote_bw", "512", "--link_bw", "256", "--fp", "16",
           "--block_size", "4", "--dataset", "dataset/share-gpt-req100-rate10.tsv", "--output", str(out),
           "--verbose", "--req_num", "3"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "x RTX3090" in done.stdout and "requests finished:        3" in done.stdout
    with open(out, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3


def test_local_bw_override_scales_memory_bound_ops(llama, a100, a100_smallest_gemm_ns):
    """--local_bw replaces the datasheet bandwidth (simulate applies it to the hardware): half the bandwidth,
    twice the bandwidth ratio for a decode GEMM."""
    slow = ScaledProvider(llama, replace(load_hardware("RTX3090"), memory_bw_gbps=468.0), 16)
    sibling, fixed = a100.latency_ns("q_proj", 1), a100_smallest_gemm_ns
    ratio = A100_GBPS / 468
    assert within_rounding(slow.latency_ns("q_proj", 1), fixed + (sibling - fixed) * ratio, ratio)
