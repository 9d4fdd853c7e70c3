"""Graph builder: an iteration trace becomes one chain of ops per NPU.

Layout: stage s of the pipeline owns NPUs s*tp .. s*tp+tp-1 (after the instance's first NPU). Every NPU of a stage runs the
stage's part of the plan (iteration.py) as a chain: KV swap ops (store / load), then the stage input
(load of the token ids on stage 0, recv of the hidden state from the previous stage otherwise), a
comp op per row, an all-reduce after every row that carries one (tensor parallelism), and the stage
output (store of the sampled token ids on the last stage, send to the next stage otherwise). In
selective plans the attention of the k-th request of the batch runs only on rank k mod tp (selective
batching); in sharded plans every rank runs its share of the heads of all requests. The per-step
engine overhead, when there is one, is compute on the first stage. The swaps have no parents, the
op after them waits for all of them, every later op for the one before it.

With merging, consecutive comp ops of a chain become one op with the summed duration: in a chain
nothing else waits for the inner ops and one NPU's compute slot runs them back to back anyway, so the
finish times cannot change (tests check this against the unmerged graph).

A chain keeps the decoder block's repetition: `leading`, then `unit` `times` times, then `trailing`
(chakra.py writes it out as ET nodes; the engine's `chain` command expands it itself), so building
and sending an iteration does not grow with the number of layers.

The chain path covers what the engine's `chain` command reads (comp, allreduce, load, store, send,
recv): plans with processing-in-memory rows or memory-tier swaps go to the engine as ET files built by
chakra.py (`supports`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from typing import NamedTuple, Sequence

from .iteration import TOKEN_ID_BYTES, GroupsWhenRead, Trace
from .rank_ops import every_rank_ops, joined, joined_rank_ops, merge_compute, merged, summed
from .stand_ins import alike, slowest_places, stand_in_blocks


class Op(NamedTuple):
    """One node of an NPU's chain before it is numbered: kind is comp, coll (an all-reduce), send,
    recv, load, store. (A named tuple: ops are hashed for the encoding cache, and tuples hash fast.)"""

    kind: str
    name: str
    value: int = 0          # ns for comp, bytes otherwise
    src: int = -1           # send/recv: the sending and the receiving NPU
    dst: int = -1
    tag: int = 0


class Chain(NamedTuple):
    """An NPU's ops: `leading`, `unit` repeated `times` times, `trailing`; the first `parallel` ops
    (the KV swaps) have no parents."""

    leading: tuple[Op, ...]
    unit: tuple[Op, ...]
    times: int
    trailing: tuple[Op, ...]
    parallel: int = 0

    def ops(self) -> list[Op]:
        return [*self.leading, *self.unit * self.times, *self.trailing]


KIND = attrgetter("kind")
FOLDABLE = frozenset(("comp", "coll", "load", "store"))  # the op kinds a group chain of slowest_ranks may hold


def supports(trace: Trace) -> bool:
    """Whether the plan is made of ops the engine's chain command reads: no processing-in-memory rows
    (the block's, flagged by plan/pim.py), no memory-tier swaps."""
    return not trace.on_pim and not any(row.memory_tier for row in trace.swaps)


def _join(first: list[Op], second: list[Op], merge: bool) -> list[Op]:
    """Two runs one after the other (merged where they meet, with `merge`)."""
    return joined(first, second) if merge else [*first, *second]


def _repeated(block: list[Op], times: int, merge: bool) -> tuple[list[Op], list[Op], int, list[Op]]:
    """(leading, unit, count, trailing) spelling `block` repeated `times` times (merged where one
    repetition meets the next); leading and trailing hold a repetition's ends, so what comes before
    and after only meets them."""
    if merge and len(block) == 1 and block[0].kind == "comp" and times > 1:
        op = block[0]
        return [summed(op, op.value * times)], [], 0, []
    if times < 3 or not block:
        return merge_compute(block * times) if merge else block * times, [], 0, []
    if merge and block[0].kind == "comp" and block[-1].kind == "comp":
        middle = block[1:-1]
        return [block[0]], [*middle, merged(block[-1], block[0])], times - 1, [*middle, block[-1]]
    return block, block, times - 2, block


def _part_ranks(trace: Trace, part, items: list, merge: bool, memo: dict) -> list[list[Op]]:
    """The ops of a part of the plan (`part` names it: "first", "last" or a block's id) on every rank that
    builds its own (all under selective attention, else rank 0), made once per graph in `memo` (every
    stage of a pipeline runs the same block)."""
    if part not in memo:
        ranks = range(trace.tp) if trace.selective_attention else (0,)
        memo[part] = (joined_rank_ops(Op, items, trace.tp, trace.selective_attention, ranks) if merge else
                      every_rank_ops(Op, items, trace.tp, merge, trace.selective_attention, ranks))
    return memo[part]


def _stage_parts(trace: Trace, stage: int, blocks: list, merge: bool, memo: dict) -> tuple[list, list, list]:
    """Per rank, the ops of a stage's parts: the embedding on the first stage, each block with its layer
    count (`blocks`: trace.stage_blocks), the head on the last (empty lists on the other stages)."""
    none = [[]] * (trace.tp if trace.selective_attention else 1)
    first = none if stage else _part_ranks(trace, "first", [trace.overhead, trace.embedding] if trace.overhead
                                           else [trace.embedding], merge, memo)
    last = _part_ranks(trace, "last", [*trace.head, *trace.draft], merge, memo) if stage == trace.pp - 1 else none
    return first, [(_part_ranks(trace, id(items), items, merge, memo), layers) for items, layers in blocks], last


def _body(first: list[Op], blocks: list[tuple[list[Op], int]], last: list[Op], merge: bool) -> Chain:
    """A stage's chain body from its parts' ops: `first`, each block's ops its layer count times, `last`."""
    if len(blocks) != 1:  # dense first layers before the MoE ones (or none): spelled out
        body = []
        for ops, layers in blocks:
            body += ops * layers
        ops = [*first, *body, *last]
        return Chain(tuple(merge_compute(ops) if merge else ops), (), 0, ())
    leading, unit, times, trailing = _repeated(*blocks[0], merge)
    if not times:
        return Chain(tuple(_join(_join(first, leading, merge), last, merge)), (), 0, ())
    return Chain(tuple(_join(first, leading, merge)), tuple(unit), times, tuple(_join(trailing, last, merge)))


def stage_ranks(first: list, middle: list, last: list, tp: int, merge: bool, by_slowest: bool, memo: dict,
                stand_ins: bool = True) -> tuple:
    """(a stage's rank bodies, its group body (_group_body)) from every rank's part ops (_stage_parts). Where
    two stand-in ranks give the group body (stand_ins.py; `stand_ins` off: every rank's body does, the
    same), the rank bodies are made only when read (a folded stage never reads them): a function."""
    def bodies() -> tuple[Chain, ...]:
        return tuple(_body(first[r], [(ops[r], layers) for ops, layers in middle], last[r], merge)
                     for r in range(len(first)))

    blocks_in = _stand_in_blocks(first, middle, last, memo) if by_slowest and stand_ins and len(first) > 1 else None
    if blocks_in is None:
        made = bodies()
        return made, _group_body(made, tp, by_slowest)
    layers = middle[0][1]
    return bodies, _group_body(tuple(_body(first[0], [(block, layers)], last[0], merge) for block in blocks_in),
                               tp, by_slowest)


def _stand_in_blocks(first: list, middle: list, last: list, memo: dict) -> tuple[list, ...] | None:
    """stand_in_blocks of the stage's one block (once per block, in `memo`) where its first and last parts
    are alike on every rank, else None."""
    if len(middle) != 1 or not alike(first) or not alike(last):
        return None
    key = "stand-ins", id(middle[0][0])
    if key not in memo:
        memo[key] = stand_in_blocks(middle[0][0])
    return memo[key]


def stage_chain(trace: Trace, stage: int, rank: int, body: Chain, first_npu: int = 0) -> Chain:
    """The whole chain of one NPU (the instance's NPUs start at `first_npu`): KV swaps, the stage
    input, `body`, the stage output."""
    tp, hidden_bytes = trace.tp, trace.embedding.output_size
    npu = first_npu + stage * tp + rank
    before = [Op("store" if r.stores else "load", r.name, r.weight_size) for r in trace.swaps]
    if stage == 0:
        before.append(Op("load", "input", trace.embedding.input_size))
    else:
        before.append(Op("recv", "recv_hidden", hidden_bytes // tp, src=npu - tp, dst=npu, tag=stage))
    if stage == trace.pp - 1:
        after = Op("store", "output", trace.batch_requests * TOKEN_ID_BYTES)
    else:
        after = Op("send", "send_hidden", hidden_bytes // tp, src=npu, dst=npu + tp, tag=stage + 1)
    return Chain((*before, *body.leading), body.unit, body.times, (*body.trailing, after), len(trace.swaps))


@lru_cache(maxsize=1 << 16)
def _op_line(op: Op) -> str:
    """The op's line, its newline included."""
    if op.kind in ("send", "recv"):
        return f"{op.kind} {op.value} {op.src} {op.dst} {op.tag} {op.name}\n"
    return f"{'allreduce' if op.kind == 'coll' else op.kind} {op.value} {op.name}\n"


@lru_cache(maxsize=1 << 10)
def _unit_text(unit: tuple[Op, ...]) -> str:
    """The lines of a repeated run (one body's unit is shared by the chains of every stage and rank that
    run it, so it is written once)."""
    return "".join(map(_op_line, unit))


def listing(chain: Chain) -> bytes:
    """The chain as the engine's `chain` command reads it (astra-sim/README.md): the parallel count,
    then one op per line, the repeated run once behind `repeat <times> <lines>`."""
    repeat = f"repeat {chain.times} {len(chain.unit)}\n" + _unit_text(chain.unit) if chain.times else ""
    return (f"{chain.parallel}\n" + "".join(map(_op_line, chain.leading)) + repeat
            + "".join(map(_op_line, chain.trailing))).encode()


class GroupChain(NamedTuple):
    """The chain a pipeline stage's whole tensor-parallel group may run simulated once: its first rank's,
    sends and receives included (the engine shifts them for the others). `own`: it is every rank's own
    chain, so the group may as well run it unfolded; else it is slowest_ranks' chain, exact only folded."""

    chain: Chain
    own: bool


@dataclass
class IterationGraph:
    """One iteration's chains: per pipeline stage each rank's body (one for all ranks when they run the
    same) and the chain its whole group may run folded (engine `chain ... fold`), or None; every NPU's own
    chain is made from them where it is needed (`stage_chains`: NPUs with the same chain share one
    object), and a digest identifies the whole graph."""

    trace: Trace
    first_npu: int
    bodies: list  # per stage: its ranks' bodies, or the function that makes them (rank_bodies)
    stage_groups: tuple[GroupChain | None, ...]
    _stages: dict[int, dict[int, Chain]] = field(default_factory=dict, repr=False)
    _listings: dict[int, bytes] = field(default_factory=dict, repr=False)

    def stage_chains(self, stage: int) -> dict[int, Chain]:
        """The chain of every NPU of the stage."""
        if stage not in self._stages:
            trace, bodies, same = self.trace, self.rank_bodies(stage), {}
            chains = (stage_chain(trace, stage, rank, bodies[rank % len(bodies)], self.first_npu)
                      for rank in range(trace.tp))
            self._stages[stage] = {self.first_npu + stage * trace.tp + rank: same.setdefault(chain, chain)
                                   for rank, chain in enumerate(chains)}
        return self._stages[stage]

    def rank_bodies(self, stage: int) -> tuple[Chain, ...]:
        """The stage's rank bodies (one for all ranks when they run the same), made now where they were not."""
        if callable(self.bodies[stage]):
            self.bodies[stage] = self.bodies[stage]()
        return self.bodies[stage]

    def listing(self, chain: Chain) -> bytes:
        """listing(chain) of one of this graph's chains, written once per chain."""
        if id(chain) not in self._listings:
            self._listings[id(chain)] = listing(chain)
        return self._listings[id(chain)]

    @property
    def digest(self) -> bytes:
        """sha256 of what the iteration's time depends on, stage by stage: the chain the stage's whole group may
        run folded, where it has one (every rank's own chain is that one shifted, so folded or not the group
        runs alike; or it is the slowest ranks' chain, which runs folded only), else every NPU's listing (the
        listing determines the chain's nodes)."""
        h, tp = hashlib.sha256(), self.trace.tp
        for stage, group in enumerate(self.stage_groups):
            if group is not None:
                h.update(b"group %d %d %d\n" % (self.first_npu + stage * tp, tp, group.own))
                h.update(self.listing(group.chain))
                continue
            for npu, chain in self.stage_chains(stage).items():
                h.update(npu.to_bytes(4, "little"))
                h.update(self.listing(chain))
        return h.digest()

    def shared(self, stage: int, npus: list[int]) -> list[tuple[list[int], Chain]]:
        """`npus` of the stage grouped by the chain they run, in order of their first NPU."""
        chains = self.stage_chains(stage)
        groups: dict[int, tuple[list[int], Chain]] = {}
        for npu in npus:
            chain = chains[npu]
            groups.setdefault(id(chain), ([], chain))[0].append(npu)
        return list(groups.values())


def _body_key(trace: Trace, stage: int, blocks: list) -> tuple:
    """What a stage's body depends on besides the rank: whether it is the first or the last stage, and
    its blocks with their layer counts (the middle stages of a pipeline are usually alike)."""
    return stage == 0, stage == trace.pp - 1, tuple((id(items), layers) for items, layers in blocks)


def build_graph(trace: Trace, merge: bool = True, first_npu: int = 0,
                measured_all_reduce: bool = False) -> IterationGraph:
    """Each stage's bodies and group chain; `measured_all_reduce`: the engine times the group's all-reduces
    by its measured table, so ranks that differ in compute alone may run one chain (slowest_ranks), found
    from two stand-in ranks where they give it (stage_ranks)."""
    built: dict[tuple, tuple] = {}
    bodies, groups, memo = [], [], {}
    for stage in range(trace.pp):
        blocks = trace.stage_blocks(stage)
        key = _body_key(trace, stage, blocks)
        if key not in built:
            built[key] = stage_ranks(*_stage_parts(trace, stage, blocks, merge, memo), trace.tp, merge,
                                     merge and measured_all_reduce, memo)
        ranks, group_body = built[key]
        bodies.append(ranks)
        if group_body is not None:
            body, own = group_body
            group_body = GroupChain(stage_chain(trace, stage, 0, body, first_npu), own)
        groups.append(group_body)
    return IterationGraph(trace, first_npu, bodies, tuple(groups))


def plan_key(trace: Trace) -> tuple:
    """A plan as a key of its iteration's time: its fields, lists as tuples and attention items by what their
    equality compares (not their groups' maker). build_graph reads nothing else of a plan, so equal keys
    give equal graphs; the key holds the plan's rows, not its requests."""
    return type(trace), *[tuple([item.key if isinstance(item, GroupsWhenRead) else item for item in value])
                          if type(value) is list else value for value in vars(trace).values()]


def _group_body(bodies: tuple[Chain, ...], tp: int, by_slowest: bool) -> tuple[Chain, bool] | None:
    """(the body a stage's whole group may run, whether it is every rank's own): the ranks' common body, or
    with `by_slowest` the group body of ranks that differ in compute alone (slowest_ranks; a stage's input
    and output are the same on every rank, so they start the body together and leave it together)."""
    if tp == 1:
        return None
    if alike(bodies):
        return bodies[0], True
    slowest = slowest_ranks(bodies) if by_slowest else None
    return None if slowest is None else (slowest, False)


def slowest_ranks(chains: Sequence[Chain]) -> Chain | None:
    """One chain for a tensor-parallel group whose ranks start together and differ only in compute, or None.

    A measured all-reduce ends the table's time after the last rank issued it (astra-sim/README.md,
    "Timing rule"), whatever the others did meanwhile; so between two all-reduces the group waits for its
    slowest rank, and every rank leaves each all-reduce at the same tick. Where each stretch between
    all-reduces has at most one op that differs among the ranks, a compute op, the chain made of the
    slowest rank's op at each such place reaches every all-reduce, and the end, at the ticks each rank's
    own chain does; the stretch after the last all-reduce must be the same on every rank (else the
    ranks end apart). Any other collective, a send or a receive: None."""
    first = chains[0]
    shape = _shape(first)
    if any(_shape(c) != shape for c in chains):
        return None
    parts = [slowest_places([getattr(c, part) for c in chains]) for part in ("leading", "unit", "trailing")]
    if None in parts:
        return None
    (leading, leading_differ), (unit, unit_differ), (trailing, trailing_differ) = parts
    # the ops in the order they run, the unit twice for its seam with itself, and where the ranks differ
    repeats = min(first.times, 2)
    kinds = [*map(KIND, leading), *map(KIND, unit * repeats), *map(KIND, trailing)]
    if not FOLDABLE.issuperset(kinds):
        return None
    after_unit = len(leading) + repeats * len(unit)
    differ = [*leading_differ, *(len(leading) + r * len(unit) + k for r in range(repeats) for k in unit_differ),
              *(after_unit + k for k in trailing_differ)]
    # an all-reduce between two differing ops, and after the last
    if any("coll" not in kinds[a + 1:b] for a, b in zip(differ, [*differ[1:], len(kinds)])):
        return None
    return Chain(leading, unit, first.times, trailing, first.parallel)


def _shape(chain: Chain) -> tuple[int, ...]:
    return chain.times, chain.parallel, len(chain.leading), len(chain.unit), len(chain.trailing)
