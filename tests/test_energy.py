"""--energy: the energy of fixed iterations by hand (tiny model, linear profile; tests/test_serving.py).

Hardware: 100 W idle, 400 W at full load, 5 pJ/bit device memory at 200 GB/s (8 W at full bandwidth, so
292 W for compute), 10 pJ/bit on links. Weights 173,696 B (tests/test_precision.py), KV 256 B per token.
"""
from __future__ import annotations

import json

import pytest

from inference_serving.errors import InputError
from test_serving import DATA, layer, run

IDLE, CORE = 100.0, 400.0 - 100.0 - 200e9 * 8 * 5e-12
MEMORY_J, LINK_J = 5e-12 * 8, 10e-12 * 8
WEIGHTS, KV_PER_TOKEN = 173_696, 256


def hardware(tmp_path, **changes):
    keys = dict(name="TINY", provider="csv", csv=str(DATA / "tiny_perf.csv"), memory_gib=1, memory_bw_gbps=200,
                link_bw_gbps=300, idle_power_w=100, max_power_w=400, memory_pj_per_bit=5, link_pj_per_bit=10)
    keys.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items() if v is not None))
    return str(path)


def summary(tmp_path, rows, **flags) -> dict:
    out = tmp_path / "run.json"
    run(tmp_path, rows, hardware=hardware(tmp_path), energy=True, summary_json=out, **flags)
    return json.loads(out.read_text())["summary"]


def test_one_prefill_iteration(tmp_path):
    a, b = layer(4, [(4, 0)])
    duration = 140 + 2 * (a + b) + 140 + 110                       # all compute (token ids move in 0 ns)
    dynamic = CORE * duration * 1e-9 + MEMORY_J * (WEIGHTS + 4 * KV_PER_TOKEN)
    total = IDLE * duration * 1e-9 + dynamic
    m = summary(tmp_path, [(4, 1, 0)])
    assert duration == 3730 and m["simulated_time_s"] == pytest.approx(3730e-9)
    assert m["energy_j"] == pytest.approx(total, rel=1e-12) and m["energy_idle_j"] == pytest.approx(3.73e-4)
    assert m["energy_prefill_j_per_token"] == pytest.approx(total / 4, rel=1e-12)
    assert m["energy_decode_j_per_token"] is None                  # no decode step
    assert m["power_mean_w"] == pytest.approx(m["power_peak_w"]) == pytest.approx(total / 3730e-9)


def test_decode_energy_per_generated_token(tmp_path):
    a, b = layer(1, [(1, 4)])
    decode = 110 + 2 * (a + b) + 110 + 110
    energy = (IDLE + CORE) * decode * 1e-9 + MEMORY_J * (WEIGHTS + 5 * KV_PER_TOKEN)
    m = summary(tmp_path, [(4, 2, 0)])
    assert decode == 3048
    assert m["energy_decode_j_per_token"] == pytest.approx(energy, rel=1e-12)


def test_tensor_parallel_links_and_every_npus_compute(tmp_path):
    # rank 0 runs the request's attention (selective batching), rank 1 not; shards of 140 // 2 = 70 ns
    rank0 = 140 + 2 * sum(layer(4, [(4, 0)], tp=2)) + 140 + 110 // 2
    rank1 = 140 + 2 * sum(layer(4, [], tp=2)) + 140 + 110 // 2
    # 2 all-reduces a layer of 4 x 64 x 2 B; each of 2 ranks sends 2(n-1)/n of it
    sent = 2 * 2 * 2 * (2 * (2 - 1) / 2) * 512
    dynamic = CORE * (rank0 + rank1) * 1e-9 + MEMORY_J * (WEIGHTS + 4 * KV_PER_TOKEN) + LINK_J * sent
    m = summary(tmp_path, [(4, 1, 0)], npu_num=2)
    assert (rank0, rank1, sent) == (2555, 2015, 4096)
    assert m["energy_j"] - m["energy_idle_j"] == pytest.approx(dynamic, rel=1e-12)
    assert m["energy_idle_j"] == pytest.approx(2 * IDLE * m["simulated_time_s"])


def test_missing_power_figures_are_refused(tmp_path):
    with pytest.raises(InputError, match="no 'idle_power_w'"):
        run(tmp_path, [(4, 1, 0)], hardware=hardware(tmp_path, idle_power_w=None), energy=True)
    with pytest.raises(InputError, match="below idle power plus memory"):
        run(tmp_path, [(4, 1, 0)], hardware=hardware(tmp_path, max_power_w=105), energy=True)


def test_power_plot(tmp_path):
    run(tmp_path, [(4, 2, 0), (3, 2, 5000)], hardware=hardware(tmp_path), energy=True, plot=tmp_path / "plots")
    assert (tmp_path / "plots" / "power.png").stat().st_size > 1000
