"""Batch-mode timing against values derived by hand from the reference
(astra-sim-analytical.md §3–§5, worked cases G1–G13 of §7, and golden README §6).

Each expected value is written as the reference's formula with the numbers filled
in; the comment gives the evaluated numbers. Unless stated: endpoint delay d = 10,
local-mem-bw 1600, splits 1, active chunks 1, ring algorithm, localBWAware, LIFO,
PER_NPU memory latency 0 bw 512.
"""
import pytest

from engine_driver import run_batch
from etgen import (ALL_GATHER, ALL_REDUCE, ALL_TO_ALL, REDUCE_SCATTER, coll, comp, mem_load,
                   mem_store, node, recv, send, system_config)
from chakra.schema.protobuf.et_def_pb2 import NodeType
from engine_formulas import MiB, P, T, mem, roofline

D = 10  # endpoint delay

# ---------------------------------------------------------------- networks


def net(topology, npus, bandwidth, latency):
    return dict(topology=topology, npus=npus, bandwidth=bandwidth, latency=latency)


ONE_NPU = net(["FullyConnected"], [1], [256], [0])
RING4 = net(["Ring"], [4], [100], [500])
SWITCH4 = net(["Switch"], [4], [100], [500])
FC4 = net(["FullyConnected"], [4], [100], [500])
FC3 = net(["FullyConnected"], [3], [100], [500])
RING8 = net(["Ring"], [8], [100], [500])
FC8 = net(["FullyConnected"], [8], [100], [500])
FC_X_SWITCH = net(["FullyConnected", "Switch"], [4, 2], [200, 50], [100, 1000])
RING_X_SWITCH = net(["Ring", "Switch"], [4, 2], [100, 50], [500, 1000])

# Delays on 100 GB/s (β = 107.374 B/ns), 500 ns links
T256K_1 = T(262144, 1, 500, 100)    # ⌊500 + 2441.41⌋ = 2941
T256K_2 = T(262144, 2, 500, 100)    # ⌊1000 + 2441.41⌋ = 3441
T512K_1 = T(524288, 1, 500, 100)    # ⌊500 + 4882.81⌋ = 5382
T512K_2 = T(524288, 2, 500, 100)    # ⌊1000 + 4882.81⌋ = 5882
T128K_1 = T(131072, 1, 500, 100)    # ⌊500 + 1220.70⌋ = 1720
T128K_4 = T(131072, 4, 500, 100)    # ⌊2000 + 1220.70⌋ = 3220
T64K_1 = T(65536, 1, 500, 100)      # ⌊500 + 610.35⌋ = 1110
T1M_1 = T(MiB, 1, 500, 100)         # ⌊500 + 9765.63⌋ = 10265
T1M_2 = T(MiB, 2, 500, 100)         # ⌊1000 + 9765.63⌋ = 10765
T1M_4 = T(MiB, 4, 500, 100)         # ⌊2000 + 9765.63⌋ = 11765
T2M_1 = T(2 * MiB, 1, 500, 100)     # ⌊500 + 19531.25⌋ = 20031
T2M_2 = T(2 * MiB, 2, 500, 100)     # ⌊1000 + 19531.25⌋ = 20531
T4M_1 = T(4 * MiB, 1, 500, 100)     # ⌊500 + 39062.5⌋ = 39562
P256K = P(262144)                   # 3·⌊163.84⌋ = 489
P128K = P(131072)                   # 3·⌊81.92⌋ = 243
P64K = P(65536)                     # 3·⌊40.96⌋ = 120
P512K = P(524288)                   # 3·⌊327.68⌋ = 981

RING4_AR_1MIB = 6 * T256K_1 + 7 * D + 3 * P256K  # G3: 2(N−1)T + (2N−1)d + (N−1)P = 19183


def test_hand_constants_match_reference_examples():
    """Guard for the derivations: the helpers reproduce the reference's own numbers."""
    assert (T256K_1, T256K_2, P256K, T64K_1, P64K) == (2941, 3441, 489, 1110, 120)
    assert RING4_AR_1MIB == 19183


def run_ok(case, extra=()):
    result = run_batch(case.root, case.argv(extra=extra))
    assert result.rc == 0, f"exit {result.rc}: {result.stderr}"
    assert sorted(result.finishes) == list(range(case.num_npus)), result.stdout
    return result


def all_npus(case, t, e):
    return {i: (t, e) for i in range(case.num_npus)}


# ---------------------------------------------------------------- G1/G2: compute and slots

COMPUTE_CASES = {
    # G1: chain 100 → 200 → 300
    "G1_chain": ([comp(0, 100), comp(1, 200, deps=[0]), comp(2, 300, deps=[1])], 100 + 200 + 300, 0),
    # parents may appear after children in the file
    "G1_chain_reversed_file_order": ([comp(2, 300, deps=[1]), comp(1, 200, deps=[0]), comp(0, 100)],
                                     600, 0),
    # G2a: two independent GPU nodes share the one GPU slot
    "G2a_gpu_slot_serialises": ([comp(0, 300), comp(1, 400)], 300 + 400, 0),
    # G2b: CPU node runs on its own slot; CPU time does not reduce exposed: E = 400 − 300
    "G2b_cpu_overlaps_gpu": ([comp(0, 300), comp(1, 400, cpu=True)], 400, 400 - 300),
    # explicit is_cpu_op=false is a GPU node
    "G2_cpu_false_is_gpu": ([comp(0, 300, cpu=False), comp(1, 400, cpu=False)], 700, 0),
    # G2c: duration 0 without num_ops is skipped
    "G2c_zero_comp_skipped": ([comp(0, 0), comp(1, 400, deps=[0])], 400, 0),
    # duration 0 with num_ops > 0 is charged 1 ns (§5.6): 1 + 400
    "zero_comp_with_ops_costs_1ns": ([comp(0, 0, num_ops=5), comp(1, 400, deps=[0])], 1 + 400, 0),
    # INVALID node completes instantly
    "invalid_node_skipped": ([node(0, NodeType.INVALID_NODE), comp(1, 400, deps=[0])], 400, 0),
    # golden §6.4: a skipped node with a higher id than a busy GPU COMP waits for the GPU
    # slot (t=1000), then its CPU child runs 500: T = 1500, E = 1500 − 1000
    "zero_comp_waits_for_gpu_slot": ([comp(0, 1000), comp(1, 0), comp(2, 500, deps=[1], cpu=True)],
                                     1000 + 500, 500),
    # ... with the lower id it is skipped at t=0 and the CPU child overlaps: T = 1000
    "zero_comp_lower_id_skipped_at_once": ([comp(0, 0), comp(1, 1000), comp(2, 500, deps=[0], cpu=True)],
                                           1000, 0),
    # ctrl_deps are ignored in C2 (§5.4): the CPU node overlaps the GPU node it "follows"
    "ctrl_deps_ignored": ([comp(0, 300), comp(1, 400, cpu=True, ctrl_deps=[0])], 400, 400 - 300),
}


@pytest.mark.parametrize("nodes,t,e", COMPUTE_CASES.values(), ids=COMPUTE_CASES.keys())
def test_single_npu_compute(make_case, nodes, t, e):
    case = make_case(**ONE_NPU)
    case.same_workload(nodes)
    assert run_ok(case).finishes == {0: (t, e)}


# ---------------------------------------------------------------- G3–G7: collectives

COLLECTIVE_CASES = {
    # G3: ring AR, N=4, m = S/4 = 262144
    "G3_ring_AR_Ring4": (RING4, {}, ALL_REDUCE, MiB, RING4_AR_1MIB),
    # Switch: every ring neighbour is 2 hops: 6·3441 + 70 + 3·489 = 22183
    "G3_ring_AR_Switch4": (SWITCH4, {}, ALL_REDUCE, MiB, 6 * T256K_2 + 7 * D + 3 * P256K),
    "G3_ring_AR_FC4": (FC4, {}, ALL_REDUCE, MiB, RING4_AR_1MIB),
    # G4: 4 splits → 4 chunks of 262144, m = 65536: chunk = 6·1110 + 70 + 3·120 = 7090;
    # ⌈C/q⌉ chunk times with q = active chunks
    "G4_splits4_active1": (RING4, dict(preferred_dataset_splits=4), ALL_REDUCE, MiB,
                           4 * (6 * T64K_1 + 7 * D + 3 * P64K)),      # 28360
    "G4_splits4_active2": (RING4, dict(preferred_dataset_splits=4, active_chunks_per_dimension=2),
                           ALL_REDUCE, MiB, 2 * (6 * T64K_1 + 7 * D + 3 * P64K)),  # 14180
    "G4_splits4_active4": (RING4, dict(preferred_dataset_splits=4, active_chunks_per_dimension=4),
                           ALL_REDUCE, MiB, 1 * (6 * T64K_1 + 7 * D + 3 * P64K)),  # 7090
    # size 0: chunk raised to Ntot = 4 B, m = 1: T = ⌊500 + 0.009⌋ = 500, P = 0 → 3070
    "G4_size0_chunk_raised": (RING4, {}, ALL_REDUCE, 0, 6 * T(1, 1, 500, 100) + 7 * D + 3 * P(1)),
    # size 10, splits 4: ⌊10/4⌋ = 2 < 4 → c = 4, S = 16 → 4 chunks of 4 B: 4·3070 = 12280
    "G4_size10_splits4": (RING4, dict(preferred_dataset_splits=4), ALL_REDUCE, 10,
                          4 * (6 * T(1, 1, 500, 100) + 7 * D + 3 * P(1))),
    # size 1000003, splits 4: c = 250000, remainder → 5 full chunks, m = 62500:
    # T = ⌊500 + 582.08⌋ = 1082, P = 3·⌊39.06⌋ = 117 → 5·(6·1082 + 70 + 351) = 34565
    "G4_remainder_chunk": (RING4, dict(preferred_dataset_splits=4), ALL_REDUCE, 1000003,
                           5 * (6 * T(62500, 1, 500, 100) + 7 * D + 3 * P(62500))),
    # G5: RS (N−1)T + N·d + (N−1)P = 3·2941 + 40 + 3·489 = 10330
    "G5_ring_RS": (RING4, {}, REDUCE_SCATTER, MiB, 3 * T256K_1 + 4 * D + 3 * P256K),
    # AG: (N−1)·T(S) + N·d = 3·10265 + 40 = 30835
    "G5_ring_AG": (RING4, {}, ALL_GATHER, MiB, 3 * T1M_1 + 4 * D),
    # A2A: K = N(N−1)/2 = 6: 6·2941 + 7·10 = 17716
    "G5_ring_A2A": (RING4, {}, ALL_TO_ALL, MiB, 6 * T256K_1 + 7 * D),
    # G6 direct: farthest peer on Ring[4] is 2 hops (Tmax = 3441); d + P = 499 < 500 so
    # golden §6.1's early finish does not apply: 2·3441 + 30 + 489 = 7401
    "G6_direct_AR_Ring4": (RING4, dict(impl=["direct"]), ALL_REDUCE, MiB, 2 * T256K_2 + 3 * D + P256K),
    "G6_direct_AR_FC4": (FC4, dict(impl=["direct"]), ALL_REDUCE, MiB, 2 * T256K_1 + 3 * D + P256K),  # 6401
    "G6_direct_A2A_Ring4": (RING4, dict(impl=["direct"]), ALL_TO_ALL, MiB, T256K_2 + 2 * D),  # 3461
    "G6_direct_RS_Ring4": (RING4, dict(impl=["direct"]), REDUCE_SCATTER, MiB,
                           T256K_2 + 2 * D + P256K),                                       # 3950
    "G6_direct_AG_Ring4": (RING4, dict(impl=["direct"]), ALL_GATHER, MiB, T1M_2 + 2 * D),  # 10785
    # halving-doubling AR, k = log2 N: (2k+1)d + 2·Σ T(S/2^j, hop(2^(j−1))) + Σ_{j≥2} P(S/2^j)
    "G6_hd_AR_FC4": (FC4, dict(impl=["halvingDoubling"]), ALL_REDUCE, MiB,
                     5 * D + 2 * (T512K_1 + T256K_1) + P256K),                       # 17185
    "G6_hd_AR_Ring4": (RING4, dict(impl=["halvingDoubling"]), ALL_REDUCE, MiB,
                       5 * D + 2 * (T512K_1 + T256K_2) + P256K),                     # 18185
    "G6_hd_AR_FC8": (FC8, dict(impl=["halvingDoubling"]), ALL_REDUCE, MiB,
                     7 * D + 2 * (T512K_1 + T256K_1 + T128K_1) + P256K + P128K),     # 20888
    # Ring[8]: partners at distance 1, 2, 4 → hops 1, 2, 4
    "G6_hd_AR_Ring8": (RING8, dict(impl=["halvingDoubling"]), ALL_REDUCE, MiB,
                       7 * D + 2 * (T512K_1 + T256K_2 + T128K_4) + P256K + P128K),   # 24888
    # RS: (k+1)d + Σ T + Σ_{j≥2} P
    "G6_hd_RS_FC8": (FC8, dict(impl=["halvingDoubling"]), REDUCE_SCATTER, MiB,
                     4 * D + (T512K_1 + T256K_1 + T128K_1) + P256K + P128K),         # 10815
    "G6_hd_RS_Ring8": (RING8, dict(impl=["halvingDoubling"]), REDUCE_SCATTER, MiB,
                       4 * D + (T512K_1 + T256K_2 + T128K_4) + P256K + P128K),       # 12815
    # AG: messages S, 2S, 4S to distances 4, 2, 1: (k+1)d + Σ T(2^j·S, hop(N/2^(j+1)))
    "G6_hd_AG_FC8": (FC8, dict(impl=["halvingDoubling"]), ALL_GATHER, MiB,
                     4 * D + T1M_1 + T2M_1 + T4M_1),                                 # 69898
    "G6_hd_AG_Ring8": (RING8, dict(impl=["halvingDoubling"]), ALL_GATHER, MiB,
                       4 * D + T1M_4 + T2M_2 + T4M_1),                               # 71898
    # G13: upstream regression reference: Ring[8] 50 GB/s, splits 4, LMBW 50; m = 32768:
    # T = ⌊500 + 610.35⌋ = 1110, P = 3·⌊655.36⌋ = 1965; chunk = 14T + 15d + 7P = 29445; ×4
    "G13_upstream_reference": (net(["Ring"], [8], [50], [500]),
                               dict(preferred_dataset_splits=4, local_mem_bw=50), ALL_REDUCE, MiB,
                               4 * (14 * T(32768, 1, 500, 50) + 15 * D + 7 * P(32768, 50))),  # 117780
    # golden §6.3: 2 queues per dim (flag below), 4 chunks, active 2.
    # localBWAware single-dim AR uses ⌊2/2⌋ = 1 queue, ⌈2/2⌉ = 1 running: 4·7090 = 28360
    "queues2_localBWAware_AR": (RING4, dict(preferred_dataset_splits=4, active_chunks_per_dimension=2),
                                ALL_REDUCE, MiB, 4 * (6 * T64K_1 + 7 * D + 3 * P64K)),
    # baseline spreads chunks over both queues: 2 queues × 1 running → 2 rounds: 14180
    "queues2_baseline_AR": (RING4, dict(preferred_dataset_splits=4, active_chunks_per_dimension=2,
                                        collective_optimization="baseline"),
                            ALL_REDUCE, MiB, 2 * (6 * T64K_1 + 7 * D + 3 * P64K)),
    # RS chunk: 3·1110 + 40 + 3·120 = 3730, 2 rounds: 7460
    "queues2_RS": (RING4, dict(preferred_dataset_splits=4, active_chunks_per_dimension=2),
                   REDUCE_SCATTER, MiB, 2 * (3 * T64K_1 + 4 * D + 3 * P64K)),
}

EXTRA_FLAGS = {name: ["--num-queues-per-dim=2"] for name in COLLECTIVE_CASES if name.startswith("queues2")}


@pytest.mark.parametrize("name", COLLECTIVE_CASES)
def test_single_collective(make_case, name):
    network, sys_kw, comm_type, size, expected = COLLECTIVE_CASES[name]
    case = make_case(**network, system=system_config(**sys_kw))
    case.same_workload([coll(1, comm_type, size)])
    result = run_ok(case, EXTRA_FLAGS.get(name, ()))
    assert result.finishes == all_npus(case, expected, expected)  # no compute: E = T


FLAG_VARIANTS = {
    # d = endpoint-delay × injection-scale = 20: 6·2941 + 7·20 + 3·489 = 19253
    "injection_scale_2": (["--injection-scale=2"], 10 * 2),
    # a group path containing "empty" means no groups
    "comm_group_empty": (["--comm-group-configuration=empty"], 10),
    # parsed and unused by the analytical timing
    "comm_and_compute_scale_unused": (["--comm-scale=3", "--compute-scale=5"], 10),
}


@pytest.mark.parametrize("name", FLAG_VARIANTS)
def test_flags_on_ring_allreduce(make_case, name):
    """G3 (Ring[4] AR 1 MiB) with extra flags: 6·T + 7·d + 3·P."""
    flags, d = FLAG_VARIANTS[name]
    case = make_case(**RING4)
    case.same_workload([coll(1, ALL_REDUCE, MiB)])
    expected = 6 * T256K_1 + 7 * d + 3 * P256K
    assert run_ok(case, flags).finishes == all_npus(case, expected, expected)


def test_block_style_network_yaml_with_comments(make_case):
    """network.yml is YAML: block lists and comments read like G3's flow lists."""
    case = make_case(**RING4)
    case.write("network.yml", "# G3 network\ntopology:\n  - Ring\nnpus_count:\n  - 4  # NPUs\n"
                              "bandwidth:\n  - 100.0\nlatency:\n  - 500.0\n")
    case.same_workload([coll(1, ALL_REDUCE, MiB)])
    assert run_ok(case).finishes == all_npus(case, RING4_AR_1MIB, RING4_AR_1MIB)


def test_gzip_compressed_trace(make_case):
    """§5.1: gzip traces are detected by their magic bytes: G1 chain → 600."""
    case = make_case(**ONE_NPU)
    case.workload({0: [comp(0, 100), comp(1, 200, deps=[0]), comp(2, 300, deps=[1])]}, compress=True)
    assert run_ok(case).finishes == {0: (600, 0)}


def test_communicator_group_ring(make_case):
    """§3.7: groups [0,2] and [1,3] on Ring[4] form 2-member rings (members 2 hops apart)
    with the fixed 10 ns delay even though endpoint-delay is 50:
    2·T(524288, 2 hops) + 3·10 + P(524288) = 2·5882 + 30 + 981 = 12775."""
    case = make_case(**RING4, system=system_config(endpoint_delay=50),
                     comm_group={"0": [0, 2], "1": [1, 3]})
    case.same_workload([coll(1, ALL_REDUCE, MiB)])
    expected = 2 * T512K_2 + 3 * 10 + P512K
    assert run_ok(case).finishes == all_npus(case, expected, expected)


# G7: FullyConnected(4, 200 GB/s, 100 ns) × Switch(2, 50 GB/s, 1000 ns), implementation
# lists ["ring", "ring"] unless stated. dim 0: T0(m) = T(m, 1, 100, 200); dim 1: 2 hops.
def T0(m):
    return T(m, 1, 100, 200)


def T1(m):
    return T(m, 2, 1000, 50)


RS_DIM0_1MIB = 3 * T0(262144) + 4 * D + 3 * P256K     # 3·1320 + 40 + 1467 = 5467
AR_DIM0_1MIB = 6 * T0(262144) + 7 * D + 3 * P256K     # 6·1320 + 70 + 1467 = 9457
TWO_DIM_CASES = {
    # (a) localBWAware: RS(dim0, S) → AR(dim1, S/4; m = 131072: 2·4441 + 30 + 243) → AG(dim0, S/4)
    "G7a_localBWAware": (["ring", "ring"], {}, ALL_REDUCE,
                         RS_DIM0_1MIB + (2 * T1(131072) + 3 * D + P128K) + (3 * T0(262144) + 4 * D)),  # 18622
    # (b) baseline: AR(dim0, S) + AR(dim1, S; m = 524288: 2·11765 + 30 + 981)
    "G7b_baseline": (["ring", "ring"], dict(collective_optimization="baseline"), ALL_REDUCE,
                     AR_DIM0_1MIB + (2 * T1(524288) + 3 * D + P512K)),  # 33998
    # (c) a one-entry implementation list uses dim 0 only
    "G7c_only_first_dim": (["ring"], {}, ALL_REDUCE, AR_DIM0_1MIB),  # 9457
    # (e) RS ascending: RS(dim0, S) + RS(dim1, S/4; m = 131072: 4441 + 20 + 243)
    "G7e_reduce_scatter": (["ring", "ring"], {}, REDUCE_SCATTER,
                           RS_DIM0_1MIB + (T1(131072) + 2 * D + P128K)),  # 10171
    # AG descending: AG(dim1, S: 21531 + 20) + AG(dim0, 2S: 3·9865 + 40)
    "G7e_all_gather": (["ring", "ring"], {}, ALL_GATHER,
                       (T1(MiB) + 2 * D) + (3 * T0(2 * MiB) + 4 * D)),  # 51186
    # A2A ascending, size unchanged: dim0 K=6 (6·1320 + 70) + dim1 K=1, m = S/2 (11765 + 20)
    "G7e_all_to_all": (["ring", "ring"], {}, ALL_TO_ALL,
                       (6 * T0(262144) + 7 * D) + (T1(524288) + 2 * D)),  # 19775
}


@pytest.mark.parametrize("name", TWO_DIM_CASES)
def test_two_dimensional_collective(make_case, name):
    impl, sys_kw, comm_type, expected = TWO_DIM_CASES[name]
    case = make_case(**FC_X_SWITCH, system=system_config(impl=impl, **sys_kw))
    case.same_workload([coll(1, comm_type, MiB)])
    assert run_ok(case).finishes == all_npus(case, expected, expected)


INVOLVED_DIM_CASES = {
    # dim 1 only: the whole S is all-reduced on the Switch: m = S/2 → 2·11765 + 30 + 981 = 24541
    "dim1_only": ([False, True], 2 * T1(524288) + 3 * D + P512K),
    # dim 0 only: as G7c → 9457
    "dim0_only": ([True, False], AR_DIM0_1MIB),
}


@pytest.mark.parametrize("name", INVOLVED_DIM_CASES)
def test_involved_dim_selects_dimensions(make_case, name):
    """§5.4: a collective skips the dimensions its involved_dim marks false (localBWAware,
    implementation lists ["ring", "ring"])."""
    involved, expected = INVOLVED_DIM_CASES[name]
    case = make_case(**FC_X_SWITCH, system=system_config(impl=["ring", "ring"]))
    case.same_workload([coll(1, ALL_REDUCE, MiB, involved_dim=involved)])
    assert run_ok(case).finishes == all_npus(case, expected, expected)


def test_two_dimensional_chunk_pipelining(make_case):
    """G7d: localBWAware, splits 2 (chunks of 512 KiB). Per chunk: RS(dim0) 3·710 + 40 + 3·243
    = 2899; AR(dim1, m = 65536) 2·3220 + 30 + 120 = 6590; AG(dim0) 3·710 + 40 = 2170.
    Chunk 2's RS hides behind chunk 1's AR, then waits for the dim-1 queue:
    total = RS + 2·AR + AG = 18249."""
    case = make_case(**FC_X_SWITCH, system=system_config(impl=["ring", "ring"], preferred_dataset_splits=2))
    case.same_workload([coll(1, ALL_REDUCE, MiB)])
    rs = 3 * T0(131072) + 4 * D + 3 * P128K
    ar = 2 * T1(65536) + 3 * D + P64K
    ag = 3 * T0(131072) + 4 * D
    assert (rs, ar, ag) == (2899, 6590, 2170)
    expected = rs + 2 * ar + ag
    assert run_ok(case).finishes == all_npus(case, expected, expected)


# ---------------------------------------------------------------- G8: point to point

P2P_CASES = {
    # Ring: hops = min(c, n − c)
    "ring4_neighbour": (RING4, 0, 1, T(10**6, 1, 500, 100)),         # ⌊500 + 9313.23⌋ = 9813
    "ring4_opposite": (RING4, 0, 2, T(10**6, 2, 500, 100)),          # G8: 10313
    "ring4_backwards": (RING4, 0, 3, T(10**6, 1, 500, 100)),         # c = 3 → 1 hop
    "ring8_three_hops": (RING8, 0, 5, T(10**6, 3, 500, 100)),        # min(5, 3) = 3: 10813
    "switch_two_hops": (SWITCH4, 3, 1, T(10**6, 2, 500, 100)),       # 10313
    "fully_connected_one_hop": (FC4, 0, 3, T(10**6, 1, 500, 100)),   # 9813
    # 2-D Ring(4) × Switch(2): only the lowest differing dimension is charged (§3.2)
    "2d_dim0_differs_only": (RING_X_SWITCH, 1, 3, T(10**6, 2, 500, 100)),   # (1,0)→(3,0): 2 hops
    "2d_both_differ_charges_dim0": (RING_X_SWITCH, 0, 5, T(10**6, 1, 500, 100)),  # (0,0)→(1,1)
    "2d_dim1_only": (RING_X_SWITCH, 0, 4, T(10**6, 2, 1000, 50)),   # ⌊2000 + 18626.45⌋ = 20626
}


@pytest.mark.parametrize("name", P2P_CASES)
def test_point_to_point_delay(make_case, name):
    network, src, dst, expected = P2P_CASES[name]
    case = make_case(**network)
    case.workload({src: [send(1, src, dst, 10**6, tag=3)], dst: [recv(1, src, dst, 10**6, tag=3)]})
    finishes = run_ok(case).finishes
    assert (finishes[src], finishes[dst]) == ((expected, expected), (expected, expected))


def test_late_receiver_completes_at_post_time(make_case):
    """G8: send completes at arrival (9813); the receive posted after COMP 10000 completes at
    max(9813, 10000) = 10000 with E = 10000 − 10000 = 0; NPUs 2, 3 run COMP 1."""
    case = make_case(**RING4)
    case.workload({0: [send(1, 0, 1, 10**6)],
                   1: [comp(1, 10000), recv(2, 0, 1, 10**6, deps=[1])],
                   2: [comp(1, 1)], 3: [comp(1, 1)]})
    arrival = T(10**6, 1, 500, 100)
    assert run_ok(case).finishes == {0: (arrival, arrival), 1: (10000, 0), 2: (1, 0), 3: (1, 0)}


def test_sends_share_the_communication_slot(make_case):
    """G8: two independent sends of NPU 0 on FC[3] run one after the other (lower id first):
    NPU1 gets its message at 9813, NPU0 and NPU2 finish at 2·9813 = 19626."""
    case = make_case(**FC3)
    case.workload({0: [send(1, 0, 1, 10**6), send(2, 0, 2, 10**6)],
                   1: [recv(1, 0, 1, 10**6)], 2: [recv(1, 0, 2, 10**6)]})
    t = T(10**6, 1, 500, 100)
    assert run_ok(case).finishes == {0: (2 * t, 2 * t), 1: (t, t), 2: (2 * t, 2 * t)}


def test_receives_match_on_tag(make_case):
    """Matching key (tag, src, dst, size): the receives are posted in the opposite order of
    the sends and each still completes at its own message's arrival (9813 and 19626)."""
    case = make_case(**FC3)
    case.workload({0: [send(1, 0, 1, 10**6, tag=7), send(2, 0, 1, 10**6, tag=8)],
                   1: [recv(1, 0, 1, 10**6, tag=8), recv(2, 0, 1, 10**6, tag=7),
                       comp(3, 100, deps=[2])]})
    t = T(10**6, 1, 500, 100)
    # tag-7 recv completes at t, its dependent COMP ends at t + 100 < 2t
    assert run_ok(case).finishes[1] == (2 * t, 2 * t - 100)


# ---------------------------------------------------------------- G9: memory

def memory(kind, latency=300, bw=64, **extra):
    return {"memory-type": kind, "remote-mem-latency": latency, "remote-mem-bw": bw, **extra}


ONE_REQUEST = mem(10**6, 300, 64)  # 300 + ⌊10^6/64⌋ = 15925


def fc(n):
    return net(["FullyConnected"], [n], [256], [0])


@pytest.mark.parametrize("bw", [64, 64.9], ids=["bw64", "fractional_bw_truncated"])
def test_memory_load_then_store(make_case, bw):
    """G9: load then dependent store: 2·(300 + 15625) = 31850 (bw is read as an integer)."""
    case = make_case(**ONE_NPU, memory=memory("PER_NPU_MEMORY_EXPANSION", bw=bw))
    case.same_workload([mem_load(1, 10**6), mem_store(2, 10**6, deps=[1])])
    assert run_ok(case).finishes == {0: (2 * ONE_REQUEST, 2 * ONE_REQUEST)}


def test_memory_nodes_share_the_communication_slot(make_case):
    """G9 (C2): two independent loads on one NPU serialise on the comm slot: 31850."""
    case = make_case(**ONE_NPU, memory=memory("PER_NPU_MEMORY_EXPANSION"))
    case.same_workload([mem_load(1, 10**6), mem_load(2, 10**6)])
    assert run_ok(case).finishes == {0: (2 * ONE_REQUEST, 2 * ONE_REQUEST)}


MEMORY_CONTENTION = {
    # one FIFO server for all NPUs: the second request starts when the first ends
    "pool": (2, memory("MEMORY_POOL"), [[ONE_REQUEST, 2 * ONE_REQUEST]]),
    # no contention between NPUs
    "per_npu": (2, memory("PER_NPU_MEMORY_EXPANSION"), [[ONE_REQUEST, ONE_REQUEST]]),
    # one FIFO per node of 2 NPUs: NPUs {0,1} and {2,3} each serialise
    "per_node": (4, memory("PER_NODE_MEMORY_EXPANSION", **{"num-nodes": 2, "num-npus-per-node": 2}),
                 [[ONE_REQUEST, 2 * ONE_REQUEST], [ONE_REQUEST, 2 * ONE_REQUEST]]),
}


@pytest.mark.parametrize("name", MEMORY_CONTENTION)
def test_memory_fifo_contention(make_case, name):
    """G9: each NPU issues one 10^6-byte load at t = 0."""
    npus, memory_config, expected_per_server = MEMORY_CONTENTION[name]
    case = make_case(**fc(npus), memory=memory_config)
    case.same_workload([mem_load(1, 10**6)])
    ticks = run_ok(case).ticks()
    servers = [sorted(ticks[i] for i in range(s * 2, s * 2 + 2)) for s in range(len(expected_per_server))]
    assert servers == expected_per_server


def test_memory_node_waits_for_collective_on_comm_slot(make_case):
    """A MEM node and an independent collective on one NPU share the comm slot: the AR
    (lower id) runs first, then the load: 19183 + (0 + ⌊1048576/512⌋ = 2048)."""
    case = make_case(**RING4)
    case.same_workload([coll(1, ALL_REDUCE, MiB), mem_load(2, MiB)])
    expected = RING4_AR_1MIB + mem(MiB, 0, 512)
    assert run_ok(case).finishes == all_npus(case, expected, expected)


# ---------------------------------------------------------------- G10: roofline

ROOFLINE_CASES = {
    # OI = 1000: perf = min(1.6e15, 1e14) = 1e14 → 10^9/1e14 s = 10000 ns
    "compute_bound": (10**6, None, roofline(10**9, 10**6, 1600, 100), 0),
    # OI = 10: perf = min(1.6e13, 1e14) = 1.6e13 → 62500 ns
    "memory_bound": (10**8, None, roofline(10**9, 10**8, 1600, 100), 0),
    # tensor_size 0: OI = ∞ → perf = peak (C2) → 10000
    "tensor_size_zero_at_peak": (0, None, 10000, 0),
    # C2 times CPU nodes with the roofline too; CPU time is not subtracted from exposed
    "cpu_node": (10**6, True, 10000, 10000),
}


@pytest.mark.parametrize("name", ROOFLINE_CASES)
def test_roofline(make_case, name):
    """G10: roofline-enabled 1, peak-perf 100, local-mem-bw 1600; the recorded duration
    (7 ns) is ignored."""
    tensor_size, cpu, t, e = ROOFLINE_CASES[name]
    case = make_case(**ONE_NPU, system=system_config(roofline_enabled=1, peak_perf=100))
    case.same_workload([comp(1, 7, num_ops=10**9, tensor_size=tensor_size, cpu=cpu)])
    assert (ROOFLINE_CASES["compute_bound"][2], ROOFLINE_CASES["memory_bound"][2]) == (10000, 62500)
    assert run_ok(case).finishes == {0: (t, e)}


# ---------------------------------------------------------------- G11: overlap, exposed time

OVERLAP_CASES = {
    # COMP on the GPU slot overlaps the AR on the comm slot: E = 19183 − 5000
    "independent": ([comp(0, 5000), coll(1, ALL_REDUCE, MiB)], RING4_AR_1MIB, RING4_AR_1MIB - 5000),
    # dependent: 5000 + 19183, exposed = the whole AR
    "dependent": ([comp(0, 5000), coll(1, ALL_REDUCE, MiB, deps=[0])], 5000 + RING4_AR_1MIB, RING4_AR_1MIB),
    # two ARs serialise on the comm slot
    "two_collectives": ([coll(0, ALL_REDUCE, MiB), coll(1, ALL_REDUCE, MiB)],
                        2 * RING4_AR_1MIB, 2 * RING4_AR_1MIB),
    # a ctrl_dep only: ignored in C2, so it overlaps
    "ctrl_dep_only": ([comp(0, 5000), coll(1, ALL_REDUCE, MiB, ctrl_deps=[0])],
                      RING4_AR_1MIB, RING4_AR_1MIB - 5000),
}


@pytest.mark.parametrize("name", OVERLAP_CASES)
def test_compute_communication_overlap(make_case, name):
    """G11 on Ring[4] 100 GB/s 500 ns, every NPU the same workload."""
    nodes, t, e = OVERLAP_CASES[name]
    case = make_case(**RING4)
    case.same_workload(nodes)
    assert run_ok(case).finishes == all_npus(case, t, e)


def test_casys_node_type_numbering(make_case):
    """§5.2: with --node-type-numbering=casys, COMP is 5 and COMM_COLL 8 (LLMServingSim
    main's Chakra fork): G11's dependent case, 5000 + 19183, E = 19183."""
    casys_comp, casys_coll = 5, 8
    case = make_case(**RING4)
    case.same_workload([node(0, casys_comp, duration=5000),
                        node(1, casys_coll, deps=[0], comm_type=ALL_REDUCE, comm_size=MiB)])
    finishes = run_ok(case, ["--node-type-numbering=casys"]).finishes
    assert finishes == all_npus(case, 5000 + RING4_AR_1MIB, RING4_AR_1MIB)


# ---------------------------------------------------------------- G12: LLM-shaped iterations

def test_tensor_parallel_iteration(make_case):
    """G12a: TP=2 on FC[2] 256 GB/s 0 ns, splits 4. Loads serialise on the comm slot:
    ⌊4096/512⌋ = 8, then ⌊1024/512⌋ = 2 → 10; COMP 500 + 1000 → 1510; AR 1024 B: 4 chunks of
    256 B, m = 128 → T = ⌊0.47⌋ = 0, P = 0, each 2·0 + 3·10 = 30 → 1630; COMP 250 → 1880;
    store 2 → 1882; E = 1882 − (500 + 1000 + 250) = 132."""
    case = make_case(**net(["FullyConnected"], [2], [256], [0]), system=system_config(preferred_dataset_splits=4))
    case.same_workload([
        mem_load(0, 4096), mem_load(1, 1024), comp(2, 500, deps=[1, 0]), comp(3, 1000, deps=[2]),
        coll(4, ALL_REDUCE, 1024, deps=[3]), comp(5, 250, deps=[4]), mem_store(6, 1024, deps=[5])])
    t = (4096 // 512 + 1024 // 512) + 500 + 1000 + 4 * (2 * T(128, 1, 0, 256) + 3 * D) + 250 + 1024 // 512
    assert run_ok(case).finishes == all_npus(case, t, t - (500 + 1000 + 250))


def test_pipeline_parallel_iteration(make_case):
    """G12b: PP=2. NPU0: load 2048 (4) → COMP 1000 → SEND 2048 (T = ⌊7.45⌋ = 7): 1011, E = 11.
    NPU1: RECV → COMP 700 → store 2048 (4): 1011 + 700 + 4 = 1715, E = 1715 − 700 = 1015."""
    case = make_case(**net(["FullyConnected"], [2], [256], [0]))
    case.workload({0: [mem_load(0, 2048), comp(1, 1000, deps=[0]), send(2, 0, 1, 2048, deps=[1])],
                   1: [recv(0, 0, 1, 2048), comp(1, 700, deps=[0]), mem_store(2, 2048, deps=[1])]})
    sent = 2048 // 512 + 1000 + T(2048, 1, 0, 256)
    stored = sent + 700 + 2048 // 512
    assert run_ok(case).finishes == {0: (sent, sent - 1000), 1: (stored, stored - 700)}
