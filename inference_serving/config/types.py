"""Click parameter types for numbers that must be finite and in range (nan and inf are refused:
click's own FloatRange lets nan through, since every comparison with nan is false)."""
from __future__ import annotations

import math

import click

from ..perf.expert_load import spec_problem


class FiniteFloat(click.FloatRange):
    """A finite float within [min, max] (open ends with min_open / max_open)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
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
