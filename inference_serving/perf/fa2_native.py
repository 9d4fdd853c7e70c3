"""The compiled FlashAttention-2 schedule (native/fa2_schedule.cpp), called through ctypes.

It computes fa2.makespan_s with the same double operations in the same order, so its numbers are the
Python reference's bit for bit (tests/test_fa2.py); a mixed step's event simulation of thousands of
thread blocks takes microseconds there instead of milliseconds. `--no-reuse` runs the Python reference.
"""
from __future__ import annotations

from array import array
from functools import lru_cache
from typing import TYPE_CHECKING

from ..errors import InputError
from ..paths import FA2_LIBRARY

if TYPE_CHECKING:
    import ctypes


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    """Loaded at the first schedule asked for: a warm start, whose prices are all cached, imports no ctypes."""
    import ctypes

    if not FA2_LIBRARY.is_file():
        raise InputError(f"{FA2_LIBRARY}: the compiled FlashAttention-2 schedule is not built: run "
                         f"`bash native/build.sh` (setup.sh does), or pass --no-reuse for the Python one")
    library = ctypes.CDLL(str(FA2_LIBRARY))
    library.fa2_makespan_s.restype = ctypes.c_double
    library.fa2_makespan_s.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64,
                                       ctypes.c_int64, ctypes.c_int64, ctypes.c_double, ctypes.c_double]
    return library


def makespan_s(tiles: list[int], dram: bytes, slots: int, tile_s: float, dram_tiles_per_s: float, heads: int = 1,
               dram_every: int = 1) -> float:
    """fa2.makespan_s of the CTAs fa2.heads_columns(tiles, dram, heads, dram_every) spells out: `heads` heads
    one after the other, each of the CTAs of `tiles` K/V tiles in launch order, CTA i streaming from device
    memory where dram[i] is 1 on every `dram_every`-th head (else it reads L2). The columns cross ctypes
    once, not once per head."""
    if len(dram) != len(tiles):
        raise ValueError(f"{len(tiles)} CTAs but {len(dram)} memory flags")
    if heads < 0 or dram_every < 1 or slots < 1:
        raise ValueError(f"{heads} heads, streaming on every {dram_every}-th, {slots} slots: need heads >= 0, "
                         f"dram_every >= 1 and slots >= 1")
    counts = array("q", tiles)
    address, _ = counts.buffer_info()
    return _library().fa2_makespan_s(address, dram, len(tiles), heads, dram_every, slots, tile_s, dram_tiles_per_s)
