"""Memory tiers below device memory for the KV cache: CPU DRAM, CXL memory, SSD (`--kv-tiers`).

`--kv-tiers cpu:256,ssd:4096` lists tiers fastest first, each `name:GiB[:GB/s[:ns]]`: its capacity (shared
by all NPUs of the run), and optionally its bandwidth and latency instead of the defaults below. Moving B
bytes between an NPU and a tier takes latency + floor(B / bandwidth) ns in the engine
(astra-sim/src/memory_tiers.h), each NPU on its own path to the tier.

Defaults, the media's own figures:
  cpu  307.2 GB/s: 8 channels of DDR5-4800, 4800 MT/s x 8 bytes = 38.4 GB/s each (JEDEC JESD79-5 DDR5;
       8 DDR5 channels per socket on 4th-generation Intel Xeon Scalable processors);
       100 ns: "the sub-100 nanosecond roundtrip latency you'd expect from DDR memory attached directly
       to the CPU" (The Next Platform, "Just How Bad Is CXL Memory Latency?", 2022-12-05).
  cxl  63.0 GB/s: CXL 2.0 x16 runs on the PCIe 5.0 physical layer, 32 GT/s x 16 lanes x 128/130 / 8 =
       63.0 GB/s per direction (CXL 2.0 specification; PCI-SIG PCIe 5.0 base specification);
       250 ns: about 2.5 x local DDR5 (Sun et al., "Demystifying CXL Memory with Genuine CXL-Ready
       Systems and Devices", MICRO 2023, measure 2-3 x on CXL memory expanders).
  ssd  7.45 GB/s: an NVMe PCIe 4.0 x4 drive, Samsung 990 PRO datasheet sequential read 7,450 MB/s;
       80,000 ns: flash reads take tens of microseconds (The Next Platform, same article); a PCIe 5.0
       drive reads 13 GB/s sequentially (Samsung PM1743 datasheet: 13,000 MB/s): `ssd:4096:13:80000`.
A GPU reaches host DRAM and CXL memory through its host link (PCIe 5.0 x16: 63.0 GB/s per direction as
above); where that link is the bound, give it as the tier's bandwidth (`cpu:256:63`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import click

GIB = 2**30
DEFAULTS = {"cpu": (307.2, 100), "cxl": (63.0, 250), "ssd": (7.45, 80_000)}  # GB/s, ns (sources above)


@dataclass(frozen=True)
class Tier:
    name: str
    capacity_gib: float
    bandwidth_gbps: float   # GB = 10^9 bytes
    latency_ns: int

    @property
    def capacity_bytes(self) -> int:
        return int(self.capacity_gib * GIB)

    def transfer_ns(self, nbytes: int) -> int:
        """The engine's time for one transfer of `nbytes` to or from this tier."""
        return self.latency_ns + int(nbytes / self.bandwidth_gbps)


def _tier(text: str) -> Tier:
    """One `name:GiB[:GB/s[:ns]]`; ValueError with the reason otherwise."""
    name, *numbers = text.strip().split(":")
    if name not in DEFAULTS:
        raise ValueError(f"unknown tier '{name}' (known: {', '.join(DEFAULTS)})")
    if not 1 <= len(numbers) <= 3:
        raise ValueError(f"'{text}' is not name:GiB[:GB/s[:ns]]")
    capacity, bandwidth, latency = [float(n) for n in numbers] + list(DEFAULTS[name])[len(numbers) - 1:]
    if not all(map(math.isfinite, (capacity, bandwidth, latency))) or not (capacity > 0 and bandwidth > 0) \
            or latency < 0 or latency != int(latency):
        raise ValueError(f"'{text}': capacity and bandwidth must be positive, the latency a whole number of ns")
    return Tier(name, capacity, bandwidth, int(latency))


class TierList(click.ParamType):
    """`--kv-tiers`: comma-separated tiers, fastest first, each name at most once."""

    name = "tiers"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            tiers = tuple(_tier(part) for part in str(value).split(","))
        except ValueError as err:
            self.fail(str(err), param, ctx)
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            self.fail(f"'{value}' names a tier twice", param, ctx)
        return tiers
