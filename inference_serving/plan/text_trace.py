"""The original tool's per-layer text trace, written from an iteration plan (`--keep-traces`, trace_test/).

Columns: `Layername comp_time input_loc input_size weight_loc weight_size output_loc output_size
comm_type comm_size misc`. Each request's attention rows (an AttentionGroup) are written between
`ATTENTION <request id>` and `ATTENTION END` marker rows.
"""
from __future__ import annotations

from pathlib import Path

from .iteration import Attention, Row, Trace

ATTENTION_BEGIN = "ATTENTION"
ATTENTION_END = "ATTENTION END"
HEADER = ("Layername", "comp_time", "input_loc", "input_size", "weight_loc", "weight_size",
          "output_loc", "output_size", "comm_type", "comm_size", "misc")


Line = tuple[str, Row]  # (marker text or "", the row; a marker line's row is empty)


def _block_lines(trace: Trace) -> list[Line]:
    lines: list[Line] = []
    for item in trace.block:
        if not isinstance(item, Attention):
            lines.append(("", item))
            continue
        for group in item.groups():
            begin = f"{ATTENTION_BEGIN} {group.request_id}"
            lines += [(begin, Row(begin)), *(("", r) for r in group.rows), (ATTENTION_END, Row(ATTENTION_END))]
    return lines


def _stage_starts(trace: Trace, block_length: int) -> list[int]:
    starts, index = [0], len(trace.leading) + 1
    for layers in trace.stage_layers[:-1]:
        index += layers * block_length
        starts.append(index)
    return starts


def format_trace(trace: Trace) -> str:
    """The original tool's text layout (header, row count, column names, padded rows)."""
    block = _block_lines(trace)
    rows = [*(("", r) for r in (*trace.leading, trace.embedding)), *block * sum(trace.stage_layers),
            *(("", r) for r in trace.head)]
    boundaries = ",".join(str(s) for s in _stage_starts(trace, len(block))[1:])
    lines = [f"{trace.kind.value}\t\tmodel_parallel_NPU_group: {trace.pp}\t\ttp_size: {trace.tp}"
             + (f"\t\tpp_stage_boundaries: {boundaries}" if boundaries else ""),
             str(len(rows)),
             "".join(h.ljust(33 if i == 0 else 14) for i, h in enumerate(HEADER))]
    for index, (marker, r) in enumerate(rows):
        name = marker or f"{r.name}_{index}"
        cells = [r.comp_ns, r.input_loc, r.input_size, r.weight_loc, r.weight_size, r.output_loc,
                 r.output_size, r.comm.value, r.comm_size, "NONE"]
        lines.append(name.ljust(33) + "".join(str(c).ljust(14) for c in cells))
    return "\n".join(lines) + "\n"


def write_trace(trace: Trace, path: Path) -> None:
    path.write_text(format_trace(trace))
