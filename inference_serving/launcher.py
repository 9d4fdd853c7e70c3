"""Assembles a run from the command-line flags: checks them, builds every stage, runs, reports.

Bad input ends with one line on stderr and exit status 2; an engine failure with status 1.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config_generator import SystemConfig
from .engine import DEFAULT_ENGINE, EngineError
from .hardware import Hardware, HardwareError, fallback_hardware, load_hardware
from .memory import KVCache, MemoryFitError, ceil_div, memory_layout
from .metrics import CSV_HEADER, Metrics
from .progress import Progress
from .model import ModelConfig, ModelError, load_model
from .perf_model import CsvPerfModel, PerfModel, PerfModelError
from .scheduler import OrcaScheduler
from .simulator import RunOptions, Simulation, SimulationError
from .trace import TraceBuilder
from .vllm_scheduler import PrefixCachingBlocks, VllmScheduler, kv_blocks_from_memory
from .workload import Request, WorkloadError, load_dataset

# --perf-model values that name a provider rather than a profiled CSV path.
PROVIDER_NAMES = ("aiconfigurator", "npu")


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
    link_latency: float | None
    fp: str
    block_size: int | None
    dataset: str
    output: Path | None
    gen: bool
    req_num: int
    log_interval: float
    verbose: bool
    perf_model: str | None = None
    astra_sim: Path | None = None
    keep_traces: Path | None = None
    no_reuse: bool = False
    engine_timeout: float = 120.0
    scheduler: str = "orca"
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    gpu_memory_utilization: float = 0.9
    num_gpu_blocks: int | None = None
    engine_overhead: float | None = None
    quiet: bool = False                 # no progress bar on stderr
    plot: Path | None = None            # folder for the PNG figures
    chrome_trace: Path | None = None    # Trace Event Format JSON of the simulated execution
    summary_json: Path | None = None    # summary metrics and the effective configuration


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"--{name} must be {'non-negative' if allow_zero else 'positive'}, got {value:g}")


def check_flags(req: RunRequest) -> None:
    for name in ("npu_num", "npu_group", "req_num", "remote_bw", "log_interval", "engine_timeout", "max_num_seqs",
                 "max_num_batched_tokens"):
        _positive(name, getattr(req, name))
    for name in ("block_size", "num_gpu_blocks", "engine_overhead"):
        if getattr(req, name) is not None:
            _positive(name, getattr(req, name), allow_zero=name == "engine_overhead")
    if not 0 < req.gpu_memory_utilization <= 1:
        raise InputError(f"--gpu_memory_utilization must be in (0, 1], got {req.gpu_memory_utilization:g}")
    _positive("max_batch", req.max_batch, allow_zero=True)
    if req.link_latency is not None:
        _positive("link_latency", req.link_latency, allow_zero=True)
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


def run_hardware(req: RunRequest) -> Hardware:
    """The --hardware name or file; with a profiled CSV (--perf-model FILE) any name goes, and a name
    without a file gets the fallback defaults (README "Hardware files")."""
    try:
        return load_hardware(req.hardware)
    except HardwareError:
        csv_override = req.perf_model is not None and req.perf_model not in PROVIDER_NAMES
        if csv_override and not req.hardware.endswith((".yaml", ".yml")):
            return fallback_hardware(req.hardware)
        raise


def model_key(model_name: str) -> str:
    """The `model` column of profiled CSVs: a config or ONNX path's file name without extension."""
    return Path(model_name).stem if model_name.endswith((".json", ".onnx")) else model_name


def build_perf_model(req: RunRequest, model: ModelConfig) -> tuple[PerfModel, dict]:
    """The performance provider and the hardware's defaults: npu_mem, local_bw, link_bw,
    link_latency, engine_overhead_ns. --perf-model (a provider name or a CSV path) overrides the
    hardware file's provider."""
    hardware = run_hardware(req)
    provider = req.perf_model or hardware.provider
    defaults = hardware.defaults()
    if provider == "aiconfigurator":
        from .perf_aiconfigurator import AIConfiguratorPerfModel
        return AIConfiguratorPerfModel(model, hardware.system or hardware.name, int(req.fp)), defaults
    if provider == "npu":
        from .perf_npu import NpuPerfModel
        return NpuPerfModel(model, hardware, int(req.fp)), defaults
    csv_path = str(hardware.csv) if provider == "csv" else provider
    return CsvPerfModel(csv_path, hardware.name, model_key(req.model_name)), defaults


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


def activation_reserve_bytes(model: ModelConfig, fp_bits: int, tp: int, max_tokens: int, max_seqs: int) -> int:
    """The activation peak vLLM profiles before sizing its KV cache, estimated from first
    principles: the MLP's live tensors for a full token budget (gate/up output, activation
    output, hidden state and residual) plus fp32 logits (and their softmax) for every sequence."""
    inter = ceil_div(model.intermediate_size, tp)
    mlp = max_tokens * (3 * inter + 2 * model.hidden_size) * fp_bits // 8
    logits = max_seqs * ceil_div(model.vocab_size, tp) * 4 * 2
    return mlp + logits


def build_scheduler(req: RunRequest, requests: list[Request], model: ModelConfig, fp_bits: int, tp: int, pp: int,
                    npu_mem: float):
    """The scheduling policy with its KV-cache manager."""
    block_size = req.block_size or (16 if req.scheduler == "vllm" else 8)
    layout = memory_layout(model, fp_bits, tp, pp, npu_mem, block_size)
    if req.scheduler == "orca":
        return OrcaScheduler(requests, KVCache(layout), req.max_batch, skip_prefill=req.gen)
    if pp > 1 or req.gen:
        raise InputError("--scheduler vllm runs without pipeline stages (--npu_group 1) and without --gen")
    blocks = req.num_gpu_blocks or kv_blocks_from_memory(
        layout, req.gpu_memory_utilization,
        activation_reserve_bytes(model, fp_bits, tp, req.max_num_batched_tokens, req.max_num_seqs))
    caching = any(r.token_ids is not None for r in requests)
    return VllmScheduler(requests, PrefixCachingBlocks(layout, blocks, caching), req.max_num_seqs,
                         req.max_num_batched_tokens)


def engine_binary(req: RunRequest) -> tuple[Path, bool]:
    """The engine to run and whether it needs ASTRA-sim's interactive protocol."""
    if req.astra_sim is None:
        return DEFAULT_ENGINE, False
    if not req.astra_sim.is_file():
        raise InputError(f"--astra-sim {req.astra_sim}: no such file")
    return req.astra_sim, req.astra_sim.resolve() != DEFAULT_ENGINE.resolve()


def measured_collectives(req: RunRequest, perf: PerfModel, tp: int, compat: bool) -> dict | None:
    """The provider's measured collective table; none for another engine (it would ignore it) or when
    --link_bw / --link_latency ask for the link model."""
    if compat or req.link_bw is not None or req.link_latency is not None:
        return None
    return perf.collective_table(tp)


def simulate(req: RunRequest, log=print) -> Metrics:
    check_flags(req)
    model = load_model(req.model_name)
    requests = load_dataset(req.dataset, req.req_num)
    if not requests:
        raise InputError(f"--dataset {req.dataset}: no requests")
    perf, defaults = build_perf_model(req, model)
    tp, pp, fp_bits = req.npu_num // req.npu_group, req.npu_group, int(req.fp)
    npu_mem = req.npu_mem if req.npu_mem is not None else defaults["npu_mem"]
    scheduler = build_scheduler(req, requests, model, fp_bits, tp, pp, npu_mem)
    kv = scheduler.kv
    check_fits(requests, model, kv, npu_mem)
    binary, compat = engine_binary(req)
    if compat and req.chrome_trace is not None:
        raise InputError("--chrome-trace needs our engine (node spans); leave out --astra-sim")
    if not binary.is_file():
        raise EngineError(f"engine {binary} not built; run: bash astra-sim/build.sh")
    system = SystemConfig(tp=tp, pp=pp,
                          link_bw_gbps=req.link_bw if req.link_bw is not None else defaults["link_bw"],
                          link_latency_ns=req.link_latency if req.link_latency is not None else defaults["link_latency"],
                          local_bw_gbps=req.local_bw if req.local_bw is not None else defaults["local_bw"],
                          remote_bw_gbps=req.remote_bw, collective_table=measured_collectives(req, perf, tp, compat))
    options = RunOptions(tp=tp, pp=pp, system=system, engine_binary=binary, compat_engine=compat,
                         engine_timeout_s=req.engine_timeout, keep_traces=req.keep_traces, reuse=not req.no_reuse,
                         verbose=req.verbose)
    metrics = Metrics(req.model_name, int(req.log_interval * 1e9))
    overhead = req.engine_overhead if req.engine_overhead is not None else defaults.get("engine_overhead_ns", 0)
    builder = TraceBuilder(model, perf, fp_bits, tp, pp, selective_attention=req.scheduler == "orca",
                           engine_overhead_ns=int(overhead),
                           sampler_bw_gbps=0.0 if req.scheduler == "orca" else system.local_bw_gbps)
    log(f"{req.model_name} on {req.npu_num} x {req.hardware} (TP {tp}, PP {pp}), {len(requests)} requests, "
        f"{req.scheduler} scheduler, {kv.total_blocks} KV blocks of {kv.layout.block_size} tokens per NPU")
    metrics.attach(kv, [r.arrival_ns for r in requests])
    metrics.config = effective_config(req, defaults, tp, pp, kv.layout.block_size, overhead)
    progress = Progress(len(requests)) if Progress.wanted(quiet=req.quiet) else None
    if progress is not None:
        metrics.listeners.append(progress)
        if sys.stdout.isatty():
            log = progress.around(log)
    if req.chrome_trace is not None:
        handle, span_name = tempfile.mkstemp(prefix="llmservingsim-spans-", suffix=".txt")
        os.close(handle)
        options.span_file = Path(span_name)
    try:
        simulation = Simulation(scheduler, builder, kv, options, metrics, log)
        simulation.run()
        metrics.end_ns = simulation.now
        if progress is not None:
            progress.close(len(metrics.finished), simulation.now)
        for line in metrics.summary_lines(simulation.now):
            log(line)
        if req.verbose:
            log(f"computation reuse: layer shapes {perf.hits}/{perf.lookups} looked up again, "
                f"iterations {simulation.graph_hits}/{metrics.iterations} reused")
        if req.output is not None:
            metrics.write_csv(req.output)
        write_extras(req, metrics, scheduler.states, tp * pp, options.span_file)
    finally:
        if options.span_file is not None:
            options.span_file.unlink(missing_ok=True)
    return metrics


def effective_config(req: RunRequest, defaults: dict, tp: int, pp: int, block_size: int, overhead: float) -> dict:
    """Every flag after defaults were applied (the hardware's included), JSON-ready."""
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(req).items()}
    for name in ("npu_mem", "local_bw", "link_bw", "link_latency"):
        if config.get(name) is None and name in defaults:
            config[name] = defaults[name]
    config.update(block_size=block_size, engine_overhead=overhead, tp=tp, pp=pp)
    return config


def write_extras(req: RunRequest, metrics: Metrics, states, npus: int, span_file: Path | None) -> None:
    """--summary-json, --plot and --chrome-trace."""
    if req.summary_json is not None:
        req.summary_json.parent.mkdir(parents=True, exist_ok=True)
        with open(req.summary_json, "w") as handle:
            summary = {k: (None if v != v else v) for k, v in metrics.summary(metrics.end_ns).items()}  # NaN
            json.dump({"summary": summary, "config": metrics.config}, handle, indent=1)
            handle.write("\n")
    if req.plot is not None:
        from .plots import write_plots
        write_plots(req.plot, metrics, metrics.end_ns, title=f"({Path(req.model_name).name.removesuffix('.json')}, {npus} x {req.hardware})")
    if req.chrome_trace is not None:
        from .chrome_trace import write_chrome_trace
        write_chrome_trace(req.chrome_trace, span_file, npus, states, metrics.samples, metrics.end_ns, metrics.config)


def simulate_or_exit(req: RunRequest) -> None:
    try:
        simulate(req)
    except (InputError, ModelError, WorkloadError, PerfModelError, MemoryFitError, HardwareError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (EngineError, SimulationError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
