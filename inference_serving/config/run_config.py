"""One run configuration: every flag of a simulation run, its default, its type and its checks.

The fields of `RunConfig` are the single place the flags are defined: `options.run_options` turns
them into main.py's click options, `experiment` reads them from YAML files, and validate, sweep,
search and profile build their runs from the same class. A field's metadata holds its flag names,
click type and help text; `None` defaults mean "the hardware file's value".
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..errors import InputError
from ..perf.precision import KV_DTYPES, WEIGHT_DTYPES, Precision
from ..serving.kv.tiers import Tier, TierList
from .types import (BANDWIDTH, DURATION_NS, HOST_BANDWIDTH, INTERVAL_S, MEMORY_GIB, NON_NEGATIVE_INT, POSITIVE_INT,
                    SHARE, SPIN_US, TIMEOUT_S, TOKENS, ExpertLoadSpec, Probabilities)

OUT_FILE = click.Path(dir_okay=False, path_type=Path)
OUT_DIR = click.Path(file_okay=False, path_type=Path)


def flag(default, help: str, type=None, opts: tuple[str, ...] = (), is_flag: bool = False, show_default=True):
    """A RunConfig field with its click option (`opts` empty: --<field name>)."""
    meta = {"help": help, "type": type, "opts": opts, "is_flag": is_flag, "show_default": show_default}
    return field(default=default, metadata=meta)


def dashed(name: str) -> tuple[str, ...]:
    """Flags we added are spelled with dashes (the original tool's keep their underscores)."""
    return (f"--{name.replace('_', '-')}",)


@dataclass
class RunConfig:
    model_name: str = flag("meta-llama/Llama-3.1-8B-Instruct",
                           "Model under model_configs/ (e.g. Qwen/Qwen3-8B), a config .json path or an .onnx decoder.")
    hardware: str = flag("H100", "Accelerator: a name under hardware/ (see `llmservingsim list`) or a hardware YAML path.")
    npu_num: int = flag(16, "Number of NPUs.", POSITIVE_INT)
    max_batch: int = flag(0, "Requests per batch, 0 = no limit (orca).", NON_NEGATIVE_INT)
    npu_group: int = flag(1, "Pipeline stages; each stage is a tensor-parallel group of npu_num/npu_group NPUs.",
                          POSITIVE_INT)
    npu_mem: float | None = flag(None, "Device memory per NPU in GiB [default: the hardware's].", MEMORY_GIB)
    local_bw: float | None = flag(None, "Device memory bandwidth in GB/s [default: the hardware's].", BANDWIDTH)
    remote_bw: float = flag(512.0, "Host (remote) memory bandwidth in whole GB/s, for KV eviction and reload.",
                            HOST_BANDWIDTH)
    link_bw: float | None = flag(None, "NPU-to-NPU link bandwidth in GB/s [default: the hardware's].", BANDWIDTH)
    link_latency: float | None = flag(None, "Link latency in ns [default: the hardware's].", DURATION_NS)
    fp: str = flag("16", "Bits per weight, activation and KV element.", click.Choice(["8", "16", "32"]))
    weight_dtype: str | None = flag(None, "Format of the projection weights: weight bytes and GEMM tables "
                                    "[default: --fp's].", click.Choice(WEIGHT_DTYPES),
                                    opts=("--weight-dtype", "--weight_dtype"))
    kv_dtype: str | None = flag(None, "Format of the KV cache: KV bytes and attention tables [default: --fp's].",
                                click.Choice(KV_DTYPES), opts=("--kv-dtype", "--kv_dtype"))
    block_size: int | None = flag(None, "Tokens per KV-cache block [default: the scheduler's, orca 8, vllm 16].",
                                  TOKENS)
    dataset: str = flag("dataset/sharegpt_like_100.tsv",
                        "Request trace (.tsv or .jsonl with input_toks, output_toks, arrival_time_ns).")
    output: Path | None = flag(None, "Per-request CSV to write.", OUT_FILE)
    gen: bool = flag(False, "Skip the initiation (prefill) phase (orca).", is_flag=True)
    req_num: int = flag(100, "Use the first N requests.", POSITIVE_INT)
    log_interval: float = flag(0.5, "Throughput log interval in simulated seconds.", INTERVAL_S)
    verbose: bool = flag(False, "Log memory loads/stores, KV use and computation-reuse hit rates.", is_flag=True)
    perf_model: str | None = flag(None, "Provider name (see `llmservingsim list`) or a profiled CSV path "
                                  "[default: the hardware file's provider].", opts=dashed("perf_model"))
    astra_sim: Path | None = flag(None, "Engine binary; a binary other than ours is driven with ASTRA-sim's "
                                  "interactive protocol.", click.Path(path_type=Path), opts=dashed("astra_sim"))
    keep_traces: Path | None = flag(None, "Keep each iteration's text trace, Chakra files and engine configs here.",
                                    OUT_DIR, opts=dashed("keep_traces"))
    no_reuse: bool = flag(False, "Turn every exact shortcut off (merged compute, reused iterations, folded groups, "
                          "the compiled attention schedule, the scheduler's allocation skip, the engine's "
                          "collapsed runs).",
                          opts=dashed("no_reuse"), is_flag=True)
    engine_timeout: float = flag(120.0, "Seconds to wait for any engine reply.", TIMEOUT_S, opts=dashed("engine_timeout"))
    engine_spin: int | None = flag(None, "Microseconds the simulator and our engine poll for each other's next "
                                   "message before sleeping (0: sleep at once); outputs do not change "
                                   "[default: 2000 where the run may use two cores or more, else 0].", SPIN_US,
                                   opts=dashed("engine_spin"), show_default=False)
    scheduler: str = flag("orca", "Scheduling policy (see `llmservingsim list`): orca, the paper's iteration-level "
                          "batching; vllm, vLLM V1 (token budget, chunked prefill).")
    max_num_seqs: int = flag(256, "vllm: requests running at once.", POSITIVE_INT)
    max_num_batched_tokens: int = flag(2048, "vllm: tokens per step (the token budget).", TOKENS)
    gpu_memory_utilization: float = flag(0.9, "vllm: share of device memory for weights, activations and KV cache.",
                                         SHARE)
    num_gpu_blocks: int | None = flag(None, "vllm: KV blocks per NPU, instead of deriving them.", POSITIVE_INT)
    max_model_len: int | None = flag(None, "Longest request (prompt + output tokens) accepted; a longer one is "
                                     "refused, as vLLM's server does [default: the model's context].", POSITIVE_INT)
    no_prefix_caching: bool = flag(False, "vllm: prefix caching off (on by default, as in vLLM, for datasets "
                                   "with token_ids).", opts=dashed("no_prefix_caching"), is_flag=True)
    no_ragged: bool = flag(False, "vllm: price batched decode attention at the batch's mean context, without the "
                           "attention kernel's thread-block schedule (for ablations).", opts=dashed("no_ragged"),
                           is_flag=True)
    no_mixed_unpacking: bool = flag(False, "vllm: schedule the decodes of a step with prompt chunks as one thread "
                                    "block per KV head, as in decode-only steps (for ablations).",
                                    opts=dashed("no_mixed_unpacking"), is_flag=True)
    no_sampler: bool = flag(False, "vllm: no sampler row at the end of each step (for ablations).",
                            opts=dashed("no_sampler"), is_flag=True)
    enable_expert_parallel: bool = flag(False, "MoE models: every rank of a tensor-parallel group holds whole experts, "
                                        "num_experts/tp of them (vLLM's --enable-expert-parallel; EP = TP, or the "
                                        "ranks of --dp).",
                                        opts=dashed("enable_expert_parallel"), is_flag=True)
    dp: int = flag(1, "MoE models: data-parallel attention ranks (vLLM's --data-parallel-size): each rank has its "
                   "own scheduler and KV cache, the ranks step together and the experts span all of them; "
                   "--npu_num counts every rank's NPUs.", POSITIVE_INT, opts=("--dp", "--data-parallel-size"))
    expert_load: str = flag("uniform", "MoE models: tokens per routed expert: uniform, zipf:S (expert i's share "
                            "~ 1/(i+1)^S) or a JSON list of per-expert shares.", ExpertLoadSpec(),
                            opts=dashed("expert_load"))
    engine_overhead: float | None = flag(None, "Per-step engine time outside the model, ns [default: the hardware's].",
                                         DURATION_NS, opts=dashed("engine_overhead"))
    spec_tokens: int = flag(0, "vllm: speculative decoding, draft tokens per request and step (0 = off).",
                            NON_NEGATIVE_INT, opts=dashed("spec_tokens"))
    spec_draft: str | None = flag(None, "Drafter of --spec-tokens: ngram (prompt lookup on the host) or a draft "
                                  "model, named as --model_name [default: ngram].", opts=dashed("spec_draft"))
    spec_acceptance: tuple[float, ...] | None = flag(
        None, "Probability that a draft token is accepted once the ones before it were: one number, or one per "
        "draft position, comma-separated (required with --spec-tokens).", Probabilities(),
        opts=dashed("spec_acceptance"))
    spec_seed: int | None = flag(None, "Seed of the draws of accepted draft tokens [default: 0].", NON_NEGATIVE_INT,
                                 opts=dashed("spec_seed"))
    kv_tiers: tuple[Tier, ...] | None = flag(
        None, "vllm: memory tiers below device memory for the prefix cache, fastest first, each "
        "name:GiB[:GB/s[:ns]] with name cpu, cxl or ssd (e.g. cpu:256,ssd:4096).", TierList(), opts=dashed("kv_tiers"))
    pim: str | None = flag(None, "Decode attention on the memory's PIM units (the hardware's pim_* keys): offload, "
                           "or interleave (two sub-batches, one's attention in PIM beside the other's GEMMs).",
                           click.Choice(["offload", "interleave"]))
    energy: bool = flag(False, "Report energy per token and power (the hardware file's power figures; "
                        "with --plot also power.png).", is_flag=True)
    cluster: Path | None = flag(None, "Cluster file (YAML): instances with their model, hardware, parallelism and "
                                "scheduler, the network and host memory (README \"Clusters\"); without it the "
                                "flags describe one instance.", click.Path(dir_okay=False, path_type=Path))
    router: str | None = flag(None, "Which instance takes each request (see `llmservingsim list`) [default: the "
                              "cluster file's, else round-robin].")
    summary_json: Path | None = flag(None, "Write every summary metric and the effective configuration as JSON.",
                                     OUT_FILE, opts=dashed("summary_json"))
    plot: Path | None = flag(None, "Write PNG plots (throughput, requests and KV use over time, latency CDFs) here.",
                             OUT_DIR)
    chrome_trace: Path | None = flag(None, "Write the simulated execution as a Chrome/Perfetto trace (JSON).",
                                     OUT_FILE, opts=dashed("chrome_trace"))
    quiet: bool = flag(False, "No progress bar on stderr (it is shown only on a terminal).", is_flag=True)
    force: bool = flag(False, "Replace output files that exist even when they are not previous results of the "
                       "same kind.", is_flag=True)

    @property
    def tp(self) -> int:
        return self.npu_num // (self.npu_group * self.dp)

    @property
    def pp(self) -> int:
        return self.npu_group

    @property
    def fp_bits(self) -> int:
        return int(self.fp)

    @property
    def precision(self) -> Precision:
        return Precision(self.fp_bits, self.weight_dtype, self.kv_dtype)

    def check(self) -> None:
        """Checks between flags (each flag's own range is checked by its type)."""
        if self.npu_num % self.npu_group:
            raise InputError(f"--npu_num {self.npu_num} is not divisible by --npu_group {self.npu_group}")
        if self.npu_num % (self.npu_group * self.dp):
            raise InputError(f"--npu_num {self.npu_num} is not divisible by --npu_group {self.npu_group} x --dp {self.dp}")
        if self.dp > 1 and self.npu_num != self.dp:
            raise InputError(f"--dp {self.dp} runs data-parallel ranks of one NPU each (tensor-parallel 1, one "
                             f"stage, as vLLM's DP attention with expert parallelism); use --npu_num {self.dp}")

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """Every field, JSON-ready (paths as text)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def run_fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(RunConfig)


def flag_name(name: str) -> str:
    """The command-line spelling of a field's flag."""
    f = next(f for f in run_fields() if f.name == name)
    return (f.metadata["opts"] or (f"--{name}",))[0]
