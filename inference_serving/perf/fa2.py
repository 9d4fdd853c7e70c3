"""FlashAttention-2 as vLLM 0.19 runs it: one step's attention kernel as thread blocks (CTAs) on the SMs.

vLLM 0.19 runs FlashAttention on every NVIDIA GPU of compute capability 8.x and 12.x (FLASH_ATTN first in
`vllm/platforms/cuda.py` `_get_backend_priorities` for all but 10.x, where FlashInfer comes first), in its
version 2 except on 9.x, which gets version 3 (`vllm/v1/attention/backends/fa_utils.py`
`get_flash_attn_version`). Every step is one `flash_attn_varlen_func` call over all its tokens with a paged
KV cache, which `mha_varlen_fwd` (vllm-project/flash-attention `csrc/flash_attn/flash_api.cpp` at f5bc33cf, the
commit vLLM's main branch pinned in April 2026) always launches as the split-KV kernel:

  tile      kBlockM = 64 query rows x kBlockN keys, 4 warps; kBlockN = 256 / 128 / 64 for head sizes up to
            64 / 128 / larger (`run_mha_fwd_splitkv_dispatch`, `src/flash_fwd_launch_template.h`); shared
            memory: the Q tile and one K and one V tile (`kSmemSize`, `src/kernel_traits.h`).
  decode    a step of decodes only (max_seqlen_q = 1) packs the query heads of each KV head into one CTA's
            rows (`seqlenq_ngroups_swapped`): grid (1, requests, KV heads), one CTA per request and KV head
            that streams that head's K and V once. Under vLLM's full CUDA graph for decode batches the graph
            is captured with every sequence one token long (`gpu_model_runner._dummy_run`: seq_lens =
            max_query_len), so the split heuristic sees one KV block and the replayed kernel never splits a
            request's KV (`num_splits_heuristic`: at most num_n_blocks splits).
  mixed     a step with any prompt chunk (max_seqlen_q > 1) is not packed and never split ("num_splits > 1
            is not supported for varlen paged KV"): grid (ceil(max_seqlen_q / 64), requests, query heads);
            a decode is one CTA per query head, each running full 64-row tiles over the KV of its head's
            group; a chunk of L tokens after P cached ones is ceil(L / 64) CTAs per query head, CTA m
            covering keys up to P + min(64 (m + 1), L). CTAs whose m-block lies past a request's tokens exit
            at once.

CTAs start in launch order (blockIdx.x fastest) as SMs free up; an SM holds as many as its shared memory
fits (the CUDA C++ Programming Guide's per-SM shared memory, less 1 KiB the driver reserves per block).
A CTA works through its K/V tiles one at a time; no CTA finishes a tile faster than the kernel's measured
time per tile and SM (the aiconfigurator context-attention table: the marginal time of a long prompt per
tile), shared by the CTAs an SM holds, and CTAs that stream K/V from device memory share its bandwidth (the
decode table's rate for the same requests at equal contexts). The query heads of one KV group in a mixed
step read the same K/V one head pass apart: from L2 when one KV head's K/V of the whole step fits in it
(least-recently-used reuse), else from device memory again. Nothing here is fitted to a serving run.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from ..errors import InputError
from . import fa2_native

BLOCK_M = 64                 # query rows per CTA (run_mha_fwd_splitkv_dispatch)
RESERVED_SMEM_BYTES = 1024   # shared memory the CUDA driver reserves per thread block (compute capability >= 8.0)
ELEMENT_BYTES = 2            # FA2 in vLLM reads a bf16/fp16 KV cache only (fp8 KV needs FlashAttention 3)

# Shared memory per SM, KiB, by compute capability (CUDA C++ Programming Guide, "Technical Specifications
# per Compute Capability"; 12.0: CUTLASS `sm120_smem_capacity_bytes` = 99 KiB per block + the 1 KiB reserved).
SMEM_PER_SM_KIB = {80: 164, 86: 100, 87: 164, 89: 100, 120: 100}


def runs_fa2(compute_capability: float) -> bool:
    """Whether vLLM 0.19 runs FlashAttention 2 on a GPU of this compute capability (module docstring)."""
    major = int(compute_capability)
    return major >= 8 and major not in (9, 10)


def block_n(head_dim: int) -> int:
    """Keys per K/V tile of the split-KV kernel."""
    return 256 if head_dim <= 64 else 128 if head_dim <= 128 else 64


def ctas_per_sm(compute_capability: float, head_dim: int) -> int:
    """How many split-KV CTAs one SM holds, by shared memory (Q tile, K tile, V tile)."""
    key = round(compute_capability * 10)
    if key not in SMEM_PER_SM_KIB:
        raise InputError(f"compute capability {compute_capability}: no shared-memory figure for FlashAttention 2's "
                         f"occupancy (known: {', '.join(str(k / 10) for k in SMEM_PER_SM_KIB)})")
    smem = (BLOCK_M + 2 * block_n(head_dim)) * head_dim * ELEMENT_BYTES + RESERVED_SMEM_BYTES
    return max(1, SMEM_PER_SM_KIB[key] * 1024 // smem)


# A CTA: the K/V tiles it works through, and whether it streams them from device memory (else from L2).
Cta = tuple[int, bool]


def chunk_ctas(tokens: int, prefix: int, head_dim: int) -> list[Cta]:
    """One query head's CTAs of a causal chunk of `tokens` after `prefix` cached: CTA m sees keys up to
    prefix + min(64 (m + 1), tokens); every m-block of a head reads the same K/V, from L2."""
    n = block_n(head_dim)
    return [(math.ceil((prefix + min(BLOCK_M * (m + 1), tokens)) / n), False)
            for m in range(math.ceil(tokens / BLOCK_M))]


def num_splits(blocks: int, sms: int, n_blocks: int, max_splits: int = 128) -> int:
    """FA2's `num_splits_heuristic` as `set_params_splitkv` calls it (SMs x 2, for two 128-thread CTAs
    per SM): `blocks` CTAs without splitting, `n_blocks` K/V tiles of the longest request."""
    slots = 2 * sms
    if blocks >= 0.8 * slots:
        return 1
    # a split count is eligible when it changes the tiles per split (11 and 12 splits of 64 tiles are both 6)
    eligible = [s for s in range(1, min(max_splits, slots, n_blocks) + 1)
                if s == 1 or math.ceil(n_blocks / s) != math.ceil(n_blocks / (s - 1))]
    efficiency = {s: blocks * s / slots / math.ceil(blocks * s / slots) for s in eligible}
    best = max(efficiency.values())
    return next(s for s in eligible if efficiency[s] >= 0.85 * best)


def decode_ctas(contexts: list[int], kv_heads: int, head_dim: int, splits: int = 1) -> list[Cta]:
    """The packed decode kernel's CTAs in launch order: grid (1, requests, KV heads) unsplit, else
    (1, splits, requests x KV heads), each split covering an equal share of the longest request's tiles."""
    n = block_n(head_dim)
    tiles = [math.ceil(c / n) for c in contexts]
    if splits == 1:
        return [(t, True) for _ in range(kv_heads) for t in tiles]
    per_split = math.ceil(max(tiles) / splits)
    return [(min(per_split, max(0, t - s * per_split)), True)
            for t in tiles for _ in range(kv_heads) for s in range(splits)]


def mixed_ctas(contexts: list[int], prefills: list[tuple[int, int]], q_heads: int, kv_heads: int,
               head_dim: int, l2_reuse: bool) -> list[Cta]:
    """The unpacked kernel's working CTAs in launch order (query head outermost; decodes, then the prompt
    chunks (tokens, prefix)). A decode's CTA streams its group's K/V from device memory for the group's
    first query head, and for the others too unless `l2_reuse`."""
    tiles, streams = heads_columns(*mixed_head_columns(contexts, prefills, head_dim), q_heads,
                                   mixed_dram_every(q_heads, kv_heads, l2_reuse))
    return [(t, bool(s)) for t, s in zip(tiles, streams)]


def mixed_head_columns(contexts: list[int], prefills: list[tuple[int, int]], head_dim: int) -> tuple[list[int], bytes]:
    """One query head's CTAs of the unpacked kernel as two columns: each CTA's tiles, and 1 where it streams
    from device memory (the decodes') or 0 (the chunks', from L2)."""
    n = block_n(head_dim)
    tiles = [math.ceil(c / n) for c in contexts]
    chunks = [t for tokens, prefix in prefills for t, _ in chunk_ctas(tokens, prefix, head_dim)]
    return tiles + chunks, b"\x01" * len(tiles) + b"\x00" * len(chunks)


def mixed_dram_every(q_heads: int, kv_heads: int, l2_reuse: bool) -> int:
    """Which query heads' decodes stream K/V from device memory: each group's first (every q_heads / kv_heads-th)
    with L2 reuse, else every one."""
    return q_heads // kv_heads if l2_reuse else 1


def heads_columns(tiles: list[int], streams: bytes, heads: int, dram_every: int = 1) -> tuple[list[int], bytes]:
    """The CTAs of `heads` heads launched one head after the other, each head's being these; head h keeps the
    1s of `streams` where h is a multiple of `dram_every` and reads everything from L2 otherwise."""
    from_l2 = bytes(len(streams))
    return tiles * heads, b"".join(streams if head % dram_every == 0 else from_l2 for head in range(heads))


def makespan_s(ctas: list[Cta], slots: int, tile_s: float, dram_tiles_per_s: float, native: bool = False) -> float:
    """Seconds until the last CTA ends: CTAs start in order as one of `slots` frees up; each does at most
    one tile per `tile_s`; those streaming from device memory share `dram_tiles_per_s` evenly. `native`:
    the compiled schedule (fa2_native.py, the same numbers)."""
    if native:
        return fa2_native.makespan_s([tiles for tiles, _ in ctas], bytes(dram for _, dram in ctas), slots, tile_s,
                                     dram_tiles_per_s)
    working = [cta for cta in ctas if cta[0]]
    kinds, cap = {dram for _, dram in working}, 1.0 / tile_s
    if len(kinds) == 2:
        return _two_kinds_s(working, slots, cap, dram_tiles_per_s)
    tiles = [tiles for tiles, _ in working]
    if kinds == {True}:
        return _one_kind_s(tiles, slots, lambda running: min(cap, dram_tiles_per_s / running))
    return _one_kind_s(tiles, slots, lambda running: cap)


def _one_kind_s(tiles: list[int], slots: int, rate) -> float:
    """CTAs that all advance at `rate(CTAs running)` tiles/s: the greedy schedule in tiles (every slot
    busy until the last CTA starts), then each stretch timed at the rate of the CTAs running in it."""
    if not tiles:
        return 0.0
    free = tiles[:slots]  # when (in tiles done per CTA) each slot frees
    heapq.heapify(free)
    last_start = 0
    for cta in tiles[slots:]:
        last_start = heapq.heapreplace(free, free[0] + cta)
    ends = sorted(free)
    elapsed = last_start / rate(len(ends))
    for done, (before, end) in enumerate(zip([last_start, *ends], ends)):
        elapsed += (end - before) / rate(len(ends) - done)
    return elapsed


def _two_kinds_s(ctas: list[Cta], slots: int, cap: float, dram_tiles_per_s: float) -> float:
    """CTAs reading L2 end `tiles / cap` after they start; those streaming device memory advance
    together on one clock (tiles done) at min(cap, dram_tiles_per_s / their number)."""
    now, dram_clock = 0.0, 0.0
    l2_ends, dram_ends = [], []  # seconds; dram clock values
    queue = iter(ctas)
    pending = next(queue, None)
    while pending is not None or l2_ends or dram_ends:
        while pending is not None and len(l2_ends) + len(dram_ends) < slots:
            tiles, dram = pending
            if dram:
                heapq.heappush(dram_ends, dram_clock + tiles)
            else:
                heapq.heappush(l2_ends, now + tiles / cap)
            pending = next(queue, None)
        rate = min(cap, dram_tiles_per_s / len(dram_ends)) if dram_ends else 0.0
        dram_next = now + (dram_ends[0] - dram_clock) / rate if dram_ends else math.inf
        if l2_ends and l2_ends[0] <= dram_next:
            dram_clock += rate * (l2_ends[0] - now)
            now = heapq.heappop(l2_ends)
        else:
            dram_clock, now = heapq.heappop(dram_ends), dram_next
    return now


@dataclass(frozen=True)
class Fa2Gpu:
    """What the schedule needs of a GPU: SMs, CTAs per SM for this head size, L2 bytes."""

    sms: int
    ctas_per_sm: int
    l2_bytes: int

    @property
    def slots(self) -> int:
        return self.sms * self.ctas_per_sm


@dataclass(frozen=True)
class Fa2Step:
    """One step's attention kernel on one GPU shard: its heads, the kernel's measured time per tile and SM,
    and whether mixed steps run unpacked (False: priced as if their decodes were packed, for ablations)."""

    gpu: Fa2Gpu
    q_heads: int
    kv_heads: int
    head_dim: int
    tile_s: float
    unpacked_mixed: bool = True
    native: bool = True  # the compiled schedule (fa2_native.py, the same numbers; off with PerfProvider.reuse)
    _table_makespans: dict = field(default_factory=dict, compare=False)

    def _makespan(self, tiles: list[int], streams: bytes, dram_tiles_per_s: float, heads: int = 1,
                  dram_every: int = 1) -> float:
        """makespan_s of the CTAs heads_columns(tiles, streams, heads, dram_every) spells out."""
        tile_s = self.tile_s * self.gpu.ctas_per_sm
        if self.native:
            return fa2_native.makespan_s(tiles, streams, self.gpu.slots, tile_s, dram_tiles_per_s, heads, dram_every)
        tiles, streams = heads_columns(tiles, streams, heads, dram_every)
        return makespan_s([(t, bool(s)) for t, s in zip(tiles, streams)], self.gpu.slots, tile_s, dram_tiles_per_s)

    def _streaming_makespan(self, tiles: list[int], dram_tiles_per_s: float, heads: int) -> float:
        """_makespan of `heads` heads of these CTAs, all streaming from device memory."""
        return self._makespan(tiles, b"\x01" * len(tiles), dram_tiles_per_s, heads)

    def _dram_tiles_per_s(self, batch: int, mean: int, table_s: float) -> float:
        """The device-memory rate of the decode table's kernel: its tiles over its time."""
        return batch * self.kv_heads * math.ceil(mean / block_n(self.head_dim)) / table_s

    def decode_s(self, contexts: list[int], table_s: float) -> float:
        """A decode-only step: the table's time at the mean context, scaled by how much longer the graph's
        unsplit CTAs take on these contexts than the table's (eagerly split) CTAs at the mean."""
        batch, mean = len(contexts), round(sum(contexts) / len(contexts))
        rate = self._dram_tiles_per_s(batch, mean, table_s)
        n = block_n(self.head_dim)
        graph = self._streaming_makespan([math.ceil(c / n) for c in contexts], rate, self.kv_heads)  # decode_ctas
        return table_s * graph / self._table_makespan(batch, mean, rate)

    def _table_makespan(self, batch: int, mean: int, rate: float) -> float:
        """The schedule of the table's kernel: `batch` requests at `mean`, split as FA2 does eagerly."""
        key = (batch, mean, rate)
        if key not in self._table_makespans:
            splits = num_splits(batch * self.kv_heads, self.gpu.sms, math.ceil(mean / block_n(self.head_dim)))
            # decode_ctas([mean] * batch, ...): one request's splits, the same for every request and KV head
            tiles = [tiles for tiles, _ in decode_ctas([mean], 1, self.head_dim, splits) if tiles]
            self._table_makespans[key] = self._streaming_makespan(tiles, rate, batch * self.kv_heads)
        return self._table_makespans[key]

    def mixed_s(self, contexts: list[int], prefills: list[tuple[int, int]], table_s: float) -> float:
        """What the decodes add to a mixed step's kernel beyond its prompt chunks alone (priced by the
        context table): the schedule of all its CTAs less that of the chunks' CTAs."""
        rate = self._dram_tiles_per_s(len(contexts), round(sum(contexts) / len(contexts)), table_s)
        chunks = mixed_head_columns([], prefills, self.head_dim)  # one head's; the chunks read L2 on every head
        if self.unpacked_mixed:
            dram_every = mixed_dram_every(self.q_heads, self.kv_heads, self._fits_l2(contexts, prefills))
            every_cta = self._makespan(*mixed_head_columns(contexts, prefills, self.head_dim), rate, self.q_heads,
                                       dram_every)
        else:
            packed = decode_ctas(contexts, self.kv_heads, self.head_dim)
            chunk_tiles, chunk_streams = heads_columns(*chunks, self.q_heads)
            every_cta = self._makespan([t for t, _ in packed] + chunk_tiles, b"\x01" * len(packed) + chunk_streams,
                                       rate)
        return every_cta - self._makespan(*chunks, rate, self.q_heads)

    def _fits_l2(self, contexts: list[int], prefills: list[tuple[int, int]]) -> bool:
        """Whether one KV head's K and V of the whole step fit in L2."""
        tokens = sum(contexts) + sum(tokens + prefix for tokens, prefix in prefills)
        return tokens * 2 * self.head_dim * ELEMENT_BYTES <= self.gpu.l2_bytes
