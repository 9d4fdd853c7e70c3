"""Chains (chain.py) as Chakra execution traces: one `.et` file per NPU, for --keep-traces and for
engines that read files (ASTRA-sim's interactive protocol)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from . import et_encoding as wire
from .chain import Chain, IterationGraph, Op

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


def write_graph(graph: IterationGraph, prefix: Path) -> None:
    """`<prefix>.<npu>.et` for every NPU."""
    encoded: dict[int, bytes] = {}
    for npu, chain in graph.chains.items():
        if id(chain) not in encoded:
            encoded[id(chain)] = serialize_chain(chain.ops(), chain.parallel)
        Path(f"{prefix}.{npu}.et").write_bytes(encoded[id(chain)])


def wait_graph(duration_ns: int, npus: int) -> IterationGraph:
    """One comp per NPU lasting `duration_ns`: how an engine without `advance` lets time pass."""
    chain = Chain((Op("comp", "wait", duration_ns),), (), 0, ())
    return IterationGraph({npu: chain for npu in range(npus)})
