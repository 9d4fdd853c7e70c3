"""The fields of a dataset row (TSV cell or JSON value) checked as whole numbers and token-id lists,
each refused in one line naming the file, the line and the field."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError

INTEGER = re.compile(r"-?[0-9]+")


def whole_field(path: Path, line_no: int, fields: dict, column: str, minimum: int, maximum: int) -> int:
    """A required whole-number field of a row, from minimum to maximum."""
    if column not in fields:
        raise InputError(f"{path}, line {line_no}: missing '{column}'")
    value = _as_integer(fields[column])
    if value is None or value < minimum:
        raise InputError(f"{path}, line {line_no}: '{column}' must be a whole number >= {minimum}, "
                         f"got {fields[column]!r}")
    if value > maximum:
        raise InputError(f"{path}, line {line_no}: '{column}' must be at most {maximum}, got {value}")
    return value


def _as_integer(raw: object) -> int | None:
    """An int from a TSV field (text) or a JSON integer; None when it is not a whole number (a JSON
    text such as "4" included: JSON values are typed)."""
    if isinstance(raw, TsvField):
        text = raw.strip()
        try:
            return int(text) if INTEGER.fullmatch(text) else None
        except ValueError:  # more digits than int() converts
            return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return None


class TsvField(str):
    """The text of one TSV field: a number written as text, unlike a JSON string."""


def token_ids_field(path: Path, line_no: int, raw: object, count: int, field: str = "token_ids",
                    unit: str = "prompt token") -> tuple[int, ...] | None:
    """An optional list of `count` token ids (None when absent)."""
    if raw is None:
        return None
    valid = isinstance(raw, list) and all(type(t) is int and t >= 0 for t in raw)
    if not valid or len(raw) != count:
        raise InputError(f"{path}, line {line_no}: '{field}' must be a list of {count} "
                            f"non-negative integers (one per {unit})")
    return tuple(raw)
