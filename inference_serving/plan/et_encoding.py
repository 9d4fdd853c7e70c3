"""Chakra execution-trace records written directly in protobuf's wire format.

The few fields our graphs use (et_def.proto of mlc-chakra: Node id 1, name 2, type 3, data_deps 5,
duration_micros 7, attr 10; AttributeProto name 1 and one value of the oneof) are encoded here
without the protobuf runtime: faster than building messages, and nothing to import at start-up.
Each part equals what protobuf's SerializeToString writes for it (tests check it): proto3 scalars left
out at their default, a oneof member written even when it is 0, repeated integers packed. A node is
written as its id and parents followed by its other fields: two encodings of one message type
concatenated parse as one message (protobuf's merge rule), so the second part can be cached per op. A
record is a base-128 length prefix and the message (protolib's framing).
"""
from __future__ import annotations

from functools import lru_cache

ET_VERSION = "0.0.4"

# et_def.proto NodeType and CollectiveCommType numbers
MEM_LOAD_NODE, MEM_STORE_NODE, COMP_NODE, COMM_SEND_NODE, COMM_RECV_NODE, COMM_COLL_NODE = 2, 3, 4, 5, 6, 7
ALL_REDUCE = 0

_VARINT, _LENGTH = 0, 2
# AttributeProto value fields by their type
INT32, INT64, UINT64, BOOL = 7, 9, 13, 27


def varint(value: int) -> bytes:
    """Base-128, least significant group first; negative numbers as their 64-bit two's complement."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _tag(field, _LENGTH) + varint(len(payload)) + payload


def _scalar(field: int, value: int) -> bytes:
    """A proto3 scalar: left out at 0."""
    return _tag(field, _VARINT) + varint(value) if value else b""


@lru_cache(maxsize=256)
def attribute(name: str, field: int, value: int) -> bytes:
    """Node.attr entry (field 10): an AttributeProto with its name and one integer-like value."""
    body = _length_delimited(1, name.encode()) + _tag(field, _VARINT) + varint(value)
    return _length_delimited(10, body)


def node_fields(name: str, node_type: int, duration: int, attributes: bytes) -> bytes:
    """Node fields 2, 3, 7 and 10 (name, type, duration_micros, attributes already encoded)."""
    return (_length_delimited(2, name.encode()) + _scalar(3, node_type) + _scalar(7, duration) + attributes)


@lru_cache(maxsize=1 << 16)
def link_fields(node_id: int, parents: tuple[int, ...]) -> bytes:
    """Node fields 1 and 5 (id, packed data_deps)."""
    deps = _length_delimited(5, b"".join(varint(p) for p in parents)) if parents else b""
    return _scalar(1, node_id) + deps


def record(message: bytes) -> bytes:
    return varint(len(message)) + message


@lru_cache(maxsize=1)
def metadata_record() -> bytes:
    """The GlobalMetadata record every trace starts with (version field 1)."""
    return record(_length_delimited(1, ET_VERSION.encode()))
