"""Sweeps: `llmservingsim sweep GRID.yaml [--jobs N] [--ray ADDRESS] [--output CSV]`.

GRID.yaml:
    config: configs/base.yaml     # optional: an experiment file with the fixed flags
    base:                         # optional: more fixed flags (override `config`)
      req_num: 100
      output: output/sweep_tp{npu_num}_b{max_batch}.csv   # {flag} is replaced by this run's value
    grid:                         # every combination of these values is one run
      npu_num: [1, 2, 4]
      max_batch: [0, 32]

Each configuration runs as its own simulation (in N worker processes, or as tasks on a Ray cluster);
results equal those of running each configuration alone with main.py. The CSV has one row per
configuration: the grid's flags, every summary metric, and `error` (empty, or the one-line reason the
configuration failed; a failure is not fatal to the sweep).
"""
from __future__ import annotations

import csv
import io
import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import click

from ..config.experiment import load_config, read_yaml
from ..config.options import canonical, config_from_mapping, values_from_mapping
from ..errors import InputError, SimError
from ..paths import REPO_ROOT
from .command import Command

METRIC_COLUMNS = ("requests_finished", "iterations", "prompt_tokens", "generated_tokens", "simulated_time_s",
                  "prompt_throughput_tok_s", "generation_throughput_tok_s", "request_throughput_req_s",
                  *(f"{key}_{stat}_ms" for key in ("ttft", "tpot", "latency", "queuing_delay")
                    for stat in ("mean", "median", "p99")))


def load_grid(path: Path) -> tuple[dict, dict[str, list]]:
    """(fixed flags, {flag: values}) of a grid file, keyed by flag name; InputError for anything unusable."""
    data = read_yaml(path, "grid file")
    if not isinstance(data, dict) or set(data) - {"config", "base", "grid"}:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{path}: expected the keys config, base and grid (got {found})")
    base = load_config(Path(data["config"])) if data.get("config") else {}
    base.update(canonical(data.get("base") or {}, f"{path}: base"))
    grid_raw = data.get("grid")
    if not isinstance(grid_raw, dict) or not grid_raw:
        raise InputError(f"{path}: 'grid' must map flag names to lists of values, e.g. npu_num: [1, 2, 4]")
    grid = {}
    for name, values in canonical(grid_raw, f"{path}: grid").items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise InputError(f"{path}: grid key '{name}' has no values")
        for value in values:
            values_from_mapping({name: value}, f"{path}: grid")
        grid[name] = values
    return base, grid


def configurations(base: dict, grid: dict[str, list]) -> list[dict]:
    """The cartesian product, in the order of the grid's keys and values (last key fastest)."""
    runs = []
    for combo in itertools.product(*grid.values()):
        point = dict(zip(grid, combo))
        flags = {**base, **point}
        for key, value in flags.items():
            if isinstance(value, str) and "{" in value:
                flags[key] = value.format(**point)
        runs.append({"point": point, "flags": flags})
    return runs


def run_config(flags: dict, cwd: str | None = None) -> dict:
    """One simulation; its summary metrics, or {"error": reason}. Never raises."""
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    from ..simulate import simulate
    try:
        metrics = simulate(config_from_mapping({**flags, "quiet": True}), log=lambda line: None)
        return {**metrics.summary(metrics.end_ns), "error": ""}
    except SimError as err:
        return {"error": str(err)}
    except Exception as err:  # noqa: BLE001 - a failed configuration is a row, not the end of the sweep
        message = str(err).strip().splitlines()
        return {"error": f"internal: {type(err).__name__}: {message[0] if message else ''}"}


def run_all(flag_sets: list[dict], jobs: int = 1, ray_address: str | None = None) -> list[dict]:
    """run_config for every flag set, in order: serially, in `jobs` processes, or on a Ray cluster."""
    cwd = os.getcwd()
    if ray_address:
        return _run_ray(flag_sets, ray_address, cwd)
    if jobs <= 1 or len(flag_sets) <= 1:
        return [run_config(flags) for flags in flag_sets]
    with ProcessPoolExecutor(max_workers=min(jobs, len(flag_sets)), mp_context=get_context("spawn")) as pool:
        return list(pool.map(run_config, flag_sets, [cwd] * len(flag_sets)))


def _run_ray(flag_sets: list[dict], address: str, cwd: str) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: .venv/bin/pip install ray") from None
    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                     os.environ.get("PYTHONPATH")]))}}
        ray.init(address=None if address == "local" else address, runtime_env=env, log_to_driver=False,
                 include_dashboard=False)
    try:
        task = ray.remote(num_cpus=1)(run_config)
        return ray.get([task.remote(flags, cwd) for flags in flag_sets])
    finally:
        if started:
            ray.shutdown()


def table(runs: list[dict], results: list[dict], grid: dict) -> list[dict]:
    rows = []
    for run, result in zip(runs, results):
        row = {key: run["point"][key] for key in grid}
        row.update({key: result.get(key, "") for key in METRIC_COLUMNS})
        row["error"] = result.get("error", "")
        rows.append(row)
    return rows


def write_csv(rows: list[dict], handle) -> None:
    if not rows:
        return
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def sweep(grid_file: Path, jobs: int = 1, ray_address: str | None = None) -> list[dict]:
    base, grid = load_grid(grid_file)
    runs = configurations(base, grid)
    return table(runs, run_all([r["flags"] for r in runs], jobs, ray_address), grid)


@click.command("sweep", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("grid_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="Configurations simulated at once (worker processes).")
@click.option("--ray", "ray_address", default=None,
              help="Run on a Ray cluster at this address ('auto' for the one this node belongs to, "
                   "'local' to start one here) instead of local processes.")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write [default: the table on standard output].")
def main(grid_file: Path, jobs: int, ray_address: str | None, output: Path | None) -> None:
    """Run every combination of the grid's flag values; one CSV row per configuration."""
    rows = sweep(grid_file, jobs, ray_address)
    if output is None:
        buffer = io.StringIO()
        write_csv(rows, buffer)
        click.echo(buffer.getvalue(), nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", newline="") as handle:
            write_csv(rows, handle)
        failed = sum(1 for r in rows if r["error"])
        click.echo(f"{len(rows)} configurations ({failed} failed) -> {output}")
