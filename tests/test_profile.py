"""The PyTorch profiler (python -m inference_serving.profile): CSV rows the CSV provider reads.

PyTorch is optional; without it these tests skip.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from inference_serving.config.run_config import RunConfig
from inference_serving.simulate import simulate  # noqa: E402
from inference_serving.inputs.model import load_model  # noqa: E402
from inference_serving.perf.csv_provider import CSV_COLUMNS, CsvProvider  # noqa: E402
from inference_serving.perf.profiler import Profiler, write_rows  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TINY = str(DATA / "tiny_model.json")
SMALL_GRID = ["--tokens", "1,8", "--attn-tokens", "1,8", "--kv", "0,16", "--warmup", "0", "--repeat", "1"]


def read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_shards_and_whole_layer_scaling(monkeypatch):
    profiler = Profiler(load_model(TINY), "cpu", tp=2, dtype="float32", warmup=0, repeat=1)
    # this rank's shapes: k/v keep one of the 2 KV heads, o/down split their input, gate/up/lm_head their output
    assert [profiler.linear_shape(n) for n in ("q_proj", "k_proj", "o_proj", "up_proj", "down_proj", "lm_head")] == \
        [(64, 32), (64, 16), (32, 64), (64, 64), (64, 64), (64, 50)]
    monkeypatch.setattr(Profiler, "time_ns", lambda self, fn: (fn(), 1000.0)[1])
    rows = {(layer, t, kv): ns for layer, t, kv, ns in profiler.rows([1, 4], [1, 3], [0, 5])}
    assert rows[("q_proj", 4, 0)] == rows[("act_fn", 1, 0)] == rows[("lm_head", 1, 0)] == 2000  # x tp
    assert rows[("input_layernorm", 4, 0)] == rows[("embedding", 1, 0)] == 1000
    assert rows[("attn", 3, 5)] == rows[("rope", 1, 0)] == 1000  # whole heads of one request
    assert {layer for layer, _, _ in rows} == {"embedding", "input_layernorm", "q_proj", "k_proj", "v_proj", "o_proj",
                                               "post_layernorm", "gate_proj", "up_proj", "act_fn", "down_proj",
                                               "final_layernorm", "lm_head", "rope", "attn"}
    assert len(rows) == 13 * 2 + 2 * 2 * 2


def test_opt_style_layers(tmp_path, monkeypatch):
    opt = tmp_path / "tiny_opt.json"
    opt.write_text('{"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 1, '
                   '"num_attention_heads": 2, "vocab_size": 50, "max_position_embeddings": 64}')
    profiler = Profiler(load_model(str(opt)), "cpu", tp=1, dtype="float32", warmup=0, repeat=1)
    rows = profiler.rows([2], [2], [0])
    layers = [r[0] for r in rows]
    assert "fc1" in layers and "fc2" in layers and "gate_proj" not in layers
    assert next(r[3] for r in rows if r[0] == "rope") == 0  # learned positions: no rotary embedding
    assert all(r[3] > 0 for r in rows if r[0] != "rope")


def test_write_rows_keeps_other_pairs(tmp_path):
    path = tmp_path / "p.csv"
    write_rows(path, "A", "m1", [("q_proj", 1, 0, 10.4)])
    write_rows(path, "B", "m1", [("q_proj", 1, 0, 20)])
    write_rows(path, "A", "m1", [("q_proj", 2, 0, 30)])
    assert [(r["hardware"], r["input"], r["latency(ns)"]) for r in read(path)] == [("B", "1", "20"), ("A", "2", "30")]
    bad = tmp_path / "bad.csv"
    bad.write_text("request id,model\n")
    with pytest.raises(Exception, match="not a profile CSV"):
        write_rows(bad, "A", "m1", [])


def test_profile_tiny_model_on_cpu_then_simulate(tmp_path):
    out = tmp_path / "cpu.csv"
    done = subprocess.run([sys.executable, "-m", "inference_serving", "profile", "--model", TINY, "--device", "cpu",
                           "--tp", "2", "--hardware", "TINYCPU", "--output", str(out), *SMALL_GRID],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read(out)
    assert tuple(rows[0]) == CSV_COLUMNS and {r["model"] for r in rows} == {"tiny_model"}
    assert len(rows) == 13 * 2 + 2 * 2 * 2
    perf = CsvProvider(str(out), "TINYCPU", "tiny_model")
    assert perf.latency_ns("attn", 4, 8) > 0 and perf.latency_ns("q_proj", 3, tp=2) > 0
    dataset = tmp_path / "requests.tsv"
    dataset.write_text("input_toks\toutput_toks\tarrival_time_ns\n6\t3\t0\n4\t2\t1000\n")
    lines: list[str] = []
    metrics = simulate(RunConfig(model_name=TINY, hardware="TINYCPU", npu_num=2, max_batch=0, npu_group=1, npu_mem=1.0,
                                  local_bw=None, remote_bw=1e6, link_bw=None, link_latency=None, fp="16", block_size=4,
                                  dataset=str(dataset), output=tmp_path / "run.csv", gen=False, req_num=10,
                                  log_interval=0.5, verbose=False, perf_model=str(out)), log=lines.append)
    assert len(metrics.finished) == 2
    assert all(int(r["TTFT"]) > 0 for r in read(tmp_path / "run.csv"))


def test_bad_flags(tmp_path):
    done = subprocess.run([sys.executable, "-m", "inference_serving", "profile", "--model", "nobody/none", "--device",
                           "cpu"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "nobody/none" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "inference_serving", "profile", "--model", TINY, "--device", "cpu",
                           "--tokens", "0,4"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--tokens" in done.stderr
