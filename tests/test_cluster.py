"""Clusters (README "Clusters"): the cluster file, routers, per-instance results and prefill/decode
disaggregation with its KV transfers, on the real engine; router decisions and transfer times by hand."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inference_serving.cluster.disaggregation import kv_heads_held, shard_bytes
from inference_serving.cluster.routers import router
from inference_serving.cluster.spec import load_cluster
from inference_serving.config.run_config import RunConfig
from inference_serving.errors import InputError
from inference_serving.inputs.model import load_model
from inference_serving.inputs.workload import Request
from inference_serving.serving.arrivals import Arrivals
from inference_serving.serving.instance import Instance
from inference_serving.serving.kv.host_swap import HostSwapKV
from inference_serving.serving.kv.layout import MemoryLayout
from inference_serving.serving.kv.prefix_cache import PrefixCacheKV
from inference_serving.serving.kv.sizing import VllmMemory
from inference_serving.serving.orca import OrcaPolicy
from inference_serving.serving.vllm import VllmPolicy
from inference_serving.simulate import simulate

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TINY = {"model_name": str(DATA / "tiny_model.json"), "hardware": "TINY", "perf_model": str(DATA / "tiny_perf.csv"),
        "npu_mem": 1.0, "scheduler": "vllm"}
LINK = {"bandwidth_gbps": 100, "latency_ns": 500}   # 100 GB/s with GB = 10^9 B: 100 B/ns


def write_dataset(path: Path, shapes: list[tuple[int, int, int]]) -> Path:
    """(input tokens, output tokens, arrival ns) per request."""
    path.write_text("input_toks\toutput_toks\tarrival_time_ns\n" + "".join(f"{i}\t{o}\t{a}\n" for i, o, a in shapes))
    return path


def write_cluster(path: Path, instances: list[dict], **top) -> Path:
    path.write_text(yaml.safe_dump({"network": {"intra_node": LINK}, **top, "instances": instances}))
    return path


def run(tmp_path: Path, cluster: Path | None, dataset: Path, name: str = "out", **flags):
    base = {} if cluster is not None else {k: v for k, v in TINY.items()}
    config = RunConfig(**base, dataset=str(dataset), req_num=100, cluster=cluster, output=tmp_path / f"{name}.csv",
                       summary_json=tmp_path / f"{name}.json", quiet=True, **flags)
    lines: list[str] = []
    simulate(config, log=lines.append)
    rows = list(csv.DictReader(open(tmp_path / f"{name}.csv")))
    return rows, json.loads((tmp_path / f"{name}.json").read_text())["summary"], lines


# -- routers, by hand ------------------------------------------------------------------------------
def tiny_instances(count: int, kv_factory=None) -> list[Instance]:
    layout = MemoryLayout(weight_bytes=0, block_bytes=1, capacity_bytes=100, block_size=4)
    arrivals = Arrivals([], count)
    out = []
    for k in range(count):
        kv = kv_factory(layout) if kv_factory else HostSwapKV(layout)
        policy = OrcaPolicy(arrivals.inboxes[k], kv) if kv_factory is None else \
            VllmPolicy(arrivals.inboxes[k], kv, 16, 64, VllmMemory(100, 0, 0, 0, 1))
        out.append(Instance(f"i{k}", policy, None, 1, 1, k))
    return out


def states(*shapes):
    from inference_serving.serving.request import RequestState
    return [RequestState(Request(i, inp, 2, 0, token_ids=ids, session=session))
            for i, (inp, ids, session) in enumerate(shapes)]


def hand(instances, k, *requests):
    """Gives instance k these requests (waiting there)."""
    instances[k].scheduler.waiting.extend(requests)


def test_round_robin_takes_turns_over_the_candidates():
    instances = tiny_instances(3)
    r = router("round-robin", instances, [0, 2], 0)
    assert [r.pick(s, 0) for s in states(*[(4, None, None)] * 5)] == [0, 2, 0, 2, 0]


def test_least_outstanding_counts_waiting_running_and_ties_go_first():
    instances = tiny_instances(3)
    a, b, c, d = states(*[(4, None, None)] * 4)
    hand(instances, 0, a, b)
    hand(instances, 1, c)
    hand(instances, 2, d)
    r = router("least-outstanding", instances, [0, 1, 2], 0)
    assert r.pick(a, 0) == 1          # 2, 1, 1 outstanding: the first of the two with one
    instances[1].scheduler.running.append(instances[1].scheduler.waiting.popleft())
    assert r.pick(a, 0) == 1          # running counts as much as waiting


def test_least_kv_picks_the_smallest_share_of_blocks_in_use():
    instances = tiny_instances(2)
    a, b = states((8, None, None), (4, None, None))
    instances[0].kv.allocate(a.request, 8)      # 2 of 100 blocks
    instances[1].kv.allocate(b.request, 4)      # 1 of 100
    assert router("least-kv", instances, [0, 1], 0).pick(a, 0) == 1


def test_power_of_two_compares_two_drawn_instances():
    import random
    instances = tiny_instances(4)
    for k, count in enumerate((3, 0, 2, 1)):
        hand(instances, k, *states(*[(4, None, None)] * count))
    drawn = random.Random(7).sample([0, 1, 2, 3], 2)           # the seeded draw the router makes
    expected = min(drawn, key=lambda k: (3, 0, 2, 1)[k])
    assert router("power-of-two", instances, [0, 1, 2, 3], 7).pick(states((4, None, None))[0], 0) == expected


def test_session_affinity_keeps_a_session_where_it_started():
    instances = tiny_instances(2)
    first, other, later = states((4, None, 5), (4, None, 6), (4, None, 5))
    r = router("session-affinity", instances, [0, 1], 0)
    assert r.pick(first, 0) == 0
    hand(instances, 0, first)
    assert r.pick(other, 0) == 1       # a new session: the least outstanding instance
    hand(instances, 1, other, *states((4, None, None)) * 2)
    assert r.pick(later, 0) == 0       # its session's instance, though instance 0 is not the least loaded now


def test_prefix_affinity_goes_where_the_prompt_blocks_are_cached():
    instances = tiny_instances(2, lambda layout: PrefixCacheKV(layout, 100))
    cached, = states((9, tuple(range(9)), None))
    instances[1].kv.allocate(cached.request, 9)                  # 2 full blocks of 4 held on instance 1
    instances[1].kv.free(cached.id)                              # freed, still cached
    again, fresh = states((9, tuple(range(9)), None), (9, tuple(range(100, 109)), None))
    r = router("prefix-affinity", instances, [0, 1], 0)
    assert (r.pick(again, 0), r.pick(fresh, 0)) == (1, 0)


# -- whole runs ------------------------------------------------------------------------------------
def test_a_one_instance_cluster_file_runs_as_the_flags_do(tmp_path):
    dataset = write_dataset(tmp_path / "d.tsv", [(20, 4, 0), (30, 3, 1000), (12, 5, 1500)])
    cluster = write_cluster(tmp_path / "c.yaml", [{"tp": 2, **TINY}], network={"npus_per_node": 2})
    rows, _, _ = run(tmp_path, cluster, dataset, "cluster")
    flags, _, _ = run(tmp_path, None, dataset, "flags", npu_num=2)
    assert rows == flags   # one instance: no instance column either


def test_round_robin_alternates_by_arrival_and_the_summary_breaks_down(tmp_path):
    dataset = write_dataset(tmp_path / "d.tsv", [(20, 4, 0), (30, 3, 10), (12, 5, 20), (8, 2, 30)])
    cluster = write_cluster(tmp_path / "c.yaml", [{"name": "r", "count": 2, **TINY}], router="round-robin")
    rows, summary, lines = run(tmp_path, cluster, dataset)
    assert [r["instance"] for r in rows] == ["r.0", "r.1", "r.0", "r.1"]
    assert summary["instance_r.0_requests"] == summary["instance_r.1_requests"] == 2
    assert summary["instance_r.0_generated_tokens"] == 4 + 5 and summary["instance_r.1_generated_tokens"] == 3 + 2
    assert any(line.startswith("per instance:") for line in lines)


def test_router_flag_overrides_the_file(tmp_path):
    """least-outstanding: request 1 arrives while request 0 runs on r.0, so it goes to r.1; request 2
    arrives after both ended (all equal): r.0."""
    dataset = write_dataset(tmp_path / "d.tsv", [(20, 4, 0), (30, 3, 10), (12, 5, 10**9)])
    cluster = write_cluster(tmp_path / "c.yaml", [{"name": "r", "count": 2, **TINY}], router="round-robin")
    rows, _, _ = run(tmp_path, cluster, dataset, router="least-outstanding")
    assert [r["instance"] for r in rows] == ["r.0", "r.1", "r.0"]


def pd_cluster(tmp_path: Path, prefill_tp: int) -> Path:
    return write_cluster(tmp_path / "pd.yaml", [{"name": "p", "role": "prefill", "tp": prefill_tp, **TINY},
                                                 {"name": "d", "role": "decode", "tp": 1, **TINY}])


def test_kv_transfer_time_is_latency_plus_bytes_over_bandwidth(tmp_path):
    """Tiny model: 2 layers x K and V x 2 KV heads x head_dim 16 x 2 B = 256 B a token. A 20-token prompt
    fills 2 blocks of 16 tokens: 32 x 256 = 8192 B, sent from the prefill NPU's port to the decode NPU's
    in one message: floor(500 + 8192 / 100) = floor(581.92) = 581 ns."""
    rows, summary, _ = run(tmp_path, pd_cluster(tmp_path, 1), write_dataset(tmp_path / "d.tsv", [(20, 4, 0)]))
    assert (summary["kv_transfers"], summary["kv_transfer_bytes"]) == (1, 8192)
    assert summary["kv_transfer_mean_ms"] == pytest.approx(581e-6, abs=1e-12)
    assert rows[0]["instance"] == "p>d" and summary["instance_p_generated_tokens"] == 1
    assert summary["instance_d_generated_tokens"] == 3 and summary["generated_tokens"] == 4


def test_kv_shards_map_from_two_prefill_ranks_to_one_decode_rank(tmp_path):
    """Prefill TP2: each rank holds one of the 2 KV heads, 32 tokens x 128 B = 4096 B; the decode rank
    holds both and receives one message from each prefill port, both sent at once: each arrives
    floor(500 + 4096 / 100) = 540 ns later, so the transfer takes 540 ns."""
    model = load_model(str(DATA / "tiny_model.json"))
    assert shard_bytes(model, 32, 128, 2, 1) == {(0, 0): 4096, (1, 0): 4096}
    rows, summary, _ = run(tmp_path, pd_cluster(tmp_path, 2), write_dataset(tmp_path / "d.tsv", [(20, 4, 0)]))
    assert summary["kv_transfer_bytes"] == 8192
    assert summary["kv_transfer_mean_ms"] == pytest.approx(540e-6, abs=1e-12)


def test_kv_transfer_between_nodes_crosses_the_inter_node_link(tmp_path):
    """One NPU per node: prefill on node 0, decode on node 1, so the 8192 B go over the inter-node link:
    floor(2000 + 8192 / 50) = floor(2163.84) = 2163 ns."""
    cluster = write_cluster(tmp_path / "pd.yaml", [{"name": "p", "role": "prefill", **TINY},
                                                    {"name": "d", "role": "decode", **TINY}],
                            network={"npus_per_node": 1, "intra_node": LINK,
                                     "inter_node": {"bandwidth_gbps": 50, "latency_ns": 2000}})
    _, summary, _ = run(tmp_path, cluster, write_dataset(tmp_path / "d.tsv", [(20, 4, 0)]))
    assert summary["kv_transfer_mean_ms"] == pytest.approx(2163e-6, abs=1e-12)


def test_kv_heads_are_split_or_replicated_as_the_shard_rule_says():
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")   # 8 KV heads
    assert [kv_heads_held(model, 2, r) for r in range(2)] == [range(0, 4), range(4, 8)]
    assert [kv_heads_held(model, 16, r) for r in (0, 1, 2, 15)] == [range(0, 1), range(0, 1), range(1, 2), range(7, 8)]
    # decode TP4 from prefill TP2: each decode rank's 2 heads come from the prefill rank that holds them
    assert shard_bytes(model, 16, 10, 2, 4) == {(0, 0): 320, (0, 1): 320, (1, 2): 320, (1, 3): 320}


def test_decode_starts_when_the_transfer_ends_and_the_first_token_comes_from_prefill(tmp_path):
    """The prefill step starts at 0: its end is the TTFT; the decode instance's steps (3, for tokens 2 to 4)
    run back to back from the transfer's end, 581 ns (above) after it."""
    rows, summary, lines = run(tmp_path, pd_cluster(tmp_path, 1), write_dataset(tmp_path / "d.tsv", [(20, 4, 0)]))

    def durations(instance: str) -> list[int]:
        return [int(line.split(" done in ")[1].split(" ns")[0]) for line in lines if f"] {instance}: iteration" in line]
    (prefill,), decode = durations("p"), durations("d")
    assert int(rows[0]["TTFT"]) == prefill and len(decode) == 3
    assert int(rows[0]["end_time"]) == prefill + 581 + sum(decode)


SESSIONS = [  # session 0 (with token ids) takes 2 turns; sessions 1 and 2 one each, arriving in between
    {"session_id": 0, "turn": 0, "input_toks": 5, "output_toks": 3, "arrival_time_ns": 100,
     "token_ids": [1, 2, 3, 4, 5], "output_token_ids": [6, 7, 8]},
    {"session_id": 1, "turn": 0, "input_toks": 2, "output_toks": 2, "arrival_time_ns": 150},
    {"session_id": 2, "turn": 0, "input_toks": 2, "output_toks": 2, "arrival_time_ns": 160},
    {"session_id": 0, "turn": 1, "input_toks": 2, "output_toks": 1, "think_time_ns": 10**6,
     "token_ids": [9, 10], "output_token_ids": [11]},
]


@pytest.mark.parametrize("name, second_turn_on, hit_tokens", [
    ("round-robin", "s.1", 0),         # arrivals 0, 1, 2 took s.0, s.1, s.0: the 4th goes to s.1
    ("session-affinity", "s.0", 8),    # back to s.0, which holds the first turn's 8 tokens in 2 blocks of 4
])
def test_session_affinity_keeps_the_prefix_hits(tmp_path, name, second_turn_on, hit_tokens):
    dataset = tmp_path / "s.jsonl"
    dataset.write_text("".join(json.dumps(t) + "\n" for t in SESSIONS))
    cluster = write_cluster(tmp_path / "c.yaml", [{"name": "s", "count": 2, **TINY, "block_size": 4}])
    rows, _, lines = run(tmp_path, cluster, dataset, router=name, verbose=True)
    by_id = {int(r["request id"]): r["instance"] for r in rows}
    assert by_id[0] == "s.0" and by_id[3] == second_turn_on
    reuse = next(line for line in lines if line.startswith("computation reuse"))
    assert f"{hit_tokens}/" in reuse.split("lookups hit, ")[1]


# -- bad cluster files -----------------------------------------------------------------------------
BAD = {
    "unknown_key": ({"instances": [{"tp": 1, "colour": "red"}]}, r"instances\.0: unknown key 'colour'"),
    "bad_role": ({"instances": [{"role": "both"}]}, r"instances\.0\.role: .*colocated, prefill, decode"),
    "no_instances": ({"instances": []}, r"instances: a non-empty list"),
    "prefill_without_decode": ({"instances": [{"role": "prefill"}]}, r"needs both prefill and decode"),
    "two_nodes_no_link": ({"network": {"npus_per_node": 2}, "instances": [{"tp": 2}, {"tp": 2}]},
                          r"network\.inter_node"),
    "too_big_for_a_node": ({"network": {"npus_per_node": 4, "inter_node": LINK}, "instances": [{"tp": 6}]},
                           r"instances\.0: 6 NPUs do not fit in a node of 4"),
    "bad_flag_value": ({"instances": [{"scheduler": "vllm", "max_num_seqs": 0}]}, r"instances\.0.*max_num_seqs"),
    "bad_bandwidth": ({"network": {"intra_node": {"bandwidth_gbps": -1, "latency_ns": 0}}, "instances": [{}]},
                      r"network\.intra_node\.bandwidth_gbps"),
    "duplicate_names": ({"instances": [{"name": "a"}, {"name": "a"}]}, r"two instances are named 'a'"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_cluster_file_is_one_line_naming_the_key(tmp_path, name):
    content, says = BAD[name]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(InputError, match=says) as error:
        load_cluster(path, RunConfig())
    assert str(error.value).startswith(f"--cluster {path}: ") and "\n" not in str(error.value)


def test_bad_cluster_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("instances: [{tp: 1, colour: red}]\n")
    result = subprocess.run([sys.executable, str(REPO / "main.py"), "--cluster", str(path)], capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "unknown key 'colour'" in result.stderr and "Traceback" not in result.stderr
