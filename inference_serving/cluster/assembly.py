"""The cluster around the instances: where requests go, the engine's network, what the run reports.

One instance from the flags keeps the engine inputs of a single model replica (its TP x PP network,
its measured collective table); a cluster file gets the hierarchical network of its nodes
(backend/engine_config.Topology), each instance's tensor-parallel groups as communicator groups and
each instance's measured collectives limited to its own NPUs (instances may run on different GPUs).
"""
from __future__ import annotations

from ..backend.engine_config import Link, SystemConfig, Topology
from ..config.run_config import RunConfig
from ..errors import InputError
from ..serving.arrivals import Arrivals
from ..serving.instance import Instance
from .disaggregation import KvTransfers
from .routers import router
from .spec import Cluster

# features that a cluster file's run does not combine with several instances, and why
SINGLE_INSTANCE_FLAGS = {"pim": "processing-in-memory graphs are built for one instance",
                         "energy": "the power model covers one instance's NPUs",
                         "astra_sim": "ASTRA-sim's interactive protocol has no communicator groups",
                         "kv_tiers": "memory tiers are per NPU of one instance"}


def check_cluster_flags(config: RunConfig, cluster: Cluster) -> None:
    if not cluster.from_file:
        return
    for name, why in SINGLE_INSTANCE_FLAGS.items():
        if getattr(config, name):
            raise InputError(f"--{name.replace('_', '-')} cannot be used with --cluster: {why}")


def build_instances(cluster: Cluster, arrivals: Arrivals, requests, build) -> list:
    """`build(plan, feed, requests, file_prefix)` for every instance (simulate.build_instance)."""
    check_cluster_flags(cluster.instances[0].config, cluster)
    return [build(plan, arrivals.inboxes[k], requests, f"{plan.name}-" if cluster.from_file else "")
            for k, plan in enumerate(cluster.instances)]


def attach_cluster(cluster: Cluster, arrivals: Arrivals, instances: list[Instance], parts) -> KvTransfers | None:
    """The router of the arrivals and, in a disaggregated cluster, the KV transfers from prefill to decode."""
    if len(instances) > 1:
        arrivals.router = router(cluster.router, instances, cluster.entry_instances(), cluster.router_seed)
    if not cluster.disaggregated:
        return None
    decode = [k for k, i in enumerate(instances) if i.role == "decode"]
    chooser = router(cluster.decode_router, instances, decode, cluster.router_seed)
    return KvTransfers(arrivals, instances, [p.model for p in parts], chooser, cluster.npus_per_node * cluster.nodes)


def cluster_system(config: RunConfig, cluster: Cluster, parts, tables: list[dict | None]) -> SystemConfig:
    """The engine's network, system and memory configuration; `tables`: each instance's measured
    collectives (or None)."""
    first = parts[0]
    values = first.system_values
    common = dict(local_bw_gbps=values["local_bw"], remote_bw_gbps=cluster.host_bandwidth_gbps,
                  memory_tiers=config.kv_tiers or ())
    if not cluster.from_file:
        return SystemConfig(tp=config.tp, pp=config.pp, link_bw_gbps=values["link_bw"],
                            link_latency_ns=values["link_latency"],
                            collective_table=tables[0], **common)
    intra = cluster.intra_node or Link(values["link_bw"], values["link_latency"])
    inter = cluster.inter_node or intra
    topology = Topology(cluster.npus_per_node, cluster.nodes, Link(intra.bandwidth_gbps, intra.latency_ns),
                        Link(inter.bandwidth_gbps, inter.latency_ns), cluster.disaggregated, _groups(parts))
    tables = [_scoped(table, p.instance) for table, p in zip(tables, parts)]
    entries = [entry for table in tables if table for entry in table["collectives"]]
    table = {"source": "per instance: " + "; ".join(t["source"] for t in tables if t), "collectives": entries} \
        if entries else None
    return SystemConfig(tp=1, pp=1, link_bw_gbps=intra.bandwidth_gbps, link_latency_ns=intra.latency_ns,
                        collective_table=table, topology=topology, **common)


def _groups(parts) -> tuple[tuple[int, ...], ...]:
    """Every stage of every instance with more than one rank: its tensor-parallel group."""
    groups = []
    for p in parts:
        instance = p.instance
        if instance.tp > 1:
            npus = list(instance.npus)
            groups += [tuple(npus[s * instance.tp:(s + 1) * instance.tp]) for s in range(instance.pp)]
    return tuple(groups)


def _scoped(table: dict | None, instance: Instance) -> dict | None:
    """The instance's measured collectives, for groups of its own NPUs only."""
    if table is None:
        return None
    members = list(instance.npus)
    return {**table, "collectives": [{**entry, "members": members} for entry in table["collectives"]]}


def cluster_config(cluster: Cluster, parts) -> dict:
    """The cluster's part of the effective configuration (a cluster file's run only)."""
    if not cluster.from_file:
        return {}
    return {"cluster": {"router": cluster.router, "router_seed": cluster.router_seed,
                        "decode_router": cluster.decode_router, "npus_per_node": cluster.npus_per_node,
                        "nodes": cluster.nodes,
                        "instances": [{"name": p.instance.name, "role": p.instance.role,
                                       "first_npu": p.instance.first_npu, "model_name": p.config.model_name,
                                       "hardware": p.config.hardware, "tp": p.config.tp, "pp": p.config.pp,
                                       "scheduler": p.config.scheduler, "kv_blocks": p.instance.kv.total_blocks}
                                      for p in parts]}}
