"""Graph builder: an iteration trace becomes one Chakra execution trace per NPU.

Layout: stage s of the pipeline owns NPUs s*tp .. s*tp+tp-1. Every NPU of a stage runs the
stage's part of the plan (iteration.py) as a chain: KV swap nodes (MEM_STORE / MEM_LOAD, a memory tier's with
its `memory_tier` attribute), then the stage input (MEM_LOAD of
the token ids on stage 0, COMM_RECV of the hidden state from the previous stage otherwise), a COMP
node per row, an ALL_REDUCE COMM_COLL after every row that carries one (tensor parallelism),
and the stage output (MEM_STORE of the sampled token ids on the last stage, COMM_SEND to the next
stage otherwise). In selective plans the attention group of the k-th request of the batch runs
only on rank k mod tp (selective batching); in sharded plans every rank runs its share of the heads
of all requests. The per-step engine overhead, when there is one, is compute on the first stage; a
drafter's passes (speculative decoding) follow the head.

With merging, consecutive COMP nodes of a chain become one node with the summed duration:
in a chain nothing else waits for the inner nodes and one NPU's compute slot runs them back to
back anyway, so the finish times cannot change (tests check this against the unmerged graph).
"""
from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from chakra.schema.protobuf import et_def_pb2 as et
from chakra.src.third_party.utils.protolib import encodeMessage

from .iteration import TOKEN_ID_BYTES, AttentionGroup, Row, Trace
from .rank_ops import merge_compute, rank_ops

ET_VERSION = "0.0.4"


class Op(NamedTuple):
    """One node of an NPU's chain before it is numbered: kind is comp, pim (compute on the NPU's
    processing-in-memory units), coll, send, recv, load, store.
    (A named tuple: ops are hashed for the encoding caches, and tuples hash fast.)"""

    kind: str
    name: str
    value: int = 0          # ns for comp, bytes otherwise
    peer: int = -1          # send/recv partner
    tag: int = 0
    tier: int = 0           # load/store: the memory tier (0 = the remote memory)


def _rank_ops(items: list[Row | AttentionGroup], rank: int, tp: int, merge: bool, selective: bool = True) -> list[Op]:
    return rank_ops(Op, items, rank, tp, merge, selective)


def chain_ops(items: list[Row | AttentionGroup], merge: bool) -> list[Op]:
    """The ops of a run of plan items on a single NPU (no tensor parallelism)."""
    return _rank_ops(items, 0, 1, merge)


def stage_ops(trace: Trace, stage: int, rank: int, merge: bool, first_npu: int = 0) -> list[Op]:
    """The whole chain of one NPU (the instance's NPUs start at `first_npu`); the decoder block's ops
    are built once and repeated."""
    tp, hidden_bytes = trace.tp, trace.embedding.output_size
    npu = first_npu + stage * tp + rank
    ops = [Op("store" if r.stores else "load", r.name, r.weight_size, tier=r.memory_tier) for r in trace.swaps]
    if stage == 0:
        ops.append(Op("load", "input", trace.embedding.input_size))
        body = _rank_ops([trace.overhead, trace.embedding] if trace.overhead else [trace.embedding], rank, tp, merge)
    else:
        ops.append(Op("recv", "recv_hidden", hidden_bytes // tp, peer=npu - tp, tag=stage))
        body = []
    # merge(A + B) == merge(merge(A) + merge(B)): merging the block once keeps this cheap
    for block, layers in trace.stage_blocks(stage):
        body += _rank_ops(block, rank, tp, merge, trace.selective_attention) * layers
    last = stage == trace.pp - 1
    if last:
        body += _rank_ops([*trace.head, *trace.draft], rank, tp, merge, trace.selective_attention)
    ops += merge_compute(body) if merge else body
    if last:
        ops.append(Op("store", "output", trace.batch_requests * TOKEN_ID_BYTES))
    else:
        ops.append(Op("send", "send_hidden", hidden_bytes // tp, peer=npu + tp, tag=stage + 1))
    return ops


def _attr(node: et.Node, name: str, field: str, value) -> None:
    attr = node.attr.add()
    attr.name = name
    setattr(attr, field, value)


@lru_cache(maxsize=1 << 16)
def _op_bytes(op: Op, npu: int) -> bytes:
    """A node's serialized fields except id and parents (the same op recurs in every layer)."""
    return _node(op, npu).SerializeToString()


@lru_cache(maxsize=1 << 16)
def _link_bytes(index: int, parents: tuple[int, ...]) -> bytes:
    return et.Node(id=index, data_deps=parents).SerializeToString()


def _varint(value: int) -> bytes:
    """Base-128 length prefix of a record (the framing protolib.encodeMessage writes)."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


ET_COLLECTIVES = {"coll": et.ALL_REDUCE, "allgather": et.ALL_GATHER, "reducescatter": et.REDUCE_SCATTER}


def _node(op: Op, npu: int) -> et.Node:
    node = et.Node(name=op.name)
    if op.kind in ("comp", "pim"):
        node.type = et.COMP_NODE
        node.duration_micros = op.value  # the engine reads ns here, as ASTRA-sim's casys fork does
        if op.kind == "pim":
            _attr(node, "is_pim_op", "bool_val", True)
    elif op.kind in ET_COLLECTIVES:
        node.type = et.COMM_COLL_NODE
        _attr(node, "comm_type", "int64_val", ET_COLLECTIVES[op.kind])
        _attr(node, "comm_size", "int64_val", op.value)
    elif op.kind in ("send", "recv"):
        node.type = et.COMM_SEND_NODE if op.kind == "send" else et.COMM_RECV_NODE
        src, dst = (npu, op.peer) if op.kind == "send" else (op.peer, npu)
        _attr(node, "comm_src", "int32_val", src)
        _attr(node, "comm_dst", "int32_val", dst)
        _attr(node, "comm_tag", "int32_val", op.tag)
        _attr(node, "comm_size", "int64_val", op.value)
    else:
        node.type = et.MEM_LOAD_NODE if op.kind == "load" else et.MEM_STORE_NODE
        _attr(node, "tensor_size", "uint64_val", op.value)
        if op.tier:
            _attr(node, "memory_tier", "int64_val", op.tier)
    _attr(node, "is_cpu_op", "bool_val", False)  # every node runs on the NPU, none on its host CPU
    return node


def serialize_chain(ops: list[Op], npu: int, swaps: int = 0) -> bytes:
    """ET bytes of a chain: the first `swaps` nodes have no parents, the next waits for all of
    them, every later node waits for the one before it."""
    parents = [(index - 1,) if index > swaps else tuple(range(swaps)) if index == swaps else ()
               for index in range(len(ops))]
    return serialize_nodes(ops, parents, npu)


def serialize_nodes(ops: list[Op], parents: list[tuple[int, ...]], npu: int) -> bytes:
    """ET bytes of nodes 0..n-1, node i waiting for the nodes `parents[i]`."""
    return b"".join([_metadata_record(), *(_record(i, p, op, npu) for i, (op, p) in enumerate(zip(ops, parents)))])


@lru_cache(maxsize=1)
def _metadata_record() -> bytes:
    out = io.BytesIO()
    encodeMessage(out, et.GlobalMetadata(version=ET_VERSION))
    return out.getvalue()


@lru_cache(maxsize=1 << 18)
def _record(index: int, parents: tuple[int, ...], op: Op, npu: int) -> bytes:
    """One length-prefixed node; concatenated encodings of one message type merge into one message."""
    body = _link_bytes(index, parents) + _op_bytes(op, npu)
    return _varint(len(body)) + body


@dataclass
class IterationGraph:
    """The ET bytes of every NPU for one iteration, and a digest identifying the whole graph."""

    files: dict[int, bytes]

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


def build_graph(trace: Trace, merge: bool = True, first_npu: int = 0) -> IterationGraph:
    files = {}
    for stage in range(trace.pp):
        for rank in range(trace.tp):
            npu = first_npu + stage * trace.tp + rank
            files[npu] = serialize_chain(stage_ops(trace, stage, rank, merge, first_npu), npu, len(trace.swaps))
    return IterationGraph(files)


def wait_graph(duration_ns: int, npus: int) -> IterationGraph:
    """One COMP per NPU lasting `duration_ns`: how an engine without `advance` lets time pass."""
    op = Op("comp", "wait", duration_ns)
    return IterationGraph({npu: serialize_chain([op], npu) for npu in range(npus)})
