"""What a run does around its inputs (issue 11): results written when stdout closes early, SIGTERM and
Ctrl-C unwinding (engine stopped, work folder removed, a sweep's finished rows kept), previous results
replaced and other files only with --force, every flag acting, a bounded throughput log, and the header
saying what each scheduler's numbers are for. Real runs of the tiny model on the real engine."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from inference_serving.cli import main_py
from inference_serving.paths import DEFAULT_ENGINE

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TINY = ["--model_name", str(DATA / "tiny_model.json"), "--hardware", "TINY", "--perf-model", str(DATA / "tiny_perf.csv"),
        "--npu_num", "1", "--npu_mem", "1", "--quiet"]
LONG = [*TINY, "--dataset", str(REPO / "dataset" / "sharegpt_like_1000.tsv"), "--req_num", "1000", "--no-reuse"]


@pytest.fixture
def dataset(tmp_path) -> Path:
    path = tmp_path / "d.tsv"
    path.write_text("input_toks\toutput_toks\tarrival_time_ns\n" + "".join(f"{4 + i}\t{3 + i % 4}\t{i * 2000}\n"
                                                                          for i in range(12)))
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main_py, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def start(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """A process that runs (not a zombie waiting for its parent)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\tZ" not in next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return False


def engine_work_folder(pid: int, timeout_s: float = 60) -> Path:
    """The /dev/shm work folder of the engine that process `pid` started (from the engine's command line)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in children(pid):
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            configs = [a.decode() for a in argv if a.startswith(b"--system-configuration=")]
            if configs:
                return Path(configs[0].split("=", 1)[1]).parent
        time.sleep(0.05)
    raise AssertionError("the engine did not start")


def test_results_are_written_when_stdout_closes_early(tmp_path, dataset):
    out = tmp_path / "o.csv"
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), *TINY, "--dataset", str(dataset), "--output", str(out)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0 and stderr == b"" and b"TINY" in first
    assert len(list(csv.DictReader(out.open()))) == 12


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_engine_and_removes_the_work_folder(tmp_path, signum, status):
    proc = start([str(REPO / "main.py"), *LONG], tmp_path)
    folder = engine_work_folder(proc.pid)
    engines = children(proc.pid)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status and len(stderr.splitlines()) == 1 and stderr.startswith("error: ")
    assert not folder.exists() and not [pid for pid in engines if alive(pid)]


def test_an_interrupted_sweep_keeps_its_finished_rows(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base:\n  model_name: {DATA / 'tiny_model.json'}\n  hardware: TINY\n"
                    f"  perf_model: {DATA / 'tiny_perf.csv'}\n  npu_num: 1\n  npu_mem: 1\n  no_reuse: true\n"
                    f"  dataset: {REPO / 'dataset' / 'sharegpt_like_1000.tsv'}\ngrid:\n  req_num: [2, 3, 1000, 1000]\n")
    out = tmp_path / "sweep.csv"
    proc = start(["-m", "inference_serving", "sweep", str(grid), "--jobs", "2", "-o", str(out)], tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.05)
    workers = children(proc.pid)
    started = workers + [engine for worker in workers for engine in children(worker)]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    rows = list(csv.DictReader(out.open()))
    assert proc.returncode == 143 and len(stderr.splitlines()) == 1, stderr
    assert [r["req_num"] for r in rows[:2]] == ["2", "3"], rows
    assert all(r["requests_finished"] == r["req_num"] for r in rows), rows
    time.sleep(0.5)
    assert not [pid for pid in started if alive(pid)]


def test_previous_results_are_replaced_and_other_files_only_with_force(tmp_path, dataset):
    outputs = ["--output", str(tmp_path / "o.csv"), "--summary-json", str(tmp_path / "s.json"),
               "--chrome-trace", str(tmp_path / "t.json"), "--plot", str(tmp_path / "plots")]
    assert run(*TINY, "--dataset", str(dataset), *outputs)[0] == 0
    assert run(*TINY, "--dataset", str(dataset), *outputs)[0] == 0  # the same kind of file: replaced
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    code, _, stderr = run(*TINY, "--dataset", str(dataset), "--summary-json", str(mine))
    assert code == 2 and "--force" in stderr and mine.read_text() == "mine"
    assert run(*TINY, "--dataset", str(dataset), "--summary-json", str(mine), "--force")[0] == 0
    assert set(json.loads(mine.read_text())) == {"summary", "config"}


def test_a_kept_trace_passes_the_trace_checker(tmp_path, dataset):
    assert run(*TINY, "--dataset", str(dataset), "--npu_num", "2", "--keep-traces", str(tmp_path / "traces"))[0] == 0
    done = subprocess.run([sys.executable, str(REPO / "trace_test" / "check_trace.py"),
                           str(tmp_path / "traces" / "batch0.txt")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "OK"


def test_local_bw_acts_on_the_npu_model(tmp_path, dataset):
    summaries = {}
    for bandwidth in ("10", "936"):
        path = tmp_path / f"{bandwidth}.json"
        assert run("--model_name", "meta-llama/Llama-3.1-8B-Instruct", "--hardware", "NPU", "--npu_num", "1",
                   "--dataset", str(dataset), "--req_num", "2", "--local_bw", bandwidth, "--quiet",
                   "--summary-json", str(path))[0] == 0
        summaries[bandwidth] = json.loads(path.read_text())
    assert summaries["10"]["config"]["local_bw"] == 10
    assert summaries["10"]["summary"]["latency_mean_ms"] > 2 * summaries["936"]["summary"]["latency_mean_ms"]


def test_a_tiny_log_interval_logs_at_most_one_throughput_line_per_iteration(dataset):
    code, stdout, _ = run(*TINY, "--dataset", str(dataset), "--log_interval", "1e-9")
    iterations = int(next(line for line in stdout.splitlines() if line.startswith("iterations:")).split()[1])
    logged = [line for line in stdout.splitlines() if line.startswith("[") and "prompt throughput" in line]
    assert code == 0 and 0 < len(logged) <= iterations


@pytest.mark.parametrize("scheduler, words", [("orca", "the paper's policy"), ("vllm", "validated against")])
def test_the_header_says_what_the_schedulers_numbers_are_for(dataset, scheduler, words):
    code, stdout, _ = run(*TINY, "--dataset", str(dataset), "--scheduler", scheduler)
    assert code == 0 and words in stdout.splitlines()[0]


def test_a_relative_engine_path_is_found_from_the_current_folder(tmp_path, dataset, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(DEFAULT_ENGINE, tmp_path)
    code, _, stderr = run(*TINY, "--dataset", str(dataset), "--astra-sim", relative, "--output", "o.csv")
    assert code == 0, stderr
    assert len((tmp_path / "o.csv").read_text().splitlines()) == 13
