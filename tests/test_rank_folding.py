"""One chain for a tensor-parallel group whose ranks differ only in compute between measured all-reduces
(plan/chain.py slowest_ranks): built by hand here; tests/test_exact_shortcuts.py shows whole Orca runs
giving the same per-request CSVs with it and with every rank simulated (--no-reuse)."""
from inference_serving.plan.chain import Chain, Op, slowest_ranks

LOAD, STORE = Op("load", "input", 64), Op("store", "output", 8)
AR = Op("coll", "o_proj_allreduce", 4096)


def comp(ns: int, name: str = "attn+") -> Op:
    return Op("comp", name, ns)


def test_each_stretch_takes_its_slowest_rank():
    # rank 0 holds the long request's attention in the first stretch, rank 1 in the repeated one: the
    # group chain has 300 then 700 ns, and the head after the last all-reduce alike on both
    ranks = [Chain((LOAD, comp(300), AR), (comp(200), AR), 3, (comp(50), STORE)),
             Chain((LOAD, comp(100), AR), (comp(700), AR), 3, (comp(50), STORE))]
    assert slowest_ranks(ranks) == Chain((LOAD, comp(300), AR), (comp(700), AR), 3, (comp(50), STORE))


def test_ranks_that_end_apart_or_differ_twice_in_a_stretch_are_not_folded():
    # after the last all-reduce rank 1 computes longer: the ranks would end at different ticks
    assert slowest_ranks([Chain((LOAD, comp(100), AR, comp(50), STORE), (), 0, ()),
                          Chain((LOAD, comp(100), AR, comp(60), STORE), (), 0, ())]) is None
    # two differing ops in one stretch: 100 + 40 against 30 + 90, the slowest at each place (100 + 90)
    # would be longer than either rank
    assert slowest_ranks([Chain((comp(100), Op("load", "kv", 8), comp(40), AR, STORE), (), 0, ()),
                          Chain((comp(30), Op("load", "kv", 8), comp(90), AR, STORE), (), 0, ())]) is None
    # the unit's seam with itself: its last op (differing) and its first (differing) meet in one stretch
    assert slowest_ranks([Chain((AR,), (comp(1), AR, comp(5)), 3, (AR, STORE)),
                          Chain((AR,), (comp(2), AR, comp(4)), 3, (AR, STORE))]) is None


def test_anything_but_compute_differing_or_point_to_point_ops_are_not_folded():
    send = Op("send", "send_hidden", 64, 0, 1, 1)
    assert slowest_ranks([Chain((comp(1), AR, send), (), 0, ()), Chain((comp(2), AR, send), (), 0, ())]) is None
    assert slowest_ranks([Chain((comp(1), AR, Op("store", "output", 8)), (), 0, ()),
                          Chain((comp(1), AR, Op("store", "output", 16)), (), 0, ())]) is None
    assert slowest_ranks([Chain((comp(1), AR), (), 0, ()), Chain((comp(1), AR, STORE), (), 0, ())]) is None
