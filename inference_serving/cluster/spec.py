"""The cluster file (`--cluster FILE.yaml`): instances, their roles and parallelism, the network, host memory.

    router: least-outstanding      # routers.py; --router overrides it
    router_seed: 0                 # random and power-of-two routers
    decode_router: least-kv        # which decode instance takes a prefilled request
    network:
      npus_per_node: 8             # default: every NPU of the cluster in one node
      intra_node: {bandwidth_gbps: 450, latency_ns: 0}    # default: the first instance's hardware link
      inter_node: {bandwidth_gbps: 50, latency_ns: 2000}  # needed when the cluster has more than one node
    host_memory: {bandwidth_gbps: 64}                     # default: --remote_bw
    instances:
      - name: prefill              # default: i<k>; replicas get .<r>
        count: 2                   # replicas of this entry
        role: prefill              # colocated (default), prefill or decode
        tp: 2
        pp: 1
        dp: 1                      # data-parallel attention ranks of an MoE model (tp 1, pp 1 each)
        model_name: meta-llama/Llama-3.1-8B-Instruct   # and any per-instance flag (INSTANCE_FLAGS);
        hardware: H100                                  # unset ones take the command line's value
        scheduler: vllm

Instances take consecutive NPUs in file order; one that does not fit in the rest of a node starts on
the next node and must then fill whole nodes. An instance with `dp` ranks runs as that many instances
(`<name>.dp<r>`, one NPU each) that step together (serving/step_group.py). Without --cluster the
flags describe a cluster of one instance (`flags_cluster`). Every key is checked on load; an error
names the file and the key (the file's schema: cluster_file.py, imported only to read one).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.experiment import read_yaml
from ..config.options import values_from_mapping
from ..config.run_config import RunConfig
from ..errors import InputError
from .routers import ROUTERS

if TYPE_CHECKING:
    from .cluster_file import ClusterFile, InstanceSpec, LinkSpec

# the flags an instance may set for itself; the rest are the run's
INSTANCE_FLAGS = ("model_name", "hardware", "scheduler", "max_batch", "npu_mem", "local_bw", "fp", "weight_dtype",
                  "kv_dtype", "block_size", "gen", "perf_model", "max_num_seqs", "max_num_batched_tokens",
                  "gpu_memory_utilization", "num_gpu_blocks", "max_model_len", "no_prefix_caching", "no_ragged",
                  "no_mixed_unpacking", "no_sampler", "enable_expert_parallel", "expert_load", "engine_overhead")


@dataclass(frozen=True)
class InstancePlan:
    """One instance as it will run: its name, role, first NPU and its whole run configuration."""

    name: str
    role: str
    first_npu: int
    config: RunConfig
    dp_group: int | None = None  # the data-parallel ranks of one instance share this number

    @property
    def npus(self) -> int:
        """Its own NPUs: a data-parallel rank has tp * pp of its instance's."""
        return self.config.tp * self.config.pp


@dataclass(frozen=True)
class Cluster:
    instances: tuple[InstancePlan, ...]
    router: str
    router_seed: int
    decode_router: str
    npus_per_node: int
    intra_node: LinkSpec | None     # None: the first instance's hardware link
    inter_node: LinkSpec | None
    host_bandwidth_gbps: int

    @property
    def npus(self) -> int:
        """NPUs up to the last instance's (NPUs left free at the end of a node included)."""
        return max(i.first_npu + i.npus for i in self.instances)

    @property
    def several(self) -> bool:
        """More than one instance (or data-parallel rank): routed, reported per instance."""
        return len(self.instances) > 1

    @property
    def nodes(self) -> int:
        return -(-self.npus // self.npus_per_node)

    @property
    def disaggregated(self) -> bool:
        return any(i.role != "colocated" for i in self.instances)

    def entry_instances(self) -> list[int]:
        """The instances a new request may go to: the colocated and prefill ones."""
        return [k for k, i in enumerate(self.instances) if i.role != "decode"]


def flags_cluster(config: RunConfig) -> Cluster:
    """The one instance that the command line's flags describe (its data-parallel ranks, with --dp)."""
    if config.dp == 1:
        plans = (InstancePlan("i0", "colocated", 0, config),)
    else:
        plans = tuple(InstancePlan(f"dp{r}", "colocated", r, config, 0) for r in range(config.dp))
    router = config.router or ("least-outstanding" if config.dp > 1 else "round-robin")
    return Cluster(plans, router, 0, "least-outstanding", config.npu_num, None, None, config.remote_bw)


def load_cluster(path: Path, config: RunConfig) -> Cluster:
    from .cluster_file import checked

    source = f"--cluster {path}"
    data = read_yaml(path, "--cluster")
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping with 'instances' (see README \"Clusters\")")
    data = {**data, "instances": [_split_flags(entry, source, k) for k, entry in enumerate(_list(data, source))]}
    return _planned(checked(data, source), config, source)


def _list(data: dict, source: str) -> list:
    entries = data.get("instances")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{source}: instances: a non-empty list of instances is needed")
    return entries


def _split_flags(entry, source: str, index: int):
    """An instance entry with its per-instance flags under `flags`, checked by the flags' own types."""
    if not isinstance(entry, dict):
        return entry
    own = {"name", "count", "role", "tp", "pp", "dp"}
    flags = {k: v for k, v in entry.items() if k not in own}
    where = f"{source}: instances.{index}"
    for key in flags:
        if str(key).replace("-", "_") not in INSTANCE_FLAGS:
            raise InputError(f"{where}: unknown key '{key}' (an instance sets name, count, role, tp, pp, dp and the "
                             f"flags {', '.join(INSTANCE_FLAGS)})")
    return {**{k: v for k, v in entry.items() if k in own}, "flags": values_from_mapping(flags, where)}


def _planned(spec: ClusterFile, config: RunConfig, source: str) -> Cluster:
    sizes = [entry.tp * entry.pp * entry.dp for entry in spec.instances for _ in range(entry.count)]
    per_node = spec.network.npus_per_node or sum(sizes)
    plans, first = [], 0
    for index, entry in enumerate(spec.instances):
        base, where = entry.name or f"i{index}", f"{source}: instances.{index}"
        size = entry.tp * entry.pp * entry.dp
        for replica in range(entry.count):
            first = _placed(first, size, per_node, where)
            name = f"{base}.{replica}" if entry.count > 1 else base
            run = config.replace(**entry.flags, npu_num=size, npu_group=entry.pp, dp=entry.dp)
            try:
                run.check()
            except InputError as err:
                raise InputError(f"{where}: {err}") from None
            plans += _ranks(name, entry, first, run, len(plans))
            first += size
    _check_names(plans, source)
    _check_roles(plans, source)
    cluster = Cluster(tuple(plans), config.router or spec.router or "round-robin", spec.router_seed,
                      spec.decode_router, per_node, spec.network.intra_node, spec.network.inter_node,
                      spec.host_memory.bandwidth_gbps if spec.host_memory else config.remote_bw)
    for key, name in (("router", cluster.router), ("decode_router", cluster.decode_router)):
        if name not in ROUTERS.names():
            raise InputError(f"{source}: {key}: unknown router '{name}'; known: {', '.join(ROUTERS.names())}")
    if cluster.nodes > 1 and cluster.inter_node is None:
        raise InputError(f"{source}: network.inter_node: the instances take {cluster.npus} NPUs, more than one node "
                         f"of {per_node}; give the link between nodes (bandwidth_gbps, latency_ns)")
    return cluster


def _ranks(name: str, entry: InstanceSpec, first: int, run: RunConfig, group: int) -> list[InstancePlan]:
    """The instance, or its data-parallel ranks (numbered by `group`, the index of the first)."""
    if entry.dp == 1:
        return [InstancePlan(name, entry.role, first, run)]
    step = entry.tp * entry.pp
    return [InstancePlan(f"{name}.dp{r}", entry.role, first + r * step, run, group) for r in range(entry.dp)]


def _placed(first: int, size: int, per_node: int, where: str) -> int:
    """The first NPU of an instance of `size` NPUs placed at or after `first`: within a node, or on whole nodes."""
    room = per_node - first % per_node
    if size <= room:
        return first
    start = first if first % per_node == 0 else first + room
    if size % per_node:
        raise InputError(f"{where}: {size} NPUs do not fit in a node of {per_node} (network.npus_per_node); "
                         f"an instance larger than a node takes whole nodes")
    return start


def _check_names(plans: list[InstancePlan], source: str) -> None:
    seen = set()
    for plan in plans:
        if plan.name in seen:
            raise InputError(f"{source}: instances: two instances are named '{plan.name}'")
        seen.add(plan.name)


def _check_roles(plans: list[InstancePlan], source: str) -> None:
    roles = {plan.role for plan in plans}
    if ("prefill" in roles) != ("decode" in roles):
        raise InputError(f"{source}: instances: a disaggregated cluster needs both prefill and decode instances")
    if "colocated" in roles and len(roles) > 1:
        raise InputError(f"{source}: instances: colocated instances cannot be mixed with prefill/decode ones")
