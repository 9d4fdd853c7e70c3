"""End-to-end serving runs on the real engine with a tiny model and a linear CSV performance model.

tests/data/tiny_model.json: 2 layers, hidden 64, 4 heads, 2 KV heads of 16, MLP 128, vocab 100.
tests/data/tiny_perf.csv (profiled at 1 and 1024 tokens, so interpolation is exact):
  every non-attention layer  100 + 10*t ns  (t = tokens of the batch; requests for lm_head)
  rope                       50 ns
  attn                       200 + kv + 5*t ns (t = new tokens of the request, kv = cached)
Under tensor parallelism q/k/v/o, gate/up/down and lm_head take 1/tp of that, attention runs
whole on one rank (rank = position in the batch mod tp), act_fn takes 1/tp too, norms and the
embedding are not split.
Per layer that is: before the o_proj all-reduce  ln + q + k + v + (rope + attn per request) + o,
after it  post_ln + gate + up + act_fn + down.
With --remote_bw 1e6 GB/s the token-id loads and stores take 0 ns.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference_serving.backend.process import DEFAULT_SPIN_US, default_spin_us, usable_cores
from inference_serving.config.run_config import RunConfig
from inference_serving.simulate import simulate

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
FAST_HOST = 1e6


def write_dataset(path: Path, rows: list[tuple[int, int, int]]) -> Path:
    path.write_text("input_toks\toutput_toks\tarrival_time_ns\n" + "".join(f"{i}\t{o}\t{a}\n" for i, o, a in rows))
    return path


def run(tmp_path: Path, rows, **overrides) -> tuple[list[dict], list[str]]:
    flags = dict(model_name=str(DATA / "tiny_model.json"), hardware="TINY", npu_num=1, max_batch=0, npu_group=1,
                 npu_mem=1.0, local_bw=200.0, remote_bw=FAST_HOST, link_bw=300.0, link_latency=0.0, fp="16",
                 block_size=4, dataset=str(write_dataset(tmp_path / "requests.tsv", rows)),
                 output=tmp_path / "out.csv", gen=False, req_num=1000, log_interval=0.5, verbose=True,
                 perf_model=str(DATA / "tiny_perf.csv"))
    flags.update(overrides)
    lines: list[str] = []
    simulate(RunConfig(**flags), log=lines.append)
    with open(flags["output"]) as handle:
        return list(csv.DictReader(handle)), lines


def layer(t: int, attention: list[tuple[int, int]], tp: int = 1) -> tuple[int, int]:
    """(before the o_proj all-reduce, after it) for one layer on a rank running `attention`."""
    base, shard = 100 + 10 * t, (100 + 10 * t) // tp
    attn = sum(50 + 200 + kv + 5 * new for new, kv in attention)
    return base + 3 * shard + attn + shard, base + 4 * shard


def ring_all_reduce(size: int, n: int, link_bw: float = 300.0, local_bw: float = 200.0, delay: int = 10) -> int:
    """Reference §3.5.5: 2(N-1)T(S/N) + (2N-1)d + (N-1)P(S/N), T(m) = m/bw, P(m) = 3 m/LMBW (floored)."""
    piece = size // n
    return 2 * (n - 1) * int(piece / link_bw) + (2 * n - 1) * delay + (n - 1) * 3 * int(piece / local_bw)


def by_id(rows: list[dict]) -> dict[int, dict]:
    return {int(r["request id"]): {k: (v if k == "model" else int(v)) for k, v in r.items()} for r in rows}


def test_three_requests_exact_times(tmp_path):
    rows, _ = run(tmp_path, [(4, 3, 0), (2, 2, 0), (3, 1, 5000)])
    # iteration 0: r0, r1 prefill, T=6, B=2
    a, b = layer(6, [(4, 0), (2, 0)])
    d0 = 160 + 2 * (a + b) + 160 + 120
    # iteration 1: r0, r1 decode (kv 4 and 2), T=2
    a, b = layer(2, [(1, 4), (1, 2)])
    d1 = 120 + 2 * (a + b) + 120 + 120
    # iteration 2 at d0+d1 (r2 arrived at 5000): r0 decode (kv 5), r2 prefill 3
    a, b = layer(4, [(1, 5), (3, 0)])
    d2 = 140 + 2 * (a + b) + 140 + 120
    assert (d0, d1, d2) == (4700, 3792, 4250)
    r = by_id(rows)
    assert r[0]["TTFT"] == d0 and r[0]["end_time"] == d0 + d1 + d2 and r[0]["TPOT"] == (d1 + d2) // 2
    assert r[1]["TTFT"] == d0 and r[1]["end_time"] == d0 + d1 and r[1]["TPOT"] == d1
    assert r[2]["arrival"] == 5000 and r[2]["queuing_delay"] == d0 + d1 - 5000
    assert r[2]["TTFT"] == d0 + d1 + d2 - 5000 and r[2]["TPOT"] == 0
    assert r[2]["latency"] == r[2]["end_time"] - 5000


def test_csv_columns(tmp_path):
    _, _ = run(tmp_path, [(4, 2, 0)])
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "request id,model,input,output,arrival,end_time,latency,queuing_delay,TTFT,TPOT"


def test_tensor_parallel_4(tmp_path):
    rows, _ = run(tmp_path, [(4, 2, 0)] * 4, npu_num=4)
    a, b = layer(16, [(4, 0)], tp=4)
    ar = ring_all_reduce(16 * 64 * 2, 4)
    prefill = 260 + 2 * (a + b) + 260 + (100 + 10 * 4) // 4 + 4 * ar
    a, b = layer(4, [(1, 4)], tp=4)
    decode = 140 + 2 * (a + b) + 140 + (100 + 10 * 4) // 4 + 4 * ring_all_reduce(4 * 64 * 2, 4)
    assert (ar, prefill, decode) == (94, 3551, 2233)
    for r in by_id(rows).values():
        assert (r["TTFT"], r["end_time"]) == (prefill, prefill + decode)


def test_pipeline_parallel_2_overlaps_batches(tmp_path):
    """r1 arrives while batch 0 is in stage 1; it enters stage 0 as soon as stage 0 is free."""
    rows, _ = run(tmp_path, [(4, 2, 0), (4, 2, 1000)], npu_num=2, npu_group=2)
    a, b = layer(4, [(4, 0)])
    stage0_prefill, stage1_prefill = 140 + a + b, a + b + 140 + 110
    send_prefill = int(4 * 64 * 2 / 300.0)
    a, b = layer(1, [(1, 4)])
    stage0_decode, stage1_decode = 110 + a + b, a + b + 110 + 110
    b0_stage0 = stage0_prefill + send_prefill                    # batch 0 (r0 prefill) leaves stage 0
    b0_end = b0_stage0 + stage1_prefill
    b1_stage0 = b0_stage0 + stage0_prefill + send_prefill        # batch 1 (r1 prefill) enters at b0_stage0
    b1_end = max(b1_stage0, b0_end) + stage1_prefill
    b2_stage0 = b0_end + stage0_decode                           # batch 2 (r0 decode) enters when batch 0 ends
    b2_end = max(b2_stage0, b1_end) + stage1_decode
    b3_stage0 = max(b1_end, b2_stage0) + stage0_decode           # batch 3 (r1 decode)
    b3_end = max(b3_stage0, b2_end) + stage1_decode
    assert (b0_end, b1_end, b2_end, b3_end) == (3731, 5651, 7230, 8809)
    r = by_id(rows)
    assert (r[0]["TTFT"], r[0]["end_time"]) == (b0_end, b2_end)
    assert (r[1]["TTFT"], r[1]["end_time"]) == (b1_end - 1000, b3_end)


def test_hybrid_tp4_pp2(tmp_path):
    rows, _ = run(tmp_path, [(4, 2, 0)] * 4, npu_num=8, npu_group=2)
    a, b = layer(16, [(4, 0)], tp=4)
    ar16 = ring_all_reduce(16 * 64 * 2, 4)
    send16 = int(16 * 64 * 2 // 4 / 300.0)
    prefill = (260 + a + ar16 + b + ar16 + send16) + (a + ar16 + b + ar16 + 260 + 35)
    a, b = layer(4, [(1, 4)], tp=4)
    ar4 = ring_all_reduce(4 * 64 * 2, 4)
    decode = (140 + a + ar4 + b + ar4 + int(4 * 64 * 2 // 4 / 300.0)) + (a + ar4 + b + ar4 + 140 + 35)
    assert (prefill, decode) == (3552, 2233)
    for r in by_id(rows).values():
        assert (r["TTFT"], r["end_time"]) == (prefill, prefill + decode)


def tiny_weight_bytes() -> int:
    per_layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128 + 2 * 64
    return 2 * (100 * 64 + 2 * per_layer + 64 + 100 * 64)


def test_eviction_and_reload_with_small_memory(tmp_path):
    """Room for 4 blocks of 4 tokens: r0 (6+6 tokens) and r1 (4+5) cannot both grow; r1, the most
    recently admitted, is evicted to host memory and reloaded after r0 finishes."""
    block_bytes = 4 * 2 * 2 * 2 * 16 * 2  # tokens * K,V * layers * kv heads * head_dim * bytes
    npu_mem = (tiny_weight_bytes() + 4 * block_bytes) / 2**30
    rows, lines = run(tmp_path, [(6, 6, 0), (4, 5, 0)], npu_mem=npu_mem, remote_bw=1.0)
    r = by_id(rows)
    assert sorted(r) == [0, 1]
    assert any("evict requests [1]" in line and f"{2 * block_bytes} B per NPU" in line for line in lines)
    assert any("reload requests [1]" in line for line in lines)
    assert r[1]["end_time"] > r[0]["end_time"]
    assert any("4/4 blocks in use" in line for line in lines)


def test_eviction_costs_the_store_time(tmp_path):
    """The iteration that evicts r1 (2 blocks = 2048 B at 1 GB/s) is 2048 ns longer than the same
    iteration without the store; token-id transfers cost 4 B per token / per request at 1 GB/s."""
    block_bytes = 4 * 2 * 2 * 2 * 16 * 2
    npu_mem = (tiny_weight_bytes() + 4 * block_bytes) / 2**30
    _, lines = run(tmp_path, [(6, 6, 0), (4, 5, 0)], npu_mem=npu_mem, remote_bw=1.0)
    durations = [int(line.split(" done in ")[1].split(" ns")[0]) for line in lines if " done in " in line]
    a, b = layer(1, [(1, 8)])
    decode_alone = 4 + 110 + 2 * (a + b) + 110 + 110 + 4
    evicting = lines.index(next(line for line in lines if "evict requests" in line))
    index = sum(1 for line in lines[:evicting] if " done in " in line)
    assert durations[index] == 2 * block_bytes + decode_alone


@pytest.mark.parametrize("npu_num, npu_group", [(1, 1), (4, 1), (4, 2)])
def test_reuse_on_and_off_identical(tmp_path, npu_num, npu_group):
    """Two identical requests arriving apart repeat each other's iterations: reused on a single stage."""
    rows = [(5, 4, 0), (3, 6, 100), (7, 3, 200), (4, 4, 30000), (4, 4, 90000)]
    first, lines = run(tmp_path, rows, npu_num=npu_num, npu_group=npu_group)
    second, _ = run(tmp_path, rows, npu_num=npu_num, npu_group=npu_group, no_reuse=True, output=tmp_path / "b.csv")
    assert first == second
    reused = int(lines[-1].split("iterations ")[1].split("/")[0])
    assert (reused > 0) == (npu_group == 1)


def test_byte_identical_across_runs(tmp_path):
    cmd = [sys.executable, "main.py", "--model_name", str(DATA / "tiny_model.json"), "--hardware", "TINY",
           "--perf-model", str(DATA / "tiny_perf.csv"), "--npu_num", "2", "--npu_mem", "1",
           "--dataset", "dataset/example_10.tsv"]
    outputs = []
    for name in ("a.csv", "b.csv"):
        done = subprocess.run(cmd + ["--output", str(tmp_path / name)], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append((done.stdout, (tmp_path / name).read_bytes()))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("args, words", [
    (["--npu_num", "3", "--npu_group", "2"], ["--npu_num 3", "--npu_group 2"]),
    (["--npu_mem", "0.0001"], ["--npu_mem", "GiB"]),
    (["--hardware", "NOPE"], ["NOPE"]),
    (["--model_name", "nobody/none"], ["nobody/none"]),
    (["--dataset", "missing.tsv"], ["missing.tsv"]),
])
def test_bad_input_one_line_exit_2(args, words):
    cmd = [sys.executable, "main.py", "--npu_num", "1", "--req_num", "2", "--dataset", "dataset/example_10.tsv", *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


def test_compat_protocol_driver_matches_step_protocol_up_to_idle_ticks(tmp_path):
    """Another binary path is driven with ASTRA-sim's interactive protocol: same batches, each
    started at the engine's next timestamp (here the 100 ns idle tick) instead of at once."""
    from inference_serving.paths import DEFAULT_ENGINE
    copy = tmp_path / "other-astra"
    copy.write_bytes(DEFAULT_ENGINE.read_bytes())
    copy.chmod(0o755)
    shape = [(4, 3, 0), (2, 2, 0), (3, 1, 5000)]
    step_rows, _ = run(tmp_path, shape)
    compat_rows, _ = run(tmp_path, shape, astra_sim=copy, output=tmp_path / "compat.csv")
    step, compat = by_id(step_rows), by_id(compat_rows)
    for rid in step:
        lag = compat[rid]["end_time"] - step[rid]["end_time"]
        assert 0 < lag <= 3 * 200, (rid, lag)


@pytest.mark.parametrize("npu_num, npu_group", [(1, 1), (4, 1), (4, 2)])
def test_kept_traces_pass_the_trace_checker(tmp_path, npu_num, npu_group):
    kept = tmp_path / "traces"
    run(tmp_path, [(5, 3, 0), (3, 4, 100), (6, 2, 200)], npu_num=npu_num, npu_group=npu_group, keep_traces=kept)
    traces = sorted(kept.glob("batch*.txt"))
    assert traces and sorted(kept.glob("batch0.*.et")) and (kept / "network.yml").is_file()
    done = subprocess.run([sys.executable, "trace_test/check_trace.py", *map(str, traces)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "OK", done.stdout


def test_trace_checker_finds_a_missing_allreduce(tmp_path):
    kept = tmp_path / "traces"
    run(tmp_path, [(5, 1, 0)], npu_num=2, keep_traces=kept)
    trace = kept / "batch0.txt"
    broken = tmp_path / "broken.txt"
    broken.write_text(trace.read_text().replace("ALLREDUCE", "NONE     ", 1))
    done = subprocess.run([sys.executable, "trace_test/check_trace.py", str(broken)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "o_proj needs an ALLREDUCE" in done.stdout


@pytest.mark.parametrize("script, words", [
    ("#!/bin/sh\nsleep 30\n", ["no answer within 1 s"]),
    ("#!/bin/sh\necho broken >&2\nexit 7\n", ["exited unexpectedly", "broken"]),
])
def test_engine_silence_or_early_exit_is_one_clear_line(tmp_path, script, words):
    engine = tmp_path / "fake-engine"
    engine.write_text(script)
    engine.chmod(0o755)
    cmd = [sys.executable, "main.py", "--model_name", str(DATA / "tiny_model.json"), "--hardware", "TINY",
           "--perf-model", str(DATA / "tiny_perf.csv"), "--npu_num", "1", "--npu_mem", "1", "--req_num", "2",
           "--dataset", "dataset/example_10.tsv", "--astra-sim", str(engine), "--engine-timeout", "1"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("cpus, spin_us", [(1, 0), (2, DEFAULT_SPIN_US)])
def test_a_run_polls_for_its_engine_only_with_a_second_core(cpus, spin_us):
    """Each side polls on a core of its own: a process that may use one core only sleeps at once."""
    if len(os.sched_getaffinity(0)) < cpus:
        pytest.skip(f"this machine lets the tests use fewer than {cpus} cores")
    code = (f"import os; os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{cpus}]); "
            "from inference_serving.backend.process import default_spin_us; print(default_spin_us())")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, str(spin_us))


@pytest.mark.parametrize("files, cores, spin_us", [
    ({"cpu.max": "150000 100000"}, 1.5, 0),            # cgroup v2: 1.5 cores' time in every 100 ms, less than two
    ({"cpu.max": "200000 100000"}, 2, DEFAULT_SPIN_US),
    ({"cpu.max": "max 100000"}, None, DEFAULT_SPIN_US),  # no quota: every core the process may run on
    ({"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"}, 0.5, 0),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None, DEFAULT_SPIN_US),
    ({}, None, DEFAULT_SPIN_US),                          # no cgroup files at all
])
def test_a_container_quota_bounds_the_cores_that_poll(tmp_path, files, cores, spin_us):
    affinity = len(os.sched_getaffinity(0))
    if affinity < 2:
        pytest.skip("this machine lets the tests use one core")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    assert (usable_cores(tmp_path), default_spin_us(tmp_path)) == (cores or affinity, spin_us)


def test_vllm_policy_single_request_exact_times(tmp_path):
    """vLLM mode adds a sampler row (3 passes reading and writing 1 x vocab fp32 logits at
    --local_bw 200 GB/s: 24 * 100 / 200 = 12 ns) and prices decode attention per batch."""
    rows, _ = run(tmp_path, [(5, 2, 0)], scheduler="vllm", engine_overhead=0)
    sampler = 24 * 100 // 200
    prefill = 150 + 2 * ((150 + 3 * 150 + 50 + 225 + 150) + 5 * 150) + 150 + 110 + sampler
    decode = 110 + 2 * ((110 + 3 * 110 + (50 + 210) + 110) + 5 * 110) + 110 + 110 + sampler
    r = by_id(rows)[0]
    assert (r["TTFT"], r["end_time"]) == (prefill, prefill + decode) == (3972, 7034)


def test_no_sampler_drops_the_sampler_row(tmp_path):
    """--no-sampler: the same request 12 ns sooner per step (two steps)."""
    rows, _ = run(tmp_path, [(5, 2, 0)], scheduler="vllm", engine_overhead=0, no_sampler=True)
    assert by_id(rows)[0]["end_time"] == 7034 - 2 * 12


@pytest.mark.parametrize("npu_num", [1, 2])
def test_vllm_policy_traces_pass_the_checker(tmp_path, npu_num):
    kept = tmp_path / "traces"
    run(tmp_path, [(30, 3, 0), (6, 4, 100), (9, 2, 200)], npu_num=npu_num, scheduler="vllm",
        max_num_batched_tokens=16, keep_traces=kept)
    traces = sorted(kept.glob("batch*.txt"))
    assert traces and all(t.read_text().startswith("VLLM") for t in traces)
    done = subprocess.run([sys.executable, "trace_test/check_trace.py", *map(str, traces)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
