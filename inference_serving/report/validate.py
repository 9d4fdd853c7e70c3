"""Simulate a measured vLLM run and compare per-request TTFT, TPOT and latency with the measurement.

    llmservingsim validate --measured DIR --hardware RTXPRO6000 [--json FILE] [--out DIR]
    (also: python main.py validate ..., python -m inference_serving.validate ...)

DIR holds a measured run: `workload.jsonl` and `vllm/requests.jsonl` (per-request engine timestamps),
`vllm/meta.json` (engine settings) and optionally `vllm/timeseries.csv` (per-second throughput).
The simulated requests arrive at the client's send times (arrival_time − first arrival), the
engine settings come from meta.json unless given as flags (engine_settings.py: which ones, and the
line naming those not modelled), and the run uses `--scheduler vllm`.
Measured times are taken from the engine's own timestamps: TTFT = first_token − queued,
latency = last_token − queued, TPOT = (last_token − first_token) / (output − 1).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inputs.workload import Request
from .plots import pyplot

STATS = {"mean": np.mean, "median": np.median, "p90": lambda v: np.percentile(v, 90),
         "p95": lambda v: np.percentile(v, 95), "p99": lambda v: np.percentile(v, 99)}
METRICS = ("ttft", "tpot", "latency")
SERIES_COLUMNS = ("source", "t_s", "prompt_tokens_per_s", "generation_tokens_per_s")


def read_jsonl(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or UTF-8
        raise InputError(f"{path}: cannot read ({err})") from None


def read_measured(folder: Path) -> tuple[list[dict], dict]:
    requests = read_jsonl(folder / "vllm" / "requests.jsonl")
    try:
        meta = json.loads((folder / "vllm" / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise InputError(f"{folder / 'vllm' / 'meta.json'}: cannot read ({err})") from None
    keys = ("input_toks", "output_toks", "arrival_time", "queued_ts", "first_token_ts", "last_token_ts")
    for number, row in enumerate(requests, start=1):
        if not isinstance(row, dict):
            raise InputError(f"{folder / 'vllm' / 'requests.jsonl'}:{number}: expected a JSON object, got {row!r}")
        missing = [k for k in keys if k not in row]
        if missing:
            raise InputError(f"{folder / 'vllm' / 'requests.jsonl'}:{number}: missing {', '.join(missing)}")
    return requests, meta


def measured_times_ms(requests: list[dict]) -> dict[str, list[float]]:
    ttft = [(r["first_token_ts"] - r["queued_ts"]) * 1e3 for r in requests]
    latency = [(r["last_token_ts"] - r["queued_ts"]) * 1e3 for r in requests]
    tpot = [(r["last_token_ts"] - r["first_token_ts"]) * 1e3 / (r["output_toks"] - 1)
            for r in requests if r["output_toks"] > 1]
    return {"ttft": ttft, "tpot": tpot, "latency": latency}


def measured_workload(requests: list[dict]) -> list[Request]:
    """The requests as the engine saw them: arriving at the client's send times."""
    start = min(r["arrival_time"] for r in requests)
    return [Request(i, r["input_toks"], r["output_toks"], round((r["arrival_time"] - start) * 1e9))
            for i, r in enumerate(requests)]


def comparison(measured: dict[str, list[float]], simulated: dict[str, list[float]]) -> dict:
    table = {}
    for metric in METRICS:
        table[metric] = {}
        for stat, fn in STATS.items():
            m, s = float(fn(measured[metric])), float(fn(simulated[metric]))
            table[metric][stat] = {"measured": round(m, 3), "simulated": round(s, 3),
                                   "diff_pct": round((s - m) / m * 100, 2)}
    return table


def format_table(table: dict) -> list[str]:
    lines = [f"{'metric':8} {'stat':6} {'measured ms':>12} {'simulated ms':>13} {'diff %':>8}"]
    for metric, stats in table.items():
        for stat, row in stats.items():
            lines.append(f"{metric:8} {stat:6} {row['measured']:>12.2f} {row['simulated']:>13.2f} "
                         f"{row['diff_pct']:>+8.2f}")
    return lines


def throughput_series(metrics, seconds: int) -> list[tuple[int, float, float]]:
    """Simulated prompt and generation tokens per second of simulated time (1 s buckets)."""
    prompt, generated = np.zeros(seconds + 1), np.zeros(seconds + 1)
    for sample in metrics.samples:
        bucket = min(int(sample.end_ns // 1e9), seconds)
        prompt[bucket] += sample.prompt_tokens
        generated[bucket] += sample.generated_tokens
    return [(t + 1, prompt[t], generated[t]) for t in range(seconds + 1)]


def read_timeseries(path: Path) -> list[tuple[float, float, float]]:
    if not path.is_file():
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            rows = [(float(r["t"]), float(r["prompt_throughput"]), float(r["gen_throughput"]))
                    for r in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: not a series of t, prompt_throughput, gen_throughput ({err})") from None
    if rows and not np.isfinite(rows).all():
        raise InputError(f"{path}: every value must be a finite number")
    return rows


def write_series(measured, simulated, out: Path) -> None:
    with open(out / "throughput.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SERIES_COLUMNS)
        writer.writerows(("measured", *row) for row in measured)
        writer.writerows(("simulated", *row) for row in simulated)
    plt = pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for axis, column, title in ((axes[0], 1, "prompt throughput"), (axes[1], 2, "generation throughput")):
        for label, rows in (("measured (vLLM)", measured), ("simulated", simulated)):
            axis.plot([r[0] for r in rows], [r[column] for r in rows], label=label)
        axis.set_ylabel("tokens/s")
        axis.set_title(title)
        axis.legend()
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)
