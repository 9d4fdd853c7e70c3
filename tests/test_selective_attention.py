"""Selective batching's attention as per-rank sums (plan/iteration.py SelectiveAttention): merged, each rank's
ops are those of its requests' rows written one by one; the numbers below are added up by hand."""
from __future__ import annotations

from inference_serving.inputs.hardware import load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.perf.provider import build_provider
from inference_serving.plan.builder import TraceBuilder
from inference_serving.plan.chain import Op
from inference_serving.plan.iteration import (AttentionGroup, BatchEntry, Comm, Row, SelectiveAttention,
                                              with_groups)
from inference_serving.plan.rank_ops import every_rank_ops

# three requests' rope and attention rows (ns): request 1's rope takes no time
GROUPS = [AttentionGroup(0, (Row("rope", 2), Row("attn", 7))),
          AttentionGroup(1, (Row("rope", 0), Row("attn", 4))),
          AttentionGroup(2, (Row("rope", 1), Row("attn", 3)))]
# tp 2: requests 0 and 2 on rank 0 (first timed row rope, 2 + 7 + 1 + 3 ns), request 1 on rank 1 (attn, 4 ns)
ATTENTION = SelectiveAttention(3, (("rope", 13), ("attn", 4)), lambda: GROUPS)
O_PROJ = Row("o_proj", 5, comm=Comm.ALL_REDUCE, comm_size=100)


def ops(items, merge=True):
    return every_rank_ops(Op, items, 2, merge)


def test_each_rank_sums_its_requests_rows():
    rank0, rank1 = ops([Row("q_proj", 10), ATTENTION, O_PROJ])
    assert rank0 == [Op("comp", "q_proj+", 10 + 13 + 5), Op("coll", "o_proj_allreduce", 100)]
    assert rank1 == [Op("comp", "q_proj+", 10 + 4 + 5), Op("coll", "o_proj_allreduce", 100)]


def test_a_residue_that_starts_a_compute_run_names_it():
    rank0, rank1 = ops([O_PROJ, ATTENTION])
    assert rank0[2:] == [Op("comp", "rope+", 13)]
    assert rank1[2:] == [Op("comp", "attn+", 4)]


def test_requests_before_shift_the_ranks():
    """A group ahead of the set (a draft pass repeats the block): the set's request k runs on rank (1 + k) mod 2."""
    ahead = AttentionGroup(9, (Row("attn", 100),))
    rank0, rank1 = ops([ahead, ATTENTION])
    assert rank0 == [Op("comp", "attn+", 100 + 4)]
    assert rank1 == [Op("comp", "rope+", 13)]


def test_merged_sums_match_the_groups_written_one_by_one():
    for items in ([Row("q_proj", 10), ATTENTION, O_PROJ], [O_PROJ, ATTENTION], [ATTENTION, ATTENTION, O_PROJ]):
        assert ops(items) == ops(with_groups(items))
        unmerged = ops(items, merge=False)
        assert [sum(op.value for op in rank if op.kind == "comp") for rank in unmerged] == \
               [sum(op.value for op in rank if op.kind == "comp") for rank in ops(items)]


def test_sharded_ranks_run_every_request():
    rank0, rank1 = every_rank_ops(Op, [ATTENTION], 2, True, selective=False)
    assert rank0 == rank1 == [Op("comp", "rope+", 2 + 7 + 4 + 1 + 3)]


def test_the_builder_sums_each_residue_of_its_groups():
    model = load_model("meta-llama/Llama-3.1-8B")
    builder = TraceBuilder(model, build_provider(model, load_hardware("H100"), 16), 16, tp=4)
    entries = [BatchEntry(k, 1 if k % 2 else 40, 10 * k) for k in range(7)]
    attention = next(item for item in builder.build(entries).block if isinstance(item, SelectiveAttention))
    assert attention.count == 7 and [g.request_id for g in attention.groups] == list(range(7))
    for residue, (name, ns) in enumerate(attention.residues):
        rows = [row for group in attention.groups[residue::4] for row in group.rows]
        assert ns == sum(row.comp_ns for row in rows) > 0
        assert name == next(row.name for row in rows if row.comp_ns)
