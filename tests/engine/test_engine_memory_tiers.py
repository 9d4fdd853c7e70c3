"""Memory tiers of the remote memory (astra-sim/src/memory_tiers.h): a memory node with a
`memory_tier` attribute k takes latency_k + floor(bytes / bandwidth_k) ns, per NPU without contention."""
import pytest

from engine_driver import run_batch
from etgen import mem_load, mem_store

ONE_NPU = dict(topology=["FullyConnected"], npus=[1], bandwidth=[256], latency=[0])
TWO_NPUS = dict(topology=["FullyConnected"], npus=[2], bandwidth=[256], latency=[0])
TIERS = [{"name": "cpu", "bandwidth": 307.2, "latency": 100},
         {"name": "ssd", "bandwidth": 7.45, "latency": 80000}]


def memory(tiers=TIERS, kind="PER_NPU_MEMORY_EXPANSION"):
    return {"memory-type": kind, "remote-mem-latency": 300, "remote-mem-bw": 64, "memory-tiers": tiers}


def finishes(case):
    result = run_batch(case.root, case.argv())
    assert result.rc == 0, result.stderr
    return result


def test_each_tier_has_its_own_bandwidth_and_latency(make_case):
    case = make_case(**ONE_NPU, memory=memory())
    # remote memory 300 + 10^6 // 64 = 15925; cpu 100 + floor(10^6 / 307.2) = 3355; ssd 80000 + floor(10^6 / 7.45)
    case.same_workload([mem_load(1, 10**6), mem_load(2, 10**6, deps=[1], tier=1),
                        mem_store(3, 10**6, deps=[2], tier=2)])
    assert finishes(case).finishes == {0: (15925 + 3355 + 214228, 15925 + 3355 + 214228)}


def test_tiers_have_no_contention_between_npus_even_in_a_pool(make_case):
    case = make_case(**TWO_NPUS, memory=memory(kind="MEMORY_POOL"))
    case.same_workload([mem_load(1, 10**6, tier=1)])
    assert sorted(finishes(case).ticks().values()) == [3355, 3355]


@pytest.mark.parametrize("tiers, tier, words", [
    (TIERS, 3, "memory_tier 3 is not a tier"),
    ([{"name": "cpu", "bandwidth": 0, "latency": 1}], 1, "bandwidth\" must be > 0"),
    ([{"name": "cpu", "bandwidth": 1, "latency": 1, "size": 2}], 1, "unknown key \"size\""),
])
def test_bad_tiers_are_one_line(make_case, tiers, tier, words):
    case = make_case(**ONE_NPU, memory=memory(tiers))
    case.same_workload([mem_load(1, 100, tier=tier)])
    result = run_batch(case.root, case.argv())
    lines = result.stderr.strip().splitlines()
    assert result.rc == 1 and len(lines) == 1 and words in lines[0]
