"""The start-up cache: the measured GPU provider's answers on disk (perf/answer_cache.py)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from inference_serving.perf.answer_cache import AnswerCache

REPO = Path(__file__).resolve().parent.parent

ASK = """
import json, sys
import numpy as np
from inference_serving.inputs.hardware import load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.perf import aiconfigurator
from inference_serving.perf.aiconfigurator import AIConfiguratorProvider
engine_calls, loads = [], []
load_database = aiconfigurator.load_database
aiconfigurator.load_database = lambda system: loads.append(system) or load_database(system)
original = AIConfiguratorProvider._engine_ms
AIConfiguratorProvider._engine_ms = lambda self, *args: engine_calls.append(args) or original(self, *args)
perf = AIConfiguratorProvider(load_model("meta-llama/Llama-3.1-8B"), load_hardware("H100"), 16)
answers = [perf.latency_ns("q_proj", 77, 0, 2), perf.latency_ns("attn", 1, 3000, 1),
           perf.decode_attention_ns([10, 500, 2000], 1)]
perf.persist()
print(json.dumps({"answers": answers, "tables": bool(engine_calls), "database": bool(loads)}))
"""


def ask(cache_home: Path) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    done = subprocess.run([sys.executable, "-c", ASK], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_warm_start_answers_the_same_without_asking_the_tables(tmp_path):
    cold, warm = ask(tmp_path), ask(tmp_path)
    assert cold["tables"] and not warm["tables"]
    assert cold["database"] and not warm["database"]  # a warm start does not load the measurement database
    assert warm["answers"] == cold["answers"]


def test_a_cache_folder_that_cannot_be_written_only_costs_time(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert ask(blocked)["tables"]


def test_stale_or_broken_files_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = AnswerCache("unit", ("v1",))
    cache.put(("q",), 1.5)
    cache.save()
    assert AnswerCache("unit", ("v1",)).get(("q",)) == 1.5
    assert AnswerCache("unit", ("v2",)).get(("q",)) is None   # another key: another file
    with open(cache.path, "wb") as handle:                     # same file, another stored key
        pickle.dump({"key": ("other",), "answers": {("q",): 9.0}}, handle)
    assert AnswerCache("unit", ("v1",)).get(("q",)) is None
    cache.path.write_bytes(b"\x80garbage")
    assert AnswerCache("unit", ("v1",)).get(("q",)) is None


def test_runs_saving_one_after_another_keep_each_others_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first, second = AnswerCache("unit", ("v",)), AnswerCache("unit", ("v",))
    first.put(("a",), 1.0)
    second.put(("b",), 2.0)
    first.save()
    second.save()
    merged = AnswerCache("unit", ("v",))
    assert (merged.get(("a",)), merged.get(("b",))) == (1.0, 2.0)
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no temporary left


def test_an_answer_is_computed_once_and_then_read_from_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    computed = []
    assert AnswerCache("unit", ("v",)).answer(("q",), lambda: computed.append(1) or 2.5) == 2.5
    assert AnswerCache("unit", ("v",)).answer(("q",), lambda: computed.append(1) or 9.0) == 2.5  # a later run
    assert computed == [1]


def test_cold_and_warm_runs_write_identical_csvs(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    outputs = []
    for name in ("cold.csv", "warm.csv"):
        done = subprocess.run([sys.executable, "-X", "importtime", "main.py", "--quiet", "--scheduler", "vllm",
                               "--hardware", "H100", "--model_name", "meta-llama/Llama-3.1-8B", "--npu_num", "1",
                               "--req_num", "20", "--output", str(tmp_path / name)],
                              cwd=REPO, env=env, check=True, capture_output=True, text=True)
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    # the warm start needs neither the hardware file's checks nor the measurement tables' SDK, nor PyYAML
    # (files and the network read and written before), numpy (the summary) or the SDK's logging
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not imported & {"pydantic", "aiconfigurator_core", "yaml", "numpy", "logging"}
