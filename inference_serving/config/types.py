"""Click parameter types for numbers that must be finite and in range (nan and inf are refused:
click's own FloatRange lets nan through, since every comparison with nan is false)."""
from __future__ import annotations

import math

import click


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


POSITIVE_INT = StrictInt(min=1)
NON_NEGATIVE_INT = StrictInt(min=0)
POSITIVE = FiniteFloat(min=0, min_open=True)
NON_NEGATIVE = FiniteFloat(min=0)


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
