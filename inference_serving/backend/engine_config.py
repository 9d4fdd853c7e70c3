"""Engine inputs: network.yml, system.json, the remote-memory JSON and the communicator groups.

One instance from the command line is `pp` pipeline stages of `tp` NPUs. NPU ids put the
tensor-parallel rank fastest, so the network has dimension 0 = the TP group and dimension 1 = the
stages (dimensions of one NPU are left out; a single NPU keeps one dimension of size 1). Every
dimension is FullyConnected.

A cluster file (cluster/spec.py) gives a hierarchical network instead (`Topology`): dimension 0 the
NPUs of a node, dimension 1 the nodes, each with its own link; a disaggregated cluster adds a last
dimension of 2 that gives every NPU a KV port (NPU n's port is n + npus), so KV transfers run beside
the instance's compute and cross the intra-node or the inter-node link as their NPUs do (the engine
charges the lowest dimension in which two ids differ). Each instance's tensor-parallel groups are
communicator groups (groups.json), and every dimension has a ring implementation so a group
spanning nodes reduces hierarchically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..perf.answer_cache import AnswerCache, installed_version, source_digest

GIB_PER_GB = 1e9 / 2**30  # the engine's network unit is GB = 2^30 bytes; our flags use GB = 10^9
COLLECTIVE_TABLE = "collectives.json"  # beside system.json, which names it


@dataclass(frozen=True)
class Link:
    bandwidth_gbps: float    # GB/s, GB = 10^9 bytes
    latency_ns: float


@dataclass(frozen=True)
class Topology:
    """A cluster's network: `nodes` nodes of `npus_per_node` NPUs, with KV ports when `ports`."""

    npus_per_node: int
    nodes: int
    intra_node: Link
    inter_node: Link
    ports: bool = False
    groups: tuple[tuple[int, ...], ...] = ()  # communicator groups: the instances' tensor-parallel groups

    @property
    def compute_npus(self) -> int:
        return self.npus_per_node * self.nodes

    def dimensions(self) -> list[tuple[int, Link]]:
        dims = [(self.npus_per_node, self.intra_node), (self.nodes, self.inter_node)]
        if self.ports:
            dims.append((2, self.intra_node))  # an NPU and its port: never charged (no traffic between them)
        return [d for d in dims if d[0] > 1] or [dims[0]]


def times_all_reduce(table: dict | None, npus: int) -> bool:
    """Whether the measured collective table times the all-reduces of a group of `npus` (any size: the
    engine extends a table beyond its measured sizes)."""
    return table is not None and any(e["type"] == "ALL_REDUCE" and e["npus"] == npus for e in table["collectives"])


@dataclass(frozen=True)
class SystemConfig:
    tp: int
    pp: int
    link_bw_gbps: float      # GB/s, GB = 10^9 bytes
    link_latency_ns: float
    local_bw_gbps: float     # device memory bandwidth, GB/s
    remote_bw_gbps: float    # host (remote) memory bandwidth, GB/s
    endpoint_delay_ns: int = 10
    # Measured collective times (inference_serving/collectives.py), written as collectives.json; None: link model
    collective_table: dict | None = field(default=None, compare=False)
    memory_tiers: tuple = ()  # serving.kv.tiers.Tier of --kv-tiers: the remote memory's "memory-tiers"
    topology: Topology | None = None  # a cluster file's network (tp and pp are then unused)

    @property
    def npus(self) -> int:
        if self.topology is None:
            return self.tp * self.pp
        return self.topology.compute_npus * (2 if self.topology.ports else 1)

    def dimensions(self) -> list[tuple[int, Link]]:
        if self.topology is not None:
            return self.topology.dimensions()
        link = Link(self.link_bw_gbps, self.link_latency_ns)
        return [(n, link) for n in (self.tp, self.pp) if n > 1] or [(1, link)]


def network_yaml(cfg: SystemConfig) -> str:
    dims = cfg.dimensions()
    network = {"topology": ["FullyConnected"] * len(dims), "npus_count": [n for n, _ in dims],
               "bandwidth": [round(link.bandwidth_gbps * GIB_PER_GB, 6) for _, link in dims],
               "latency": [float(link.latency_ns) for _, link in dims]}
    return _yaml_answers().answer(("network", repr(network)), lambda: _dumped(network))


def _yaml_answers() -> AnswerCache:
    """PyYAML's texts of networks, keyed by its version and this file: a warm start imports no PyYAML."""
    return AnswerCache("network-yaml", (installed_version("yaml", "pyyaml"), source_digest(Path(__file__))))


def _dumped(network: dict) -> str:
    import yaml

    return yaml.safe_dump(network, default_flow_style=None, sort_keys=False)


def system_json(cfg: SystemConfig) -> dict:
    """Ring collectives, one chunk per collective: on the tensor-parallel dimension, or on every
    dimension of a cluster's network."""
    ring = ["ring"] * (len(cfg.dimensions()) if cfg.topology is not None else 1)
    return {
        "scheduling-policy": "LIFO",
        "endpoint-delay": cfg.endpoint_delay_ns,
        "active-chunks-per-dimension": 1,
        "preferred-dataset-splits": 1,
        "all-reduce-implementation": ring,
        "reduce-scatter-implementation": ring,
        "all-gather-implementation": ring,
        "all-to-all-implementation": ring,
        "collective-optimization": "localBWAware",
        "local-mem-bw": cfg.local_bw_gbps,
        **({"collective-table": COLLECTIVE_TABLE} if cfg.collective_table else {}),
    }


def memory_json(cfg: SystemConfig) -> dict:
    tiers = [{"name": t.name, "bandwidth": t.bandwidth_gbps, "latency": t.latency_ns} for t in cfg.memory_tiers]
    return {"memory-type": "PER_NPU_MEMORY_EXPANSION", "remote-mem-latency": 0,
            "remote-mem-bw": cfg.remote_bw_gbps, **({"memory-tiers": tiers} if tiers else {})}


def write_configs(cfg: SystemConfig, folder: Path) -> dict[str, Path]:
    """Writes the files into `folder` and returns their paths by engine flag."""
    paths = {"network": folder / "network.yml", "system": folder / "system.json",
             "memory": folder / "remote_memory.json"}
    groups = cfg.topology.groups if cfg.topology is not None else ()
    if groups:
        paths["groups"] = folder / "groups.json"
        paths["groups"].write_text(json.dumps({str(i): list(g) for i, g in enumerate(groups)}) + "\n")
    paths["network"].write_text(network_yaml(cfg))
    paths["system"].write_text(json.dumps(system_json(cfg), indent=2) + "\n")
    paths["memory"].write_text(json.dumps(memory_json(cfg), indent=2) + "\n")
    if cfg.collective_table:
        (folder / COLLECTIVE_TABLE).write_text(json.dumps(cfg.collective_table, indent=1) + "\n")
    return paths
