"""Multi-turn sessions: the JSONL format, turns released a think time after their predecessor ends, prefix
hits on the shared context, and the generator (README "Multi-turn sessions")."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inference_serving.config.run_config import RunConfig
from inference_serving.errors import InputError
from inference_serving.inputs.session_generator import generate_sessions
from inference_serving.inputs.workload import load_dataset
from inference_serving.serving.kv.layout import MemoryLayout
from inference_serving.serving.kv.prefix_cache import PrefixCacheKV
from inference_serving.serving.kv.sizing import VllmMemory
from inference_serving.serving.vllm import VllmPolicy
from inference_serving.simulate import simulate

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TURNS = [  # session 0: 5 + 3 tokens, then 2 more in and 1 out; session 1 without ids
    {"session_id": 0, "turn": 0, "input_toks": 5, "output_toks": 3, "arrival_time_ns": 100,
     "token_ids": [1, 2, 3, 4, 5], "output_token_ids": [6, 7, 8]},
    {"session_id": 1, "turn": 0, "input_toks": 2, "output_toks": 2, "arrival_time_ns": 50},
    {"session_id": 0, "turn": 1, "input_toks": 2, "output_toks": 1, "think_time_ns": 1000,
     "token_ids": [9, 10], "output_token_ids": [11]},
    {"session_id": 1, "turn": 1, "input_toks": 4, "output_toks": 2, "think_time_ns": 7},
]
LENGTHS = {"input_mean": 161.31, "output_mean": 337.99, "input_sigma": 1.0, "output_sigma": 1.0}


def write_turns(path: Path, turns: list[dict]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in turns))
    return path


def test_a_turn_carries_the_whole_conversation(tmp_path):
    by_id = {r.id: r for r in load_dataset(write_turns(tmp_path / "s.jsonl", TURNS))}
    second = by_id[2]
    assert (second.input_tokens, second.output_tokens) == (5 + 3 + 2, 1)
    assert second.token_ids == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10) and second.output_token_ids == (11,)
    assert (second.session, second.after, second.think_ns, second.arrival_ns) == (0, 0, 1000, 100)
    assert (by_id[3].input_tokens, by_id[3].token_ids, by_id[3].after) == (2 + 2 + 4, None, 1)
    assert by_id[0].after is None and by_id[0].session == 0


@pytest.mark.parametrize("index, change, message", [
    (2, {"turn": 2}, "expected turn 1"),
    (0, {"think_time_ns": 5}, "'think_time_ns' does not belong on the first turn"),
    (2, {"arrival_time_ns": 5}, "'arrival_time_ns' does not belong on a later turn"),
    (2, {"token_ids": None, "output_token_ids": None}, "together, on every turn"),
    (2, {"output_token_ids": [1, 2]}, "'output_token_ids' must be a list of 1"),
    (3, {"session_id": None}, "'session_id' must be a whole number"),
])
def test_bad_turns_are_refused_with_their_line(tmp_path, index, change, message):
    turns = [dict(t) for t in TURNS]
    turns[index].update(change)
    turns[index] = {k: v for k, v in turns[index].items() if v is not None or k == "session_id"}
    with pytest.raises(InputError, match=message) as error:
        load_dataset(write_turns(tmp_path / "s.jsonl", turns))
    assert f"line {index + 1}" in str(error.value)


def test_next_turn_arrives_think_time_after_the_previous_ends_and_hits_its_blocks(tmp_path):
    """Each step ends 1 ns after it starts. Session 0's first turn arrives at 100: prefill at 100 (its
    first token at 101), decodes at 101 and 102, ends at 103; its second turn arrives 1000 ns later, at
    1103, and finds the first turn's 8 tokens (5 prompt + 3 output ids) in 2 cached blocks of 4."""
    requests = [r for r in load_dataset(write_turns(tmp_path / "s.jsonl", TURNS)) if r.session == 0]
    layout = MemoryLayout(weight_bytes=0, block_bytes=1, capacity_bytes=100, block_size=4)
    policy = VllmPolicy(requests, PrefixCacheKV(layout, 100), 16, 64, VllmMemory(100, 0, 0, 0, 1))
    arrivals = []
    policy.feed.arrivals.listeners.append(arrivals.append)
    for now in (100, 101, 102):
        policy.complete(policy.schedule(now), now + 1)
    first, second = policy.feed.arrivals.by_id[0], policy.feed.arrivals.by_id[2]
    assert first.end_ns == 103 and second.request.arrival_ns == 1103 and arrivals == [1103]
    assert policy.schedule(103) is None and policy.next_arrival() == 1103
    batch = policy.schedule(1103)
    assert [(e.request_id, e.new_tokens, e.cached_tokens) for e in batch.entries] == [(2, 2, 8)]
    assert (policy.kv.prefix_hit_tokens, policy.kv.prefix_query_tokens) == (8, 5 + 10)


def test_a_run_releases_each_turn_at_its_predecessors_end_plus_think_time(tmp_path):
    dataset = write_turns(tmp_path / "s.jsonl", TURNS)
    run = RunConfig(model_name=str(DATA / "tiny_model.json"), hardware="TINY", npu_num=1, npu_mem=1.0,
                    perf_model=str(DATA / "tiny_perf.csv"), scheduler="vllm", dataset=str(dataset), req_num=4,
                    output=tmp_path / "out.csv", quiet=True)
    metrics = simulate(run, log=lambda line: None)
    end = {s.id: s.end_ns for s in metrics.finished}
    arrival = {s.id: s.request.arrival_ns for s in metrics.finished}
    assert arrival[2] == end[0] + 1000 and arrival[3] == end[1] + 7
    assert arrival[0] == 100 and arrival[1] == 50
    rows = (tmp_path / "out.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[4]) for r in rows] == [arrival[i] for i in range(4)]
    assert all(sample.waiting >= 0 for sample in metrics.samples)


def test_generator_builds_sessions_within_the_context():
    rows = generate_sessions(8, 5, 2.0, 3.0, 0, LENGTHS, max_tokens=4096)
    assert rows == generate_sessions(8, 5, 2.0, 3.0, 0, LENGTHS, max_tokens=4096)
    assert generate_sessions(3, 5, 2.0, 3.0, 0, LENGTHS, 4096) == [r for r in rows if r["session_id"] < 3]
    for session in range(8):
        turns = [r for r in rows if r["session_id"] == session]
        assert [t["turn"] for t in turns] == list(range(len(turns)))
        assert sum(t["input_toks"] + t["output_toks"] for t in turns) <= 4096
        assert "arrival_time_ns" in turns[0] and all(t["think_time_ns"] >= 0 for t in turns[1:])
        assert all(len(t["token_ids"]) == t["input_toks"] for t in turns)
    plain = generate_sessions(8, 5, 2.0, 3.0, 0, LENGTHS, 4096, token_ids=False)
    assert [{k: v for k, v in r.items() if "token_ids" not in k} for r in rows] == plain


def test_workload_command_writes_sessions_and_checks_its_options(tmp_path):
    out = tmp_path / "sessions.jsonl"
    command = [sys.executable, "-m", "inference_serving", "workload", "--num", "3", "--rate", "1", "--output", str(out)]
    done = subprocess.run([*command, "--turns", "2", "--think", "0.5"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and "turns of 3 sessions" in done.stdout
    assert {r.session for r in load_dataset(out)} == {0, 1, 2}
    for extra, message in ((["--think", "1"], "give --turns"), (["--turns", "2"], "give --think")):
        done = subprocess.run([*command, "--force", *extra], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr
