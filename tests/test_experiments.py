"""What researchers look at and how they run many experiments: progress bar, plots, Chrome trace,
summary JSON, experiment files (--config), sweeps (processes and Ray) and the SLO search.
All on the tiny model and CSV performance model of tests/data (see test_serving.py)."""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from inference_serving.cli import runner as runner_mod
from inference_serving.cli import search as search_mod
from inference_serving.cli import sweep as sweep_mod
from inference_serving.cli.run import run as run_command
from inference_serving.config.options import config_from_mapping as run_request
from inference_serving.errors import InputError
from inference_serving.simulate import simulate
from inference_serving.report.progress import Progress

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TINY = {"model_name": str(DATA / "tiny_model.json"), "hardware": "TINY", "perf-model": str(DATA / "tiny_perf.csv"),
        "npu_mem": 1, "block_size": 4}
ROWS = [(40, 12, 0), (8, 30, 0), (100, 5, 2000), (20, 9, 30000), (64, 20, 31000), (5, 1, 90000), (30, 16, 2_000_000)]


@pytest.fixture
def dataset(tmp_path) -> Path:
    path = tmp_path / "requests.tsv"
    path.write_text("input_toks\toutput_toks\tarrival_time_ns\n" + "".join(f"{i}\t{o}\t{a}\n" for i, o, a in ROWS))
    return path


def run(dataset: Path, **flags):
    lines: list[str] = []
    metrics = simulate(run_request({**TINY, "dataset": str(dataset), "npu_num": 1, **flags}), log=lines.append)
    return metrics, lines


# ---------------------------------------------------------------- Chrome trace

@pytest.mark.parametrize("npus,stages", [(1, 1), (2, 1), (2, 2), (4, 2)])
def test_chrome_trace_spans_per_npu_add_up_to_the_simulated_time(tmp_path, dataset, npus, stages):
    trace_path = tmp_path / "trace.json"
    metrics, _ = run(dataset, npu_num=npus, npu_group=stages, chrome_trace=str(trace_path))
    trace = json.loads(trace_path.read_text())
    end = metrics.end_ns
    assert trace["otherData"]["simulated_time_ns"] == end and end > 0
    spans = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X" and e["pid"] < npus:
            start = round(e["ts"] * 1000)
            spans[e["pid"]].append((start, start + round(e["dur"] * 1000), e["tid"], e["name"]))
    assert sorted(spans) == list(range(npus))
    for npu, mine in spans.items():
        mine.sort()
        assert 0 <= mine[0][0] and max(s[1] for s in mine) <= end
        # each NPU runs one chain: no two spans overlap, so busy time + idle gaps = simulated time
        busy = sum(b - a for a, b, *_ in mine)
        gaps = mine[0][0] + sum(mine[i + 1][0] - mine[i][1] for i in range(len(mine) - 1)) + end - mine[-1][1]
        assert all(mine[i + 1][0] >= mine[i][1] for i in range(len(mine) - 1))
        assert busy + gaps == end
        assert {s[2] for s in mine} <= {0, 1, 2} and 0 in {s[2] for s in mine}
    # the run ends when the last NPU's last node ends
    assert max(s[1] for mine in spans.values() for s in mine) == end
    # the requests process: each request's phases, back to back, ending at its last token
    phases = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X" and e["pid"] == npus and e["cat"] == "request":
            phases[e["tid"]].append((e["name"], round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000)))
    ends = {s.id: s.end_ns for s in metrics.finished}
    assert sorted(phases) == sorted(ends)
    for rid, items in phases.items():
        items.sort(key=lambda p: p[1])
        assert items[-1][2] == ends[rid] and {p[0] for p in items} <= {"queued", "prefill", "decode"}
        assert all(items[i][2] == items[i + 1][1] for i in range(len(items) - 1))
    iterations = [e for e in trace["traceEvents"] if e["ph"] == "X" and e.get("cat") == "iteration"]
    assert len(iterations) == metrics.iterations


def test_chrome_trace_does_not_change_results(tmp_path, dataset):
    plain, _ = run(dataset, npu_num=2)
    traced, _ = run(dataset, npu_num=2, chrome_trace=str(tmp_path / "t.json"))
    assert plain.summary(plain.end_ns) == traced.summary(traced.end_ns)


# ---------------------------------------------------------------- summary JSON, samples, plots

def test_summary_json_has_every_summary_number_and_the_effective_config(tmp_path, dataset):
    path = tmp_path / "s.json"
    metrics, lines = run(dataset, npu_num=2, summary_json=str(path))
    data = json.loads(path.read_text())
    summary, config = data["summary"], data["config"]
    assert summary == metrics.summary(metrics.end_ns)
    text = "\n".join(lines)
    assert f"{summary['ttft_p99_ms']:.3f}" in text and f"{summary['simulated_time_s']:.6f}" in text
    assert summary["requests_finished"] == len(ROWS) and summary["iterations"] == metrics.iterations
    # defaults applied: the hardware's (the fallback for an unknown name with a CSV) and main.py's
    assert config["local_bw"] == 1024.0 and config["link_bw"] == 256.0 and config["remote_bw"] == 512.0
    assert config["npu_num"] == 2 and config["tp"] == 2 and config["pp"] == 1 and config["block_size"] == 4
    assert config["scheduler"] == "orca" and config["dataset"] == str(dataset)


def test_iteration_samples(dataset):
    metrics, _ = run(dataset, max_batch=2)
    samples = metrics.samples
    assert len(samples) == metrics.iterations
    assert [s.end_ns for s in samples] == sorted(s.end_ns for s in samples)
    assert sum(s.prompt_tokens for s in samples) == metrics.prompt_tokens
    assert all(0 <= s.kv_used <= s.kv_total and s.running >= 0 and s.waiting >= 0 for s in samples)
    assert max(s.waiting for s in samples) > 0   # max_batch 2 keeps arrived requests waiting
    assert samples[-1].running == 0 and samples[-1].kv_used == 0


def test_plots_are_written(tmp_path, dataset):
    run(dataset, plot=str(tmp_path / "plots"))
    for name in ("throughput.png", "requests_kv.png", "latency_cdf.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


# ---------------------------------------------------------------- progress bar

class FakeTty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal_and_not_when_quiet():
    assert Progress.wanted(FakeTty()) and not Progress.wanted(FakeTty(), quiet=True)
    assert not Progress.wanted(io.StringIO())
    stream = FakeTty()
    bar = Progress(10, stream=stream, every_s=0)
    bar.draw(3, 1_500_000_000)
    bar.close(10, 2_000_000_000)
    text = stream.getvalue()
    assert "3/10 requests, 1.500 s simulated" in text and "10/10 requests" in text and text.endswith("\n")


def test_main_prints_nothing_extra_into_pipes(tmp_path, dataset):
    result = subprocess.run([sys.executable, "main.py", "--model_name", TINY["model_name"], "--hardware", "TINY",
                             "--perf-model", TINY["perf-model"], "--npu_mem", "1", "--npu_num", "1",
                             "--dataset", str(dataset)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert "iteration 0 done" in result.stdout


# ---------------------------------------------------------------- --config

def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_config_file_with_command_line_overrides(tmp_path, dataset):
    config = write_yaml(tmp_path / "c.yaml", "".join(f"{k}: {v}\n" for k, v in TINY.items()) +
                        f"dataset: {dataset}\nnpu_num: 4\nnpu-group: 2\nfp: 16\nquiet: true\n")
    summary = tmp_path / "s.json"
    result = CliRunner().invoke(run_command, ["--config", str(config), "--npu_num", "2",
                                                 "--summary-json", str(summary)])
    assert result.exit_code == 0, result.output
    cfg = json.loads(summary.read_text())["config"]
    assert (cfg["npu_num"], cfg["npu_group"], cfg["tp"], cfg["perf_model"]) == (2, 2, 1, TINY["perf-model"])
    assert cfg["quiet"] is True


def test_config_file_unknown_key_is_one_line_and_exit_2(tmp_path):
    config = write_yaml(tmp_path / "c.yaml", "npu_num: 2\nnpus: 4\n")
    result = subprocess.run([sys.executable, "main.py", "--config", str(config)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "unknown key 'npus'" in result.stderr
    with pytest.raises(InputError, match="unknown key 'bogus'"):
        run_request({"bogus": 1})


def test_run_sh_uses_config_files():
    text = (REPO / "run.sh").read_text()
    assert "--config configs/llama8b_h100.yaml" in text
    for name in ("llama8b_h100.yaml", "sweep_tp.yaml", "sweep_mem.yaml"):
        assert (REPO / "configs" / name).is_file()
    base, grid = sweep_mod.load_grid(REPO / "configs" / "sweep_tp.yaml")
    assert grid == {"npu_num": [1, 2, 4, 8]} and base["model_name"] == "meta-llama/Llama-3.1-8B-Instruct"


# ---------------------------------------------------------------- sweeps

def grid_file(tmp_path: Path, dataset: Path) -> Path:
    return write_yaml(tmp_path / "grid.yaml", "base:\n" + "".join(f"  {k}: {v}\n" for k, v in TINY.items()) +
                      f"  dataset: {dataset}\n  output: {tmp_path}/run_{{npu_num}}_{{npu_group}}_{{max_batch}}.csv\n"
                      "grid:\n  npu_num: [1, 2]\n  npu_group: [1, 2]\n  max_batch: [0, 2]\n")


def test_parallel_and_serial_sweeps_give_identical_tables(tmp_path, dataset):
    path = grid_file(tmp_path, dataset)
    serial = sweep_mod.sweep(path, jobs=1)
    parallel = sweep_mod.sweep(path, jobs=3)
    assert serial == parallel and len(serial) == 8
    failed = [r for r in serial if r["error"]]
    assert [(r["npu_num"], r["npu_group"]) for r in failed] == [(1, 2), (1, 2)]
    assert "not divisible" in failed[0]["error"] and failed[0]["ttft_p99_ms"] == ""
    # a row equals the configuration run alone
    alone, _ = run(dataset, npu_num=2, npu_group=2, max_batch=2)
    row = next(r for r in serial if (r["npu_num"], r["npu_group"], r["max_batch"]) == (2, 2, 2))
    assert {k: row[k] for k in alone.summary(alone.end_ns)} == alone.summary(alone.end_ns)
    assert (tmp_path / "run_2_2_2.csv").is_file()  # {flag} in base values is filled in per configuration


def test_runs_that_share_the_cores_do_not_poll_for_their_engine():
    """A pool of more workers than half the cores, or Ray's one-CPU tasks, run with --engine-spin 0 unless
    a configuration sets it (in either spelling)."""
    flag_sets = [{"npu_num": 1}, {"engine_spin": 300}, {"engine-spin": 7}]
    shared = runner_mod._one_core_each(flag_sets)
    assert shared == [{"engine_spin": 0, "npu_num": 1}, {"engine_spin": 300}, {"engine-spin": 7}]
    assert [run_request({**TINY, **flags}).engine_spin for flags in shared] == [0, 300, 7]
    assert run_request(TINY).engine_spin is None  # alone: the run's default (backend/process.py)


def test_sweep_command_writes_csv(tmp_path, dataset):
    out = tmp_path / "sweep.csv"
    result = subprocess.run([sys.executable, "-m", "inference_serving", "sweep", str(grid_file(tmp_path, dataset)),
                             "--jobs", "2", "--output", str(out)], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "8 configurations (2 failed)" in result.stdout
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and list(rows[0])[:3] == ["npu_num", "npu_group", "max_batch"]
    assert list(rows[0])[-1] == "error" and "ttft_p99_ms" in rows[0]
    bad = write_yaml(tmp_path / "bad.yaml", "grid:\n  npus: [1]\n")
    result = subprocess.run([sys.executable, "-m", "inference_serving", "sweep", str(bad)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown key 'npus'" in result.stderr


RAY_RUN_TIMEOUT_S = 240  # Ray's start on 2 busy cores takes 5-20 s; a hang ends the test, it does not stall it


def ray_processes(prefix: str) -> set[str]:
    """Live processes whose command line names a folder starting with `prefix` (a private cluster's
    raylet, GCS and workers name their session folder)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if prefix in cmdline:
            found.add(f"{proc.name}: {cmdline[:200]}")
    return found


def test_ray_sweep_on_a_local_cluster_equals_the_serial_one(tmp_path, dataset):
    """--ray local: a private Ray cluster on this machine runs both configurations; the sweep CSV and
    every configuration's per-request CSV are byte-identical to the serial sweep's, and the cluster
    leaves no process, folder or file in $HOME behind. Ray is installed by setup.sh (the 'ray' extra)."""
    assert importlib.util.find_spec("ray"), "Ray is missing: bash setup.sh installs the 'ray' extra"
    home = tmp_path / "home"  # where Ray would keep a generated token (~/.ray): must stay empty
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, "HOME": str(home)}
    temp_root = Path(tempfile.gettempdir())
    before = set(temp_root.glob("llmss-ray-*"))
    processes_before = ray_processes(str(temp_root / "llmss-ray-"))
    tables = {}
    for mode, flags in (("serial", ["--jobs", "1"]), ("ray", ["--ray", "local"])):
        folder = tmp_path / mode
        folder.mkdir()
        grid = write_yaml(folder / "grid.yaml", "base:\n" + "".join(f"  {k}: {v}\n" for k, v in TINY.items()) +
                          f"  dataset: {dataset}\n  output: {folder}/run_{{npu_num}}.csv\n"
                          "grid:\n  npu_num: [1, 2]\n")
        result = subprocess.run([sys.executable, "-m", "inference_serving", "sweep", str(grid), *flags,
                                 "-o", str(folder / "sweep.csv")], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=RAY_RUN_TIMEOUT_S)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert "2 configurations (0 failed)" in result.stdout
        tables[mode] = {name: (folder / name).read_bytes() for name in ("sweep.csv", "run_1.csv", "run_2.csv")}
    assert tables["ray"] == tables["serial"]
    rows = list(csv.DictReader(io.StringIO(tables["ray"]["sweep.csv"].decode())))
    assert [(r["npu_num"], r["requests_finished"], r["error"]) for r in rows] == [("1", "7", ""), ("2", "7", "")]
    assert not list(home.iterdir())
    left = set(temp_root.glob("llmss-ray-*")) - before
    assert not left, f"the private cluster's folder was left: {sorted(left)}"
    # the driver has exited, after ray.shutdown(): what Ray started is gone too
    left = ray_processes(str(temp_root / "llmss-ray-")) - processes_before
    assert not left, f"the private cluster's processes were left: {sorted(left)}"


def free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", ["sweep", "search"])
@pytest.mark.parametrize("form", ["{port}", "ray://{port}"])
def test_an_unreachable_ray_address_is_one_line(tmp_path, dataset, command, form):
    port = free_port()
    address = form.format(port=f"127.0.0.1:{port}")
    config = write_yaml(tmp_path / "tiny.yaml", "".join(f"{k}: {v}\n" for k, v in TINY.items()))
    args = ([str(write_yaml(tmp_path / "g.yaml", f"config: {config}\nbase:\n  dataset: {dataset}\n"
                            "grid:\n  npu_num: [1, 2]\n"))] if command == "sweep" else
            ["--config", str(config), "--dataset", str(dataset), "--ttft-p99", "1000", "--tpot-mean", "1000",
             "--max-npus", "2"])
    out = tmp_path / "out.csv"
    result = subprocess.run([sys.executable, "-m", "inference_serving", command, *args, "--ray", address,
                             "-o", str(out)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: --ray {address}: no Ray cluster answers at 127.0.0.1:{port} "
                                          "(Connection refused)"]
    assert not out.exists()


@pytest.mark.parametrize("address", ["nowhere", "host:port", "http://host:80", "host:0"])
def test_a_ray_address_of_no_known_form_is_refused(address):
    with pytest.raises(InputError, match="expected local, auto, HOST:PORT"):
        runner_mod.check_ray(address)


def test_ray_missing_is_one_line(tmp_path, dataset):
    """Without Ray (hidden from the import system here) --ray is refused before any work starts."""
    grid = write_yaml(tmp_path / "g.yaml", "base:\n" + "".join(f"  {k}: {v}\n" for k, v in TINY.items()) +
                      f"  dataset: {dataset}\ngrid:\n  npu_num: [1]\n")
    hide_ray = ("import sys; sys.modules['ray'] = None; from inference_serving.cli import llmservingsim; "
                "llmservingsim()")
    result = subprocess.run([sys.executable, "-c", hide_ray, "sweep", str(grid), "--ray", "local", "-o",
                             str(tmp_path / "s.csv")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: --ray needs Ray: .venv/bin/pip install -e '.[ray]' "
                                          "(bash setup.sh installs it)"]
    assert not (tmp_path / "s.csv").exists()


# ---------------------------------------------------------------- SLO search

def test_search_finds_the_cheapest_deployment(tmp_path, dataset):
    base = {**TINY, "dataset": str(dataset)}
    ttft = {}
    for npus, stages in ((1, 1), (2, 1), (2, 2)):
        metrics, _ = run(dataset, npu_num=npus, npu_group=stages)
        ttft[npus, stages] = metrics.summary(metrics.end_ns)["ttft_p99_ms"]
    assert ttft[2, 1] < ttft[2, 2] < ttft[1, 1]
    target = (ttft[1, 1] + ttft[2, 2]) / 2  # one NPU misses it; both 2-NPU splits meet it
    best, explored = search_mod.search(base, [1, 2, 4], [0], target, 1e9, jobs=2, log=lambda line: None)
    assert (best["npus"], best["tp"], best["pp"], best["ttft_p99_ms"]) == (2, 2, 1, ttft[2, 1])
    assert [(r["npus"], r["tp"], r["pp"]) for r in explored] == [(1, 1, 1), (2, 2, 1), (2, 1, 2)]
    assert [r["ok"] for r in explored] == [False, True, True]
    none, explored = search_mod.search(base, [1], [0, 2], 0.0, 0.0, log=lambda line: None)
    assert none is None and len(explored) == 2


def test_search_command(tmp_path, dataset):
    config = write_yaml(tmp_path / "c.yaml", "".join(f"{k}: {v}\n" for k, v in TINY.items()))
    result = subprocess.run([sys.executable, "-m", "inference_serving", "search", "--config", str(config),
                             "--rate", "50", "--requests", "8", "--workdir", str(tmp_path), "--ttft-p99", "1000",
                             "--tpot-mean", "1000", "--max-npus", "2", "-o", str(tmp_path / "frontier.csv")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "cheapest: 1 NPUs, TP 1 x PP 1, max_batch 0" in result.stdout
    assert (tmp_path / "rate50_n8_seed0.tsv").is_file() and (tmp_path / "frontier.csv").is_file()
