"""Engine inputs from the command line: network.yml, system.json and the remote-memory JSON.

The cluster is `pp` pipeline stages of `tp` NPUs. NPU ids put the tensor-parallel rank fastest,
so the network has dimension 0 = the TP group and dimension 1 = the stages (dimensions of one NPU
are left out; a single NPU keeps one dimension of size 1). Every dimension is FullyConnected.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

GIB_PER_GB = 1e9 / 2**30  # the engine's network unit is GB = 2^30 bytes; our flags use GB = 10^9
COLLECTIVE_TABLE = "collectives.json"  # beside system.json, which names it


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


def network_yaml(cfg: SystemConfig) -> str:
    dims = [n for n in (cfg.tp, cfg.pp) if n > 1] or [1]
    network = {"topology": ["FullyConnected"] * len(dims), "npus_count": dims,
               "bandwidth": [round(cfg.link_bw_gbps * GIB_PER_GB, 6)] * len(dims),
               "latency": [float(cfg.link_latency_ns)] * len(dims)}
    return yaml.safe_dump(network, default_flow_style=None, sort_keys=False)


def system_json(cfg: SystemConfig) -> dict:
    """Ring collectives on the tensor-parallel dimension, one chunk per collective."""
    ring = ["ring"]
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
    """Writes the three files into `folder` and returns their paths by engine flag."""
    paths = {"network": folder / "network.yml", "system": folder / "system.json",
             "memory": folder / "remote_memory.json"}
    paths["network"].write_text(network_yaml(cfg))
    paths["system"].write_text(json.dumps(system_json(cfg), indent=2) + "\n")
    paths["memory"].write_text(json.dumps(memory_json(cfg), indent=2) + "\n")
    if cfg.collective_table:
        (folder / COLLECTIVE_TABLE).write_text(json.dumps(cfg.collective_table, indent=1) + "\n")
    return paths
