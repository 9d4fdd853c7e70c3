"""The bad-input corpus (tests/bad_inputs/cases.yaml): every bad input to every command ends with the exit
status of README "Errors and exit codes", exactly one stderr line `error: ...` that names the input, and
no file written, replaced or changed.

Cases of main.py and the `llmservingsim` subcommands run in-process (click's CliRunner, exceptions not
caught: a traceback fails the case); `python main.py`, `python -m inference_serving`, trace_test and the
engine binary run as subprocesses. Each case gets a fresh workspace as its current directory; the
workspace and the repository's output/ and perf_model/ folders are compared before and after.
"""
from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from inference_serving.cli import llmservingsim, main_py
from inference_serving.paths import DEFAULT_ENGINE

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
CORPUS = yaml.safe_load((REPO / "tests" / "bad_inputs" / "cases.yaml").read_text())
CASE_TIMEOUT_S = 60

MEASURED_ROWS = [(4, 3, 100.000, 50.000, 50.010, 50.030), (6, 2, 100.001, 50.001, 50.021, 50.031)]
WORKSPACE = {
    "data.tsv": "input_toks\toutput_toks\tarrival_time_ns\n4\t3\t0\n2\t2\t0\n3\t1\t5000\n",
    "hw.yaml": "name: TINY\nprovider: csv\ncsv: tiny_perf.csv\nmemory_gib: 1\nmemory_bw_gbps: 200\nlink_bw_gbps: 300\n",
    "tiny.yaml": "model_name: tiny_model.json\nhardware: TINY\nperf_model: tiny_perf.csv\nnpu_mem: 1\n",
    "foreign.txt": "a file of the user's: never to be replaced\n",
    "out/result.csv": "request id,model,input,output,arrival,end_time,latency,queuing_delay,TTFT,TPOT\n",
    "good/vllm/meta.json": json.dumps({"model": "tiny_model.json", "engine_kwargs": {"tensor_parallel_size": 1}}),
    "good/vllm/requests.jsonl": "".join(json.dumps(dict(zip(("input_toks", "output_toks", "arrival_time", "queued_ts",
                                                              "first_token_ts", "last_token_ts"), row))) + "\n"
                                        for row in MEASURED_ROWS),
    "eng/network.yml": "topology: [FullyConnected]\nnpus_count: [1]\nbandwidth: [256.0]\nlatency: [0.0]\n",
    "eng/system.json": json.dumps({"scheduling-policy": "LIFO", "local-mem-bw": 1600,
                                   "all-reduce-implementation": ["ring"], "all-gather-implementation": ["ring"],
                                   "reduce-scatter-implementation": ["ring"], "all-to-all-implementation": ["ring"]}),
    "eng/remote_memory.json": json.dumps({"memory-type": "PER_NPU_MEMORY_EXPANSION", "remote-mem-bw": 512}),
}


def expand(corpus: dict) -> list[dict]:
    """The cases of the table: its families (every flag with every value) and its single cases."""
    cases = []
    for family in corpus["families"]:
        for flag, value in itertools.product(family["flags"], family["values"]):
            cmd = "sim" if family["base"] != "run" else "run"
            cases.append({"id": f"{flag.lstrip('-')}={value or 'empty'}", "cmd": cmd, "base": family["base"],
                          "args": [flag, value], "names": [flag]})
    cases += corpus["cases"]
    return cases


CASES = expand(CORPUS)


def write_files(root: Path, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def snapshot(*roots: Path) -> dict:
    """Every file under the roots with its size, mtime and content hash; every folder by name."""
    state = {}
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file():
                stat = path.stat()
                state[str(path)] = (stat.st_size, stat.st_mtime_ns, hashlib.sha1(path.read_bytes()).hexdigest())
            else:
                state[str(path)] = "link" if path.is_symlink() else "folder"
    return state


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(DATA / "tiny_model.json", root / "tiny_model.json")
    shutil.copy(DATA / "tiny_perf.csv", root / "tiny_perf.csv")
    write_files(root, WORKSPACE)
    monkeypatch.chdir(root)
    return root


class Hung(Exception):
    pass


def _alarm(signum, frame):
    raise Hung(f"no answer within {CASE_TIMEOUT_S} s")


def in_process(group, args: list[str]) -> tuple[int, str]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        result = CliRunner().invoke(group, args, catch_exceptions=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return result.exit_code, result.stderr


def subprocess_run(argv: list[str], cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=CASE_TIMEOUT_S, env=env,
                          stdin=subprocess.DEVNULL)
    return done.returncode, done.stderr


def arguments(case: dict) -> list[str]:
    return [*CORPUS["bases"].get(case.get("base"), []), *case.get("args", [])]


def run_case(case: dict, cwd: Path) -> tuple[int, str]:
    args = arguments(case)
    cmd = case.get("cmd", "run")
    if cmd == "run":
        return in_process(main_py, args)
    if cmd == "sim":
        return in_process(llmservingsim, args)
    argv = {"main.py": [sys.executable, str(REPO / "main.py")],
            "module": [sys.executable, "-m", "inference_serving"],
            "trace": [sys.executable, str(REPO / "trace_test" / "check_trace.py")],
            "engine": [str(DEFAULT_ENGINE)]}[cmd]
    return subprocess_run([*argv, *args], cwd)


def test_the_corpus_is_large_and_its_ids_unique():
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 150 and len(set(ids)) == len(ids)
    commands = {case.get("cmd", "run") for case in CASES} | {arguments(case)[0] for case in CASES
                                                             if case.get("cmd") in ("sim", "module")}
    assert {"run", "validate", "sweep", "search", "workload", "profile", "onnx", "trace", "engine"} <= commands


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input(case, workspace):
    if case.get("unless_importable") and importlib.util.find_spec(case["unless_importable"]):
        pytest.skip(f"{case['unless_importable']} is installed")
    write_files(workspace, case.get("files", {}))
    for name, target in case.get("links", {}).items():
        (workspace / name).symlink_to(target)
    watched = (workspace, REPO / "output", REPO / "perf_model")
    before = snapshot(*watched)
    code, stderr = run_case(case, workspace)
    lines = stderr.splitlines()
    assert code == case.get("exit", 2), stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for name in case["names"]:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    assert snapshot(*watched) == before, "a file was written or changed"
