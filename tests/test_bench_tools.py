"""The bench scripts run against the code as it is: a recorded engine session replays to the same replies."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TINY_RUN = ["--model_name", str(DATA / "tiny_model.json"), "--hardware", "TINY", "--perf-model",
            str(DATA / "tiny_perf.csv"), "--npu_num", "2", "--npu_mem", "1", "--req_num", "4",
            "--dataset", "dataset/example_10.tsv", "--quiet"]


def test_engine_replay_records_a_run_and_replays_it_to_the_same_replies(tmp_path):
    bench = [sys.executable, "bench/engine_replay.py"]
    recorded = subprocess.run([*bench, "record", str(tmp_path), "--", *TINY_RUN], cwd=REPO, capture_output=True,
                              text=True, timeout=300)
    assert recorded.returncode == 0, recorded.stderr
    sessions = json.loads((tmp_path / "sessions.json").read_text())["sessions"]
    assert len(sessions) == 1 and (tmp_path / sessions[0]["stdin"]).stat().st_size > 0
    replayed = subprocess.run([*bench, "replay", str(tmp_path), "--repeat", "1"], cwd=REPO, capture_output=True,
                              text=True, timeout=300)
    assert replayed.returncode == 0, replayed.stderr
    assert "1 session(s)" in replayed.stdout and "replies identical to the first binary" in replayed.stdout


def test_engine_replay_of_an_empty_recording_is_one_line(tmp_path):
    (tmp_path / "sessions.json").write_text(json.dumps({"main_args": [], "sessions": []}))
    replayed = subprocess.run([sys.executable, "bench/engine_replay.py", "replay", str(tmp_path)], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    assert replayed.returncode == 1 and "no engine session was recorded" in replayed.stderr
    assert "Traceback" not in replayed.stderr


def test_step_bench_times_both_policies_at_each_batch_size():
    done = subprocess.run([sys.executable, "bench/step_bench.py", "--requests", "3,5", "--steps", "4", "--repeat", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["vllm", "3"], ["orca", "3"], ["vllm", "5"], ["orca", "5"]]
    assert all("us/step" in line and "ns per request" in line for line in lines)
