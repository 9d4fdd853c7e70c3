"""`llmservingsim validate` (also `python main.py validate`, `python -m inference_serving.validate`):
simulate a measured vLLM run and compare per-request TTFT, TPOT and latency with the measurement."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from ..config.run_config import RunConfig
from ..inputs.workload import write_dataset
from ..report.metrics import RequestTimes
from ..report.validate import (comparison, format_table, measured_times_ms, measured_workload, read_measured,
                               read_timeseries, throughput_series, write_series)
from ..config.types import POSITIVE, POSITIVE_INT, FiniteFloat
from .command import Command


@click.command("validate", cls=Command)
@click.option("--measured", "measured_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of a measured run (workload.jsonl, vllm/requests.jsonl, vllm/meta.json).")
@click.option("--hardware", required=True, help="The GPU the run was measured on, e.g. RTXPRO6000.")
@click.option("--model_name", default=None, help="Model [default: meta.json's].")
@click.option("--npu_num", default=None, type=POSITIVE_INT, help="GPUs [default: meta.json's tensor_parallel_size].")
@click.option("--max_num_seqs", default=None, type=POSITIVE_INT, help="[default: meta.json's]")
@click.option("--max_num_batched_tokens", default=None, type=POSITIVE_INT, help="[default: meta.json's]")
@click.option("--gpu_memory_utilization", default=None, type=FiniteFloat(min=0, max=1, min_open=True),
              help="[default: meta.json's, else 0.9]")
@click.option("--perf-model", "perf_model", default=None,
              help="Override the hardware file's performance provider (a provider name or a profiled CSV).")
@click.option("--npu_mem", default=None, type=POSITIVE, help="Device memory per GPU, GiB [default: the hardware's].")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the comparison table as JSON.")
@click.option("--out", "out_dir", default=Path("output/validation"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for throughput.csv and throughput.png.")
def main(measured_dir, hardware, model_name, npu_num, max_num_seqs, max_num_batched_tokens, gpu_memory_utilization,
         perf_model, npu_mem, json_path, out_dir) -> None:
    """Compare the simulator with a measured vLLM run."""
    from ..simulate import simulate
    requests, meta = read_measured(measured_dir)
    engine = meta.get("engine_kwargs", {})
    with tempfile.TemporaryDirectory() as scratch:
        dataset = Path(scratch) / "workload.tsv"
        write_dataset(measured_workload(requests), dataset)
        run = RunConfig(
            model_name=model_name or engine.get("model") or meta["model"], hardware=hardware,
            npu_num=npu_num or engine.get("tensor_parallel_size", 1), npu_mem=npu_mem, link_latency=0.0,
            fp="8" if engine.get("dtype") == "fp8" else "16", block_size=engine.get("block_size", 16),
            dataset=str(dataset), req_num=len(requests), log_interval=1.0, scheduler="vllm", perf_model=perf_model,
            max_num_seqs=max_num_seqs or engine.get("max_num_seqs") or 256,
            max_num_batched_tokens=max_num_batched_tokens or engine.get("max_num_batched_tokens") or 2048,
            gpu_memory_utilization=gpu_memory_utilization or engine.get("gpu_memory_utilization") or 0.9, quiet=True)
        metrics = simulate(run, log=lambda line: None)
    times = [RequestTimes.of(state) for state in sorted(metrics.finished, key=lambda s: s.id)]
    simulated = {"ttft": [t.ttft / 1e6 for t in times], "latency": [t.latency / 1e6 for t in times],
                 "tpot": [t.tpot / 1e6 for t in times if t.tpot]}
    table = comparison(measured_times_ms(requests), simulated)
    for line in format_table(table):
        print(line)
    out_dir.mkdir(parents=True, exist_ok=True)
    measured_series = read_timeseries(measured_dir / "vllm" / "timeseries.csv")
    seconds = int(max(s.end_ns for s in metrics.samples) // 1e9)
    write_series(measured_series, throughput_series(metrics, seconds), out_dir)
    print(f"throughput series: {out_dir / 'throughput.csv'}, {out_dir / 'throughput.png'}")
    if json_path:
        json_path.write_text(json.dumps(table, indent=2) + "\n")
