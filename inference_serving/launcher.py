"""Assembles a run from the command-line flags: checks them, builds every stage, runs, reports.

Bad input ends with one line on stderr and exit status 2; an engine failure with status 1.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .config_generator import SystemConfig
from .engine import DEFAULT_ENGINE, EngineError
from .memory import KVCache, MemoryFitError, memory_layout
from .metrics import CSV_HEADER, Metrics
from .model import ModelConfig, ModelError, load_model
from .perf_model import CsvPerfModel, PerfModel, PerfModelError
from .scheduler import OrcaScheduler
from .simulator import RunOptions, Simulation, SimulationError
from .trace import TraceBuilder
from .workload import Request, WorkloadError, load_dataset

# Used when the hardware is not one the measured-operator database knows (a profiled CSV run).
FALLBACK_DEFAULTS = {"npu_mem": 40.0, "local_bw": 1024.0, "link_bw": 256.0}


class InputError(ValueError):
    """A flag or input file that cannot be used."""


@dataclass
class RunRequest:
    """The flags of main.py, as given."""

    model_name: str
    hardware: str
    npu_num: int
    max_batch: int
    npu_group: int
    npu_mem: float | None
    local_bw: float | None
    remote_bw: float
    link_bw: float | None
    link_latency: float
    fp: str
    block_size: int
    dataset: str
    output: Path | None
    gen: bool
    req_num: int
    log_interval: float
    verbose: bool
    perf_model: str = "aiconfigurator"
    astra_sim: Path | None = None
    keep_traces: Path | None = None
    no_reuse: bool = False
    engine_timeout: float = 120.0


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"--{name} must be {'non-negative' if allow_zero else 'positive'}, got {value:g}")


def check_flags(req: RunRequest) -> None:
    for name in ("npu_num", "npu_group", "block_size", "req_num", "remote_bw", "log_interval", "engine_timeout"):
        _positive(name, getattr(req, name))
    for name in ("max_batch", "link_latency"):
        _positive(name, getattr(req, name), allow_zero=True)
    for name in ("npu_mem", "local_bw", "link_bw"):
        if getattr(req, name) is not None:
            _positive(name, getattr(req, name))
    if req.npu_num % req.npu_group:
        raise InputError(f"--npu_num {req.npu_num} is not divisible by --npu_group {req.npu_group}")
    if req.output is not None and req.output.exists() and not _is_result_csv(req.output):
        raise InputError(f"--output {req.output} exists and is not a simulator result CSV; "
                         f"choose another path or remove the file")


def _is_result_csv(path: Path) -> bool:
    try:
        with open(path) as handle:
            return handle.readline().strip() == ",".join(CSV_HEADER)
    except (OSError, UnicodeDecodeError):
        return False


def build_perf_model(req: RunRequest, model: ModelConfig) -> tuple[PerfModel, dict]:
    """The performance provider and the hardware's defaults for npu_mem, local_bw and link_bw."""
    defaults = dict(FALLBACK_DEFAULTS)
    try:
        from .perf_aiconfigurator import AIConfiguratorPerfModel, hardware_spec
        spec = hardware_spec(req.hardware)
        defaults = {"npu_mem": spec.memory_gb, "local_bw": spec.memory_bw_gbps, "link_bw": spec.link_bw_gbps}
    except PerfModelError:
        if req.perf_model == "aiconfigurator":
            raise
    if req.perf_model == "aiconfigurator":
        return AIConfiguratorPerfModel(model, req.hardware, int(req.fp)), defaults
    model_key = Path(req.model_name).stem if req.model_name.endswith(".json") else req.model_name
    return CsvPerfModel(req.perf_model, req.hardware, model_key), defaults


def check_fits(requests: list[Request], model: ModelConfig, kv: KVCache, npu_mem_gib: float) -> None:
    layout = kv.layout
    if layout.weight_bytes >= layout.capacity_bytes or kv.total_blocks == 0:
        raise InputError(f"--npu_mem: {model.name} needs {layout.weight_bytes / 2**30:.2f} GiB of weights per NPU "
                         f"plus KV blocks, more than {npu_mem_gib:g} GiB; raise --npu_mem or use more NPUs")
    for r in requests:
        tokens = r.input_tokens + r.output_tokens
        if tokens > model.max_position_embeddings:
            raise InputError(f"request {r.id}: {tokens} tokens exceed the model's context of "
                             f"{model.max_position_embeddings}; shorten it in the dataset")
        if kv.blocks_for(tokens) > kv.total_blocks:
            raise InputError(f"request {r.id}: needs {kv.blocks_for(tokens)} KV blocks but each NPU holds only "
                             f"{kv.total_blocks}; raise --npu_mem or use more NPUs")


def engine_binary(req: RunRequest) -> tuple[Path, bool]:
    """The engine to run and whether it needs ASTRA-sim's interactive protocol."""
    if req.astra_sim is None:
        return DEFAULT_ENGINE, False
    if not req.astra_sim.is_file():
        raise InputError(f"--astra-sim {req.astra_sim}: no such file")
    return req.astra_sim, req.astra_sim.resolve() != DEFAULT_ENGINE.resolve()


def simulate(req: RunRequest, log=print) -> Metrics:
    check_flags(req)
    model = load_model(req.model_name)
    requests = load_dataset(req.dataset, req.req_num)
    if not requests:
        raise InputError(f"--dataset {req.dataset}: no requests")
    perf, defaults = build_perf_model(req, model)
    tp, pp, fp_bits = req.npu_num // req.npu_group, req.npu_group, int(req.fp)
    npu_mem = req.npu_mem if req.npu_mem is not None else defaults["npu_mem"]
    kv = KVCache(memory_layout(model, fp_bits, tp, pp, npu_mem, req.block_size))
    check_fits(requests, model, kv, npu_mem)
    binary, compat = engine_binary(req)
    if not binary.is_file():
        raise EngineError(f"engine {binary} not built; run: bash astra-sim/build.sh")
    system = SystemConfig(tp=tp, pp=pp,
                          link_bw_gbps=req.link_bw if req.link_bw is not None else defaults["link_bw"],
                          link_latency_ns=req.link_latency,
                          local_bw_gbps=req.local_bw if req.local_bw is not None else defaults["local_bw"],
                          remote_bw_gbps=req.remote_bw)
    options = RunOptions(tp=tp, pp=pp, system=system, engine_binary=binary, compat_engine=compat,
                         engine_timeout_s=req.engine_timeout, keep_traces=req.keep_traces, reuse=not req.no_reuse,
                         verbose=req.verbose)
    metrics = Metrics(req.model_name, int(req.log_interval * 1e9))
    scheduler = OrcaScheduler(requests, kv, req.max_batch, skip_prefill=req.gen)
    builder = TraceBuilder(model, perf, fp_bits, tp, pp)
    log(f"{req.model_name} on {req.npu_num} x {req.hardware} (TP {tp}, PP {pp}), {len(requests)} requests, "
        f"{kv.total_blocks} KV blocks of {req.block_size} tokens per NPU")
    simulation = Simulation(scheduler, builder, kv, options, metrics, log)
    simulation.run()
    for line in metrics.summary_lines(simulation.now):
        log(line)
    if req.verbose:
        log(f"computation reuse: layer shapes {perf.hits}/{perf.lookups} looked up again, "
            f"iterations {simulation.graph_hits}/{metrics.iterations} reused")
    if req.output is not None:
        metrics.write_csv(req.output)
    return metrics


def simulate_or_exit(req: RunRequest) -> None:
    try:
        simulate(req)
    except (InputError, ModelError, WorkloadError, PerfModelError, MemoryFitError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (EngineError, SimulationError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
