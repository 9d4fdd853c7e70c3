"""Chakra execution-trace encoding of graph ops (chakra.Op): nodes as protobuf records, cached per op.

(Its own module: protobuf is imported only by runs that write ET files.)
"""
from __future__ import annotations

import io
from functools import lru_cache

from chakra.schema.protobuf import et_def_pb2 as et
from chakra.src.third_party.utils.protolib import encodeMessage

ET_VERSION = "0.0.4"


def _attr(node: et.Node, name: str, field: str, value) -> None:
    attr = node.attr.add()
    attr.name = name
    setattr(attr, field, value)


@lru_cache(maxsize=1 << 16)
def _op_bytes(op, npu: int) -> bytes:
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


def _node(op, npu: int) -> et.Node:
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


@lru_cache(maxsize=1)
def metadata_record() -> bytes:
    out = io.BytesIO()
    encodeMessage(out, et.GlobalMetadata(version=ET_VERSION))
    return out.getvalue()


@lru_cache(maxsize=1 << 18)
def record(index: int, parents: tuple[int, ...], op, npu: int) -> bytes:
    """One length-prefixed node; concatenated encodings of one message type merge into one message."""
    body = _link_bytes(index, parents) + _op_bytes(op, npu)
    return _varint(len(body)) + body
