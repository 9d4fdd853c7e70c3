"""Two stand-in ranks give a tensor-parallel group's chain (plan/stand_ins.py, chain.stage_ranks): a case worked by
hand, the cases it leaves to every rank's body, and random blocks compared with every rank's bodies
(`stand_ins` off)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inference_serving.plan.chain import Chain, Op, stage_ranks
from inference_serving.plan.stand_ins import stand_in_blocks

AR = Op("coll", "o_proj_allreduce", 4096)
MLP = Op("comp", "post_layernorm+", 500)


def attention(ns: int, name: str = "input_layernorm+") -> Op:
    return Op("comp", name, ns)


def test_the_slowest_rank_at_each_place_and_the_bodies_made_when_read():
    # three ranks whose attention (merged with the norm and projections) takes 300, 700 and 100 ns; the
    # first stage's embedding (50 ns) merges with the first layer's; 4 layers: _repeated keeps the block whole
    # (it ends with an all-reduce), leading and trailing one layer each, the unit twice
    blocks = [[attention(ns), AR, MLP, AR] for ns in (300, 700, 100)]
    embedding, head = Op("comp", "embedding+", 50), Op("comp", "final_layernorm+", 90)
    assert stand_in_blocks(blocks) == ([attention(700), AR, MLP, AR], [attention(100), AR, MLP, AR])
    bodies, (group, own) = stage_ranks([[embedding]] * 3, [(blocks, 4)], [[head]] * 3, 3, True, True, {})
    slowest = (attention(700), AR, MLP, AR)
    assert group == Chain((Op("comp", "embedding+", 750), AR, MLP, AR), slowest, 2, (*slowest, head))
    assert not own
    assert callable(bodies)
    assert bodies()[1] == group and bodies()[2].unit == (attention(100), AR, MLP, AR)


def test_ranks_alike_give_one_block_and_their_own_chain():
    block = [attention(300), AR, MLP, AR]
    assert stand_in_blocks([block, list(block)]) == (block,)
    _, (group, own) = stage_ranks([[]] * 2, [([block, list(block)], 3)], [[]] * 2, 2, True, True, {})
    assert own and group == Chain(tuple(block), tuple(block), 1, tuple(block))


def test_places_that_may_merge_with_another_differing_op_are_left_to_every_rank():
    # a differing last op merges, named after itself, with what follows; a differing collective is no compute;
    # a differing op next to compute could merge with it; blocks of different lengths
    assert stand_in_blocks([[AR, attention(3)], [AR, attention(4)]]) is None
    assert stand_in_blocks([[attention(3), AR], [attention(3), Op("coll", "o_proj_allreduce", 8)]]) is None
    assert stand_in_blocks([[attention(3), MLP, AR], [attention(4), MLP, AR]]) is None
    assert stand_in_blocks([[attention(3), AR], [attention(3), AR, MLP]]) is None


def test_equal_times_under_other_names_stand_in_by_another_rank():
    blocks = [[attention(5, "a+"), AR], [attention(5, "b+"), AR]]
    assert stand_in_blocks(blocks) == ([attention(5, "a+"), AR], [attention(5, "b+"), AR])


COMP = st.builds(lambda ns, name: Op("comp", name, ns), st.integers(1, 4), st.sampled_from(["a", "a+", "b+"]))
OTHER = st.sampled_from([AR, Op("coll", "down_proj_allreduce", 8), Op("load", "kv", 64), Op("store", "out", 8),
                         Op("send", "send_hidden", 8, 0, 1, 1)])


@st.composite
def stages(draw):
    """Every rank's part ops of a stage: a block whose compute ops may differ among the ranks (in time, in
    name), the same (or not) first and last parts."""
    tp = draw(st.integers(2, 4))
    # mostly layers' shape, compute then an all-reduce; sometimes anything
    pairs = draw(st.lists(st.tuples(COMP, st.one_of(st.just(AR), OTHER)), min_size=1, max_size=3))
    base = [op for pair in pairs for op in pair] + draw(st.lists(st.one_of(COMP, OTHER), max_size=2))
    blocks = [[draw(COMP) if op.kind == "comp" and draw(st.booleans()) else op for op in base] for _ in range(tp)]
    if not draw(st.integers(0, 4)):
        blocks[-1] = blocks[-1][:-1]
    first, last = (draw(st.lists(st.one_of(COMP, OTHER), max_size=2)) for _ in range(2))
    firsts = [first] * tp if draw(st.integers(0, 4)) else [first] + [[*first, AR]] * (tp - 1)
    return firsts, [(blocks, draw(st.integers(1, 5)))], [last] * tp, tp


@settings(max_examples=400, deadline=None)
@given(stages())
def test_stand_ins_give_what_every_rank_gives(stage):
    first, middle, last, tp = stage
    fast_bodies, fast = stage_ranks(first, middle, last, tp, True, True, {})
    full_bodies, full = stage_ranks(first, middle, last, tp, True, True, {}, stand_ins=False)
    assert fast == full
    assert (fast_bodies() if callable(fast_bodies) else fast_bodies) == full_bodies
