"""Click parameter types for numbers that must be finite and in range (nan and inf are refused:
click's own FloatRange lets nan through, since every comparison with nan is false), and the
ranges of the quantities that flags, hardware files and model files share.

The upper limits keep every derived number representable: the engine's clock counts uint64
nanoseconds and takes host bandwidth in whole GB/s, sizes are computed in bytes, and a limit sits
orders of magnitude above any real device, link or model.
"""
from __future__ import annotations

import math

import click

from ..perf.expert_load import spec_problem

MAX_MEMORY_GIB = 1e6            # device memory of one accelerator (about a pebibyte)
MAX_BANDWIDTH_GBPS = 1e9        # device, host and link bandwidths
MAX_DURATION_NS = 1e12          # one link latency or per-step overhead (1000 s)
MAX_SIM_NS = 10**18             # latest arrival, longest log interval: ~32 years, far below 2^64 ns
MAX_DIMENSION = 2**31 - 1       # a model dimension or token count (vLLM and PyTorch index with int32)
MAX_REQUESTS = 10**7            # requests of a generated trace (held in memory)
MAX_TIMEOUT_S = 1e6             # the longest wait for the engine that the OS timers take
MAX_SPIN_US = 1_000_000         # a second of polling: far beyond any gap worth polling through


class FiniteFloat(click.FloatRange):
    """A finite float within [min, max] (open ends with min_open / max_open); `whole` also refuses
    fractions (a quantity the engine takes as an integer)."""

    name = "finite float"

    def __init__(self, *args, whole: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.whole = whole

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.whole and not number.is_integer():
            self.fail(f"{value!r} is not a whole number", param, ctx)
        return number


class StrictInt(click.IntRange):
    """An integer within range; a float such as 2.5 or a boolean is refused, not truncated."""

    def convert(self, value, param, ctx):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            self.fail(f"{value!r} is not an integer", param, ctx)
        return super().convert(value, param, ctx)


class ExpertLoadSpec(click.ParamType):
    """--expert-load: uniform, zipf:S (S a finite number >= 0) or an existing file (read when the run starts)."""

    name = "uniform|zipf:S|FILE"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            self.fail(f"{value!r} is not a text", param, ctx)
        problem = spec_problem(value)
        if problem:
            self.fail(f"{value!r}: {problem}", param, ctx)
        return value


POSITIVE_INT = StrictInt(min=1)
NON_NEGATIVE_INT = StrictInt(min=0)
POSITIVE = FiniteFloat(min=0, min_open=True)
NON_NEGATIVE = FiniteFloat(min=0)
MEMORY_GIB = FiniteFloat(min=0, min_open=True, max=MAX_MEMORY_GIB)
BANDWIDTH = FiniteFloat(min=0, min_open=True, max=MAX_BANDWIDTH_GBPS)
HOST_BANDWIDTH = FiniteFloat(min=1, max=MAX_BANDWIDTH_GBPS, whole=True)
DURATION_NS = FiniteFloat(min=0, max=MAX_DURATION_NS)
SHARE = FiniteFloat(min=0, max=1, min_open=True)
TIMEOUT_S = FiniteFloat(min=0, min_open=True, max=MAX_TIMEOUT_S)
SPIN_US = StrictInt(min=0, max=MAX_SPIN_US)
TOKENS = StrictInt(min=1, max=MAX_DIMENSION)
REQUESTS = StrictInt(min=1, max=MAX_REQUESTS)
INTERVAL_S = FiniteFloat(min=1e-9, max=MAX_SIM_NS / 1e9)  # at least one tick of the simulated clock


class Probabilities(click.ParamType):
    """One probability or several, comma-separated ("0.8" or "0.9,0.7,0.5"), each in [0, 1]: a tuple."""

    name = "probabilities"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a probability", param, ctx)
        parts = [value] if isinstance(value, (int, float)) else str(value).split(",")
        try:
            numbers = tuple(float(p) for p in parts)
        except ValueError:
            self.fail(f"{value!r} is not one number or comma-separated numbers", param, ctx)
        if not all(0.0 <= p <= 1.0 for p in numbers):
            self.fail(f"{value!r}: every probability must be within [0, 1]", param, ctx)
        return numbers
