"""The inputs of `validate` checked before the simulation: the rows of a measured run
(vllm/requests.jsonl) and the engine settings of vllm/meta.json, each refused in one line naming
the file, the row or key and the value.

A row holds whole token counts and finite timestamps in seconds that follow one another
(queued < first token <= last token, and later than the first token when there are more outputs);
the settings are checked with the types of the flags they set.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..config.types import MAX_DIMENSION, MAX_SIM_NS
from ..errors import InputError

TIMES = ("arrival_time", "queued_ts", "first_token_ts", "last_token_ts")


def _count(path: Path, number: int, row: dict, key: str) -> None:
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSION:
        raise InputError(f"{path}:{number}: '{key}' must be a whole number from 1 to {MAX_DIMENSION}, got {value!r}")


def _time(path: Path, number: int, row: dict, key: str) -> float:
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{path}:{number}: '{key}' must be a finite time in seconds, got {value!r}")
    return value


def check_rows(requests: list[dict], path: Path) -> None:
    if not requests:
        raise InputError(f"{path}: no requests")
    for number, row in enumerate(requests, start=1):
        _count(path, number, row, "input_toks")
        _count(path, number, row, "output_toks")
        arrival, queued, first, last = (_time(path, number, row, key) for key in TIMES)
        if not queued < first <= last or (row["output_toks"] > 1 and not first < last):
            raise InputError(f"{path}:{number}: the times must follow one another: queued_ts < first_token_ts "
                             f"<= last_token_ts (<, with more than one output token), got {queued!r}, {first!r}, "
                             f"{last!r}")
    start = min(row["arrival_time"] for row in requests)
    if (max(row["arrival_time"] for row in requests) - start) * 1e9 > MAX_SIM_NS:
        raise InputError(f"{path}: the arrival times span more than {MAX_SIM_NS / 1e9:.3g} s")
    if not any(row["output_toks"] > 1 for row in requests):
        raise InputError(f"{path}: no request has more than one output token, so there is no TPOT to compare")


def check_meta(meta, path: Path) -> None:
    """meta.json is an object whose engine_kwargs is one (the values are checked as the flags they set)."""
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object")
    engine = meta.get("engine_kwargs", {})
    if not isinstance(engine, dict):
        raise InputError(f"{path}: 'engine_kwargs' must be an object, got {engine!r}")
