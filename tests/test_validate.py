"""`python -m inference_serving.validate` on a small measured run of the tiny model."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from inference_serving.config.run_config import RunConfig
from inference_serving.report.engine_settings import run_settings
from inference_serving.report.metrics import RequestTimes
from inference_serving.simulate import simulate

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"

# input, output, client send time (s), engine queued / first token / last token (s)
MEASURED = [(4, 3, 1000.000, 50.000, 50.010, 50.030),
            (6, 2, 1000.001, 50.001, 50.021, 50.031),
            (5, 1, 1000.002, 50.002, 50.012, 50.012)]


def measured_folder(root: Path, **meta_extra) -> Path:
    (root / "vllm").mkdir(parents=True)
    rows = [{"input_toks": i, "output_toks": o, "arrival_time": a, "queued_ts": q, "first_token_ts": f,
             "last_token_ts": last} for i, o, a, q, f, last in MEASURED]
    (root / "vllm" / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine = {"tensor_parallel_size": 1, "max_num_seqs": 4, "max_num_batched_tokens": 16,
              **meta_extra.pop("engine", {})}
    meta = {"model": str(DATA / "tiny_model.json"), "engine_kwargs": engine, **meta_extra}
    (root / "vllm" / "meta.json").write_text(json.dumps(meta))
    return root


def validate(folder: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inference_serving.validate", "--measured", str(folder),
                           "--hardware", "TINY", "--perf-model", str(DATA / "tiny_perf.csv"), "--npu_mem", "1",
                           "--out", str(folder / "out"), *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def simulated_directly(tmp_path: Path) -> dict[str, list[float]]:
    dataset = tmp_path / "direct.tsv"
    dataset.write_text("input_toks\toutput_toks\tarrival_time_ns\n4\t3\t0\n6\t2\t1000000\n5\t1\t2000000\n")
    run = RunConfig(model_name=str(DATA / "tiny_model.json"), hardware="TINY", npu_num=1, max_batch=0, npu_group=1,
                     npu_mem=1.0, local_bw=None, remote_bw=512.0, link_bw=None, link_latency=0.0, fp="16",
                     block_size=16, dataset=str(dataset), output=None, gen=False, req_num=3, log_interval=1.0,
                     verbose=False, scheduler="vllm", max_num_seqs=4, max_num_batched_tokens=16,
                     perf_model=str(DATA / "tiny_perf.csv"))
    times = [RequestTimes.of(s) for s in sorted(simulate(run, log=lambda line: None).finished, key=lambda s: s.id)]
    return {"ttft": [t.ttft / 1e6 for t in times], "latency": [t.latency / 1e6 for t in times],
            "tpot": [t.tpot / 1e6 for t in times if t.tpot]}


def test_validate_table_series_and_json(tmp_path):
    folder = measured_folder(tmp_path / "run")
    out, table_path = tmp_path / "out", tmp_path / "table.json"
    done = subprocess.run([sys.executable, "-m", "inference_serving.validate", "--measured", str(folder),
                           "--hardware", "TINY", "--perf-model", str(DATA / "tiny_perf.csv"), "--npu_mem", "1",
                           "--json", str(table_path), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = json.loads(table_path.read_text())
    # measured by hand: TTFT 10, 20, 10 ms; latency 30, 30, 10 ms; TPOT 20/2 and 10/1 ms
    assert np.isclose(table["ttft"]["mean"]["measured"], 40 / 3, atol=1e-3)
    assert np.isclose(table["latency"]["median"]["measured"], 30, atol=1e-3)
    assert np.isclose(table["tpot"]["mean"]["measured"], 10, atol=1e-3)
    simulated = simulated_directly(tmp_path)
    for metric in ("ttft", "tpot", "latency"):
        row = table[metric]["mean"]
        assert np.isclose(row["simulated"], np.mean(simulated[metric]), atol=1e-3)
        assert np.isclose(row["diff_pct"], (row["simulated"] - row["measured"]) / row["measured"] * 100, atol=0.01)
        assert set(table[metric]) == {"mean", "median", "p90", "p95", "p99"}
    assert (out / "throughput.png").stat().st_size > 0
    assert (out / "throughput.csv").read_text().startswith("source,t_s,prompt_tokens_per_s,generation_tokens_per_s")
    assert "ttft     mean" in done.stdout


def test_validate_missing_fields_is_one_line(tmp_path):
    folder = measured_folder(tmp_path / "run")
    (folder / "vllm" / "requests.jsonl").write_text('{"input_toks": 3}\n')
    done = subprocess.run([sys.executable, "-m", "inference_serving.validate", "--measured", str(folder),
                           "--hardware", "TINY", "--perf-model", str(DATA / "tiny_perf.csv")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "requests.jsonl:1: missing" in done.stderr


def test_engine_settings_from_meta():
    meta = {"model": "m", "engine_kwargs": {
        "model": "m", "seed": 42, "tensor_parallel_size": 2, "data_parallel_size": 2, "enable_expert_parallel": True,
        "max_num_seqs": 64, "max_num_batched_tokens": 4096, "max_model_len": 8192, "block_size": 32,
        "enable_prefix_caching": False, "dtype": "bfloat16", "kv_cache_dtype": "fp8", "gpu_memory_utilization": 0.8,
        "swap_space": 4}, "kv_cache": {"num_gpu_blocks": 1234}}
    fields, skipped = run_settings(meta, has_token_ids=False)
    assert fields == {"model_name": "m", "npu_num": 4, "dp": 2, "max_num_seqs": 64, "max_num_batched_tokens": 4096,
                      "max_model_len": 8192, "block_size": 32, "no_prefix_caching": True, "fp": "16",
                      "gpu_memory_utilization": 0.8, "num_gpu_blocks": 1234, "enable_expert_parallel": True}
    assert skipped == ["swap_space=4", "kv_cache_dtype=fp8"]


def test_engine_settings_defaults_and_fp8():
    fields, skipped = run_settings({"model": "m", "engine_kwargs": {"quantization": "fp8", "kv_cache_dtype": "fp8",
                                                                   "max_model_len": None}}, has_token_ids=True)
    assert fields["fp"] == "8" and fields["block_size"] == 16 and fields["gpu_memory_utilization"] == 0.9
    assert fields["num_gpu_blocks"] is None and fields["max_model_len"] is None and not fields["no_prefix_caching"]
    assert skipped == ["max_num_seqs absent (assumed 256)", "max_num_batched_tokens absent (assumed 2048)"]


def test_validate_names_unmodelled_settings_and_uses_recorded_blocks(tmp_path):
    folder = measured_folder(tmp_path / "run", engine={"pipeline_parallel_size": 2}, kv_cache={"num_gpu_blocks": 40})
    done = validate(folder)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ("not modelled: pipeline_parallel_size=2, "
                        "enable_prefix_caching=True (the workload has no token ids)")
    assert lines[1].startswith("KV blocks per GPU: 40 used; derived ") and "measured 40 (derived " in lines[1]


def test_validate_derived_blocks_when_none_recorded(tmp_path):
    done = validate(measured_folder(tmp_path / "run", engine={"enable_prefix_caching": False}))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "not modelled: none"
    used, derived = lines[1].split(" used; derived ")
    assert used.split()[-1] == derived.split(";")[0]
    assert lines[1].endswith("measured absent (meta.json has no kv_cache.num_gpu_blocks)")


def test_validate_refuses_requests_longer_than_max_model_len(tmp_path):
    done = validate(measured_folder(tmp_path / "run", engine={"max_model_len": 7}))  # request 1: 6 + 2 tokens
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "request 1: 8 tokens exceed the longest request accepted, 7" in done.stderr
