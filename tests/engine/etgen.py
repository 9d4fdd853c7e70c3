"""Writers for the engine's input files: Chakra ET traces and the three configs.

Attribute value types follow the reference (astra-sim-analytical.md §5.3): the C2
feeder reads each attribute from one specific oneof field only.
"""
import gzip
import io
import json
from pathlib import Path

from chakra.schema.protobuf.et_def_pb2 import (
    AttributeProto,
    BoolList,
    GlobalMetadata,
    Node,
    NodeType,
)
from chakra.src.third_party.utils.protolib import encodeMessage

# CollectiveCommType numbers (reference §5.2)
ALL_REDUCE, REDUCE, ALL_GATHER, BROADCAST = 0, 1, 2, 5
ALL_TO_ALL, REDUCE_SCATTER, BARRIER = 6, 7, 9

# attribute name -> oneof field that carries it
_ATTR_FIELD = {
    "is_cpu_op": "bool_val",
    "num_ops": "int64_val",
    "tensor_size": "uint64_val",
    "comm_type": "int64_val",
    "comm_size": "int64_val",
    "comm_src": "int32_val",
    "comm_dst": "int32_val",
    "comm_tag": "int32_val",
    "memory_tier": "int64_val",
    "is_pim_op": "bool_val",
}


def _attr(name, value):
    if name == "involved_dim":
        return AttributeProto(name=name, bool_list=BoolList(values=list(value)))
    return AttributeProto(name=name, **{_ATTR_FIELD[name]: value})


def node(node_id, node_type, name=None, deps=(), ctrl_deps=(), duration=0, **attrs):
    """One ET node; keyword attributes become typed AttributeProtos."""
    return Node(
        id=node_id,
        name=name or f"n{node_id}",
        type=node_type,
        data_deps=list(deps),
        ctrl_deps=list(ctrl_deps),
        duration_micros=duration,
        attr=[_attr(k, v) for k, v in attrs.items() if v is not None],
    )


def comp(node_id, ns, deps=(), cpu=None, num_ops=None, tensor_size=None, **kw):
    """COMP node lasting `ns` (C2 reads duration_micros as ns)."""
    return node(node_id, NodeType.COMP_NODE, duration=ns, deps=deps, is_cpu_op=cpu,
                num_ops=num_ops, tensor_size=tensor_size, **kw)


def coll(node_id, comm_type, size, deps=(), involved_dim=None, **kw):
    """COMM_COLL node of `size` bytes."""
    return node(node_id, NodeType.COMM_COLL_NODE, deps=deps, comm_type=comm_type,
                comm_size=size, involved_dim=involved_dim, **kw)


def send(node_id, src, dst, size, tag=0, deps=()):
    return node(node_id, NodeType.COMM_SEND_NODE, deps=deps, comm_src=src, comm_dst=dst,
                comm_size=size, comm_tag=tag)


def recv(node_id, src, dst, size, tag=0, deps=()):
    return node(node_id, NodeType.COMM_RECV_NODE, deps=deps, comm_src=src, comm_dst=dst,
                comm_size=size, comm_tag=tag)


def mem_load(node_id, size, deps=(), tier=None):
    return node(node_id, NodeType.MEM_LOAD_NODE, deps=deps, tensor_size=size, memory_tier=tier)


def mem_store(node_id, size, deps=(), tier=None):
    return node(node_id, NodeType.MEM_STORE_NODE, deps=deps, tensor_size=size, memory_tier=tier)


def et_bytes(nodes, with_metadata=True):
    """Length-delimited records: GlobalMetadata{version 0.0.4} then the nodes."""
    buf = io.BytesIO()
    if with_metadata:
        encodeMessage(buf, GlobalMetadata(version="0.0.4"))
    for n in nodes:
        encodeMessage(buf, n)
    return buf.getvalue()


def network_yaml(topology, npus, bandwidth, latency):
    """network.yml text with flow-style lists, as LLMServingSim writes it."""
    def flow(values):
        return "[" + ", ".join(str(v) for v in values) + "]"
    return (f"topology: {flow(topology)}\nnpus_count: {flow(npus)}\n"
            f"bandwidth: {flow(float(b) for b in bandwidth)}\nlatency: {flow(float(x) for x in latency)}\n")


DEFAULT_SYSTEM = {
    "scheduling-policy": "LIFO",
    "endpoint-delay": 10,
    "active-chunks-per-dimension": 1,
    "preferred-dataset-splits": 1,
    "all-reduce-implementation": ["ring"],
    "reduce-scatter-implementation": ["ring"],
    "all-gather-implementation": ["ring"],
    "all-to-all-implementation": ["ring"],
    "collective-optimization": "localBWAware",
    "local-mem-bw": 1600,
    "boost-mode": 0,
}

DEFAULT_MEMORY = {
    "memory-type": "PER_NPU_MEMORY_EXPANSION",
    "remote-mem-latency": 0,
    "remote-mem-bw": 512,
}


def system_config(impl=None, **overrides):
    """DEFAULT_SYSTEM (reference §7 defaults) with `impl` as all four implementation
    lists and `overrides` given with underscores for dashes."""
    cfg = dict(DEFAULT_SYSTEM)
    if impl is not None:
        for kind in ("all-reduce", "reduce-scatter", "all-gather", "all-to-all"):
            cfg[f"{kind}-implementation"] = list(impl)
    cfg.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return cfg


class Case:
    """A directory holding one simulation's inputs; file names are relative so the
    engine is run with the directory as its working directory."""

    def __init__(self, root, topology=("FullyConnected",), npus=(1,), bandwidth=(256,),
                 latency=(0,), system=None, memory=None, comm_group=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.num_npus = 1
        for n in npus:
            self.num_npus *= n
        self.write("network.yml", network_yaml(topology, npus, bandwidth, latency))
        self.write("system.json", json.dumps(system or system_config(), indent=1))
        self.write("remote_memory.json", json.dumps(memory or DEFAULT_MEMORY, indent=1))
        self.has_comm_group = comm_group is not None
        if self.has_comm_group:
            self.write("comm_group.json", json.dumps(comm_group))

    def write(self, name, content):
        path = self.root / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def workload(self, per_npu, prefix="workload", with_metadata=True, compress=False):
        """Write <prefix>.<i>.et for every NPU; NPUs missing from `per_npu` get an
        empty trace (metadata only); `compress` gzips the files."""
        for i in range(self.num_npus):
            data = et_bytes(per_npu.get(i, []), with_metadata)
            self.write(f"{prefix}.{i}.et", gzip.compress(data) if compress else data)
        return prefix

    def same_workload(self, nodes, prefix="workload"):
        """Write the same node list for every NPU."""
        return self.workload({i: nodes for i in range(self.num_npus)}, prefix)

    def config_args(self):
        args = ["--system-configuration=system.json", "--network-configuration=network.yml",
                "--remote-memory-configuration=remote_memory.json"]
        if self.has_comm_group:
            args.append("--comm-group-configuration=comm_group.json")
        return args

    def argv(self, prefix="workload", extra=()):
        return [f"--workload-configuration={prefix}"] + self.config_args() + list(extra)
