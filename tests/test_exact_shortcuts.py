"""Every shortcut of the serving loop is exact: with them (merged compute, reused iterations, folded
tensor-parallel groups, graphs on the pipe, the start-up cache) and without (--no-reuse) a run writes
byte-identical per-request CSVs and the same per-iteration lines, on real models and the measured GPU
tables, for each parallel layout and through KV eviction and preemption."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from inference_serving.backend.base import EngineSetup, Event
from inference_serving.backend.engine_config import SystemConfig, write_configs
from inference_serving.backend.step import StepEngine
from inference_serving.inputs.generator import generate_requests
from inference_serving.inputs.workload import write_dataset
from inference_serving.paths import DEFAULT_ENGINE

REPO = Path(__file__).resolve().parent.parent
LLAMA8 = ["--model_name", "meta-llama/Llama-3.1-8B", "--hardware", "H100"]

CASES = {
    "orca TP1": ["--npu_num", "1"],
    "orca TP8": ["--npu_num", "8"],
    "orca PP4": ["--npu_num", "4", "--npu_group", "4"],
    "orca TP4xPP2": ["--npu_num", "8", "--npu_group", "2"],
    "orca eviction and reload": ["--npu_num", "1", "--npu_mem", "15.0", "--remote_bw", "64"],
    "vllm TP1": ["--scheduler", "vllm", "--npu_num", "1"],
    "vllm TP8": ["--scheduler", "vllm", "--npu_num", "8"],
    "vllm preemption": ["--scheduler", "vllm", "--npu_num", "1", "--num_gpu_blocks", "20"],
    "cluster 2 x TP2": ["--cluster", "tests/data/cluster_two_tp2.yaml"],
    "disaggregated 2P:1D": ["--cluster", "configs/cluster/pd_2p1d.yaml"],
    "MoE DP2 x EP2": ["--model_name", "Qwen/Qwen3-30B-A3B", "--scheduler", "vllm", "--npu_num", "2", "--dp", "2",
                      "--enable-expert-parallel"],
}
# the cases whose tensor-parallel groups run identical chains (vLLM's sharded attention), or chains that differ
# only in compute between all-reduces timed by the measured table (Orca's selective attention): they fold, pipeline stages too
FOLDED = {"orca TP8", "orca TP4xPP2", "vllm TP8", "cluster 2 x TP2"}
# what must have happened in the run with shortcuts, so the comparison covers it
EXPECT = {"orca eviction and reload": ["evict requests", "reload requests"], "vllm preemption": ["preempt requests"]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exact") / "requests.tsv"
    write_dataset(generate_requests(16, 40.0, 7, input_mean=120, output_mean=24, max_tokens=300), path)
    return path


def run(args: list[str], out: Path) -> tuple[bytes, list[str]]:
    done = subprocess.run([sys.executable, "main.py", "--quiet", "--verbose", *LLAMA8, *args, "--output", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out.read_bytes(), done.stdout.splitlines()


def iteration_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if " done in " in line]


@pytest.mark.parametrize("case", CASES)
def test_shortcuts_on_and_off_give_identical_results(tmp_path, dataset, case):
    args = [*CASES[case], "--dataset", str(dataset)]
    fast_csv, fast = run(args, tmp_path / "fast.csv")
    slow_csv, slow = run([*args, "--no-reuse"], tmp_path / "slow.csv")
    assert fast_csv == slow_csv
    assert iteration_lines(fast) == iteration_lines(slow)
    for words in EXPECT.get(case, []):
        assert any(words in line for line in fast), words
    reuse = next(line for line in fast if line.startswith("computation reuse"))
    folded = int(re.search(r"groups folded (\d+)", reuse).group(1))
    assert (folded > 0) == (case in FOLDED)
    if case == "orca TP4xPP2":
        # every stage of every iteration: the first stage's group starts folded, each later one right after
        # its senders folded, and a folded stage's ranks finish together, free for the next batch at once
        assert folded == 2 * len(iteration_lines(fast))


@pytest.mark.parametrize("case", ["vllm TP1", "orca TP4xPP2"])
def test_polling_for_the_engine_changes_nothing(tmp_path, dataset, case):
    """--engine-spin only changes when each side reads the other's message, never what it reads."""
    args = [*CASES[case], "--dataset", str(dataset)]
    polled_csv, polled = run([*args, "--engine-spin", "5000"], tmp_path / "polled.csv")
    slept_csv, slept = run([*args, "--engine-spin", "0"], tmp_path / "slept.csv")
    assert polled_csv == slept_csv
    assert iteration_lines(polled) == iteration_lines(slept)


@pytest.mark.parametrize("collapse", [True, False])
def test_the_engine_runs_every_node_where_shortcuts_are_off(tmp_path, collapse):
    """The loop starts the engine with collapse = not --no-reuse; off, the engine gets --no-collapse
    (astra-sim/README.md, "Collapsed runs"), and it still answers."""
    system = SystemConfig(tp=1, pp=1, link_bw_gbps=100.0, link_latency_ns=0.0, local_bw_gbps=1000.0,
                          remote_bw_gbps=100.0)
    engine = StepEngine(EngineSetup(DEFAULT_ENGINE, write_configs(system, tmp_path), tmp_path, 30.0, 1,
                                    collapse=collapse))
    assert ("--no-collapse" in engine.process.proc.args) == (not collapse)
    engine.chain(b"0\ncomp 100 a\ncomp 200 b\ncomp 300 c\n", [0])
    assert engine.step() == Event("done", 600, (0,))
    engine.close()
