"""The original tool's profiled-CSV provider (`provider: csv`, or `--perf-model FILE.csv`)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from ..errors import InputError
from ..inputs.hardware import Hardware
from ..inputs.model_config import ModelConfig
from .layers import ATTENTION, SHARDED
from .precision import Precision
from .provider import PerfProvider


def model_key(model_name: str) -> str:
    """The `model` column of profiled CSVs: a config or ONNX path's file name without extension."""
    return Path(model_name).stem if model_name.endswith((".json", ".onnx")) else model_name


CSV_COLUMNS = ("hardware", "model", "layer_name", "input", "kv_cache", "latency(ns)")


def _interpolate(points: list[tuple[int, float]], x: int) -> float:
    """Piecewise-linear latency over profiled sizes.

    Inside the profiled range: linear between the two neighbouring points. Below the smallest
    point: that point's latency (small shapes are dominated by fixed launch cost). Above the
    largest: scaled in proportion to the size (work grows linearly once the device is busy).
    """
    xs = [p[0] for p in points]
    if x <= xs[0]:
        return points[0][1]
    if x >= xs[-1]:
        return points[-1][1] * x / xs[-1] if xs[-1] > 0 else points[-1][1]
    hi = next(i for i, value in enumerate(xs) if value >= x)
    (x0, y0), (x1, y1) = points[hi - 1], points[hi]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class CsvProvider(PerfProvider):
    """The original tool's profile format: `hardware,model,layer_name,input,kv_cache,latency(ns)`.

    Latencies are of the whole layer on one device (tensor-parallel degree 1). Non-attention
    layers are interpolated over `input` (tokens); `rope`/`attn` first over `kv_cache` within each
    profiled `input`, then over `input` (see `_interpolate` for the rule outside the range).
    Under tensor parallelism the sharded layers (layers.SHARDED) take latency / tp.
    """

    def __init__(self, model: ModelConfig, hardware: Hardware, precision: int | Precision) -> None:
        """`precision` is not read: the profile was timed at its own formats."""
        super().__init__()
        self.path = str(hardware.csv)
        self.table: dict[str, dict[int, list[tuple[int, float]]]] = self._read(self.path, hardware.name,
                                                                              model_key(model.name))

    @staticmethod
    def _read(path: str, hardware: str, model_name: str) -> dict[str, dict[int, list[tuple[int, float]]]]:
        try:
            handle = open(path, newline="")
        except OSError as err:
            raise InputError(f"{path}: cannot read the performance model ({err.strerror})") from None
        with handle:
            try:
                table = CsvProvider._rows(path, csv.DictReader(handle), hardware, model_name)
            except (UnicodeDecodeError, csv.Error) as err:
                raise InputError(f"{path}: not a CSV text file ({err})") from None
        if not table:
            raise InputError(f"{path}: no rows for hardware '{hardware}' and model '{model_name}'")
        for by_tokens in table.values():
            for points in by_tokens.values():
                points.sort()
        return table

    @staticmethod
    def _rows(path: str, reader: csv.DictReader, hardware: str, model_name: str):
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; "
                             f"expected header {','.join(CSV_COLUMNS)}")
        table: dict[str, dict[int, list[tuple[int, float]]]] = {}
        for line, row in enumerate(reader, start=2):
            if row["hardware"] != hardware or row["model"] != model_name:
                continue
            try:
                tokens, kv, latency = int(row["input"]), int(row["kv_cache"]), float(row["latency(ns)"])
            except (TypeError, ValueError):
                raise InputError(f"{path}:{line}: input and kv_cache must be integers and "
                                 f"latency(ns) a number") from None
            if tokens < 0 or kv < 0 or latency < 0:
                raise InputError(f"{path}:{line}: negative value")
            if not math.isfinite(latency):
                raise InputError(f"{path}:{line}: latency(ns) must be finite, got {row['latency(ns)']!r}")
            table.setdefault(row["layer_name"], {}).setdefault(tokens, []).append((kv, latency))
        return table

    def _latency_ns(self, layer: str, tokens: int, kv_cache: int, tp: int) -> float:
        if tokens == 0:
            return 0.0
        by_tokens = self.table.get(layer)
        if by_tokens is None:
            raise InputError(f"{self.path}: no rows for layer '{layer}' "
                                 f"(profiled layers: {', '.join(sorted(self.table))})")
        key = kv_cache if layer in ATTENTION else 0
        per_tokens = sorted((t, _interpolate(points, key)) for t, points in by_tokens.items())
        latency = _interpolate(per_tokens, tokens)
        return latency / tp if layer in SHARDED else latency
