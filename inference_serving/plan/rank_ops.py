"""The compute and collective ops one rank of a tensor-parallel group runs for a run of plan items,
shared by the ET writer (chakra.py) and the engine's chain path (chain.py), each with its own op type.

With merging, consecutive compute becomes one op with the summed duration, named after the first
with a '+' (exact: in a chain nothing else waits for the inner ops). Merged ops of a run of items are
the merged ops of its pieces joined (merged where they meet), which `joined_rank_ops` uses to make the
ops of the plain rows around a layer's attention once per distinct run of rows rather than every step.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from .iteration import AttentionGroup, BatchedAttention, Comm, Row, SelectiveAttention, with_groups

# the op kind of each collective (an all-reduce is "coll"; the others are data-parallel MoE collectives,
# plan/moe_block.py, whose group is every data-parallel rank, not the tensor-parallel group)
COLLECTIVE_OPS = {Comm.ALL_REDUCE: "coll", Comm.ALL_GATHER: "allgather", Comm.REDUCE_SCATTER: "reducescatter"}


def merged(first, second):
    """Two consecutive comp ops as one (named after the first, with a '+')."""
    return summed(first, first.value + second.value)


def summed(op, value: int):
    """A comp op that stands for several, `value` ns in all: named after `op`, with a '+'. (Both op types
    start with kind, name, value; made as a tuple, since named tuples' _replace is slow for every step.)"""
    name = op.name if op.name.endswith("+") else op.name + "+"
    return tuple.__new__(type(op), (op.kind, name, value, *op[3:]))


def joined(first: Sequence, second: Sequence) -> list:
    """Two merged runs of ops one after the other, merged where they meet."""
    if first and second and first[-1].kind == "comp" and second[0].kind == "comp":
        return [*first[:-1], merged(first[-1], second[0]), *second[1:]]
    return [*first, *second]


def merge_compute(ops: list) -> list:
    """Runs of consecutive comp ops become one op."""
    out: list = []
    for op in ops:
        if op.kind == "comp" and out and out[-1].kind == "comp":
            out[-1] = merged(out[-1], op)
        else:
            out.append(op)
    return out


class _RankWriter:
    """Accumulates one rank's ops, summing consecutive compute into one op when merging."""

    def __init__(self, op_type, tp: int, merge: bool) -> None:
        self.op, self.tp, self.merge = op_type, tp, merge
        self.ops: list = []
        self.pending_name, self.pending_ns = "", 0

    def row(self, row: Row) -> None:
        if row.on_pim:
            self.flush()
            self.ops.append(self.op("pim", row.name, row.comp_ns))
        elif row.comp_ns:
            if not self.merge:
                self.ops.append(self.op("comp", row.name, row.comp_ns))
            elif self.pending_ns:
                self.pending_ns += row.comp_ns
            else:
                self.pending_name, self.pending_ns = row.name + "+", row.comp_ns
        if row.comm is not Comm.NONE and (self.tp > 1 or row.comm is not Comm.ALL_REDUCE):
            self.flush()
            kind = COLLECTIVE_OPS[row.comm]
            self.ops.append(self.op(kind, f"{row.name}_{kind if kind != 'coll' else 'allreduce'}", row.comm_size))

    def flush(self) -> list:
        if self.pending_ns:
            self.ops.append(self.op("comp", self.pending_name, self.pending_ns))
            self.pending_ns = 0
        return self.ops


def rank_ops(op_type, items: list, rank: int, tp: int, merge: bool, selective: bool = True) -> list:
    """`op_type` ops of one rank (compute runs summed with `merge`; with `selective` the k-th
    request's attention group only on rank k mod tp). Merged, a BatchedAttention adds its sum as one
    row would: its requests' rows are compute only, and adding their shares one by one gives the sum;
    unmerged, its requests' groups are written one by one (it is only in sharded plans: every rank).
    A SelectiveAttention, merged, adds each rank's residue as one row (iteration.py); else its groups."""
    return every_rank_ops(op_type, items, tp, merge, selective, ranks=(rank,))[0]


def every_rank_ops(op_type, items: list, tp: int, merge: bool,
                   selective: bool = True, ranks: Sequence[int] | None = None) -> list[list]:
    """rank_ops of each of `ranks` (every rank of the group by default), in one pass over the items."""
    ranks = range(tp) if ranks is None else ranks
    writers = {rank: _RankWriter(op_type, tp, merge) for rank in ranks}
    everyone = list(writers.values())
    groups_before = 0
    for item in items if merge else with_groups(items):
        if isinstance(item, SelectiveAttention) and selective and len(item.residues) == tp:
            _add_residues(writers, item, groups_before, tp)
            groups_before += item.count
            continue
        if isinstance(item, (AttentionGroup, SelectiveAttention)):
            for group in item.groups if isinstance(item, SelectiveAttention) else (item,):
                owner = writers.get(groups_before % tp)
                for writer in everyone if not selective else [owner] if owner else []:
                    for row in group.rows:
                        writer.row(row)
                groups_before += 1
            continue
        row = Row("attn", item.comp_ns) if isinstance(item, BatchedAttention) else item
        for writer in everyone:
            writer.row(row)
    return [writer.flush() for writer in everyone]


def _add_residues(writers: dict[int, _RankWriter], item: SelectiveAttention, first: int, tp: int) -> None:
    """A merged SelectiveAttention whose first request is the run's `first`-th group: rank r runs the requests
    k with (first + k) mod tp = r, whose rows add up as their residue's one row would (plain compute)."""
    for rank, writer in writers.items():
        name, ns = item.residues[(rank - first) % tp]
        if ns:
            writer.row(Row(name, ns))


def joined_rank_ops(op_type, items: list, tp: int, selective: bool, ranks: Sequence[int]) -> list[list]:
    """every_rank_ops(op_type, items, tp, True, selective, ranks), its runs of plain rows made once per distinct
    run (they repeat from step to step: builder.py makes the rows of a token count once) and joined with the
    ops of the attention items between them. Exact: a writer's pending compute carries over a seam just as
    joining merges a comp op ending one piece with one starting the next. Items with attention in more than
    one place go to every_rank_ops whole (whose owners under selective batching count the groups before)."""
    attention = [k for k, item in enumerate(items) if type(item) is not Row]
    ranks = tuple(ranks)
    if not attention:
        return list(map(list, _row_run_ops(op_type, tuple(items), tp, ranks)))
    start, end = attention[0], attention[-1] + 1
    if end - start != len(attention):
        return every_rank_ops(op_type, items, tp, True, selective, ranks)
    before = _row_run_ops(op_type, tuple(items[:start]), tp, ranks)
    middle = every_rank_ops(op_type, items[start:end], tp, True, selective, ranks)
    after = _row_run_ops(op_type, tuple(items[end:]), tp, ranks)
    return [joined(joined(*pair), last) for pair, last in zip(zip(before, middle), after)]


@lru_cache(maxsize=1 << 12)
def _row_run_ops(op_type, rows: tuple[Row, ...], tp: int, ranks: tuple[int, ...]) -> tuple[tuple, ...]:
    """The merged ops of a run of plain rows on each rank (every rank runs every row)."""
    return tuple(map(tuple, every_rank_ops(op_type, list(rows), tp, True, True, ranks)))
