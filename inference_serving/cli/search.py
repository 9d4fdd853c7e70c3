"""SLO search: the cheapest deployment that meets latency targets.

    llmservingsim search --config configs/llama8b_h100.yaml --rate 10 --requests 200 \\
        --ttft-p99 500 --tpot-mean 50 --max-npus 8 --batches 0,32,128 --jobs 8

For each NPU count (ascending; powers of two up to --max-npus, or --npus 1,2,4) every TP x PP split
(tp * pp = npus; a split the model cannot use fails as a row with its error) and every max batch is
simulated with the sweep machinery; the search stops at the first NPU count
where some configuration has p99 TTFT <= --ttft-p99 and mean TPOT <= --tpot-mean (ms). Among those the
cheapest is the one with the fewest NPUs, then the fewest pipeline stages, then the lowest p99 TTFT.
It prints every configuration it explored (with `ok`/`-` for meeting the targets and the error of those that
failed, e.g. a model that does not fit) and the chosen one. When none meets the targets it exits 1 with
one line on stderr; when every configuration was refused as bad input, 2 with the first refusal.
"""
from __future__ import annotations

import csv
from pathlib import Path

import click

from ..config.experiment import load_config
from ..config.run_config import flag_name
from ..config.types import POSITIVE, REQUESTS
from ..errors import BAD_INPUT, InputError, SimError
from ..inputs.generator import generate_requests
from ..inputs.model import load_model
from ..inputs.workload import TSV_HEADER, load_dataset, write_dataset
from ..report.output_paths import check_distinct, check_file, first_line
from ..serving.policy import policy_class
from .command import Command, refuse_unread
from .runner import check_ray, run_all
from .sweep import check_configurations

MAX_NPUS = 2**20  # the engine's largest cluster
COLUMNS = ("npus", "tp", "pp", "max_batch", "ttft_p99_ms", "tpot_mean_ms", "request_throughput_req_s",
           "generation_throughput_tok_s", "ok", "error")
EXPLORED = ("npu_num", "npu_group", "max_batch")  # the flags the search sets


def splits(npus: int) -> list[tuple[int, int]]:
    """(tp, pp) with tp * pp = npus, tensor parallelism first."""
    return [(npus // pp, pp) for pp in range(1, npus + 1) if npus % pp == 0]


def candidates(npus: int, batches: list[int]) -> list[dict]:
    return [{"npu_num": npus, "npu_group": pp, "max_batch": batch, "tp": tp}
            for tp, pp in splits(npus) for batch in batches]


def flag_sets(base: dict, points: list[dict]) -> list[dict]:
    return [{**base, **{name: p[name] for name in EXPLORED}} for p in points]


def meets(result: dict, ttft_p99_ms: float, tpot_mean_ms: float) -> bool:
    return (not result.get("error") and result.get("requests_finished", 0) > 0
            and result["ttft_p99_ms"] <= ttft_p99_ms and result["tpot_mean_ms"] <= tpot_mean_ms)


def search(base: dict, npu_counts: list[int], batches: list[int], ttft_p99_ms: float, tpot_mean_ms: float,
           jobs: int = 1, ray_address: str | None = None, log=print) -> tuple[dict | None, list[dict]]:
    """(cheapest row or None, every explored row). A row: npus, tp, pp, max_batch, the metrics, ok, error."""
    explored: list[dict] = []
    for npus in npu_counts:
        points = candidates(npus, batches)
        results = run_all(flag_sets(base, points), jobs, ray_address)
        rows = []
        for p, result in zip(points, results):
            rows.append({"npus": npus, "tp": p["tp"], "pp": p["npu_group"], "max_batch": p["max_batch"],
                         "ttft_p99_ms": result.get("ttft_p99_ms", ""), "tpot_mean_ms": result.get("tpot_mean_ms", ""),
                         "request_throughput_req_s": result.get("request_throughput_req_s", ""),
                         "generation_throughput_tok_s": result.get("generation_throughput_tok_s", ""),
                         "ok": meets(result, ttft_p99_ms, tpot_mean_ms), "error": result.get("error", ""),
                         "status": result.get("exit_code", 0)})
        explored += rows
        log(f"{npus} NPUs: {sum(r['ok'] for r in rows)} of {len(rows)} configurations meet the targets")
        good = [r for r in rows if r["ok"]]
        if good:
            return min(good, key=lambda r: (r["pp"], r["ttft_p99_ms"], r["max_batch"])), explored
    return None, explored


def format_rows(rows: list[dict]) -> list[str]:
    head = f"{'npus':>4} {'tp':>3} {'pp':>3} {'batch':>5} {'TTFT p99 ms':>12} {'TPOT mean ms':>12} {'req/s':>8}  ok"
    lines = [head]
    for r in rows:
        if r["error"]:
            lines.append(f"{r['npus']:>4} {r['tp']:>3} {r['pp']:>3} {r['max_batch']:>5}  error: {r['error']}")
        else:
            lines.append(f"{r['npus']:>4} {r['tp']:>3} {r['pp']:>3} {r['max_batch']:>5} {r['ttft_p99_ms']:>12.3f} "
                         f"{r['tpot_mean_ms']:>12.3f} {r['request_throughput_req_s']:>8.3f}  {'ok' if r['ok'] else '-'}")
    return lines


def _int_list(ctx, param, value: str) -> list[int] | None:
    if value is None:
        return None
    try:
        numbers = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of integers") from None
    lowest = 0 if param.name == "batches" else 1
    if not numbers or min(numbers) < lowest or max(numbers) > MAX_NPUS:
        raise click.BadParameter(f"'{value}' must list integers from {lowest} to {MAX_NPUS}")
    return numbers


def is_search_csv(path: Path) -> bool:
    return first_line(path) == ",".join(COLUMNS)


def is_trace(path: Path) -> bool:
    return first_line(path) == TSV_HEADER


def check_base(base: dict, batches: list[int], config: Path | None) -> None:
    """The experiment file leaves the explored flags to the search, and --batches is read by the scheduler."""
    for name in EXPLORED:
        if name in base:
            raise InputError(f"--config {config}: '{name}' is what the search varies; remove it "
                             f"(use --npus, --max-npus and --batches)")
    scheduler = base.get("scheduler", "orca")
    if batches != [0] and "max_batch" not in policy_class(scheduler).own_flags:
        raise InputError(f"--batches: --scheduler {scheduler} does not read {flag_name('max_batch')}; "
                         f"leave --batches out")


def workload(base: dict, dataset: str | None, rate: float | None, trace: Path, force: bool) -> dict:
    """The flags of the served trace: --dataset, a generated one (--rate), or the experiment file's."""
    if dataset is not None and rate is not None:
        raise InputError("--dataset and --rate: give one (a trace file, or the rate of a generated trace)")
    if dataset is None and rate is None and "dataset" not in base:
        raise InputError("give --rate (a generated trace) or --dataset (or a dataset in --config)")
    if rate is not None:
        check_file("--workdir", trace, is_trace, force)
        return {"dataset": str(trace)}
    chosen = dataset if dataset is not None else base["dataset"]
    load_dataset(chosen, 1)
    return {"dataset": chosen}


def write_explored(rows: list[dict], output: Path) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as err:
        raise InputError(f"--output {output}: cannot write ({err.strerror or err})") from None


def no_choice(explored: list[dict], largest: int, ttft_p99: float, tpot_mean: float) -> SimError:
    """Exit 2 with the first refusal when every configuration was refused as bad input, else 1."""
    ran = [r for r in explored if not r["error"]]
    if not ran and all(r["status"] == BAD_INPUT for r in explored):
        first = explored[0]
        return InputError(f"every configuration was refused, e.g. {first['npus']} NPUs (TP {first['tp']} x "
                          f"PP {first['pp']}): {first['error']}")
    return SimError(f"no configuration up to {largest} NPUs meets the targets (p99 TTFT <= {ttft_p99:g} ms, "
                    f"mean TPOT <= {tpot_mean:g} ms); {len(ran)} of {len(explored)} ran")


@click.command("search", cls=Command, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Experiment file with the fixed flags (model, hardware, perf model, ...).")
@click.option("--dataset", default=None, help="Request trace to serve (instead of --rate).")
@click.option("--rate", type=POSITIVE, default=None,
              help="Request rate (requests/s): a ShareGPT-like Poisson trace is generated.")
@click.option("--requests", "num_requests", type=REQUESTS, default=200, show_default=True,
              help="Requests of the generated trace (with --rate).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the generated trace.")
@click.option("--ttft-p99", "ttft_p99", type=POSITIVE, required=True, help="Target: p99 TTFT at most this (ms).")
@click.option("--tpot-mean", "tpot_mean", type=POSITIVE, required=True, help="Target: mean TPOT at most this (ms).")
@click.option("--max-npus", "max_npus", type=click.IntRange(min=1, max=MAX_NPUS), default=8, show_default=True,
              help="Largest NPU count tried (powers of two up to it).")
@click.option("--npus", "npu_list", default=None, callback=_int_list, help="NPU counts to try, e.g. 1,2,3,4.")
@click.option("--batches", default="0", show_default=True, callback=_int_list,
              help="max_batch values to try (0 = no limit).")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="Configurations simulated at once.")
@click.option("--ray", "ray_address", default=None, help="Run on a Ray cluster at this address (see sweep).")
@click.option("--workdir", default="output/search", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the generated trace goes.")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of every explored configuration.")
@click.option("--force", is_flag=True, help="Replace an existing --output or generated trace of any kind.")
def main(config, dataset, rate, num_requests, seed, ttft_p99, tpot_mean, max_npus, npu_list, batches, jobs,
         ray_address, workdir, output, force) -> None:
    """Find the cheapest deployment (NPUs, TP x PP, max batch) whose p99 TTFT and mean TPOT meet the targets."""
    check_ray(ray_address)
    if ray_address:
        refuse_unread({"jobs": "--jobs"}, "with --ray (the cluster runs every configuration at once)")
    if rate is None:
        refuse_unread({"num_requests": "--requests", "seed": "--seed", "workdir": "--workdir"},
                      "without --rate (they describe the trace it generates)")
    if npu_list:
        refuse_unread({"max_npus": "--max-npus"}, "with --npus (which lists the NPU counts to try)")
    base = load_config(config) if config else {}
    check_base(base, batches, config)
    trace = (workdir / f"rate{rate:g}_n{num_requests}_seed{seed}.tsv").resolve() if rate is not None else None
    base.update(workload(base, dataset, rate, trace, force))
    if "model_name" in base:
        load_model(base["model_name"])
    if rate is not None:
        base["req_num"] = num_requests
    counts = npu_list or [n for n in (1 << k for k in range(max_npus.bit_length())) if n <= max_npus]
    check_file("--output", output, is_search_csv, force)
    every = flag_sets(base, [p for npus in counts for p in candidates(npus, batches)])
    own = [(flag, path) for flag, path in (("--output", output), ("--workdir", trace)) if path is not None]
    check_distinct(own)
    check_configurations(every, "search", own)
    if rate is not None:
        write_dataset(generate_requests(num_requests, rate, seed), trace, force=True)
    best, explored = search(base, counts, batches, ttft_p99, tpot_mean, jobs, ray_address)
    click.echo(f"explored (targets: p99 TTFT <= {ttft_p99:g} ms, mean TPOT <= {tpot_mean:g} ms):")
    for line in format_rows(explored):
        click.echo("  " + line)
    if output is not None:
        write_explored(explored, output)
    if best is None:
        raise no_choice(explored, max(counts), ttft_p99, tpot_mean)
    click.echo(f"cheapest: {best['npus']} NPUs, TP {best['tp']} x PP {best['pp']}, max_batch {best['max_batch']} "
               f"(p99 TTFT {best['ttft_p99_ms']:.3f} ms, mean TPOT {best['tpot_mean_ms']:.3f} ms)")
