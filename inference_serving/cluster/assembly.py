"""The cluster around the instances: where requests go, the engine's network, what the run reports.

One instance from the flags keeps the engine inputs of a single model replica (its TP x PP network,
its measured collective table); a cluster file gets the hierarchical network of its nodes
(backend/engine_config.Topology), each instance's tensor-parallel groups as communicator groups and
each instance's measured collectives limited to its own NPUs (instances may run on different GPUs).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..backend.engine_config import Link, SystemConfig, Topology
from ..config.run_config import RunConfig
from ..errors import InputError
from ..serving.arrivals import Arrivals
from ..serving.instance import Instance
from ..serving.step_group import StepGroup
from .routers import router
from .spec import Cluster

if TYPE_CHECKING:
    from .disaggregation import KvTransfers

# features that a cluster file's run does not combine with several instances, and why
SINGLE_INSTANCE_FLAGS = {"pim": "processing-in-memory graphs are built for one instance",
                         "energy": "the power model covers one instance's NPUs",
                         "astra_sim": "ASTRA-sim's interactive protocol has no communicator groups",
                         "kv_tiers": "memory tiers are per NPU of one instance"}


def check_cluster_flags(config: RunConfig, cluster: Cluster) -> None:
    if len(cluster.instances) == 1:
        return
    for name, why in SINGLE_INSTANCE_FLAGS.items():
        if getattr(config, name):
            raise InputError(f"--{name.replace('_', '-')} cannot be used with several instances (--cluster, --dp): "
                             f"{why}")


def build_instances(cluster: Cluster, arrivals: Arrivals, requests, build) -> list:
    """`build(plan, feed, requests, file_prefix)` for every instance (simulate.build_instance); with several
    instances an error names the instance it is about."""
    check_cluster_flags(cluster.instances[0].config, cluster)
    if not cluster.several:
        return [build(cluster.instances[0], arrivals.inboxes[0], requests, "")]
    parts = []
    for k, plan in enumerate(cluster.instances):
        try:
            parts.append(build(plan, arrivals.inboxes[k], requests, f"{plan.name}-"))
        except InputError as err:
            where = f"--cluster {plan.config.cluster}: " if plan.config.cluster is not None else ""
            raise InputError(f"{where}instance {plan.name}: {err}") from None
    return parts


def _together(cluster: Cluster, instances: list) -> list[list]:
    """The instances (or their parts) that step together, in order: each data-parallel instance's ranks,
    every other instance alone."""
    groups: dict = {}
    for k, (plan, instance) in enumerate(zip(cluster.instances, instances)):
        groups.setdefault(plan.dp_group if plan.dp_group is not None else ("alone", k), []).append(instance)
    return list(groups.values())


def step_groups(cluster: Cluster, instances: list[Instance]) -> list[StepGroup]:
    return [StepGroup(ranks) for ranks in _together(cluster, instances)]


def attach_cluster(cluster: Cluster, arrivals: Arrivals, instances: list[Instance], parts) -> KvTransfers | None:
    """The router of the arrivals and, in a disaggregated cluster, the KV transfers from prefill to decode."""
    if len(instances) > 1:
        arrivals.router = router(cluster.router, instances, cluster.entry_instances(), cluster.router_seed)
    if not cluster.disaggregated:
        return None
    from .disaggregation import KvTransfers  # only a disaggregated cluster's run imports it

    decode = [k for k, i in enumerate(instances) if i.role == "decode"]
    chooser = router(cluster.decode_router, instances, decode, cluster.router_seed)
    return KvTransfers(arrivals, instances, [p.model for p in parts], chooser, cluster.npus_per_node * cluster.nodes)


def cluster_system(config: RunConfig, cluster: Cluster, parts, tables: list[dict | None]) -> SystemConfig:
    """The engine's network, system and memory configuration; `tables`: each instance's measured
    collectives (or None). (The --link_bw / --link_latency flags are already in `system_values`.)"""
    first = parts[0]
    values = first.system_values
    common = dict(local_bw_gbps=values["local_bw"], remote_bw_gbps=cluster.host_bandwidth_gbps,
                  memory_tiers=config.kv_tiers or ())
    intra = cluster.intra_node or Link(values["link_bw"], values["link_latency"])
    if len(parts) == 1 and cluster.nodes == 1:  # one instance in one node: its own TP x PP network
        return SystemConfig(tp=first.config.tp, pp=first.config.pp, link_bw_gbps=intra.bandwidth_gbps,
                            link_latency_ns=intra.latency_ns, collective_table=tables[0], **common)
    inter = cluster.inter_node or intra
    topology = Topology(cluster.npus_per_node, cluster.nodes, Link(intra.bandwidth_gbps, intra.latency_ns),
                        Link(inter.bandwidth_gbps, inter.latency_ns), cluster.disaggregated, _groups(cluster, parts))
    members = _collective_members(cluster, parts)
    tables = [_scoped(table, npus) for table, npus in zip(tables, members)]
    # data-parallel ranks bring the same entries for the same members: once each
    entries = list({(e["type"], e["npus"], tuple(e["members"])): e
                    for t in tables if t for e in t["collectives"]}.values())
    sources = dict.fromkeys(t["source"] for t in tables if t)
    table = {"source": "per instance: " + "; ".join(sources), "collectives": entries} if entries else None
    return SystemConfig(tp=1, pp=1, link_bw_gbps=intra.bandwidth_gbps, link_latency_ns=intra.latency_ns,
                        collective_table=table, topology=topology, **common)


def _collective_members(cluster: Cluster, parts) -> list[list[int]]:
    """The NPUs each instance's collectives span: its own, or its data-parallel group's."""
    members = []
    for group in _together(cluster, parts):
        npus = [npu for p in group for npu in p.instance.npus]
        members += [npus] * len(group)
    return members


def _groups(cluster: Cluster, parts) -> tuple[tuple[int, ...], ...]:
    """The communicator groups: each data-parallel group's NPUs, and every stage's tensor-parallel group
    of the other instances with more than one rank (DP ranks run tp 1)."""
    groups = []
    for group in _together(cluster, parts):
        if len(group) > 1:
            groups.append(tuple(npu for p in group for npu in p.instance.npus))
        elif group[0].instance.tp > 1:
            instance = group[0].instance
            npus = list(instance.npus)
            groups += [tuple(npus[s * instance.tp:(s + 1) * instance.tp]) for s in range(instance.pp)]
    return tuple(groups)


def _scoped(table: dict | None, members: list[int]) -> dict | None:
    """An instance's measured collectives, for groups of these NPUs only."""
    if table is None:
        return None
    return {**table, "collectives": [{**entry, "members": members} for entry in table["collectives"]]}


def cluster_config(cluster: Cluster, parts) -> dict:
    """The cluster's part of the effective configuration (a cluster file's run only)."""
    if not cluster.several:
        return {}
    return {"cluster": {"router": cluster.router, "router_seed": cluster.router_seed,
                        "decode_router": cluster.decode_router, "npus_per_node": cluster.npus_per_node,
                        "nodes": cluster.nodes,
                        "instances": [{"name": p.instance.name, "role": p.instance.role,
                                       "first_npu": p.instance.first_npu, "model_name": p.config.model_name,
                                       "hardware": p.config.hardware, "tp": p.config.tp, "pp": p.config.pp,
                                       "scheduler": p.config.scheduler, "kv_blocks": p.instance.kv.total_blocks}
                                      for p in parts]}}
