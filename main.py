"""LLMServingSim command line: simulate serving a request trace on a cluster of NPUs."""
from __future__ import annotations

from pathlib import Path

import click

from inference_serving.experiment import config_callback
from inference_serving.launcher import RunRequest, simulate_or_exit


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
              callback=config_callback,
              help="YAML file of flag values (keys: flag names without dashes); command-line flags override it.")
@click.option("--model_name", default="meta-llama/Llama-3.1-8B-Instruct", show_default=True,
              help="Model under model_configs/ (e.g. Qwen/Qwen3-8B) or a config .json path.")
@click.option("--hardware", default="H100", show_default=True,
              help="Accelerator: a name under hardware/ (H100, H200, A100, B200, L40S, RTXPRO6000, NPU, ...) "
                   "or a hardware YAML path.")
@click.option("--npu_num", default=16, show_default=True, type=int, help="Number of NPUs.")
@click.option("--max_batch", default=0, show_default=True, type=int, help="Requests per batch, 0 = no limit.")
@click.option("--npu_group", default=1, show_default=True, type=int,
              help="Pipeline stages; each stage is a tensor-parallel group of npu_num/npu_group NPUs.")
@click.option("--npu_mem", default=None, type=float, help="Device memory per NPU in GiB [default: the hardware's].")
@click.option("--local_bw", default=None, type=float,
              help="Device memory bandwidth in GB/s [default: the hardware's].")
@click.option("--remote_bw", default=512.0, show_default=True, type=float,
              help="Host (remote) memory bandwidth in GB/s, for KV eviction and reload.")
@click.option("--link_bw", default=None, type=float,
              help="NPU-to-NPU link bandwidth in GB/s [default: the hardware's].")
@click.option("--link_latency", default=None, type=float, help="Link latency in ns [default: the hardware's].")
@click.option("--fp", default=16, show_default=True, type=click.Choice(["8", "16", "32"]),
              help="Bits per weight, activation and KV element.")
@click.option("--block_size", default=None, type=int,
              help="Tokens per KV-cache block [default: 8 for orca, 16 for vllm].")
@click.option("--dataset", default="dataset/sharegpt_like_100.tsv", show_default=True,
              help="Request trace (.tsv or .jsonl with input_toks, output_toks, arrival_time_ns).")
@click.option("--output", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Per-request CSV to write.")
@click.option("--summary-json", "summary_json", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write every summary metric and the effective configuration as JSON.")
@click.option("--plot", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Write PNG plots (throughput, requests and KV use over time, latency CDFs) to this folder.")
@click.option("--chrome-trace", "chrome_trace", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the simulated execution as a Chrome/Perfetto trace (JSON).")
@click.option("--quiet", is_flag=True, help="No progress bar on stderr (it is shown only on a terminal).")
@click.option("--gen", is_flag=True, help="Skip the initiation (prefill) phase.")
@click.option("--req_num", default=100, show_default=True, type=int, help="Use the first N requests.")
@click.option("--log_interval", default=0.5, show_default=True, type=float,
              help="Throughput log interval in simulated seconds.")
@click.option("--verbose", is_flag=True, help="Log memory loads/stores, KV use and computation-reuse hit rates.")
@click.option("--perf-model", "perf_model", default=None,
              help="'aiconfigurator' (measured GPU operators), 'npu' (analytical systolic array) or a profiled "
                   "CSV path [default: the hardware file's provider].")
@click.option("--astra-sim", "astra_sim", default=None, type=click.Path(path_type=Path),
              help="Engine binary; a binary other than ours is driven with ASTRA-sim's interactive protocol.")
@click.option("--keep-traces", "keep_traces", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Keep each iteration's text trace, Chakra files and engine configs in this folder.")
@click.option("--no-reuse", "no_reuse", is_flag=True,
              help="Turn computation reuse off (no merged compute, no reused iterations).")
@click.option("--engine-timeout", "engine_timeout", default=120.0, show_default=True, type=float,
              help="Seconds to wait for any engine reply.")
@click.option("--scheduler", default="orca", show_default=True, type=click.Choice(["orca", "vllm"]),
              help="orca: the paper's iteration-level batching; vllm: vLLM V1 (token budget, chunked prefill).")
@click.option("--max_num_seqs", default=256, show_default=True, type=int, help="vllm: requests running at once.")
@click.option("--max_num_batched_tokens", default=2048, show_default=True, type=int,
              help="vllm: tokens per step (the token budget).")
@click.option("--gpu_memory_utilization", default=0.9, show_default=True, type=float,
              help="vllm: share of device memory for weights, activations and KV cache.")
@click.option("--num_gpu_blocks", default=None, type=int, help="vllm: KV blocks per NPU, instead of deriving them.")
@click.option("--engine-overhead", "engine_overhead", default=None, type=float,
              help="Per-step engine time outside the model, ns [default: the hardware's].")
def main(**flags) -> None:
    """Simulate LLM inference serving: iteration-level scheduling, paged KV cache, per-iteration
    Chakra graphs run on the analytical system simulator."""
    simulate_or_exit(RunRequest(**flags))


if __name__ == "__main__":
    main()
