"""Property-based tests (hypothesis): generated datasets, model configs, hardware files and experiment
files either run the tiny model (exit 0, one CSV row per request) or are refused cleanly (exit 2, one
stderr line naming the file); and whatever our own rules call invalid is refused, never run.

Values are drawn from a mix of good ones and the kinds that slip through loose checks: nan, inf,
negative and huge numbers, fractions where counts belong, text, booleans, lists and nulls.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference_serving.cli import main_py

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TINY_MODEL = json.loads((DATA / "tiny_model.json").read_text())
PROPERTY = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
MAX_DIMENSION = 2**31 - 1

ODD = st.one_of(st.just(float("nan")), st.just(float("inf")), st.just(-1), st.just(0), st.just(2.5),
                st.just(10**40), st.just(True), st.just("4"), st.just([1]), st.none())


def run_in(folder: Path, args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main_py, [*args, "--quiet", "--output", str(folder / "out.csv")],
                                catch_exceptions=False)
    return result.exit_code, result.stderr


def workspace() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="llmservingsim-properties-")


def tiny_args(folder: Path, **replace: str) -> list[str]:
    flags = {"--model_name": str(DATA / "tiny_model.json"), "--hardware": "TINY",
             "--perf-model": str(DATA / "tiny_perf.csv"), "--npu_num": "1", "--npu_mem": "1",
             "--dataset": str(DATA.parent.parent / "dataset" / "example_10.tsv"), "--req_num": "3", **replace}
    return [part for item in flags.items() for part in item]


def assert_clean(code: int, stderr: str, names: str) -> None:
    lines = stderr.splitlines()
    assert code in (0, 2), stderr
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], stderr


def rows_written(folder: Path) -> int:
    return len((folder / "out.csv").read_text().splitlines()) - 1


# ---------------------------------------------------------------- datasets

def mostly(good, bad):
    """Good values three times in four, so that whole inputs are often good."""
    return st.one_of(good, good, good, bad)


CELL = mostly(st.integers(1, 40), st.one_of(st.integers(-5, 0), st.just(10**30),
                                            st.sampled_from(["nan", "inf", "1.5", "1e3", "", "x"])))
ARRIVAL = mostly(st.integers(0, 10**7), st.one_of(st.just(-3), st.just(10**19), st.sampled_from(["nan", "0.5", "-inf"])))


def valid_row(row) -> bool:
    prompt, output, arrival = row
    tokens_ok = all(isinstance(v, int) and 1 <= v <= MAX_DIMENSION for v in (prompt, output))
    return tokens_ok and isinstance(arrival, int) and 0 <= arrival <= 10**18


@PROPERTY
@given(st.lists(st.tuples(CELL, CELL, ARRIVAL), min_size=1, max_size=4))
def test_datasets_run_or_are_refused_by_row(rows):
    with workspace() as name:
        folder = Path(name)
        path = folder / "d.tsv"
        path.write_text("input_toks\toutput_toks\tarrival_time_ns\n" + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in rows))
        code, stderr = run_in(folder, tiny_args(folder, **{"--dataset": str(path), "--req_num": "10"}))
        assert_clean(code, stderr, str(path) if code == 2 and "line" in stderr else "")
        if not all(valid_row(row) for row in rows):
            assert code == 2 and "line" in stderr, stderr
        if code == 0:
            assert rows_written(folder) == len(rows)


# ---------------------------------------------------------------- model configs

COUNT_KEYS = ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size",
              "num_hidden_layers", "vocab_size", "max_position_embeddings")
MODEL_VALUE = mostly(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]), ODD)


@PROPERTY
@given(st.dictionaries(st.sampled_from(COUNT_KEYS), MODEL_VALUE, max_size=3),
       st.sets(st.sampled_from(COUNT_KEYS), max_size=1))
def test_model_configs_run_or_are_refused(changes, removed):
    config = {k: v for k, v in {**TINY_MODEL, **changes}.items() if k not in removed}
    with workspace() as name:
        folder = Path(name)
        path = folder / "tiny_model.json"  # the profiled CSV's rows are for the model named tiny_model
        path.write_text(json.dumps(config))
        code, stderr = run_in(folder, tiny_args(folder, **{"--model_name": str(path)}))
        assert_clean(code, stderr, "")
        bad = [k for k, v in changes.items() if k != "head_dim" and k != "num_key_value_heads"
               and not (type(v) is int and 1 <= v <= MAX_DIMENSION)]
        if bad or {"hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size"} & removed:
            assert code == 2 and str(path) in stderr, stderr
        if code == 0:
            assert rows_written(folder) == 3


# ---------------------------------------------------------------- hardware files

HARDWARE_LIMITS = {"memory_gib": (0, 1e6, False), "memory_bw_gbps": (0, 1e9, False), "link_bw_gbps": (0, 1e9, False),
                   "link_latency_ns": (0, 1e12, True), "engine_overhead_ns": (0, 1e12, True)}
HARDWARE_VALUE = mostly(st.one_of(st.floats(0.5, 5000), st.integers(1, 5000)), st.one_of(ODD, st.just(1e300), st.just(-0.0)))


def valid_hardware_value(key: str, value) -> bool:
    low, high, closed = HARDWARE_LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return (low <= value if closed else low < value) and value <= high


@PROPERTY
@given(st.dictionaries(st.sampled_from(sorted(HARDWARE_LIMITS)), HARDWARE_VALUE, max_size=3))
def test_hardware_files_run_or_are_refused(changes):
    values = {"memory_gib": 1, "memory_bw_gbps": 200, "link_bw_gbps": 300, **changes}
    with workspace() as name:
        folder = Path(name)
        shutil.copy(DATA / "tiny_perf.csv", folder / "tiny_perf.csv")
        path = folder / "hw.yaml"
        path.write_text(yaml.safe_dump({"name": "TINY", "provider": "csv", "csv": "tiny_perf.csv", **values}))
        args = tiny_args(folder, **{"--hardware": str(path)})
        args = args[:args.index("--perf-model")] + args[args.index("--perf-model") + 2:]
        args = args[:args.index("--npu_mem")] + args[args.index("--npu_mem") + 2:]
        code, stderr = run_in(folder, args)
        assert_clean(code, stderr, "")
        if not all(valid_hardware_value(k, v) for k, v in changes.items()):
            assert code == 2 and str(path) in stderr, stderr


# ---------------------------------------------------------------- experiment files

EXPERIMENT_KEYS = {"npu_mem": float, "remote_bw": float, "link_latency": float, "engine_overhead": float,
                   "log_interval": float, "max_batch": int, "block_size": int, "req_num": int, "verbose": bool}
EXPERIMENT_VALUE = mostly(st.one_of(st.integers(1, 64), st.floats(0.5, 64), st.booleans()), ODD)


def loosely_valid(key: str, value) -> bool:
    """Of the right type (counts as integers, numbers finite, switches as booleans); ranges aside."""
    kind = EXPERIMENT_KEYS[key]
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool) or value is None:
        return False
    if kind is int:
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


@PROPERTY
@given(st.dictionaries(st.sampled_from(sorted(EXPERIMENT_KEYS)), EXPERIMENT_VALUE, min_size=1, max_size=3))
def test_experiment_files_run_or_are_refused(values):
    with workspace() as name:
        folder = Path(name)
        path = folder / "experiment.yaml"
        path.write_text(yaml.safe_dump(values))
        args = tiny_args(folder)
        args = args[:args.index("--npu_mem")] + args[args.index("--npu_mem") + 2:]
        args = args[:args.index("--req_num")] + args[args.index("--req_num") + 2:]
        code, stderr = run_in(folder, ["--config", str(path), *args])
        assert_clean(code, stderr, "")
        if not all(loosely_valid(k, v) for k, v in values.items()):
            assert code == 2 and str(path) in stderr, stderr
