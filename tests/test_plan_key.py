"""An iteration's plan as the key of its time (plan/chain.py plan_key): equal plans give equal keys and equal
graphs, whatever requests they came from; the key keeps the rows, not the requests. And the graph's digest: a
folded stage's is its group chain's."""
from __future__ import annotations

from inference_serving.inputs.hardware import load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.perf.provider import build_provider
from inference_serving.plan.builder import TraceBuilder
from inference_serving.plan.chain import build_graph, plan_key
from inference_serving.plan.iteration import BatchedAttention, BatchEntry, SelectiveAttention

MODEL = load_model("meta-llama/Llama-3.1-8B")
PERF = build_provider(MODEL, load_hardware("H100"), 16)


def builder(selective: bool, tp: int = 2) -> TraceBuilder:
    return TraceBuilder(MODEL, PERF, 16, tp=tp, selective_attention=selective)


def leaves(value):
    """Everything the key holds, tuples (named ones included) and what is in them."""
    yield value
    if isinstance(value, tuple):
        for item in value:
            yield from leaves(item)


def test_requests_alike_in_shape_give_one_key_and_one_graph():
    for selective in (False, True):
        first = builder(selective).build([BatchEntry(0, 1, 100), BatchEntry(1, 1, 300)])
        other = builder(selective).build([BatchEntry(7, 1, 100), BatchEntry(9, 1, 300)])
        assert plan_key(first) == plan_key(other)
        assert build_graph(first).digest == build_graph(other).digest


def test_another_context_or_swap_is_another_key():
    b = builder(False)
    key = plan_key(b.build([BatchEntry(0, 1, 100), BatchEntry(1, 1, 300)]))
    assert plan_key(b.build([BatchEntry(0, 1, 100), BatchEntry(1, 1, 3000)])) != key
    assert plan_key(b.build([BatchEntry(0, 1, 100), BatchEntry(1, 1, 300)], evict_bytes=4096)) != key


def test_selective_ranks_are_part_of_the_key():
    """Rank 0 runs the first request and rank 1 the second: swapping a long and a short one moves the work."""
    b = builder(True)
    assert plan_key(b.build([BatchEntry(0, 1, 100), BatchEntry(1, 1, 8000)])) != \
        plan_key(b.build([BatchEntry(0, 1, 8000), BatchEntry(1, 1, 100)]))


def test_the_key_holds_no_request_and_no_maker_of_groups():
    for selective in (False, True):
        key = plan_key(builder(selective).build([BatchEntry(5, 1, 100), BatchEntry(6, 1, 300)]))
        assert not any(callable(leaf) and not isinstance(leaf, type) for leaf in leaves(key))
        assert not any(isinstance(leaf, (BatchEntry, BatchedAttention, SelectiveAttention)) for leaf in leaves(key))


def test_a_folded_stage_is_timed_by_its_group_chain():
    """Orca TP2 with measured all-reduces: the group runs the slowest rank's chain (slowest_ranks), so swapping a
    long and a short request between the ranks is another plan but the same graph digest; without the table the
    ranks run their own chains, and the digest tells them apart."""
    b = builder(True)
    one = b.build([BatchEntry(0, 1, 100), BatchEntry(1, 1, 8000)])
    swapped = b.build([BatchEntry(0, 1, 8000), BatchEntry(1, 1, 100)])
    folded = [build_graph(plan, measured_all_reduce=True) for plan in (one, swapped)]
    assert all(graph.stage_groups[0] is not None and not graph.stage_groups[0].own for graph in folded)
    assert folded[0].digest == folded[1].digest
    assert build_graph(one).digest != build_graph(swapped).digest
