"""`llmservingsim validate` (also `python main.py validate`, `python -m inference_serving.validate`):
simulate a measured vLLM run and compare per-request TTFT, TPOT and latency with the measurement."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from ..config.options import config_from_mapping, run_options
from ..config.types import MEMORY_GIB, POSITIVE_INT, SHARE
from ..errors import InputError
from ..inputs.workload import write_dataset
from ..report.engine_settings import checked_settings, kv_blocks_line, run_settings, unmodelled_line
from ..report.measured_run import check_meta, check_rows
from ..report.metrics import RequestTimes
from ..report.output_paths import check_distinct, check_file, check_folder, first_line, is_png
from ..report.validate import (METRICS, SERIES_COLUMNS, comparison, format_table, measured_times_ms,
                               measured_workload, read_measured, read_timeseries, throughput_series, write_series)
from .command import Command

# run flags validate passes on, for ablations (docs/error_budget.md)
ABLATION_FLAGS = ("num_gpu_blocks", "engine_overhead", "no_ragged", "no_mixed_unpacking", "no_sampler")


@click.command("validate", cls=Command)
@click.option("--measured", "measured_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of a measured run (workload.jsonl, vllm/requests.jsonl, vllm/meta.json).")
@click.option("--hardware", required=True, help="The GPU the run was measured on, e.g. RTXPRO6000.")
@click.option("--model_name", default=None, help="Model [default: meta.json's].")
@click.option("--npu_num", default=None, type=POSITIVE_INT, help="GPUs [default: meta.json's tensor_parallel_size].")
@click.option("--max_num_seqs", default=None, type=POSITIVE_INT, help="[default: meta.json's]")
@click.option("--max_num_batched_tokens", default=None, type=POSITIVE_INT, help="[default: meta.json's]")
@click.option("--gpu_memory_utilization", default=None, type=SHARE, help="[default: meta.json's, else 0.9]")
@click.option("--perf-model", "perf_model", default=None,
              help="Override the hardware file's performance provider (a provider name or a profiled CSV).")
@click.option("--npu_mem", default=None, type=MEMORY_GIB, help="Device memory per GPU, GiB [default: the hardware's].")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the comparison table as JSON.")
@click.option("--out", "out_dir", default=Path("output/validation"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for throughput.csv and throughput.png.")
def main(measured_dir, hardware, json_path, out_dir, **overrides) -> None:
    """Compare the simulator with a measured vLLM run."""
    requests, meta = read_measured(measured_dir)
    meta_path = measured_dir / "vllm" / "meta.json"
    check_rows(requests, measured_dir / "vllm" / "requests.jsonl")
    check_meta(meta, meta_path)
    _check_outputs(json_path, out_dir)
    workload = measured_workload(requests)
    settings, skipped = run_settings(meta, has_token_ids=any(r.token_ids is not None for r in workload))
    settings = checked_settings(settings, meta_path)
    given = {name: value for name, value in overrides.items() if value is not None and value is not False}
    flags = {name: value for name, value in {**settings, **given}.items() if value is not None}
    if "model_name" not in flags:
        raise InputError(f"{meta_path}: no 'model' (nor engine_kwargs.model); give --model_name")
    measured_series = read_timeseries(measured_dir / "vllm" / "timeseries.csv")
    metrics = _simulate(workload, {**flags, "hardware": hardware, "link_latency": 0.0, "req_num": len(requests),
                                   "log_interval": 1.0, "scheduler": "vllm", "quiet": True}, str(meta_path))
    print(unmodelled_line(skipped))
    print(kv_blocks_line(metrics.config["kv_blocks"], metrics.config["derived_kv_blocks"], settings["num_gpu_blocks"]))
    table = comparison(measured_times_ms(requests), _simulated_times_ms(metrics))
    for line in format_table(table):
        print(line)
    _write_results(table, measured_series, metrics, json_path, out_dir)


def _check_outputs(json_path: Path | None, out_dir: Path) -> None:
    check_file("--json", json_path, is_comparison_json)
    check_folder("--out", out_dir, {"throughput.csv": is_series_csv, "throughput.png": is_png})
    check_distinct([("--out", out_dir / "throughput.csv"), ("--out", out_dir / "throughput.png"),
                    *([("--json", json_path)] if json_path else [])])


def _simulate(workload, flags: dict, source: str):
    """The run on the measured requests (written to a scratch dataset); flags checked by their types."""
    from ..simulate import simulate
    with tempfile.TemporaryDirectory() as scratch:
        dataset = Path(scratch) / "workload.tsv"
        write_dataset(workload, dataset)
        return simulate(config_from_mapping({**flags, "dataset": str(dataset)}, source), log=lambda line: None)


def _simulated_times_ms(metrics) -> dict[str, list[float]]:
    times = [RequestTimes.of(state) for state in sorted(metrics.finished, key=lambda s: s.id)]
    return {"ttft": [t.ttft / 1e6 for t in times], "latency": [t.latency / 1e6 for t in times],
            "tpot": [t.tpot / 1e6 for t in times if t.tpot]}


def _write_results(table: dict, measured_series, metrics, json_path: Path | None, out_dir: Path) -> None:
    seconds = int(max(s.end_ns for s in metrics.samples) // 1e9)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_series(measured_series, throughput_series(metrics, seconds), out_dir)
        if json_path:
            json_path.write_text(json.dumps(table, indent=2) + "\n")
    except OSError as err:
        raise InputError(f"cannot write the results: {err}") from None
    print(f"throughput series: {out_dir / 'throughput.csv'}, {out_dir / 'throughput.png'}")


def is_comparison_json(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and set(data) == set(METRICS)


def is_series_csv(path: Path) -> bool:
    return first_line(path) == ",".join(SERIES_COLUMNS)


run_options(main, ABLATION_FLAGS)
