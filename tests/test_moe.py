"""Mixture of experts: routing, expert placement, weights per rank, the MoE rows and one MoE step at EP2
timed by the real engine, against numbers derived by hand (README "Mixture of experts")."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inference_serving.backend.base import EngineSetup
from inference_serving.backend.engine_config import SystemConfig, write_configs
from inference_serving.backend.step import StepEngine
from inference_serving.config.run_config import RunConfig
from inference_serving.config.vllm_parallel import parallel_flags
from inference_serving.errors import InputError
from inference_serving.inputs.hardware import load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.paths import DEFAULT_ENGINE, MODEL_CONFIG_DIR
from inference_serving.perf.aiconfigurator import AIConfiguratorProvider
from inference_serving.perf.collectives import collective_table
from inference_serving.perf.expert_load import expert_load
from inference_serving.perf.experts import expert_plan
from inference_serving.perf.npu import NpuProvider
from inference_serving.plan.builder import TraceBuilder
from inference_serving.plan.chakra import _rank_ops, serialize_chain
from inference_serving.plan.iteration import AttentionGroup, BatchEntry, Comm, with_groups
from inference_serving.report.engine_settings import run_settings
from inference_serving.serving.kv.layout import stage_weight_bytes
from inference_serving.simulate import simulate

REPO = Path(__file__).resolve().parent.parent
QWEN_MOE, MIXTRAL, DEEPSEEK = "Qwen/Qwen3-30B-A3B", "mistralai/Mixtral-8x7B-v0.1", "deepseek-ai/deepseek-moe-16b-base"
# aiconfigurator-core 0.12.0, systems/data/h100_sxm/moe/vllm/0.24.0/moe_perf.parquet: bfloat16, hidden 2048,
# inter 768, top-8 of 128 experts (Qwen3-30B-A3B), moe_tp_size 1, moe_ep_size 2, distribution balanced
FUSED_EP2_MS = {1: 0.037418665985266365, 128: 0.2510506709416707, 192: 0.2549920082092285}
# the same package, h100_sxm/comm/vllm/0.19.0/custom_allreduce_perf: 2 GPUs, 262144 bf16 elements
ALLREDUCE_512_KIB_NS = 6294.72017288208


def rows_of(block) -> list:
    return [r for item in with_groups(block) for r in (item.rows if isinstance(item, AttentionGroup) else (item,))]


def row(block, name):
    return next(r for r in rows_of(block) if r.name == name)


# --- routing ----------------------------------------------------------------------------------------

def test_uniform_routing_of_one_token_spreads_its_eight_experts_over_both_ranks():
    per_rank = expert_load("uniform", 128, 8).route(1, 8, 2)
    assert per_rank == ((1, 1, 1, 1) + (0,) * 60, (1, 1, 1, 1) + (0,) * 60)


def test_zipf_shares_divide_tokens_by_largest_remainders():
    # zipf:1 over 4 experts: shares 1, 1/2, 1/3, 1/4 of 25/12 = 12/25, 6/25, 4/25, 3/25; one expert per token
    assert expert_load("zipf:1", 4, 1).route(25, 1, 2) == ((12, 6), (4, 3))


def test_an_expert_gets_each_token_at_most_once(tmp_path):
    shares = tmp_path / "shares.json"
    shares.write_text("[0.7, 0.1, 0.1, 0.1]")
    load = expert_load(str(shares), 4, 2)
    # expert 0 would get 1.4 tokens per token: capped at 1, the other token of each goes 1/3 each way
    assert load.probabilities(2) == pytest.approx((1, 1 / 3, 1 / 3, 1 / 3))
    assert load.route(3, 2, 1) == ((3, 1, 1, 1),)


@pytest.mark.parametrize("content, message", [("[1, 2]", "list of 4"), ("[1, 0, 0, 0]", "at least 2"),
                                              ("{", "readable JSON")])
def test_bad_share_files_are_refused(tmp_path, content, message):
    shares = tmp_path / "shares.json"
    shares.write_text(content)
    with pytest.raises(InputError, match=message):
        expert_load(str(shares), 4, 2)


# --- placement and weights ---------------------------------------------------------------------------

def test_weights_per_rank_keep_the_router_whole():
    model = load_model(QWEN_MOE)
    router = 48 * 2048 * 128                          # 48 layers, hidden x experts, replicated
    split = model.total_parameters() - router          # 30,532,122,624 parameters in all
    assert stage_weight_bytes(model, 16, tp=2, pp=1) == [(split // 2 + router) * 2]
    assert stage_weight_bytes(model, 16, tp=2, pp=1) == [30_544_705_536]


@pytest.mark.parametrize("name, tp, ep, message", [
    (QWEN_MOE, 1, True, "2 or more NPUs"),
    ("meta-llama/Llama-3.1-8B", 2, True, "dense model"),
])
def test_expert_parallel_is_refused_where_it_cannot_act(name, tp, ep, message):
    with pytest.raises(InputError, match=message):
        expert_plan(load_model(name), tp, ep, "uniform")


def test_experts_must_divide_over_the_ranks(tmp_path):
    config = json.loads((MODEL_CONFIG_DIR / f"{QWEN_MOE}.json").read_text())
    path = tmp_path / "six.json"
    path.write_text(json.dumps({**config, "num_experts": 6, "num_experts_per_tok": 2}))
    with pytest.raises(InputError, match="does not divide the 6 routed experts"):
        expert_plan(load_model(str(path)), 4, True, "uniform")
    assert expert_plan(load_model(str(path)), 4, False, "uniform").ranks == 1


@pytest.mark.parametrize("field, value, message", [
    ("moe_layer_freq", 2, "every k-th layer"), ("mlp_only_layers", [3], "mlp_only_layers"),
    ("shared_expert_intermediate_size", 5632, "Qwen2-MoE"), ("num_experts_per_tok", 200, "between 1 and the 128"),
    ("first_k_dense_replace", 48, "none of the 48 layers"), ("kv_lora_rank", 512, "latent attention"),
])
def test_moe_layouts_we_do_not_model_are_refused(tmp_path, field, value, message):
    config = json.loads((MODEL_CONFIG_DIR / f"{QWEN_MOE}.json").read_text())
    path = tmp_path / "moe.json"
    path.write_text(json.dumps({**config, field: value}))
    with pytest.raises(InputError, match=message):
        load_model(str(path))


# --- the MoE rows ------------------------------------------------------------------------------------

def h100_builder(name: str, expert_parallel: bool, load: str = "uniform") -> TraceBuilder:
    model = load_model(name)
    perf = AIConfiguratorProvider(model, load_hardware("H100"), 16)
    return TraceBuilder(model, perf, 16, tp=2, selective_attention=False,
                        experts=expert_plan(model, 2, expert_parallel, load))


def test_experts_row_is_the_fused_table_at_the_routed_tokens(tmp_path):
    trace = h100_builder(QWEN_MOE, True).build([BatchEntry(0, 128, 0)])
    experts = row(trace.block, "experts")
    assert experts.comp_ns == round(FUSED_EP2_MS[128] * 1e6) == 251051
    assert (experts.comm, experts.comm_size) == (Comm.ALL_REDUCE, 128 * 2048 * 2)
    # rank 0's 64 experts take 3/4 of the load: its 768 pairs are those of 192 tokens routed evenly
    shares = tmp_path / "shares.json"
    shares.write_text(json.dumps([0.75 / 64] * 64 + [0.25 / 64] * 64))
    skewed = h100_builder(QWEN_MOE, True, str(shares)).build([BatchEntry(0, 128, 0)])
    assert row(skewed.block, "experts").comp_ns == round(FUSED_EP2_MS[192] * 1e6)


def test_router_is_an_unsplit_gemm_and_there_is_no_mlp():
    trace = h100_builder(QWEN_MOE, True).build([BatchEntry(0, 1, 100)])
    names = [r.name for r in rows_of(trace.block)]
    assert names[-2:] == ["router", "experts"] and "gate_proj" not in names
    assert row(trace.block, "experts").comp_ns == round(FUSED_EP2_MS[1] * 1e6)
    assert row(trace.block, "router").weight_size == 2048 * 128 * 2


def test_moe_step_at_ep2_is_its_compute_plus_two_measured_allreduces(tmp_path):
    """One decoder layer of a 128-token prefill at EP2: every rank runs all rows (vLLM's sharded
    attention), then the o_proj and the experts all-reduce 128 x 2048 bf16 values (512 KiB) each."""
    trace = h100_builder(QWEN_MOE, True).build([BatchEntry(0, 128, 0)])
    system = SystemConfig(tp=2, pp=1, link_bw_gbps=450.0, link_latency_ns=0.0, local_bw_gbps=3350.0,
                          remote_bw_gbps=64.0, collective_table=collective_table("h100_sxm", 2))
    engine = StepEngine(EngineSetup(DEFAULT_ENGINE, write_configs(system, tmp_path), tmp_path, 30.0, 2))
    for npu in range(2):
        ops = _rank_ops(trace.block, npu, 2, True, False)
        Path(f"{tmp_path / 'layer'}.{npu}.et").write_bytes(serialize_chain(ops, npu))
    engine.load(tmp_path / "layer", [0, 1])
    event = engine.step()
    engine.close()
    compute = sum(r.comp_ns for r in rows_of(trace.block))
    assert event.npus == (0, 1)
    assert event.tick == compute + 2 * round(ALLREDUCE_512_KIB_NS)


def test_npu_prices_each_routed_expert_as_three_gemms():
    """The paper's NPU (128x128 array at 1 GHz, 936 GB/s, 128 vector lanes), one decode token at EP2:
    each rank's 4 experts get it. gate and up: 2048 x 768 weights, 16 x 6 tiles of 2R + C + m - 2 =
    383 cycles, 36,768 ns (compute-bound: 3,151,360 B take 3,367 ns); down: 6 x 16 tiles, the same;
    the gated activation: 4 x 768 operations over 128 lanes, 24 ns. Without EP every rank runs all 8
    experts at half their features: 48 tiles x 383 = 18,384 ns per GEMM, 12 ns of activation."""
    model = load_model(QWEN_MOE)
    perf = NpuProvider(model, load_hardware("NPU"), 16)
    per_expert_ep, per_expert_tp = 3 * 36_768 + 24, 3 * 18_384 + 12
    for expert_parallel, expected in ((True, 4 * per_expert_ep), (False, 8 * per_expert_tp)):
        builder = TraceBuilder(model, perf, 16, tp=2, experts=expert_plan(model, 2, expert_parallel, "uniform"))
        assert row(builder.build([BatchEntry(0, 1, 10)]).block, "experts").comp_ns == expected == 441_312


def test_shapes_the_tables_lack_are_priced_expert_by_expert_from_the_gemm_tables():
    builder = h100_builder(DEEPSEEK, True)
    assert not builder.perf._fused_moe_measured(1, 2) and not builder.perf._fused_moe_measured(1, 8)
    routing = builder.experts.routing(64)
    expected = max(sum(builder.perf.latency_ns(layer, tokens, 0, 1) for tokens in counts if tokens
                       for layer in ("expert_gate_proj", "expert_up_proj", "expert_act_fn", "expert_down_proj"))
                   for counts in routing.per_rank)
    assert row(builder.build([BatchEntry(0, 64, 0)]).block, "experts").comp_ns == expected


def test_leading_dense_layers_run_the_mlp_block():
    model = load_model(DEEPSEEK)
    builder = TraceBuilder(model, NpuProvider(model, load_hardware("NPU"), 16), 16, tp=1, pp=2)
    trace = builder.build([BatchEntry(0, 8, 0)])
    first, moe = trace.first_block, trace.block
    assert row(first, "gate_proj").output_size == 8 * 10944 * 2 and "router" not in [r.name for r in rows_of(first)]
    assert row(moe, "shared_gate_proj").output_size == 8 * 2 * 1408 * 2
    assert trace.stage_blocks(0) == [(first, 1), (moe, 13)] and trace.stage_blocks(1) == [(moe, 14)]


# --- runs and flags ----------------------------------------------------------------------------------

def test_mixtral_runs_at_ep2_and_tp2(tmp_path):
    dataset = tmp_path / "three.tsv"
    dataset.write_text("input_toks\toutput_toks\tarrival_time_ns\n40\t3\t0\n30\t2\t1000\n20\t4\t2000\n")
    base = RunConfig(model_name=MIXTRAL, hardware="H100", npu_num=2, scheduler="vllm", dataset=str(dataset),
                     req_num=3, quiet=True)
    ep = simulate(base.replace(enable_expert_parallel=True), log=lambda line: None)
    tp = simulate(base, log=lambda line: None)
    assert len(ep.finished) == len(tp.finished) == 3
    assert ep.config["enable_expert_parallel"] and ep.end_ns != tp.end_ns


@pytest.mark.parametrize("flags, message", [
    (["--expert-load", "zipf:-1"], "finite number >= 0"),
    (["--expert-load", "nowhere.json"], "neither uniform"),
    (["--model_name", "meta-llama/Llama-3.1-8B", "--enable-expert-parallel"], "dense model"),
])
def test_expert_flags_are_checked(flags, message):
    done = subprocess.run([sys.executable, "main.py", "--model_name", QWEN_MOE, "--npu_num", "2", *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr


def test_validate_takes_expert_and_data_parallelism():
    engine = {"tensor_parallel_size": 1, "enable_expert_parallel": True, "data_parallel_size": 2}
    fields, skipped = run_settings({"engine_kwargs": engine}, has_token_ids=False)
    assert fields["enable_expert_parallel"] and (fields["npu_num"], fields["dp"]) == (2, 2)
    assert not any("parallel" in s for s in skipped)
    assert parallel_flags({}) == {"enable_expert_parallel": False, "dp": 1}


def test_commands_that_build_dense_layers_refuse_moe_models(tmp_path):
    done = subprocess.run([sys.executable, "-m", "inference_serving", "onnx", QWEN_MOE, str(tmp_path / "m.onnx")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "mixture-of-experts" in done.stderr


def test_data_parallel_step_gathers_every_rank_and_runs_the_experts_on_all_their_tokens():
    """DP2 x EP2 of Qwen3-30B-A3B on H100: the busiest rank has 64 tokens, so each rank's part is
    64 x 2048 x 2 B = 262144 B; the all-gather dispatches it, the experts run on 2 x 64 = 128 tokens (the
    fused EP2 table at 128, above), and the reduce-scatter combines the whole 524288 B. A rank without
    requests runs a dummy step of one token with the same MoE rows."""
    model = load_model(QWEN_MOE)
    perf = AIConfiguratorProvider(model, load_hardware("H100"), 16)
    builder = TraceBuilder(model, perf, 16, tp=1, selective_attention=False, dp=2, dp_tokens=64,
                           experts=expert_plan(model, 1, True, "uniform", dp=2))
    for entries in ([BatchEntry(0, 64, 0)], [BatchEntry(-1, 1, 0)]):
        block = builder.build(entries).block
        dispatch, experts = row(block, "moe_dispatch"), row(block, "experts")
        assert (dispatch.comp_ns, dispatch.comm, dispatch.comm_size) == (0, Comm.ALL_GATHER, 262144)
        assert experts.comp_ns == round(FUSED_EP2_MS[128] * 1e6)
        assert (experts.comm, experts.comm_size) == (Comm.REDUCE_SCATTER, 524288)


def test_data_parallel_collectives_come_from_the_nccl_table_at_per_rank_sizes():
    """The NCCL table counts per-rank elements: an all-gather's entry is the rank's input (2 B each), a
    reduce-scatter's the whole input, 2 ranks x the rank's output."""
    from aiconfigurator_core.sdk import common
    from aiconfigurator_core.sdk.engine_table_view import fetch_table_view
    from inference_serving.perf.collectives import comm_database
    rows = fetch_table_view(comm_database("h100_sxm"), "_nccl_data")[common.CommQuantMode.half]
    table = {e["type"]: e for e in collective_table("h100_sxm", 1, 2)["collectives"]}
    gather, scatter = table["ALL_GATHER"], table["REDUCE_SCATTER"]
    size = sorted(rows["all_gather"][2])[3]
    assert gather["bytes"][3] == size * 2 and gather["ns"][3] == rows["all_gather"][2][size]["latency"] * 1e6
    size = sorted(rows["reduce_scatter"][2])[3]
    assert scatter["bytes"][3] == size * 2 * 2
    assert scatter["ns"][3] == rows["reduce_scatter"][2][size]["latency"] * 1e6


def test_data_parallel_ranks_step_together(tmp_path):
    """Two DP ranks, one request: the idle rank runs a dummy step beside each of the busy rank's steps."""
    dataset = tmp_path / "one.tsv"
    dataset.write_text("input_toks\toutput_toks\tarrival_time_ns\n40\t3\t0\n")
    metrics = simulate(RunConfig(model_name=QWEN_MOE, hardware="H100", npu_num=2, dp=2, enable_expert_parallel=True,
                                 scheduler="vllm", dataset=str(dataset), req_num=1, quiet=True), log=lambda line: None)
    busy = [s for s in metrics.samples if s.instance == "dp0"]
    idle = [s for s in metrics.samples if s.instance == "dp1"]
    assert [s.requests for s in busy] == [1, 1, 1] and [s.prompt_tokens + s.generated_tokens for s in idle] == [0] * 3
    assert [s.start_ns for s in busy] == [s.start_ns for s in idle]      # each step starts on both ranks at once
    assert all(b.start_ns >= max(p.end_ns, q.end_ns) for b, p, q in zip(busy[1:], busy, idle))
