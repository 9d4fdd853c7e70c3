"""Assembles a run from its configuration: builds every stage, runs the serving loop, reports.

The stages are chosen by name from their registries: the performance provider (the hardware file's
`provider`, or --perf-model), the scheduling policy (--scheduler, with its KV manager) and the engine
backend (our step protocol, or ASTRA-sim's interactive one for --astra-sim).
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from .backend.blame import blamed
from .backend.engine_config import SystemConfig, times_all_reduce
from .backend.process import default_spin_us
from .cluster.assembly import attach_cluster, build_instances, cluster_config, cluster_system, step_groups
from .cluster.spec import Cluster, InstancePlan, flags_cluster, load_cluster
from .config.run_config import RunConfig
from .errors import EngineError, InputError
from .flag_use import check_provider_flags, check_scheduler_flags
from .inputs.hardware import Hardware, fallback_hardware, load_hardware
from .inputs.model import load_model
from .inputs.model_config import ModelConfig
from .inputs.workload import Request, load_dataset
from .paths import DEFAULT_ENGINE
from .perf.experts import expert_plan
from .perf.provider import PROVIDERS, PerfProvider, build_provider
from .perf.shard import check_pipeline_parallel, check_tensor_parallel
from .plan.builder import TraceBuilder
from .plan.chakra import build_graph
from .report.metrics import Metrics
from .report.outputs import check_outputs, write_outputs
from .report.progress import Progress
from .serving.kv.layout import memory_layout
from .serving.kv.sizing import check_fits, context_limit
from .serving.kv.tiered import TieredPrefixCacheKV, check_tiers
from .report.instances import InstanceBreakdown
from .serving.arrivals import Arrivals, Inbox
from .serving.instance import Instance
from .serving.loop import RunOptions, Simulation
from .serving.policy import SchedulingPolicy, policy_class
from .serving.speculative import SpeculativeVllmPolicy, draft_model, draft_planner, spec_config, with_draft


# flags that override a hardware file's value -> its key
HARDWARE_FLAGS = {"npu_mem": "memory_gib", "local_bw": "memory_bw_gbps", "link_bw": "link_bw_gbps",
                  "link_latency": "link_latency_ns", "engine_overhead": "engine_overhead_ns"}


def run_hardware(config: RunConfig) -> Hardware:
    """The --hardware name or file, with --perf-model's provider and the values of the flags that
    override the file's (so the provider, the memory layout and the engine all see the flag)."""
    hardware = _chosen_hardware(config)
    flags = {key: getattr(config, name) for name, key in HARDWARE_FLAGS.items() if getattr(config, name) is not None}
    return replace(hardware, **flags)


def _chosen_hardware(config: RunConfig) -> Hardware:
    """The --hardware name or file with --perf-model's provider; with a profiled CSV any name goes,
    and a name without a file gets the fallback defaults (README "Hardware files")."""
    choice = config.perf_model
    csv_override = choice is not None and choice not in PROVIDERS.names()
    try:
        hardware = load_hardware(config.hardware)
    except InputError:
        if csv_override and not config.hardware.endswith((".yaml", ".yml")):
            hardware = fallback_hardware(config.hardware)
        else:
            raise
    if csv_override:
        if not Path(choice).is_file():
            raise InputError(f"--perf-model {choice}: neither a provider ({', '.join(PROVIDERS.names())}) "
                             f"nor a profiled CSV file")
        return replace(hardware, provider="csv", csv=Path(choice))
    if choice:
        hardware = replace(hardware, provider=choice, source=f"{hardware.source} with --perf-model {choice}")
    return hardware


def build_policy(config: RunConfig, feed: Inbox, model: ModelConfig, npu_mem: float) -> SchedulingPolicy:
    """The scheduling policy and its KV manager, after the flags it cannot take are refused."""
    cls = policy_class(config.scheduler)
    if config.pp > 1 and not cls.supports_pipeline:
        raise InputError(f"--scheduler {config.scheduler} runs without pipeline stages (--npu_group 1)")
    block_size = config.block_size or cls.default_block_size
    layout = memory_layout(model, config.precision, config.tp, config.pp, npu_mem, block_size, config.dp)
    spec = spec_config(config)
    if spec is not None:
        cls = SpeculativeVllmPolicy
        draft = draft_model(spec, config.tp)
        if draft is not None:
            layout = with_draft(layout, draft, config.precision, config.tp)
    return cls.build(feed, model, layout, config)


def engine_backend(config: RunConfig) -> tuple[Path, str]:
    """The engine binary and the backend that speaks its protocol."""
    if config.astra_sim is None:
        binary, backend = DEFAULT_ENGINE, "step"
    else:
        binary = config.astra_sim.resolve()
        if not binary.is_file():
            raise InputError(f"--astra-sim {config.astra_sim}: no such file")
        backend = "step" if binary == DEFAULT_ENGINE.resolve() else "astra-sim"
    if not binary.is_file():
        raise EngineError(f"engine {binary} not built; run: bash astra-sim/build.sh")
    return binary, backend


def measured_collectives(config: RunConfig, perf: PerfProvider, backend: str) -> dict | None:
    """The provider's measured collective table; none for another engine (it would ignore it) or when
    --link_bw / --link_latency ask for the link model."""
    if backend != "step" or config.link_bw is not None or config.link_latency is not None:
        return None
    return perf.collective_table(config.tp, config.dp)


def trace_builder(config: RunConfig, model: ModelConfig, perf: PerfProvider, hardware: Hardware, selective: bool,
                  local_bw_gbps: float, overhead_ns: int, experts) -> TraceBuilder:
    """The trace builder of the run: with a draft model's passes (--spec-draft), on PIM units (--pim)."""
    sampler_bw = 0.0 if selective or config.no_sampler else local_bw_gbps
    common = dict(selective_attention=selective, engine_overhead_ns=overhead_ns, sampler_bw_gbps=sampler_bw,
                  drafter=draft_planner(config, hardware), experts=experts, dp=config.dp,
                  reuse=not config.no_reuse)
    if not config.pim:
        return TraceBuilder(model, perf, config.precision, config.tp, config.pp, **common)
    from .perf.pim import PimModel  # the PIM modules only for --pim
    from .plan.pim import PimTraceBuilder, check_pim

    check_pim(config)
    pim = PimModel.of(model, hardware, config.precision, local_bw_gbps)
    return PimTraceBuilder(model, perf, config.precision, config.tp, config.pp, **common, pim=pim,
                           interleave=config.pim == "interleave")


def graph_builder(config: RunConfig):
    """How the instance's iterations become engine graphs: PIM-interleaved for --pim interleave."""
    if config.pim != "interleave":
        return build_graph
    from .plan.pim_graph import interleaved_graph

    return interleaved_graph


def add_feature_reports(metrics: Metrics, config: RunConfig, scheduler: SchedulingPolicy, hardware: Hardware,
                        system: SystemConfig) -> None:
    """The summary sections (and observers) of the features a run turns on."""
    if isinstance(scheduler, SpeculativeVllmPolicy):
        metrics.sections.append(scheduler.stats)
    if isinstance(scheduler.kv, TieredPrefixCacheKV):
        metrics.sections.append(scheduler.kv.store)
    if config.energy:
        from .report.energy import EnergyMeter, PowerModel

        meter = EnergyMeter(PowerModel.of(hardware, config.npu_num, system.local_bw_gbps), scheduler.kv.layout)
        metrics.observers.append(meter)
        metrics.sections.append(meter)


def effective_config(config: RunConfig, system: dict, block_size: int) -> dict:
    """Every flag after defaults were applied (the hardware's included), JSON-ready."""
    values = config.as_dict()
    values.update({name: system[name] for name in ("npu_mem", "local_bw", "link_bw", "link_latency")})
    values.update(block_size=block_size, engine_overhead=system["engine_overhead_ns"], tp=config.tp, pp=config.pp)
    return values


@dataclass
class InstanceParts:
    """One instance and what the run around it needs of its inputs."""

    instance: Instance
    config: RunConfig
    model: ModelConfig
    hardware: Hardware
    perf: PerfProvider
    system_values: dict


def check_requests(requests: list[Request], config: RunConfig, parts: InstanceParts) -> None:
    """Every request fits this instance's KV cache and context limit."""
    kv = parts.instance.kv
    check_fits(requests, parts.model, kv.layout, kv.total_blocks, parts.system_values["npu_mem"],
               context_limit(parts.model, config.max_model_len))


def shared_provider(providers: dict, config: RunConfig, model: ModelConfig, hardware: Hardware) -> PerfProvider:
    """The run's provider for this model, hardware, precision and pricing flags: instances that agree on
    them (replicas, data-parallel ranks) share one, and with it its priced shapes (a shape's price does
    not depend on who asks)."""
    key = (config.model_name, repr(hardware), config.precision, config.no_reuse, config.no_ragged,
           config.no_mixed_unpacking)
    if key not in providers:
        perf = providers[key] = build_provider(model, hardware, config.precision)
        perf.reuse = not config.no_reuse
        perf.ragged = not config.no_ragged
        perf.mixed_unpacking = not config.no_mixed_unpacking
    return providers[key]


def build_instance(plan: InstancePlan, feed: Inbox, requests: list[Request], file_prefix: str = "",
                   providers: dict | None = None) -> InstanceParts:
    """An instance of the run from its configuration: model, hardware, provider (shared through
    `providers` with the run's other instances), policy, trace builder."""
    config = plan.config
    config.check()
    check_scheduler_flags(config)
    model = load_model(config.model_name)
    check_tensor_parallel(model, config.tp)
    check_pipeline_parallel(model, config.pp)
    check_tiers(config, requests)
    hardware = run_hardware(config)
    check_provider_flags(config, hardware.provider, PROVIDERS.get(hardware.provider).fixed_flags)
    perf = shared_provider({} if providers is None else providers, config, model, hardware)
    experts = expert_plan(model, config.tp, config.enable_expert_parallel, config.expert_load, config.dp)
    system_values = hardware.defaults()
    scheduler = build_policy(config, feed, model, system_values["npu_mem"])
    sampler_bw = system_values["local_bw"]
    builder = trace_builder(config, model, perf, hardware, scheduler.selective_attention, sampler_bw,
                            int(system_values["engine_overhead_ns"]), experts)
    instance = Instance(plan.name, scheduler, builder, config.tp, config.pp, plan.first_npu, plan.role,
                        graph_builder(config), file_prefix)
    parts = InstanceParts(instance, config, model, hardware, perf, system_values)
    check_requests(requests, config, parts)
    return parts


def _requests(config: RunConfig) -> list[Request]:
    requests = load_dataset(config.dataset, config.req_num)
    if not requests:
        raise InputError(f"--dataset {config.dataset}: no requests")
    return requests


def check_engine_features(config: RunConfig, backend: str) -> None:
    if backend != "step" and config.chrome_trace is not None:
        raise InputError("--chrome-trace needs our engine (node spans); leave out --astra-sim")
    if backend != "step" and config.kv_tiers:
        raise InputError("--kv-tiers needs our engine (memory tiers); leave out --astra-sim")


def simulate(config: RunConfig, log=print) -> Metrics:
    config.check()
    check_outputs(config)
    requests = _requests(config)
    cluster = load_cluster(config.cluster, config) if config.cluster is not None else flags_cluster(config)
    if config.router is not None and not cluster.several:
        raise InputError(f"--router {config.router}: the run has one instance; routers pick among the instances "
                         f"of a --cluster file (or the ranks of --dp)")
    binary, backend = engine_backend(config)
    check_engine_features(config, backend)
    arrivals = Arrivals(requests, len(cluster.instances))
    parts = build_instances(cluster, arrivals, requests, partial(build_instance, providers={}))
    instances = [p.instance for p in parts]
    transfers = attach_cluster(cluster, arrivals, instances, parts)
    tables = [measured_collectives(p.config, p.perf, backend) for p in parts]
    for p, table in zip(parts, tables):
        p.instance.measured_all_reduce = times_all_reduce(table, p.config.tp)
    system = cluster_system(config, cluster, parts, tables)
    spin_us = default_spin_us() if config.engine_spin is None else config.engine_spin
    options = RunOptions(system=system, engine_binary=binary, backend=backend, engine_timeout_s=config.engine_timeout,
                         engine_spin_us=spin_us,
                         keep_traces=config.keep_traces, reuse=not config.no_reuse, verbose=config.verbose)
    for line in header_lines(cluster, parts, len(requests)):
        log(line)
    first = parts[0]
    metrics = Metrics(first.config.model_name, int(config.log_interval * 1e9))
    add_feature_reports(metrics, first.config, first.instance.scheduler, first.hardware, system)
    metrics.attach([i.kv for i in instances], [r.arrival_ns for r in requests if r.after is None])
    arrivals.listeners.append(metrics.arrived)
    block_size = first.instance.kv.layout.block_size
    metrics.config = {**effective_config(first.config, first.system_values, block_size),
                      **first.instance.scheduler.kv_config(), **cluster_config(cluster, parts)}
    if len(instances) > 1:
        metrics.served_by = {}
        metrics.instance_models = {p.instance.name: p.config.model_name for p in parts}
        metrics.sections.append(InstanceBreakdown(metrics, [i.name for i in instances], transfers))
    simulation = Simulation(step_groups(cluster, instances), arrivals, options, metrics, log, transfers)
    what = (f"{len(instances)} instances on {cluster.npus} NPUs" if cluster.several
            else f"{first.config.npu_num} x {first.config.hardware}")
    return _run(config, simulation, parts, what, log)


def header_lines(cluster: Cluster, parts: list[InstanceParts], requests: int) -> list[str]:
    """What the run is: one line for one instance, one per instance and one for the cluster otherwise."""
    lines = []
    for p in parts:
        c, kv, sched = p.config, p.instance.kv, p.instance.scheduler
        experts = p.instance.builder.experts
        ep = f", EP {experts.ranks}" if experts and experts.ranks > 1 else ""
        where = f"{p.instance.name} ({p.instance.role}, NPUs {p.instance.npus.start}-{p.instance.npus.stop - 1}): " \
            if cluster.several else ""
        lines.append(f"{where}{c.model_name} on {c.npu_num} x {c.hardware} (TP {c.tp}, PP {c.pp}{ep}), "
                     + ("" if cluster.several else f"{requests} requests, ")
                     + f"{c.scheduler} scheduler ({sched.trust}), {kv.total_blocks} KV blocks "
                     f"of {kv.layout.block_size} tokens per NPU")
    if cluster.several:
        lines.append(f"cluster: {len(parts)} instances on {cluster.npus} NPUs ({cluster.nodes} node(s) of "
                     f"{cluster.npus_per_node}), {requests} requests, router {cluster.router}")
    return lines


def _run(config: RunConfig, simulation: Simulation, parts: list[InstanceParts], what: str, log) -> Metrics:
    metrics, arrivals, options = simulation.metrics, simulation.arrivals, simulation.opt
    progress = Progress(len(arrivals.states)) if Progress.wanted(quiet=config.quiet) else None
    if progress is not None:
        metrics.listeners.append(progress)
        if sys.stdout.isatty():
            log = progress.around(log)
            simulation.log = log
    if config.chrome_trace is not None:
        handle, span_name = tempfile.mkstemp(prefix="llmservingsim-spans-", suffix=".txt")
        os.close(handle)
        options.span_file = Path(span_name)
    try:
        try:
            simulation.run()
            for perf in _providers(parts):
                perf.persist()
        except EngineError as err:
            raise blamed(err, config.astra_sim) from None
        metrics.end_ns = simulation.now
        if progress is not None:
            progress.close(len(metrics.finished), simulation.now)
        for line in metrics.summary_lines(simulation.now):
            log(line)
        if config.verbose:
            log(_reuse_line(parts, simulation, metrics))
        write_outputs(config, metrics, arrivals.states, options.span_file, simulation.npus, what)
    finally:
        if options.span_file is not None:
            options.span_file.unlink(missing_ok=True)
    return metrics


def _providers(parts: list[InstanceParts]) -> list[PerfProvider]:
    """The run's providers, each once."""
    return list({id(p.perf): p.perf for p in parts}.values())


def _reuse_line(parts: list[InstanceParts], simulation: Simulation, metrics: Metrics) -> str:
    providers = _providers(parts)
    hits, lookups = sum(perf.hits for perf in providers), sum(perf.lookups for perf in providers)
    line = (f"computation reuse: layer shapes {hits}/{lookups} looked up again, "
            f"iterations {simulation.graph_hits}/{metrics.iterations} reused, "
            f"tensor-parallel groups folded {simulation.engine.folds}")
    kvs = [p.instance.kv for p in parts]
    queries = sum(kv.prefix_queries for kv in kvs)
    if not queries:
        return line
    return (line + f"; prefix cache: {sum(kv.prefix_hits for kv in kvs)}/{queries} lookups hit, "
            f"{sum(kv.prefix_hit_tokens for kv in kvs)}/{sum(kv.prefix_query_tokens for kv in kvs)} "
            f"tokens found cached")
