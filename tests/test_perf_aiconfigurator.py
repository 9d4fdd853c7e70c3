"""AIConfiguratorProvider against first-principles bounds, on the real aiconfigurator-core data."""
import pytest
import yaml

from inference_serving.inputs.model import load_model
from inference_serving.inputs.hardware import load_hardware
from inference_serving.perf.aiconfigurator import AIConfiguratorProvider
from inference_serving.perf.aiconfigurator_systems import SYSTEMS_DIR, hardware_spec, supported_hardware
from inference_serving.errors import InputError

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def measured_provider(model, hardware: str, fp_bits: int) -> AIConfiguratorProvider:
    return AIConfiguratorProvider(model, load_hardware(hardware), fp_bits)


@pytest.fixture(scope="module")
def llama():
    return load_model(LLAMA_8B)


@pytest.fixture(scope="module")
def h100(llama):
    return measured_provider(llama, "H100", 16)


@pytest.fixture(scope="module")
def h100_fp8(llama):
    return measured_provider(llama, "H100", 8)


def h100_yaml():
    return yaml.safe_load((SYSTEMS_DIR / "h100_sxm.yaml").read_text())


def test_supported_hardware_covers_the_common_gpus():
    names = supported_hardware()
    for name in ("H100", "H200", "A100", "B200", "L40S", "RTXPRO6000"):
        assert name in names


def test_hardware_names_are_case_insensitive_and_package_names_work():
    assert hardware_spec("h100").system == "h100_sxm"
    assert hardware_spec("H100_SXM").system == "h100_sxm"
    assert hardware_spec("rtx_pro_6000_server").name == "RTXPRO6000"
    assert hardware_spec("l40s").system == "l40s"


def test_h100_spec_matches_the_system_yaml():
    gpu, node = h100_yaml()["gpu"], h100_yaml()["node"]
    spec = hardware_spec("H100")
    assert spec.memory_gb == pytest.approx(80.0)  # GiB, the "80GB" of the product name
    assert spec.memory_bytes == gpu["mem_capacity"]
    assert spec.memory_bw_gbps == pytest.approx(gpu["mem_bw"] / 1e9) == pytest.approx(3350)
    assert spec.link_bw_gbps == pytest.approx(node["intra_node_bw"] / 1e9)
    assert spec.num_gpus_per_node == 8
    assert spec.bf16_tflops == pytest.approx(989)


def test_unknown_hardware_names_the_supported_ones():
    with pytest.raises(InputError) as err:
        hardware_spec("TPUv5")
    message = str(err.value)
    assert "TPUv5" in message and "H100" in message and "\n" not in message


def test_unknown_layer_is_named(h100):
    with pytest.raises(InputError, match="'mlp_fused'"):
        h100.latency_ns("mlp_fused", 16)


def test_unsupported_precision_fails_at_construction(llama):
    with pytest.raises(InputError, match="--fp 32"):
        measured_provider(llama, "H100", 32)
    with pytest.raises(InputError, match="a100_sxm"):  # Ampere has no FP8 tensor cores
        measured_provider(llama, "A100", 8)


def test_table_prefers_vllm(h100):
    assert h100.table.startswith("vllm ")


def test_zero_tokens_cost_nothing(h100):
    assert h100.latency_ns("q_proj", 0) == 0
    assert h100.latency_ns("attn", 0, 100) == 0


def test_repeated_shape_hits_the_cache(h100):
    first = h100.latency_ns("down_proj", 777)
    hits = h100.hits
    assert h100.latency_ns("down_proj", 777) == first
    assert h100.hits == hits + 1


def test_large_gemm_is_within_a_sane_factor_of_the_flop_bound(h100):
    tokens = 16384
    for layer, (fan_in, fan_out) in (("q_proj", (4096, 4096)), ("gate_proj", (4096, 14336))):
        flop_bound_ns = 2 * tokens * fan_in * fan_out / (989e12) * 1e9
        latency = h100.latency_ns(layer, tokens)
        assert flop_bound_ns <= latency <= 2 * flop_bound_ns


def test_q_proj_grows_with_tokens(h100):
    latencies = [h100.latency_ns("q_proj", 2**i) for i in range(7, 17)]
    assert latencies == sorted(latencies)
    assert latencies[-1] > 100 * h100.latency_ns("q_proj", 1)


def test_tensor_parallel_shard_is_faster_for_big_gemms(h100):
    for layer in ("gate_proj", "down_proj", "lm_head"):
        full, half = h100.latency_ns(layer, 8192, tp=1), h100.latency_ns(layer, 8192, tp=2)
        assert 0.4 * full < half < 0.7 * full


def test_fp8_gemm_is_faster_but_not_beyond_its_flop_bound(h100, h100_fp8):
    tokens = 8192
    fp16, fp8 = h100.latency_ns("gate_proj", tokens), h100_fp8.latency_ns("gate_proj", tokens)
    assert fp8 < fp16
    assert fp8 >= 2 * tokens * 4096 * 14336 / 1978e12 * 1e9


def test_decode_attention_grows_with_kv_cache_and_respects_memory_bandwidth(h100, llama):
    lengths = [1023, 4095, 16383, 65535, 131071]
    latencies = [h100.latency_ns("attn", 1, kv) for kv in lengths]
    assert latencies == sorted(latencies)
    kv_bytes = 2 * llama.num_kv_heads * llama.head_dim * 2 * (lengths[-1] + 1)
    memory_bound_ns = kv_bytes / 3350e9 * 1e9
    assert memory_bound_ns <= latencies[-1] <= 3 * memory_bound_ns


@pytest.fixture(scope="module")
def rtx_pro(llama):
    return measured_provider(llama, "RTXPRO6000", 16)


def test_ragged_decode_batch_costs_more_unless_switched_off(rtx_pro):
    """On a FlashAttention-2 GPU a batch of mixed contexts costs more than the same batch at its mean
    context (the long request's thread blocks run on after the short ones); with the schedule off
    (--no-ragged) it costs what the batch at the mean context does."""
    ragged, even = [255, 8191], [4223, 4223]
    assert rtx_pro.decode_attention_ns(ragged, 1) > rtx_pro.decode_attention_ns(even, 1)
    rtx_pro.ragged = False
    try:
        assert rtx_pro.decode_attention_ns(ragged, 1) == rtx_pro.decode_attention_ns(even, 1)
    finally:
        rtx_pro.ragged = True


def test_decodes_beside_a_prompt_chunk_cost_more_unpacked(rtx_pro):
    """A step with a prompt chunk runs its decodes in FA2's unpacked kernel: four times the thread
    blocks of the packed one (32 query heads, 8 KV heads); --no-mixed-unpacking packs them again."""
    decodes, chunk = [1023] * 64, [(512, 0)]
    unpacked = rtx_pro.decode_attention_ns(decodes, 1, chunk)
    rtx_pro.mixed_unpacking = False
    try:
        assert rtx_pro.decode_attention_ns(decodes, 1, chunk) < unpacked
    finally:
        rtx_pro.mixed_unpacking = True


def test_tile_time_is_the_context_tables_marginal_time_per_tile(rtx_pro):
    """Per query head a causal prompt of s tokens (multiple of 128) runs s/64 CTAs of 64 rows; CTA m
    reads ceil(64 (m + 1) / 128) tiles of 128 keys: 2 (1 + ... + s/128) tiles, 4160 at 8192 and 1056
    at 4096. The time per tile on one of the 188 SMs is the added time over the added tiles."""
    added_ms = (rtx_pro._evaluate_ms("attn", 1, prefill=True, s=8192)
                - rtx_pro._evaluate_ms("attn", 1, prefill=True, s=4096))
    assert rtx_pro._tile_time_s(1) == pytest.approx(added_ms / 1e3 * 188 / (32 * (4160 - 1056)))
    assert 1e-6 < rtx_pro._tile_time_s(1) < 5e-6


def test_only_fa2_gpus_get_the_thread_block_schedule(llama, h100, rtx_pro):
    """vLLM 0.19 runs FlashAttention 3 on Hopper, and FA2 reads no fp8 KV cache."""
    assert h100.fa2_gpu is None
    assert measured_provider(llama, "RTXPRO6000", 8).fa2_gpu is None
    assert (rtx_pro.fa2_gpu.sms, rtx_pro.fa2_gpu.ctas_per_sm, rtx_pro.fa2_gpu.l2_bytes) == (188, 1, 128 * 2**20)


def test_prefill_attention_grows_with_tokens_and_prefix(h100):
    by_tokens = [h100.latency_ns("attn", t) for t in (512, 2048, 8192, 32768)]
    assert by_tokens == sorted(by_tokens)
    for tokens in (2, 128, 1024):
        with_prefix = [h100.latency_ns("attn", tokens, kv) for kv in (0, 256, 4096, 65536)]
        assert with_prefix == sorted(with_prefix)
    # A 1024-token chunk after 1024 cached tokens costs less than a 2048-token prefill.
    assert h100.latency_ns("attn", 1024, 1024) < h100.latency_ns("attn", 2048)


def test_attention_heads_are_split_by_tp(h100):
    assert h100.latency_ns("attn", 8192, tp=2) < 0.7 * h100.latency_ns("attn", 8192)


def test_norm_is_memory_bound(h100, llama):
    tokens = 65536
    moved_bytes = 2 * (2 * llama.hidden_size + 2 * llama.hidden_size) * tokens  # fused add + RMSNorm, bf16
    memory_bound_ns = moved_bytes / 3350e9 * 1e9
    latency = h100.latency_ns("input_layernorm", tokens)
    assert memory_bound_ns <= latency <= 2 * memory_bound_ns
    assert h100.latency_ns("input_layernorm", tokens, tp=4) == latency  # norms are not split


def test_rope_is_folded_into_prefill_attention_and_small_when_decoding(h100):
    assert h100.latency_ns("rope", 512, 0) == 0
    assert 0 < h100.latency_ns("rope", 1, 512) < h100.latency_ns("attn", 1, 512)


def test_every_layer_of_the_trace_has_a_latency(h100, llama):
    layers = ["embedding", "input_layernorm", "q_proj", "k_proj", "v_proj", "rope", "attn", "o_proj",
              "post_layernorm", *llama.mlp_layers(), "final_layernorm", "lm_head"]
    for layer in layers:
        assert h100.latency_ns(layer, 64, 64, 2) >= 0


@pytest.mark.parametrize("hardware", supported_hardware())
def test_every_supported_gpu_answers_in_bf16(llama, hardware):
    model = measured_provider(llama, hardware, 16)
    assert model.latency_ns("q_proj", 1024) > 0
    assert model.latency_ns("attn", 1, 1024) > 0


def test_long_context_decode_grid_agrees_with_the_engine(h100):
    for kv_cache in (40000, 70001, 123456, 250000):
        direct_ns = h100._evaluate_ms("attn", 1, prefill=False, s=kv_cache + 1) * 1e6
        assert h100.latency_ns("attn", 1, kv_cache) == pytest.approx(direct_ns, rel=1e-4)
