"""The merged ops of a run of items made piecewise (plan/rank_ops.py joined_rank_ops): the plain rows around a
layer's attention made once per distinct run and joined with the attention's ops give every_rank_ops's ops;
the numbers below are added up by hand."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inference_serving.plan.chain import Op
from inference_serving.plan.iteration import AttentionGroup, BatchedAttention, Comm, Row, SelectiveAttention
from inference_serving.plan.rank_ops import every_rank_ops, joined_rank_ops

GROUPS = [AttentionGroup(0, (Row("rope", 2), Row("attn", 7))), AttentionGroup(1, (Row("rope", 0), Row("attn", 4)))]
SELECTIVE = SelectiveAttention(2, (("rope", 9), ("attn", 4)), lambda: GROUPS)  # tp 2: request k on rank k
NORM, Q = Row("input_layernorm", 3), Row("q_proj", 10)
O_PROJ = Row("o_proj", 5, comm=Comm.ALL_REDUCE, comm_size=100)
POST = Row("post_layernorm", 6)


def test_the_attention_joins_the_compute_on_both_sides():
    rank0, rank1 = joined_rank_ops(Op, [NORM, Q, SELECTIVE, O_PROJ, POST], 2, True, (0, 1))
    assert rank0 == [Op("comp", "input_layernorm+", 3 + 10 + 9 + 5), Op("coll", "o_proj_allreduce", 100),
                     Op("comp", "post_layernorm+", 6)]
    assert rank1 == [Op("comp", "input_layernorm+", 3 + 10 + 4 + 5), Op("coll", "o_proj_allreduce", 100),
                     Op("comp", "post_layernorm+", 6)]


def test_a_run_of_rows_after_a_collective_starts_its_own_op():
    (rank0,) = joined_rank_ops(Op, [O_PROJ, BatchedAttention(8, lambda: []), POST], 2, False, (0,))
    assert rank0 == [Op("comp", "o_proj+", 5), Op("coll", "o_proj_allreduce", 100), Op("comp", "attn+", 8 + 6)]


def test_one_gpu_drops_the_all_reduce():
    (rank0,) = joined_rank_ops(Op, [Q, BatchedAttention(8, lambda: []), O_PROJ], 1, False, (0,))
    assert rank0 == [Op("comp", "q_proj+", 10 + 8 + 5)]


def test_attention_in_two_places_counts_the_groups_before():
    """The second set's request k runs on rank (2 + k) mod 2: the groups of the first set come before it."""
    rank0, rank1 = joined_rank_ops(Op, [SELECTIVE, O_PROJ, SELECTIVE], 2, True, (0, 1))
    assert rank0[-1] == Op("comp", "rope+", 9) and rank1[-1] == Op("comp", "attn+", 4)


ROWS = st.builds(Row, st.sampled_from(["a", "b", "c"]), st.integers(0, 50), comm=st.sampled_from(list(Comm)),
                 comm_size=st.integers(0, 9))
ATTENTION = st.one_of(st.builds(lambda ns: BatchedAttention(ns, lambda: []), st.integers(0, 50)),
                      st.builds(lambda a, b: SelectiveAttention(3, (("rope", a), ("attn", b)), lambda: []),
                                st.integers(0, 50), st.integers(0, 50)))


@settings(max_examples=300, deadline=None)
@given(st.lists(ROWS, max_size=6), st.lists(ATTENTION, max_size=2), st.lists(ROWS, max_size=6),
       st.sampled_from([1, 2]), st.booleans())
def test_piecewise_ops_are_the_whole_runs_ops(before, attention, after, tp, selective):
    items = [*before, *attention, *after]
    ranks = tuple(range(tp)) if selective else (0,)
    assert joined_rank_ops(Op, items, tp, selective, ranks) == every_rank_ops(Op, items, tp, True, selective, ranks)
