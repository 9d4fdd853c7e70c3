"""How many KV blocks a run has, and whether its model and requests fit: the one place KV capacity
is decided (the policies pick which rule applies: the whole free memory, or vLLM's accounting)."""
from __future__ import annotations

from ...errors import InputError
from ...inputs.model_config import ModelConfig
from ...inputs.workload import Request
from ...perf.shard import shard
from .layout import MemoryLayout


def activation_reserve_bytes(model: ModelConfig, fp_bits: int, tp: int, max_tokens: int, max_seqs: int) -> int:
    """The activation peak vLLM profiles before sizing its KV cache, estimated from first
    principles: the MLP's live tensors for a full token budget (gate/up output, activation
    output, hidden state and residual) plus fp32 logits (and their softmax) for every sequence."""
    part = shard(model, tp)
    mlp = max_tokens * (3 * part.intermediate + 2 * model.hidden_size) * fp_bits // 8
    logits = max_seqs * part.linear("lm_head")[1] * 4 * 2
    return mlp + logits


def vllm_kv_blocks(layout: MemoryLayout, gpu_memory_utilization: float, activation_bytes: int) -> int:
    """vLLM's KV capacity: the utilisation share of device memory, less weights and the
    activation peak of a forward pass at the token budget."""
    usable = int(layout.capacity_bytes * gpu_memory_utilization) - layout.weight_bytes - activation_bytes
    return max(0, usable // layout.block_bytes)


def check_fits(requests: list[Request], model: ModelConfig, layout: MemoryLayout, total_blocks: int,
               npu_mem_gib: float) -> None:
    """The weights leave room for KV blocks, and every request fits the context and the KV cache."""
    if layout.weight_bytes >= layout.capacity_bytes or total_blocks == 0:
        raise InputError(f"--npu_mem: {model.name} needs {layout.weight_bytes / 2**30:.2f} GiB of weights per NPU "
                         f"plus KV blocks, more than {npu_mem_gib:g} GiB; raise --npu_mem or use more NPUs")
    for r in requests:
        tokens = r.input_tokens + r.output_tokens
        if tokens > model.max_position_embeddings:
            raise InputError(f"request {r.id}: {tokens} tokens exceed the model's context of "
                             f"{model.max_position_embeddings}; shorten it in the dataset")
        needed = -(-tokens // layout.block_size)
        if needed > total_blocks:
            raise InputError(f"request {r.id}: needs {needed} KV blocks but each NPU holds only "
                             f"{total_blocks}; raise --npu_mem or use more NPUs")
