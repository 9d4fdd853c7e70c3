"""Measured all-reduce tables (inference_serving/collectives.py) timed by the real engine.

Each all-reduce is a one-node graph per NPU, loaded into one engine process per (system, group
size) through the step protocol; its time is the tick it completed minus the tick it was loaded.
The reference is aiconfigurator-core's own evaluation of the same measurement (CustomAllReduce or
NCCL operation), so the comparison also checks our interpolation against the package's.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiconfigurator_core.sdk import common
from aiconfigurator_core.sdk import operations as aic_ops
from aiconfigurator_core.sdk.engine import EngineHandle, build_ops_json

from inference_serving.backend.base import EngineSetup
from inference_serving.backend.engine_config import SystemConfig, write_configs
from inference_serving.backend.step import StepEngine
from inference_serving.config.run_config import RunConfig
from inference_serving.inputs.hardware import load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.paths import DEFAULT_ENGINE
from inference_serving.perf.aiconfigurator_systems import measured_systems
from inference_serving.perf.collectives import collective_table, comm_database, vllm_runs_nccl
from inference_serving.perf.npu import NpuProvider
from inference_serving.plan.chakra import Op, serialize_chain
from inference_serving.simulate import simulate

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
# Group sizes with a measurement of what vLLM runs (docs/collectives.md, "What is measured").
COVERAGE = {"a100_sxm": (2, 4, 8), "b200_sxm": (2, 4, 8), "b300_sxm": (2, 4, 8), "b60": (2, 4, 8),
            "gb200": (2, 4), "gb300": (2, 4), "h100_sxm": (2, 4, 8), "h200_sxm": (2, 4, 8),
            "l40s": (2, 4, 8), "rtx_pro_6000_server": (2, 4, 8)}
CASES = [(system, tp) for system, sizes in COVERAGE.items() for tp in sizes]
# 1 KiB to 64 MiB: every power of two and the point halfway to the next one
SIZES = sorted({int(k * (1 << e)) for e in range(10, 26) for k in (1, 1.5)} | {1 << 26})


def engine_allreduce_ns(table: dict | None, tp: int, sizes: list[int], folder: Path, **link) -> list[int]:
    """Engine time of one ALL_REDUCE of each size over `tp` NPUs, one load after the other."""
    system = SystemConfig(tp=tp, pp=1, link_bw_gbps=link.get("bw", 100.0), link_latency_ns=link.get("latency", 0.0),
                          local_bw_gbps=link.get("local_bw", 1000.0), remote_bw_gbps=100.0, collective_table=table)
    engine = StepEngine(EngineSetup(DEFAULT_ENGINE, write_configs(system, folder), folder, 30.0, tp))
    times, now = [], 0
    for index, size in enumerate(sizes):
        prefix = folder / f"allreduce{index}"
        for npu in range(tp):
            Path(f"{prefix}.{npu}.et").write_bytes(serialize_chain([Op("coll", "allreduce", size)], npu))
        engine.load(prefix, list(range(tp)))
        event = engine.step()
        assert event.npus == tuple(range(tp))
        times.append(event.tick - now)
        now = event.tick
    engine.close()
    return times


def package_allreduce_ns(system: str, tp: int, nccl: bool, size_bytes: int) -> float:
    """aiconfigurator-core's own time for the measurement the table was built from."""
    database = comm_database(system)
    engine = EngineHandle.for_database(database, systems_path=database.systems_root)
    op = (aic_ops.NCCL("allreduce", 1, "all_reduce", 1, tp, common.CommQuantMode.half) if nccl
          else aic_ops.CustomAllReduce("allreduce", 1, 1, tp))
    elements = size_bytes // 2
    ((_, latency_ms, _, _),) = engine.evaluate_ops_json(build_ops_json([op]), is_context=True, batch_size=1,
                                                       s=elements, prefix=0, x=elements)
    return latency_ms * 1e6


def test_coverage_is_the_documented_one():
    for system in measured_systems():
        have = tuple(tp for tp in range(2, 9) if collective_table(system, tp) is not None)
        assert have == COVERAGE[system], system


@pytest.mark.parametrize("system, tp", CASES)
def test_engine_matches_the_measurement(system, tp, tmp_path):
    table = collective_table(system, tp)
    nccl = table["collectives"][0]["source"].startswith("nccl")
    got = engine_allreduce_ns(table, tp, SIZES, tmp_path)
    for size, engine_ns in zip(SIZES, got):
        expected = package_allreduce_ns(system, tp, nccl, size)
        assert abs(engine_ns - expected) <= 0.10 * expected, f"{size} B: engine {engine_ns} ns, package {expected:.0f} ns"


def test_rtx_pro_6000_between_two_measured_sizes(tmp_path):
    """vLLM 0.19 on 2 RTX PRO 6000 (custom_allreduce_perf.parquet, vllm_graph rows): 512 elements
    0.00871999979 ms, 1024 elements 0.0173583996 ms. 768 elements = 1536 B, halfway:
    8720.0 + (17358.4 - 8720.0) * (1536 - 1024) / (2048 - 1024) = 13039.2 ns."""
    table = collective_table("rtx_pro_6000_server", 2)
    assert table["collectives"][0]["source"].startswith("vllm 0.19.0")
    assert engine_allreduce_ns(table, 2, [1536], tmp_path) == [13039]


def test_pcie_groups_beyond_two_gpus_use_nccl():
    """RTX PRO 6000: PCIe only (intra_node_bw = pcie_bw = 64 GB/s in its system YAML); H100: NVLink."""
    rtx, h100 = comm_database("rtx_pro_6000_server").system_spec["node"], comm_database("h100_sxm").system_spec["node"]
    assert [vllm_runs_nccl(rtx, tp) for tp in (2, 4, 8)] == [False, True, True]
    assert [vllm_runs_nccl(h100, tp) for tp in (2, 4, 8)] == [False, False, False]
    assert collective_table("rtx_pro_6000_server", 4)["collectives"][0]["source"] == "nccl 2.29.2 nccl_perf all_reduce"


def test_npu_keeps_the_link_model(tmp_path):
    """The NPU (hardware/NPU.yaml: 64 GB/s links, 0 ns latency, 936 GB/s memory) has no table; a 1 MiB
    ring all-reduce over 2 NPUs is 2T + 3d + P (tests/engine/test_engine_timing.py, G3 with N = 2):
    network.yml carries the link as round(64e9 / 2^30, 6) = 59.604645 GiB/s = 64.0000002 B/ns, so
    T = floor(524288 / 64.0000002) = 8191; d = 10; P = 3 * floor(524288 / 936) = 3 * 560 = 1680."""
    npu = load_hardware("NPU")
    assert NpuProvider(load_model(LLAMA_8B), npu, 16).collective_table(2) is None
    got = engine_allreduce_ns(None, 2, [1 << 20], tmp_path, bw=npu.link_bw_gbps, latency=npu.link_latency_ns,
                              local_bw=npu.memory_bw_gbps)
    assert got == [2 * 8191 + 3 * 10 + 1680]
    assert "collective-table" not in json.loads((tmp_path / "system.json").read_text())


def serving_run(tmp_path: Path, **flags) -> Path:
    """A one-request TP2 run of Llama-3.1-8B on RTX PRO 6000 that keeps its engine inputs."""
    dataset = tmp_path / "requests.tsv"
    dataset.write_text("input_toks\toutput_toks\tarrival_time_ns\n8\t4\t0\n")
    traces = tmp_path / "traces"
    simulate(RunConfig(model_name=LLAMA_8B, hardware="RTXPRO6000", npu_num=2, remote_bw=1e6, dataset=str(dataset),
                       req_num=1, log_interval=1.0, quiet=True, keep_traces=traces, **flags), log=lambda line: None)
    return traces


def test_a_run_on_a_measured_gpu_hands_the_table_to_the_engine(tmp_path):
    traces = serving_run(tmp_path, link_bw=None, link_latency=None)
    assert json.loads((traces / "system.json").read_text())["collective-table"] == "collectives.json"
    assert json.loads((traces / "collectives.json").read_text()) == collective_table("rtx_pro_6000_server", 2)


def test_an_explicit_link_asks_for_the_link_model(tmp_path):
    traces = serving_run(tmp_path, link_bw=64.0, link_latency=None)
    assert "collective-table" not in json.loads((traces / "system.json").read_text())
    assert not (traces / "collectives.json").exists()
