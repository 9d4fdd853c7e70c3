"""FlashAttention 2's thread-block schedule (perf/fa2.py) on cases worked out by hand."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_serving.errors import InputError
from inference_serving.perf import fa2_native
from inference_serving.perf.fa2 import (Fa2Gpu, Fa2Step, block_n, chunk_ctas, ctas_per_sm, decode_ctas, heads_columns,
                                        makespan_s, mixed_ctas, num_splits, runs_fa2)

DRAM, L2 = True, False


def test_vllm_runs_fa2_off_hopper_and_datacenter_blackwell():
    assert [runs_fa2(cc) for cc in (8.0, 8.6, 8.9, 12.0)] == [True] * 4
    assert [runs_fa2(cc) for cc in (7.5, 9.0, 10.0)] == [False] * 3


def test_tile_width_by_head_size():
    assert [block_n(d) for d in (64, 128, 256)] == [256, 128, 64]


def test_ctas_per_sm_by_shared_memory():
    # head size 128: Q 64 x 128 + K and V 2 x 128 x 128 bf16 = 81,920 B, + 1 KiB reserved = 82,944 B
    assert ctas_per_sm(12.0, 128) == 102_400 // 82_944 == 1   # 100 KiB per SM
    assert ctas_per_sm(8.0, 128) == 167_936 // 82_944 == 2    # 164 KiB per SM
    # head size 64: (64 + 2 x 256) x 64 x 2 + 1024 = 74,752 B
    assert ctas_per_sm(8.9, 64) == 1
    with pytest.raises(InputError, match="compute capability 7.5"):
        ctas_per_sm(7.5, 128)


def test_split_heuristic_by_hand():
    # FA2's own example: 48 blocks, 108 slots (54 SMs x 2); 4 tiles: 3 splits are not eligible (2 tiles
    # each, as with 2); efficiency 1: 0.44, 2: 96/108 = 0.89, 4: 192/108 = 1.78 of 2 waves = 0.89;
    # the first within 0.85 of the best is 2.
    assert num_splits(48, 54, 4) == 2
    assert num_splits(87, 54, 64) == 1            # 87 >= 0.8 x 108: enough blocks
    assert num_splits(128 * 8, 188, 10) == 1      # a full batch on the RTX PRO 6000


def test_decode_ctas_head_major_and_split():
    # contexts 100 and 300 tokens: 1 and 3 tiles of 128 keys; 2 KV heads
    assert decode_ctas([100, 300], 2, 128) == [(1, DRAM), (3, DRAM), (1, DRAM), (3, DRAM)]
    # 2 splits of ceil(3 / 2) = 2 tiles, request-major: [1, 0] and [2, 1] per head
    assert decode_ctas([100, 300], 2, 128, splits=2) == [(t, DRAM) for t in (1, 0, 1, 0, 2, 1, 2, 1)]


def test_chunk_ctas_see_the_prefix_and_their_rows():
    # 100 tokens after 200: m-block 0 sees keys up to 264 (3 tiles), m-block 1 up to 300 (3 tiles)
    assert chunk_ctas(100, 200, 128) == [(3, L2), (3, L2)]


def test_mixed_ctas_unpack_the_query_heads():
    # 4 query heads on 2 KV heads: the first head of each group streams from DRAM, the second from L2
    chunk = [(3, L2), (3, L2)]
    assert mixed_ctas([100], [(100, 200)], 4, 2, 128, l2_reuse=True) == [
        (1, DRAM), *chunk, (1, L2), *chunk, (1, DRAM), *chunk, (1, L2), *chunk]
    assert [d for _, d in mixed_ctas([100], [], 4, 2, 128, l2_reuse=False)] == [DRAM] * 4


def test_makespan_of_streaming_ctas():
    # 1 and 3 tiles, bandwidth 1 tile/s shared: 0.5 each until the short one ends at 2 s, then the
    # long one alone at 1 tile/s for its last 2 tiles: 4 s
    assert makespan_s([(1, DRAM), (3, DRAM)], 4, 1.0, 1.0) == pytest.approx(4.0)
    # three CTAs of 2 tiles on 2 slots, 1 tile/s each: 2 s, then the third: 4 s
    assert makespan_s([(2, DRAM)] * 3, 2, 1.0, 10.0) == pytest.approx(4.0)
    assert makespan_s([(2, L2)] * 3, 2, 1.0, 10.0) == pytest.approx(4.0)
    assert makespan_s([(0, DRAM)], 2, 1.0, 1.0) == 0.0


def test_makespan_of_l2_and_streaming_ctas():
    # slots 2, 1 tile/s per CTA, DRAM 1 tile/s: the L2 CTA ends at 1 s, the first streaming CTA has done
    # 1 tile; the second starts, both stream at 0.5: the first ends at 3 s, the second (1 tile left)
    # runs alone at 1 tile/s: 4 s
    assert makespan_s([(1, L2), (2, DRAM), (2, DRAM)], 2, 1.0, 1.0) == pytest.approx(4.0)
    # a lone streaming CTA at 0.5 tile/s (the DRAM rate) beside an L2 one at 1 tile/s
    assert makespan_s([(2, L2), (4, DRAM)], 2, 1.0, 0.5) == pytest.approx(8.0)


def step(q_heads=2, unpacked=True) -> Fa2Step:
    return Fa2Step(Fa2Gpu(sms=2, ctas_per_sm=1, l2_bytes=2**30), q_heads, 1, 128, 1.0, unpacked_mixed=unpacked)


def test_decode_step_scales_the_table_by_its_schedule():
    # 2 requests of 1 and 3 tiles, 1 KV head, 2 SMs, 1 s per tile; the table's 2 s at the mean (2 tiles)
    # gives DRAM 2 x 2 / 2 = 2 tiles/s. The table's eager kernel splits (2 blocks < 0.8 x 4): 2 splits,
    # 4 CTAs of 1 tile on 2 slots at 1 tile/s: 2 s. The graph's CTAs, 1 and 3 tiles: 1 s together,
    # then 2 tiles alone: 3 s. 2 s x 3 / 2 = 3 s.
    assert step().decode_s([128, 384], 2.0) == pytest.approx(3.0)


def test_mixed_step_adds_the_decodes_schedule():
    # one decode of 1 tile, a 64-token chunk (1 CTA of 1 tile per query head), 4 query heads on 1 KV
    # head, 2 slots, 1 s per tile, DRAM 1 tile/s (table 1 s for 1 tile): unpacked, 8 CTAs of 1 s on
    # 2 slots = 4 s, less the chunk's 4 CTAs alone = 2 s: 2 s. Packed, 5 CTAs = 3 s, less 2 s: 1 s.
    assert step(q_heads=4).mixed_s([128], [(64, 0)], 1.0) == pytest.approx(2.0)
    assert step(q_heads=4, unpacked=False).mixed_s([128], [(64, 0)], 1.0) == pytest.approx(1.0)


def test_gpu_facts_come_from_the_hardware_file():
    """RTX 3090 (scaled from A100's tables): its own 82 SMs, compute capability 8.6 (100 KiB per SM:
    one CTA of head size 128) and 6 MiB of L2; H100 runs FlashAttention 3: no FA2 schedule."""
    from inference_serving.inputs.hardware import load_hardware
    from inference_serving.perf.aiconfigurator import fa2_gpu
    assert fa2_gpu(load_hardware("RTX3090"), 128, 16) == Fa2Gpu(82, 1, 6 * 2**20)
    assert fa2_gpu(load_hardware("H100"), 128, 16) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=300), st.integers(1, 64),
       st.sampled_from([1.0, 0.37, 3e-6]), st.sampled_from([1.0, 3.3, 7.1e6]), st.booleans())
def test_compiled_schedule_gives_the_reference_numbers(ctas, slots, tile_s, dram_rate, one_kind):
    """The compiled schedule (native/fa2_schedule.cpp) equals the Python one bit for bit."""
    if one_kind:
        ctas = [(tiles, True) for tiles, _ in ctas]
    assert makespan_s(ctas, slots, tile_s, dram_rate, native=True) == makespan_s(ctas, slots, tile_s, dram_rate)


def test_heads_one_after_the_other_stream_on_every_dram_every_th_head():
    assert heads_columns([1, 2], b"\x01\x00", 3, 2) == ([1, 2] * 3, b"\x01\x00" + b"\x00\x00" + b"\x01\x00")
    assert heads_columns([4], b"\x01", 2) == ([4, 4], b"\x01\x01")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=60), st.integers(1, 6), st.integers(1, 4),
       st.integers(1, 64), st.sampled_from([1.0, 3e-6]), st.sampled_from([1.0, 7.1e6]))
def test_compiled_schedule_of_repeated_heads_is_the_spelled_out_one(ctas, heads, dram_every, slots, tile_s, rate):
    """The heads crossing ctypes once (fa2_native.makespan_s with `heads`) schedule as the Python reference
    does the CTAs heads_columns spells out."""
    tiles, streams = [t for t, _ in ctas], bytes(d for _, d in ctas)
    all_tiles, all_streams = heads_columns(tiles, streams, heads, dram_every)
    reference = makespan_s(list(zip(all_tiles, map(bool, all_streams))), slots, tile_s, rate)
    assert fa2_native.makespan_s(tiles, streams, slots, tile_s, rate, heads, dram_every) == reference


def test_compiled_schedule_of_a_worked_case():
    # the L2-and-streaming case above, through the library: 4 s exactly
    assert makespan_s([(1, L2), (2, DRAM), (2, DRAM)], 2, 1.0, 1.0, native=True) == 4.0
    assert makespan_s([], 2, 1.0, 1.0, native=True) == 0.0


def test_compiled_greedy_schedule_by_hand():
    """One kind of CTA on 2 slots (the compiled schedule keeps the slots' free times in a bucket queue): CTAs of
    3, 1, 1, 2 tiles start at tile 0, 0, 1, 2 and end at 3, 1, 2, 4. Reading L2 at 1 tile/s the last ends at 4 s;
    streaming 1 tile/s shared by those running, 2 / 0.5 s until the last start, (3 - 2) / 0.5 s with two running,
    (4 - 3) / 1 s with one: 7 s. A CTA far wider than the others (the queue's width) ends alone: 1 + 1 + 99,998 s."""
    ctas = [3, 1, 1, 2]
    assert makespan_s([(t, L2) for t in ctas], 2, 1.0, 1.0, native=True) == 4.0
    assert makespan_s([(t, DRAM) for t in ctas], 2, 1.0, 1.0, native=True) == 7.0
    assert makespan_s([(100_000, L2), (1, L2), (1, L2)], 2, 1.0, 1.0, native=True) == 100_000.0
    assert makespan_s([(1, L2)] * 5, 2, 1.0, 1.0, native=True) == 3.0  # times past the queue's width wrap round


@pytest.mark.parametrize("heads, dram_every, slots", [(-1, 1, 2), (1, 0, 2), (1, 1, 0)])
def test_compiled_schedule_refuses_what_it_cannot_schedule(heads, dram_every, slots):
    """No negative head count, no streaming head spacing below one, and at least one slot (a schedule without
    slots never ends)."""
    with pytest.raises(ValueError, match="need heads >= 0, dram_every >= 1 and slots >= 1"):
        fa2_native.makespan_s([1, 2], b"\x01\x01", slots, 1.0, 1.0, heads, dram_every)


def test_compiled_steps_price_as_the_reference():
    contexts = [100, 300, 129, 4000, 1, 257] * 20
    fast = step(q_heads=4)
    slow = Fa2Step(fast.gpu, 4, 1, 128, 1.0, native=False)
    assert fast.decode_s(contexts, 2.0) == slow.decode_s(contexts, 2.0)
    assert fast.mixed_s(contexts, [(64, 0), (300, 17)], 2.0) == slow.mixed_s(contexts, [(64, 0), (300, 17)], 2.0)


@pytest.mark.parametrize("l2_bytes,unpacked", [(2**30, True), (2**10, True), (2**30, False)])
def test_compiled_mixed_steps_of_grouped_heads_price_as_the_reference(l2_bytes, unpacked):
    """8 query heads on 2 KV heads: K/V from L2 after the group's first head, or not (a small L2), or
    packed decodes (the ablation): the compiled and Python schedules agree bit for bit."""
    contexts, prefills = [100, 300, 129, 4000, 1, 257] * 20, [(64, 0), (300, 17), (1000, 2048)]
    gpu = Fa2Gpu(sms=6, ctas_per_sm=2, l2_bytes=l2_bytes)
    fast, slow = (Fa2Step(gpu, 8, 2, 128, 1e-6, unpacked_mixed=unpacked, native=native) for native in (True, False))
    assert fast.mixed_s(contexts, prefills, 2e-4) == slow.mixed_s(contexts, prefills, 2e-4)
