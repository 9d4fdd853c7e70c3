"""The engine graph of a sub-batch-interleaved PIM step (plan/pim.py), on one NPU (TP 1, PP 1).

Nodes, in id order: the KV swaps, the token ids' load, the engine overhead and embedding (the whole
batch), then per layer and sub-batch s in {A, B}
  pre_s   its norm and q/k/v projections, and the attention rows that stay on the NPU (rope; prompts'
          attention), after post_s of the layer before;
  pim_s   its decode attention on the PIM slot, after pre_s;
  post_s  its o_proj, norm and MLP, after pim_s (or pre_s when it has no PIM work);
in the order pre_A, pre_B, pim_A, pim_B, post_A, post_B; then the head (the whole batch) after both
halves' last layer, and the token ids' store. The engine issues ready nodes in id order whenever their
slot frees, so pim_A runs while pre_B computes and pim_B while post_A does: the two halves pipeline
over the NPU and the PIM units. Any other plan goes to chakra.build_graph.
"""
from __future__ import annotations

from .chakra import IterationGraph, Op, build_graph, chain_ops, serialize_nodes
from .iteration import TOKEN_ID_BYTES, AttentionGroup, Row, Trace
from .pim import InterleavedTrace


def block_parts(block: list[Row | AttentionGroup]) -> tuple[list[Row], list[Row], list[Row]]:
    """(pre, pim, post) rows of a decoder block: before its attention groups (with their NPU rows),
    the PIM rows, after them."""
    first = next(i for i, item in enumerate(block) if isinstance(item, AttentionGroup))
    last = max(i for i, item in enumerate(block) if isinstance(item, AttentionGroup))
    groups = [row for item in block[first:last + 1] for row in item.rows]
    pre = [*block[:first], *(r for r in groups if not r.on_pim)]
    return pre, [r for r in groups if r.on_pim], list(block[last + 1:])


class _Dag:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.parents: list[tuple[int, ...]] = []

    def chain(self, ops: list[Op], after: tuple[int, ...]) -> tuple[int, ...]:
        """Appends `ops` as a chain waiting for `after`; returns the new tail (or `after` if empty)."""
        for op in ops:
            self.ops.append(op)
            self.parents.append(after)
            after = (len(self.ops) - 1,)
        return after


def _pim_ops(rows: list[Row], merge: bool) -> list[Op]:
    if merge and rows:
        return [Op("pim", rows[0].name + ("+" if len(rows) > 1 else ""), sum(r.comp_ns for r in rows))]
    return [Op("pim", r.name, r.comp_ns) for r in rows]


def interleaved_graph(trace: Trace, merge: bool = True, first_npu: int = 0) -> IterationGraph:
    if not isinstance(trace, InterleavedTrace):
        return build_graph(trace, merge, first_npu)
    dag = _Dag()
    swaps = tuple(dag.chain([Op("store" if r.stores else "load", r.name, r.weight_size, tier=r.memory_tier)], ())[0]
                  for r in trace.swaps)
    start = dag.chain([Op("load", "input", trace.embedding.input_size)], swaps)
    start = dag.chain(chain_ops([trace.overhead, trace.embedding] if trace.overhead else [trace.embedding], merge),
                      start)
    parts = [block_parts(half.block) for half in trace.halves]
    tails = [start, start]
    for _ in range(trace.stage_layers[0]):
        pre = [dag.chain(chain_ops(p[0], merge), tail) for p, tail in zip(parts, tails)]
        pim = [dag.chain(_pim_ops(p[1], merge), after) for p, after in zip(parts, pre)]
        tails = [dag.chain(chain_ops(p[2], merge), after) for p, after in zip(parts, pim)]
    end = dag.chain(chain_ops(trace.head, merge), tails[0] + tails[1])
    dag.chain([Op("store", "output", trace.batch_requests * TOKEN_ID_BYTES)], end)
    return IterationGraph({first_npu: serialize_nodes(dag.ops, dag.parents, first_npu)})
