"""How many KV blocks a run has, and whether its model and requests fit: the one place KV capacity
is decided (the policies pick which rule applies: the whole free memory, or vLLM's accounting).

vLLM 0.19's accounting (`Worker.determine_available_memory` in vllm/v1/worker/gpu_worker.py, with
`memory_profiling` in vllm/utils/mem_utils.py) gives the KV cache of each GPU

    total device memory x gpu_memory_utilization
      - weights            torch memory taken by loading the model: parameters and buffers
      - activation peak    the rise of torch's allocated-bytes peak during `profile_run`
      - non-torch increase memory outside torch allocated after the worker's first snapshot

and cuts it into blocks of `block_size` tokens of K and V of every layer (`get_kv_cache_config`:
available bytes // page size // layers). Not subtracted in 0.19, so not here either:
  - CUDA graphs: captured after the KV cache is allocated (`compile_or_warm_up_model`); reserving
    an estimate of them first (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS, vLLM PR #30515) is off
    by default before v0.21.0;
  - NCCL and custom all-reduce buffers: allocated by `init_worker_distributed_environment` before
    the first snapshot (vLLM PR #25359), outside the budget like the CUDA context;
  - the rest of the non-torch increase (kernel images the CUDA runtime loads at first launch,
    library handles) depends on the driver and libraries, not on the model or the GPU, and is
    taken as zero.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...config.run_config import RunConfig
from ...errors import InputError
from ...inputs.model_config import ModelConfig
from ...inputs.workload import Request
from ...perf.shard import shard
from .layout import MemoryLayout

FP32_BYTES = 4


def activation_bytes(fp_bits: int) -> int:
    """Bytes of one activation: the model's dtype (vLLM's fp8 quantization keeps activations in
    bf16 between its GEMMs)."""
    return max(fp_bits, 16) // 8


def rotary_cache_bytes(model: ModelConfig, fp_bits: int) -> int:
    """The rotary embedding's cos/sin table, loaded with the weights: max_position_embeddings x
    head_dim values in the model's dtype (vLLM's `RotaryEmbedding.cos_sin_cache`; `get_rope`
    builds one per model). Models with learned positions have none."""
    if model.learned_positions:
        return 0
    return model.max_position_embeddings * model.head_dim * activation_bytes(fp_bits)


def forward_peak_bytes(model: ModelConfig, fp_bits: int, tp: int, tokens: int) -> int:
    """Live activations at the peak of the profile's forward pass over `tokens` tokens: the
    residual stream plus the largest pair of tensors a decoder layer holds at once (qkv and the
    attention output; attention output and o_proj's; gate/up output and the activation's;
    activation output and down_proj's). The profile has no KV cache yet, so attention only
    allocates its output (vLLM's attention backends return early without metadata)."""
    part = shard(model, tp)
    up = (2 if model.gated_mlp else 1) * part.intermediate
    pairs = (part.q_size + 2 * part.kv_size + part.q_size, part.q_size + model.hidden_size,
             up + part.intermediate, part.intermediate + model.hidden_size)
    return tokens * (model.hidden_size + max(pairs)) * activation_bytes(fp_bits)


def sampler_peak_bytes(model: ModelConfig, fp_bits: int, tp: int, tokens: int, seqs: int) -> int:
    """Live tensors while the profile samples from its `seqs` last hidden states
    (`GPUModelRunner._dummy_sampler_run`: temperature 0.5, top-p 0.9, top-k vocab - 1, so random
    sampling): the forward's output hidden states, the sampled rows and their random stand-ins,
    the logits in the model's dtype (this rank's share of the vocabulary, plus the gathered whole
    for tp > 1), and three fp32 copies of them: the sampler's float32 logits, the probabilities and
    the exponential noise of `random_sample` (vllm/v1/sample/sampler.py and
    ops/topk_topp_sampler.py; the top-k/top-p mask is applied in place)."""
    e = activation_bytes(fp_bits)
    hidden = (tokens + 2 * seqs) * model.hidden_size * e
    own_vocab = shard(model, tp).linear("lm_head")[1]
    logits = seqs * (own_vocab + (model.vocab_size if tp > 1 else 0)) * e
    return hidden + logits + 3 * seqs * model.vocab_size * FP32_BYTES


@dataclass(frozen=True)
class VllmMemory:
    """vLLM 0.19's memory budget of one GPU, term by term (bytes)."""

    budget: int          # total device memory x gpu_memory_utilization (`requested_memory`)
    weights: int         # parameters of the GPU's share of the model
    buffers: int         # non-parameter tensors loaded with the model (the rotary table)
    activations: int     # peak of the profile run: max(forward pass, sampler)
    block_bytes: int

    @property
    def kv_bytes(self) -> int:
        return self.budget - self.weights - self.buffers - self.activations

    @property
    def blocks(self) -> int:
        return max(0, self.kv_bytes // self.block_bytes)


def vllm_memory(model: ModelConfig, layout: MemoryLayout, config: RunConfig) -> VllmMemory:
    """The terms for this run; the profile runs `max_num_batched_tokens` tokens spread over
    min(max_num_seqs, max_num_batched_tokens) requests (`_dummy_run`)."""
    tokens = config.max_num_batched_tokens
    seqs = min(config.max_num_seqs, tokens)
    peak = max(forward_peak_bytes(model, config.fp_bits, config.tp, tokens),
               sampler_peak_bytes(model, config.fp_bits, config.tp, tokens, seqs))
    return VllmMemory(budget=int(layout.capacity_bytes * config.gpu_memory_utilization),
                      weights=layout.weight_bytes, buffers=rotary_cache_bytes(model, config.fp_bits),
                      activations=peak, block_bytes=layout.block_bytes)


def context_limit(model: ModelConfig, max_model_len: int | None) -> int:
    """The longest request a run accepts: `--max_model_len` (vLLM's server refuses longer ones),
    at most the model's context, which is the default."""
    if max_model_len is None:
        return model.max_position_embeddings
    if max_model_len > model.max_position_embeddings:
        raise InputError(f"--max_model_len {max_model_len} exceeds the context of {model.name} "
                         f"({model.max_position_embeddings} tokens)")
    return max_model_len


def check_fits(requests: list[Request], model: ModelConfig, layout: MemoryLayout, total_blocks: int,
               npu_mem_gib: float, context: int) -> None:
    """The weights leave room for KV blocks, and every request fits `context` tokens and the KV cache."""
    if layout.weight_bytes >= layout.capacity_bytes or total_blocks == 0:
        raise InputError(f"--npu_mem: {model.name} needs {layout.weight_bytes / 2**30:.2f} GiB of weights per NPU "
                         f"plus KV blocks, more than {npu_mem_gib:g} GiB; raise --npu_mem or use more NPUs")
    for r in requests:
        tokens = r.input_tokens + r.output_tokens
        if tokens > context:
            raise InputError(f"request {r.id}: {tokens} tokens exceed the longest request accepted, "
                             f"{context} (the model's context or --max_model_len); shorten it in the dataset")
        needed = -(-tokens // layout.block_size)
        if needed > total_blocks:
            raise InputError(f"request {r.id}: needs {needed} KV blocks but each NPU holds only "
                             f"{total_blocks}; raise --npu_mem or use more NPUs")
