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
configuration failed; a failure is not fatal to the sweep). Before anything runs, every configuration's
values and output files are checked (two configurations writing one file are refused); each row is
written as its configuration finishes, so an interrupted sweep keeps the rows it finished.
"""
from __future__ import annotations

import itertools
import math
import sys
from contextlib import closing, contextmanager
from pathlib import Path

import click

from ..config.experiment import load_config, read_yaml
from ..config.options import canonical, config_from_mapping, values_from_mapping
from ..errors import InputError
from ..report.output_paths import check_file, first_line
from ..report.outputs import check_outputs, written_files
from .command import Command, refuse_unread
from .row_stream import RowStream
from .runner import check_ray, completed, run_all

METRIC_COLUMNS = ("requests_finished", "iterations", "prompt_tokens", "generated_tokens", "simulated_time_s",
                  "prompt_throughput_tok_s", "generation_throughput_tok_s", "request_throughput_req_s",
                  *(f"{key}_{stat}_ms" for key in ("ttft", "tpot", "latency", "queuing_delay")
                    for stat in ("mean", "median", "p99")))
MAX_CONFIGURATIONS = 100_000


def load_grid(path: Path) -> tuple[dict, dict[str, list]]:
    """(fixed flags, {flag: values}) of a grid file, keyed by flag name; InputError for anything unusable."""
    data = read_yaml(path, "grid file")
    if not isinstance(data, dict) or set(data) - {"config", "base", "grid"}:
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{path}: expected the keys config, base and grid (got {found})")
    config = data.get("config")
    if config is not None and not isinstance(config, str):
        raise InputError(f"{path}: 'config' must be the path of an experiment file, got {config!r}")
    base = load_config(Path(config)) if config else {}
    fixed = canonical(data.get("base") or {}, f"{path}: base")
    base.update(fixed)
    grid_raw = data.get("grid")
    if not isinstance(grid_raw, dict) or not grid_raw:
        raise InputError(f"{path}: 'grid' must map flag names to lists of values, e.g. npu_num: [1, 2, 4]")
    grid = {}
    for name, values in canonical(grid_raw, f"{path}: grid").items():
        if name in fixed:
            raise InputError(f"{path}: '{name}' is in both base and grid; keep it in one")
        values = values if isinstance(values, list) else [values]
        if not values:
            raise InputError(f"{path}: grid key '{name}' has no values")
        for value in values:
            values_from_mapping({name: value}, f"{path}: grid")
        grid[name] = values
    count = math.prod(len(values) for values in grid.values())
    if count > MAX_CONFIGURATIONS:
        raise InputError(f"{path}: the grid makes {count} configurations, more than {MAX_CONFIGURATIONS}; split it")
    return base, grid


def _filled(key: str, value, point: dict, source: str):
    """A base value with {flag} replaced by this configuration's value of that grid flag."""
    if not isinstance(value, str) or "{" not in value:
        return value
    try:
        return value.format(**point)
    except KeyError as err:
        raise InputError(f"{source}: '{key}: {value}' names {{{err.args[0]}}}, which is not a grid flag "
                         f"(grid flags: {', '.join(point)})") from None
    except (ValueError, IndexError, AttributeError) as err:
        raise InputError(f"{source}: '{key}: {value}' is not a valid template ({err}); "
                         f"write {{flag}} for a grid flag, {{{{ and }}}} for literal braces") from None


def configurations(base: dict, grid: dict[str, list], source: str = "grid") -> list[dict]:
    """The cartesian product, in the order of the grid's keys and values (last key fastest)."""
    runs = []
    for combo in itertools.product(*grid.values()):
        point = dict(zip(grid, combo))
        flags = {key: _filled(key, value, point, source) for key, value in {**base, **point}.items()}
        runs.append({"point": point, "flags": flags})
    return runs


def check_configurations(flag_sets: list[dict], source: str, own_outputs: list[tuple[str, Path]] = ()) -> None:
    """Before anything runs: every configuration's values typed and in range, its output files usable, and
    no file written by two configurations (or by one and the command itself)."""
    writers: dict[Path, str] = {path.resolve(): f"{flag} {path}" for flag, path in own_outputs}
    for number, flags in enumerate(flag_sets, start=1):
        where = f"{source}, configuration {number}"
        config = config_from_mapping(flags, where)
        try:
            check_outputs(config)
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
        for flag, path in written_files(config):
            other = writers.setdefault(path.resolve(), f"configuration {number}")
            if other != f"configuration {number}":
                raise InputError(f"{where} writes {path} ({flag}), as does {other}; make the path differ per "
                                 f"configuration, e.g. with {{npu_num}}")


def columns(grid: dict) -> list[str]:
    return [*grid, *METRIC_COLUMNS, "error"]


def is_sweep_csv(path: Path) -> bool:
    return first_line(path).endswith(",".join((*METRIC_COLUMNS, "error")))


def row(point: dict, result: dict, grid: dict) -> dict:
    values = {key: point[key] for key in grid}
    values.update({key: result.get(key, "") for key in METRIC_COLUMNS})
    values["error"] = result.get("error", "")
    return values


def sweep(grid_file: Path, jobs: int = 1, ray_address: str | None = None) -> list[dict]:
    base, grid = load_grid(grid_file)
    runs = configurations(base, grid, str(grid_file))
    check_configurations([r["flags"] for r in runs], str(grid_file))
    results = run_all([r["flags"] for r in runs], jobs, ray_address)
    return [row(r["point"], result, grid) for r, result in zip(runs, results)]


@contextmanager
def _table_handle(output: Path | None):
    if output is None:
        yield sys.stdout
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle = open(output, "w", newline="", encoding="utf-8")
    except OSError as err:
        raise InputError(f"--output {output}: cannot write ({err.strerror or err})") from None
    with handle:
        yield handle


@click.command("sweep", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("grid_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="Configurations simulated at once (worker processes).")
@click.option("--ray", "ray_address", default=None,
              help="Run on a Ray cluster at this address ('auto' for the one this node belongs to, "
                   "'local' to start one here) instead of local processes.")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write, a row as each configuration finishes [default: the table on standard output].")
@click.option("--force", is_flag=True,
              help="Replace existing output files (this CSV and the configurations') of any kind.")
def main(grid_file: Path, jobs: int, ray_address: str | None, output: Path | None, force: bool) -> None:
    """Run every combination of the grid's flag values; one CSV row per configuration."""
    base, grid = load_grid(grid_file)
    runs = configurations({**base, **({"force": True} if force else {})}, grid, str(grid_file))
    flag_sets = [r["flags"] for r in runs]
    check_ray(ray_address)
    if ray_address:
        refuse_unread({"jobs": "--jobs"}, "with --ray (the cluster runs every configuration at once)")
    check_file("--output", output, is_sweep_csv, force)
    check_configurations(flag_sets, str(grid_file), [("--output", output)] if output else [])
    failed = 0
    with _table_handle(output) as handle:
        stream = RowStream(handle, columns(grid))
        try:
            with closing(completed(flag_sets, jobs, ray_address)) as finished:
                for index, result in finished:
                    failed += bool(result.get("error"))
                    stream.add(index, row(runs[index]["point"], result, grid))
        finally:
            stream.close()
    if output is not None:
        click.echo(f"{len(runs)} configurations ({failed} failed) -> {output}")
