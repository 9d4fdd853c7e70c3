"""Orca scheduler and paged KV cache, without the engine: batches and block counts by hand."""
from __future__ import annotations

from inference_serving.serving.kv.host_swap import HostSwapKV
from inference_serving.serving.kv.layout import MemoryLayout, memory_layout, stage_weight_bytes
from inference_serving.inputs.model import load_model
from inference_serving.serving.orca import OrcaPolicy
from inference_serving.inputs.workload import Request


def kv_with_blocks(blocks: int, block_size: int = 4) -> HostSwapKV:
    return HostSwapKV(MemoryLayout(weight_bytes=1000, block_bytes=100, capacity_bytes=1000 + 100 * blocks,
                                block_size=block_size))


def requests(*shapes: tuple[int, int, int]) -> list[Request]:
    return [Request(i, inp, out, arr) for i, (inp, out, arr) in enumerate(shapes)]


def shapes(batch) -> list[tuple[int, int, int]]:
    return [(e.request_id, e.new_tokens, e.cached_tokens) for e in batch.entries]


def test_llama_8b_layout_on_h100_tp1():
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    layout = memory_layout(model, 16, tp=1, pp=1, npu_mem_gib=80, block_size=16)
    assert layout.weight_bytes == 8_030_261_248 * 2
    assert layout.block_bytes == 16 * 2 * 32 * 8 * 128 * 2  # tokens, K+V, layers, kv heads, head dim, bytes
    assert layout.num_blocks == (80 * 2**30 - 8_030_261_248 * 2) // (16 * 131072)


def test_weights_split_over_stages_and_ranks():
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")
    layer = 4096 * 4096 * 2 + 4096 * 1024 * 2 + 3 * 4096 * 14336 + 2 * 4096
    embedding = 128256 * 4096
    sizes = stage_weight_bytes(model, 16, tp=2, pp=2)
    assert sizes == [(16 * layer + embedding) // 2 * 2, (16 * layer + embedding + 4096) // 2 * 2]


def test_kv_heads_fewer_than_ranks_are_replicated():
    model = load_model("meta-llama/Llama-3.1-8B-Instruct")  # 8 KV heads
    assert memory_layout(model, 16, 16, 1, 80, 16).block_bytes == memory_layout(model, 16, 8, 1, 80, 16).block_bytes


def test_prefill_then_decode_and_completion():
    kv = kv_with_blocks(10)
    s = OrcaPolicy(requests((5, 2, 0), (3, 1, 0)), kv)
    b0 = s.schedule(0)
    assert shapes(b0) == [(0, 5, 0), (1, 3, 0)] and kv.used_blocks == 2 + 1
    assert s.schedule(0) is None  # both in flight
    finished = s.complete(b0, 100)
    assert [f.id for f in finished] == [1] and kv.used_blocks == 2
    b1 = s.schedule(100)
    assert shapes(b1) == [(0, 1, 5)]
    assert [f.id for f in s.complete(b1, 200)] == [0] and kv.used_blocks == 0 and s.unfinished == 0


def test_arrivals_join_only_after_arriving():
    s = OrcaPolicy(requests((2, 3, 0), (2, 3, 50)), kv_with_blocks(10))
    b0 = s.schedule(0)
    assert shapes(b0) == [(0, 2, 0)]
    s.complete(b0, 40)
    assert shapes(s.schedule(40)) == [(0, 1, 2)]
    assert s.next_arrival() == 50


def test_max_batch_caps_requests():
    s = OrcaPolicy(requests((2, 3, 0), (2, 3, 0), (2, 3, 0)), kv_with_blocks(10), max_batch=2)
    assert [e.request_id for e in s.schedule(0).entries] == [0, 1]


def test_new_request_waits_for_blocks_fcfs():
    s = OrcaPolicy(requests((8, 2, 0), (9, 2, 0), (1, 2, 0)), kv_with_blocks(4))
    b0 = s.schedule(0)
    assert shapes(b0) == [(0, 8, 0)]  # r1 needs 3 blocks, 2 are free; r2 may not overtake it


def test_eviction_of_most_recent_and_reload():
    kv = kv_with_blocks(4)
    s = OrcaPolicy(requests((6, 6, 0), (4, 5, 0)), kv)
    b = s.schedule(0)
    assert shapes(b) == [(0, 6, 0), (1, 4, 0)] and kv.used_blocks == 3
    s.complete(b, 1)
    b = s.schedule(1)
    assert shapes(b) == [(0, 1, 6), (1, 1, 4)] and kv.used_blocks == 4
    s.complete(b, 2)
    s.complete(s.schedule(2), 3)
    b = s.schedule(3)  # r0 needs a third block for token 9: r1 (admitted last) goes to host
    assert shapes(b) == [(0, 1, 8)] and b.evicted == [1] and b.evict_bytes == 2 * 100
    assert kv.host == {1: 2} and kv.used_blocks == 3
    s.complete(b, 4)
    b = s.schedule(4)
    assert shapes(b) == [(0, 1, 9)] and b.load_bytes == 0  # no room to reload yet
    s.complete(b, 5)
    b = s.schedule(5)
    s.complete(b, 6)  # r0 generated its 6th token
    assert s.states[0].done and kv.used_blocks == 0
    b = s.schedule(6)
    assert shapes(b) == [(1, 1, 6)] and b.reloaded == [1] and b.load_bytes == 200


def test_request_evicts_itself_when_alone_too_big():
    kv = kv_with_blocks(2)
    s = OrcaPolicy(requests((8, 3, 0)), kv)
    s.complete(s.schedule(0), 1)
    b = s.schedule(1)  # needs a third block: nobody else to evict
    assert b is None and kv.host == {0: 2}


def test_gen_skips_prefill():
    kv = kv_with_blocks(10)
    s = OrcaPolicy(requests((5, 2, 0)), kv, skip_prefill=True)
    b = s.schedule(0)
    assert shapes(b) == [(0, 1, 5)] and kv.used_blocks == 2 and b.prompt_tokens == 0
