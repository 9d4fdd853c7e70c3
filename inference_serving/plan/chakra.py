"""Graph builder: an iteration trace becomes one Chakra execution trace per NPU.

Layout: stage s of the pipeline owns NPUs s*tp .. s*tp+tp-1. Every NPU of a stage runs the
stage's part of the plan (iteration.py) as a chain: KV swap nodes (MEM_STORE / MEM_LOAD), then the stage input (MEM_LOAD of
the token ids on stage 0, COMM_RECV of the hidden state from the previous stage otherwise), a COMP
node per row, an ALL_REDUCE COMM_COLL after every row that carries one (tensor parallelism),
and the stage output (MEM_STORE of the sampled token ids on the last stage, COMM_SEND to the next
stage otherwise). In selective plans the attention group of the k-th request of the batch runs
only on rank k mod tp (selective batching); in sharded plans every rank runs its share of the heads
of all requests. The per-step engine overhead, when there is one, is compute on the first stage.

With merging, consecutive COMP nodes of a chain become one node with the summed duration:
in a chain nothing else waits for the inner nodes and one NPU's compute slot runs them back to
back anyway, so the finish times cannot change (tests check this against the unmerged graph).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from . import et_encoding as wire
from .iteration import EVICT_ROW, TOKEN_ID_BYTES, Attention, Comm, Row, Trace


class Op(NamedTuple):
    """One node of an NPU's chain before it is numbered: kind is comp, coll, send, recv, load, store.
    (A named tuple: ops are hashed for the encoding cache, and tuples hash fast.)"""

    kind: str
    name: str
    value: int = 0          # ns for comp, bytes otherwise
    src: int = -1           # send/recv: the sending and the receiving NPU
    dst: int = -1
    tag: int = 0


class _ChainWriter:
    """Accumulates one rank's ops, summing consecutive compute into one op when merging."""

    def __init__(self, tp: int, merge: bool) -> None:
        self.tp, self.merge = tp, merge
        self.ops: list[Op] = []
        self.pending_name, self.pending_ns = "", 0

    def compute(self, name: str, ns: int) -> None:
        if not ns:
            return
        if not self.merge:
            self.ops.append(Op("comp", name, ns))
        elif self.pending_ns:
            self.pending_ns += ns
        else:
            self.pending_name, self.pending_ns = name + "+", ns

    def row(self, row: Row) -> None:
        self.compute(row.name, row.comp_ns)
        if row.comm is Comm.ALL_REDUCE and self.tp > 1:
            self.flush()
            self.ops.append(Op("coll", f"{row.name}_allreduce", row.comm_size))

    def attention(self, attention: Attention, rank: int, tp: int) -> None:
        """The rows of the requests on this rank (every `tp`-th from `rank`), summed when merging."""
        if not self.merge:
            for group in attention.groups()[rank::tp]:
                for row in group.rows:
                    self.row(row)
        else:
            ns = attention.rank_ns(rank, tp)
            self.compute(attention.first_busy_row(rank, tp) if ns and not self.pending_ns else "", ns)

    def flush(self) -> list[Op]:
        if self.pending_ns:
            self.ops.append(Op("comp", self.pending_name, self.pending_ns))
            self.pending_ns = 0
        return self.ops


def _rank_ops(items: list[Row | Attention], rank: int, tp: int, merge: bool, selective: bool = True) -> list[Op]:
    """The compute and collective ops one rank runs for a run of plan items (compute runs summed
    into one op with `merge`; with `selective` the k-th request's attention only on rank k mod tp)."""
    writer = _ChainWriter(tp, merge)
    for item in items:
        if isinstance(item, Attention):
            writer.attention(item, rank, tp) if selective else writer.attention(item, 0, 1)
        else:
            writer.row(item)
    return writer.flush()


def merge_compute(ops: list[Op]) -> list[Op]:
    """Runs of consecutive COMP ops become one op (named after the first, with a '+')."""
    merged: list[Op] = []
    for op in ops:
        if op.kind == "comp" and merged and merged[-1].kind == "comp":
            last = merged[-1]
            name = last.name if last.name.endswith("+") else last.name + "+"
            merged[-1] = Op("comp", name, last.value + op.value)
        else:
            merged.append(op)
    return merged


def stage_body(trace: Trace, stage: int, rank: int, merge: bool) -> list[Op]:
    """The compute and collective ops of one NPU's stage; the decoder block's ops are built once and
    repeated."""
    tp = trace.tp
    body = []
    if stage == 0:
        body = _rank_ops([trace.overhead, trace.embedding] if trace.overhead else [trace.embedding], rank, tp, merge)
    # merge(A + B) == merge(merge(A) + merge(B)): merging the block once keeps this cheap
    body += _rank_ops(trace.block, rank, tp, merge, trace.selective_attention) * trace.stage_layers[stage]
    if stage == trace.pp - 1:
        body += _rank_ops(trace.head, rank, tp, merge)
    return merge_compute(body) if merge else body


def stage_ops(trace: Trace, stage: int, rank: int, body: list[Op]) -> list[Op]:
    """The whole chain of one NPU: KV swaps, the stage input, `body`, the stage output."""
    tp, hidden_bytes = trace.tp, trace.embedding.output_size
    npu = stage * tp + rank
    ops = [Op("store" if r.name == EVICT_ROW else "load", r.name, r.weight_size) for r in trace.swaps]
    if stage == 0:
        ops.append(Op("load", "input", trace.embedding.input_size))
    else:
        ops.append(Op("recv", "recv_hidden", hidden_bytes // tp, src=npu - tp, dst=npu, tag=stage))
    ops += body
    if stage == trace.pp - 1:
        ops.append(Op("store", "output", trace.batch_requests * TOKEN_ID_BYTES))
    else:
        ops.append(Op("send", "send_hidden", hidden_bytes // tp, src=npu, dst=npu + tp, tag=stage + 1))
    return ops


_NOT_CPU = wire.attribute("is_cpu_op", wire.BOOL, 0)  # every node runs on the NPU, none on its host CPU


@lru_cache(maxsize=1 << 16)
def _op_fields(op: Op) -> bytes:
    """A node's fields except id and parents (the same op recurs in every layer and iteration)."""
    if op.kind == "comp":  # duration_micros holds ns: the engine reads ns there, as ASTRA-sim's casys fork does
        return wire.node_fields(op.name, wire.COMP_NODE, op.value, _NOT_CPU)
    if op.kind == "coll":
        attributes = wire.attribute("comm_type", wire.INT64, wire.ALL_REDUCE) + wire.attribute("comm_size", wire.INT64, op.value)
        return wire.node_fields(op.name, wire.COMM_COLL_NODE, 0, attributes + _NOT_CPU)
    if op.kind in ("send", "recv"):
        attributes = (wire.attribute("comm_src", wire.INT32, op.src) + wire.attribute("comm_dst", wire.INT32, op.dst)
                      + wire.attribute("comm_tag", wire.INT32, op.tag) + wire.attribute("comm_size", wire.INT64, op.value))
        kind = wire.COMM_SEND_NODE if op.kind == "send" else wire.COMM_RECV_NODE
        return wire.node_fields(op.name, kind, 0, attributes + _NOT_CPU)
    kind = wire.MEM_LOAD_NODE if op.kind == "load" else wire.MEM_STORE_NODE
    return wire.node_fields(op.name, kind, 0, wire.attribute("tensor_size", wire.UINT64, op.value) + _NOT_CPU)


def _parents(index: int, swaps: int) -> tuple[int, ...]:
    return (index - 1,) if index > swaps else tuple(range(swaps)) if index == swaps else ()


def serialize_chain(ops: list[Op], swaps: int = 0) -> bytes:
    """ET bytes of a chain: the first `swaps` nodes have no parents, the next waits for all of
    them, every later node waits for the one before it."""
    records = [wire.metadata_record()]
    for index, op in enumerate(ops):
        records.append(wire.record(wire.link_fields(index, _parents(index, swaps)) + _op_fields(op)))
    return b"".join(records)


@dataclass
class IterationGraph:
    """The ET bytes of every NPU for one iteration (NPUs with the same chain share one bytes object),
    and a digest identifying the whole graph. `foldable`: a single stage whose ranks all run the same
    chain, which the engine may simulate once for the group (engine `put ... fold`)."""

    files: dict[int, bytes]
    foldable: bool = False

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for npu in sorted(self.files):
            h.update(npu.to_bytes(4, "little"))
            h.update(self.files[npu])
        return h.hexdigest()

    def write(self, prefix: Path) -> None:
        for npu, data in self.files.items():
            Path(f"{prefix}.{npu}.et").write_bytes(data)

    def shared(self, npus: list[int]) -> list[tuple[list[int], bytes]]:
        """`npus` grouped by the chain they run, in order of their first NPU."""
        groups: dict[int, tuple[list[int], bytes]] = {}
        for npu in npus:
            data = self.files[npu]
            groups.setdefault(id(data), ([], data))[0].append(npu)
        return list(groups.values())


def build_graph(trace: Trace, merge: bool = True) -> IterationGraph:
    ranks_differ = trace.selective_attention and trace.tp > 1  # selective batching splits the attention
    files: dict[int, bytes] = {}
    for stage in range(trace.pp):
        bodies = [stage_body(trace, stage, rank, merge) for rank in range(trace.tp if ranks_differ else 1)]
        encoded: dict[tuple, bytes] = {}
        for rank in range(trace.tp):
            ops = stage_ops(trace, stage, rank, bodies[rank if ranks_differ else 0])
            key = tuple(ops)
            if key not in encoded:
                encoded[key] = serialize_chain(ops, len(trace.swaps))
            files[stage * trace.tp + rank] = encoded[key]
    foldable = trace.pp == 1 and trace.tp > 1 and len({id(data) for data in files.values()}) == 1
    return IterationGraph(files, foldable)


def wait_graph(duration_ns: int, npus: int) -> IterationGraph:
    """One COMP per NPU lasting `duration_ns`: how an engine without `advance` lets time pass."""
    data = serialize_chain([Op("comp", "wait", duration_ns)])
    return IterationGraph({npu: data for npu in range(npus)})
