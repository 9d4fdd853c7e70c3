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
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .iteration import TOKEN_ID_BYTES, AttentionGroup, Row, Trace
from .rank_ops import merge_compute, rank_ops

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


def serialize_chain(ops: list[Op], npu: int, swaps: int = 0) -> bytes:
    """ET bytes of a chain: the first `swaps` nodes have no parents, the next waits for all of
    them, every later node waits for the one before it."""
    parents = [(index - 1,) if index > swaps else tuple(range(swaps)) if index == swaps else ()
               for index in range(len(ops))]
    return serialize_nodes(ops, parents, npu)


def serialize_nodes(ops: list[Op], parents: list[tuple[int, ...]], npu: int) -> bytes:
    """ET bytes of nodes 0..n-1, node i waiting for the nodes `parents[i]`."""
    from .et_encoding import metadata_record, record  # protobuf (~30 ms to import) only where ET files are written
    return b"".join([metadata_record(), *(record(i, p, op, npu) for i, (op, p) in enumerate(zip(ops, parents)))])


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
