"""--pim: decode attention on PIM units, with and without sub-batch interleaving, on the engine by hand.

Tiny model (4 heads, 2 KV heads of 16), linear profile (tests/test_serving.py: rows 100 + 10 T, rope 50,
attn 200 + kv + 5 t), orca. PIM units: 1 GB/s (1 B/ns) and 0.001 TFLOPS (1 FLOP/ns); external bus 200 GB/s.
A decode token against L keys: KV 2 L x 2 x 16 x 2 B = 128 L ns, 4 x 4 x L x 16 = 256 L FLOPs: compute
bound, 256 L ns; plus the query in and output out, 2 x 4 x 16 x 2 B / 200 GB/s = 1.28 ns.
Two requests of 4 prompt tokens and 2 outputs: a prefill step, then one decode step (4 cached, L = 5).
"""
from __future__ import annotations

import pytest

from inference_serving.errors import InputError
from inference_serving.inputs.hardware import read_hardware_file
from inference_serving.inputs.model import load_model
from inference_serving.perf.pim import PimModel
from inference_serving.perf.precision import Precision
from inference_serving.plan.pim import balanced_halves
from inference_serving.plan.iteration import BatchEntry
from test_serving import DATA, by_id, run

PIM_NS = round(256 * 5 + 2 * 4 * 16 * 2 / 200)   # 1281
PREFILL = 180 + 2 * (10 * 180 + 2 * (50 + 200 + 0 + 20)) + 180 + 120   # T = 8, 2 logit rows: 5160


def hardware(tmp_path, **changes):
    keys = dict(name="TINY", provider="csv", csv=str(DATA / "tiny_perf.csv"), memory_gib=1, memory_bw_gbps=200,
                link_bw_gbps=300, pim_bw_gbps=1, pim_tflops=0.001)
    keys.update(changes)
    path = tmp_path / "tiny_pim.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items() if v is not None))
    return str(path)


def decode_step(tmp_path, **flags) -> int:
    rows, _ = run(tmp_path, [(4, 2, 0), (4, 2, 0)], hardware=hardware(tmp_path), **flags)
    r = by_id(rows)
    assert r[0]["TTFT"] == r[1]["TTFT"] == PREFILL and r[0]["end_time"] == r[1]["end_time"]
    return r[0]["end_time"] - PREFILL


def test_pim_attention_time():
    model = PimModel(load_model(str(DATA / "tiny_model.json")), Precision(16), 1.0, 0.001, 200.0)
    assert model.attention_ns(5, 1) == PIM_NS == 1281
    assert PimModel(model.model, Precision(16), 1.0, 1.0, 200.0).attention_ns(5, 1) == round(128 * 5 + 1.28)


def test_offload_replaces_the_decode_attention(tmp_path):
    without = 120 + 2 * (10 * 120 + 2 * (50 + 200 + 4 + 5)) + 120 + 120      # T = 2: 3796
    offload = 120 + 2 * (10 * 120 + 2 * (50 + PIM_NS)) + 120 + 120          # 8084
    assert (decode_step(tmp_path), decode_step(tmp_path, pim="offload")) == (without, offload) == (3796, 8084)


def test_interleaving_overlaps_one_halfs_attention_with_the_others_gemms(tmp_path):
    """Halves of one request each (T = 1: rows of 110 ns): pre = ln, q, k, v + rope = 490, pim = 1281,
    post = o_proj, norm, MLP = 660; the whole batch's embedding (120) before and head (240) after."""
    pre, pim, post = 4 * 110 + 50, PIM_NS, 6 * 110
    t = 120
    pre_a = t + pre                                  # 610
    pre_b = pre_a + pre                              # 1100, beside pim_a
    pim_a = pre_a + pim                              # 1891
    pim_b = pim_a + pim                              # 3172: the PIM slot is busy until pim_a ends
    post_a = pim_a + post                            # 2551
    pre_a1 = post_a + pre                            # 3041
    pim_a1 = max(pre_a1, pim_b) + pim                # 4453
    post_b = max(pim_b, pre_a1) + post               # 3832
    pre_b1 = post_b + pre                            # 4322
    pim_b1 = max(pre_b1, pim_a1) + pim               # 5734
    post_a1 = pim_a1 + post                          # 5113
    post_b1 = max(pim_b1, post_a1) + post            # 6394
    end = max(post_a1, post_b1) + 240
    assert (pre_b, pim_b, post_a1, end) == (1100, 3172, 5113, 6634)
    assert decode_step(tmp_path, pim="interleave") == end


def test_sub_batches_balance_the_decodes_keys():
    entries = [BatchEntry(0, 4, 0), BatchEntry(1, 1, 99), BatchEntry(2, 1, 10), BatchEntry(3, 1, 60),
               BatchEntry(4, 1, 50)]
    first, second = balanced_halves(entries)
    assert [e.request_id for e in first] == [0, 1, 2] and [e.request_id for e in second] == [3, 4]


def test_pim_is_refused_where_it_cannot_act(tmp_path):
    with pytest.raises(InputError, match="no 'pim_bw_gbps'"):
        run(tmp_path, [(4, 2, 0)], hardware=hardware(tmp_path, pim_bw_gbps=None), pim="offload")
    with pytest.raises(InputError, match="one NPU"):
        run(tmp_path, [(4, 2, 0)], hardware=hardware(tmp_path), pim="interleave", npu_num=2)


def test_the_shipped_pim_file():
    npu_pim = read_hardware_file(DATA.parent.parent / "hardware" / "NPU-PIM.yaml")
    assert (npu_pim.pim_bw_gbps, npu_pim.pim_tflops) == (4 * 128 * 32 * 0.3, 4 * 128 * 16 * 2 * 0.3 / 1000)
    assert npu_pim.memory_bw_gbps == 4 * 1024 * 2.4 / 8
