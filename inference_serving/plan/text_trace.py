"""The original tool's per-layer text trace, written from an iteration plan (`--keep-traces`, trace_test/).

Columns: `Layername comp_time input_loc input_size weight_loc weight_size output_loc output_size
comm_type comm_size misc`. Each AttentionGroup is written between `ATTENTION <request id>` and
`ATTENTION END` marker rows.
"""
from __future__ import annotations

from pathlib import Path

from .iteration import AttentionGroup, Row, Trace, with_groups

ATTENTION_BEGIN = "ATTENTION"
ATTENTION_END = "ATTENTION END"
HEADER = ("Layername", "comp_time", "input_loc", "input_size", "weight_loc", "weight_size",
          "output_loc", "output_size", "comm_type", "comm_size", "misc")


Line = tuple[str, Row]  # (marker text or "", the row; a marker line's row is empty)


def _block_lines(block: list) -> list[Line]:
    lines: list[Line] = []
    for item in with_groups(block):
        if isinstance(item, AttentionGroup):
            begin = f"{ATTENTION_BEGIN} {item.request_id}"
            lines += [(begin, Row(begin)), *(("", r) for r in item.rows), (ATTENTION_END, Row(ATTENTION_END))]
        else:
            lines.append(("", item))
    return lines


def _stage_lines(trace: Trace, stage: int) -> list[Line]:
    return [line for block, layers in trace.stage_blocks(stage) for line in _block_lines(block) * layers]


def format_trace(trace: Trace) -> str:
    """The original tool's text layout (header, row count, column names, padded rows)."""
    rows = [("", r) for r in (*trace.leading, trace.embedding)]
    starts = []
    for stage in range(trace.pp):
        starts.append(len(rows))
        rows += _stage_lines(trace, stage)
    rows += [("", r) for r in trace.head]
    boundaries = ",".join(str(s) for s in starts[1:])
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
