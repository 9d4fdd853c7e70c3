"""Our protobuf wire encoding of Chakra traces (plan/et_encoding.py) against the protobuf runtime."""
import io

from chakra.schema.protobuf import et_def_pb2 as et
from chakra.src.third_party.utils.protolib import decodeMessage

from inference_serving.plan.chain import Op
from inference_serving.plan.chakra import _op_fields, serialize_chain

OPS = [Op("store", "vllm_evict_kv", 1 << 20), Op("load", "vllm_load_kv", 0), Op("load", "input", 4096),
       Op("recv", "recv_hidden", 8192, src=3, dst=7, tag=2), Op("comp", "q_proj+", 123456789),
       Op("comp", "wait", 0), Op("coll", "o_proj_allreduce", 65536), Op("coll", "tiny", 0),
       Op("send", "send_hidden", 300, src=7, dst=11, tag=3), Op("store", "output", 12)]
KINDS = {"comp": et.COMP_NODE, "coll": et.COMM_COLL_NODE, "send": et.COMM_SEND_NODE, "recv": et.COMM_RECV_NODE,
         "load": et.MEM_LOAD_NODE, "store": et.MEM_STORE_NODE}
SWAPS = 2


def reference_node(op: Op) -> et.Node:
    """The node as the graph builder means it, built with the protobuf classes (no id, no parents)."""
    node = et.Node(name=op.name, type=KINDS[op.kind])
    attributes = []
    if op.kind == "comp":
        node.duration_micros = op.value
    elif op.kind == "coll":
        attributes = [("comm_type", "int64_val", et.ALL_REDUCE), ("comm_size", "int64_val", op.value)]
    elif op.kind in ("send", "recv"):
        attributes = [("comm_src", "int32_val", op.src), ("comm_dst", "int32_val", op.dst),
                      ("comm_tag", "int32_val", op.tag), ("comm_size", "int64_val", op.value)]
    else:
        attributes = [("tensor_size", "uint64_val", op.value)]
    for name, field, value in attributes + [("is_cpu_op", "bool_val", False)]:
        attribute = node.attr.add()
        attribute.name = name
        setattr(attribute, field, value)
    return node


def parents(index: int) -> list[int]:
    return [index - 1] if index > SWAPS else list(range(SWAPS)) if index == SWAPS else []


def test_each_nodes_fields_are_the_runtimes_bytes():
    for op in OPS:
        assert _op_fields(op) == reference_node(op).SerializeToString(), op


def test_a_chain_parses_to_the_metadata_and_the_chained_nodes():
    stream = io.BytesIO(serialize_chain(OPS, SWAPS))
    metadata = et.GlobalMetadata()
    assert decodeMessage(stream, metadata) and metadata == et.GlobalMetadata(version="0.0.4")
    for index, op in enumerate(OPS):
        node = et.Node()
        assert decodeMessage(stream, node)
        expected = reference_node(op)
        expected.id = index
        expected.data_deps.extend(parents(index))
        assert node == expected
    assert stream.read() == b""
