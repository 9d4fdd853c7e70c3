"""The vLLM V1 policy on small scenarios worked out by hand (block size 4 tokens)."""
from __future__ import annotations

from inference_serving.config.run_config import RunConfig
from inference_serving.inputs.model import load_model
from inference_serving.inputs.workload import Request
from inference_serving.serving.kv.layout import GIB, MemoryLayout, memory_layout
from inference_serving.serving.kv.prefix_cache import PrefixCacheKV
from inference_serving.serving.kv.sizing import VllmMemory, vllm_memory
from inference_serving.serving.vllm import VllmPolicy


def scheduler(shapes, blocks=100, budget=8, max_seqs=16, token_ids=None) -> VllmPolicy:
    requests = [Request(i, inp, out, arr, token_ids[i] if token_ids else None) for i, (inp, out, arr) in enumerate(shapes)]
    layout = MemoryLayout(weight_bytes=0, block_bytes=1, capacity_bytes=blocks, block_size=4)
    pool = PrefixCacheKV(layout, blocks, caching=token_ids is not None)
    return VllmPolicy(requests, pool, max_seqs, budget, VllmMemory(blocks, 0, 0, 0, 1))


def step(s: VllmPolicy, now: int = 0):
    batch = s.schedule(now)
    shapes = [(e.request_id, e.new_tokens, e.cached_tokens) for e in batch.entries]
    s.complete(batch, now + 1)
    return shapes, batch


def test_long_prompt_is_chunked_by_the_budget():
    s = scheduler([(20, 2, 0)], budget=8)
    assert step(s)[0] == [(0, 8, 0)]
    assert step(s)[0] == [(0, 8, 8)]
    assert s.states[0].generated == 0  # no token before the prompt's end
    assert step(s)[0] == [(0, 4, 16)]
    assert s.states[0].generated == 1 and s.states[0].first_token_ns == 1
    assert step(s)[0] == [(0, 1, 20)] and s.states[0].done


def test_budget_shared_decodes_first_then_waiting_fcfs():
    s = scheduler([(3, 5, 0), (3, 5, 0), (10, 2, 0)], budget=8)
    assert step(s)[0] == [(0, 3, 0), (1, 3, 0), (2, 2, 0)]  # 3 + 3 + 2 of request 2's 10
    # running first in order: r0, r1 decode (1 each), then r2's unfinished prompt takes the rest (6)
    assert step(s)[0] == [(0, 1, 3), (1, 1, 3), (2, 6, 2)]
    assert step(s)[0] == [(0, 1, 4), (1, 1, 4), (2, 2, 8)]


def test_batch_counts_its_prompt_tokens_and_prefills_as_requests_join():
    # chunked prompts, decodes and a recomputation after preemption: the counts `add` keeps are the entries'
    s = scheduler([(10, 3, 0), (3, 4, 0), (9, 2, 0), (5, 3, 0)], blocks=6, budget=7)
    while s.unfinished:
        batch = s.schedule(0)
        pairs = list(zip(batch.states, batch.entries))
        assert batch.prompt_tokens == sum(min(e.cached_tokens + e.new_tokens, st.request.input_tokens)
                                          - min(e.cached_tokens, st.request.input_tokens) for st, e in pairs)
        prefill = [st.id for st, e in pairs if e.cached_tokens < st.request.input_tokens]
        decode = [st.id for st, e in pairs if e.cached_tokens >= st.request.input_tokens]
        assert batch.describe() == f"prefill {prefill} decode {decode}"
        s.complete(batch, 1)
    assert s.preemptions


def test_max_num_seqs_caps_running_requests():
    s = scheduler([(2, 3, 0)] * 3, budget=100, max_seqs=2)
    assert [r for r, _, _ in step(s)[0]] == [0, 1]
    assert [r for r, _, _ in step(s)[0]] == [0, 1]


def test_preemption_recomputes_the_most_recent_request():
    # 4 blocks of 4 tokens. r0 (8 prompt) and r1 (7 prompt) fill 2 + 2 blocks after prefill.
    s = scheduler([(8, 4, 0), (7, 4, 0)], blocks=4, budget=100)
    assert step(s)[0] == [(0, 8, 0), (1, 7, 0)]
    # r0 needs a 3rd block for token 9: r1 (last admitted) is preempted, its KV dropped; r0 decodes
    shapes, batch = step(s)
    assert shapes == [(0, 1, 8)] and batch.preempted == [1]
    assert s.states[1].cached == 0 and s.states[1].generated == 1 and s.kv.used_blocks == 3
    assert list(s.waiting) == [s.states[1]]
    # r1 must recompute prompt + its 1 output token (8 tokens, 2 blocks): only 1 block free, so it waits
    assert step(s)[0] == [(0, 1, 9)]
    step(s)  # r0 generates its 4th token and finishes, freeing its blocks
    assert s.states[0].done
    assert step(s)[0] == [(1, 8, 0)]  # recomputed in one step, then it samples its 2nd token
    assert s.states[1].generated == 2


def test_preempting_itself_stops_the_step():
    s = scheduler([(8, 3, 0)], blocks=2, budget=100)
    step(s)
    batch = s.schedule(1)
    assert batch is None and s.preemptions == 1 and s.states[0].cached == 0


def test_prefix_cache_hits_skip_shared_prompt_blocks():
    shared = tuple(range(8))
    ids = [shared + (100, 101), shared + (200, 201, 202)]
    s = scheduler([(10, 2, 0), (11, 2, 5)], token_ids=ids, budget=100)
    assert step(s, 0)[0] == [(0, 10, 0)]
    # r1 arrives; its first two blocks (tokens 0..7) are cached by r0: only 3 tokens computed
    shapes, _ = step(s, 5)
    assert (1, 3, 8) in shapes
    assert s.kv.prefix_hits == 1


def test_freed_prefix_blocks_stay_cached_until_space_is_needed():
    ids = [tuple(range(9)), tuple(range(9))]
    s = scheduler([(9, 1, 0), (9, 1, 10)], token_ids=ids, blocks=3, budget=100)
    step(s, 0)
    assert s.states[0].done and s.kv.used_blocks == 0 and len(s.kv.cached_free) == 2
    assert step(s, 10)[0] == [(1, 1, 8)]  # 2 cached blocks reused, the last token recomputed


def test_kv_capacity_terms_by_hand_llama_8b_on_rtx_pro_6000():
    """vLLM 0.19's budget for Llama-3.1-8B (bf16, TP 1) on one RTX PRO 6000 (95.5927734375 GiB),
    max_num_seqs 128, max_num_batched_tokens 2048, gpu_memory_utilization 0.9, block size 16."""
    model = load_model("meta-llama/Llama-3.1-8B")
    config = RunConfig(model_name=model.name, npu_num=1, max_num_seqs=128, max_num_batched_tokens=2048)
    memory = vllm_memory(model, memory_layout(model, 16, 1, 1, 95.5927734375, 16), config)
    assert memory.budget == int(95.5927734375 * GIB * 0.9)
    # 32 layers x (4096 x (4096 + 2 x 1024) + 4096 x 4096 + 3 x 4096 x 14336 + 2 x 4096)
    # + embedding and LM head 2 x 128256 x 4096 + final norm 4096 parameters, 2 bytes each
    assert memory.weights == 8_030_261_248 * 2
    assert memory.buffers == 131072 * 128 * 2          # rotary cos/sin table
    # forward: 2048 tokens x (residual 4096 + gate/up 28672 + activation 14336) x 2 bytes = 192,937,984
    # sampler: hidden states (2048 + 2 x 128) x 4096 x 2 + bf16 logits 128 x 128256 x 2
    #          + 3 fp32 copies 3 x 128 x 128256 x 4 = 18,874,368 + 32,833,536 + 197,001,216
    assert memory.activations == 248_709_120
    assert memory.block_bytes == 16 * 2 * 32 * 1024 * 2  # 16 tokens of K and V, 32 layers, 8 KV heads x 128
    assert memory.blocks == (memory.budget - 16_060_522_496 - 33_554_432 - 248_709_120) // 2_097_152 == 36256
