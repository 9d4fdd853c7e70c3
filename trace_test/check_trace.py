"""Checks a saved iteration trace (the 11-column text format, see inference_serving/plan/text_trace.py).

    python trace_test/check_trace.py TRACE.txt [TRACE.txt ...]

Rules, as the original tool's README asks of a trace generator:
  1. every ATTENTION <id> block is closed by ATTENTION END, holds only that request's rows, and
     each request appears once per decoder layer;
  2. tensor sizes chain: a row's input size equals the output size of the row feeding it
     (q/k/v and gate/up/fc1 read the preceding norm's output, and so do an MoE layer's router,
     shared-expert gate/up and routed experts; o_proj reads the attention outputs of all requests;
     lm_head reads the last token of each request);
  3. with tensor parallelism every o_proj and down_proj/fc2/experts row, and no other row, carries an
     ALLREDUCE of its output size; without it, no row communicates.
Prints one line per problem and exits 1 if any, else prints OK. A file that cannot be read or is not
a trace is one line on stderr and exit status 2 (as for every command, README "Errors and exit codes").
"""
from __future__ import annotations

import sys
from pathlib import Path

PROJECTIONS_READING_NORM = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "fc1",
                            "router", "shared_gate_proj", "shared_up_proj", "experts")
ALLREDUCE_AFTER = ("o_proj", "down_proj", "fc2", "experts")
SWAP_ROWS = ("vllm_evict_kv", "vllm_load_kv", "engine_overhead")


class NotATrace(Exception):
    """The file cannot be read, or is not in the trace format."""


def parse(path: Path) -> tuple[int, list[dict]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise NotATrace(getattr(err, "strerror", None) or str(err)) from None
    try:
        return _parse_lines(lines)
    except (IndexError, ValueError, KeyError) as err:
        raise NotATrace(f"not an iteration trace ({err})") from None


def _parse_lines(lines: list[str]) -> tuple[int, list[dict]]:
    if len(lines) < 4 or not lines[2].startswith("Layername") or not lines[1].strip().isdigit():
        raise ValueError("expected a header line, the row count and the column names")
    if not 0 < int(lines[1]) <= len(lines) - 3:
        raise ValueError(f"the header announces {lines[1].strip()} rows, the file holds {len(lines) - 3}")
    header = dict(part.split(": ") for part in lines[0].split("\t\t")[1:])
    tp = int(header.get("tp_size", 1))
    rows = []
    for line in lines[3:3 + int(lines[1])]:
        if line.startswith("ATTENTION"):
            rows.append({"name": " ".join(line.split()[:2]), "marker": True})
            continue
        cells = line.split()
        rows.append({"name": cells[0].rsplit("_", 1)[0], "marker": False, "comp": int(cells[1]),
                     "input": int(cells[3]), "weight": int(cells[5]), "output": int(cells[7]),
                     "comm": cells[8], "comm_size": int(cells[9])})
    return tp, rows


def check_attention_blocks(rows: list[dict]) -> list[str]:
    problems, open_block, seen = [], None, {}
    for index, row in enumerate(rows):
        if row["name"] == "ATTENTION END":
            if open_block is None:
                problems.append(f"row {index}: ATTENTION END without ATTENTION")
            open_block = None
        elif row["marker"]:
            if open_block is not None:
                problems.append(f"row {index}: {row['name']} opens inside {open_block}")
            open_block = row["name"]
            seen[open_block] = seen.get(open_block, 0) + 1
        elif open_block is not None and row["name"] not in ("rope", "attn"):
            problems.append(f"row {index}: {row['name']} inside {open_block}")
    if open_block is not None:
        problems.append(f"{open_block} is never closed")
    layers = sum(1 for r in rows if r["name"] == "input_layernorm")
    problems += [f"{name} appears {count} times for {layers} layers" for name, count in seen.items() if count != layers]
    return problems


def check_sizes(rows: list[dict]) -> list[str]:
    problems, previous, norm_output, attention_outputs = [], None, None, 0
    for index, row in enumerate(rows):
        name = row["name"]
        if row["marker"] or name in SWAP_ROWS:
            continue
        if name in PROJECTIONS_READING_NORM:
            expected = norm_output
        elif name == "rope":
            expected = None
        elif name == "attn":
            attention_outputs += row["output"]
            expected = None
        elif name == "o_proj":
            expected, attention_outputs = attention_outputs, 0
        elif name == "lm_head":
            expected = None
        else:
            expected = previous["output"] if previous else None
        if expected is not None and row["input"] != expected:
            problems.append(f"row {index}: {name} input {row['input']} B but its producer gives {expected} B")
        if name.endswith("layernorm"):
            norm_output = row["output"]
        if name not in ("rope", "attn"):
            previous = row
    return problems


def check_allreduce(rows: list[dict], tp: int) -> list[str]:
    problems = []
    for index, row in enumerate(rows):
        if row["marker"]:
            continue
        wants = tp > 1 and row["name"] in ALLREDUCE_AFTER
        if wants and (row["comm"] != "ALLREDUCE" or row["comm_size"] != row["output"]):
            problems.append(f"row {index}: {row['name']} needs an ALLREDUCE of {row['output']} B under TP {tp}")
        if not wants and row["comm"] != "NONE":
            problems.append(f"row {index}: {row['name']} has an unexpected {row['comm']}")
    return problems


def check_trace(path: Path) -> list[str]:
    tp, rows = parse(path)
    return check_attention_blocks(rows) + check_sizes(rows) + check_allreduce(rows, tp)


def main(paths: list[str]) -> int:
    if not paths:
        print("error: usage: python trace_test/check_trace.py TRACE.txt [TRACE.txt ...]", file=sys.stderr)
        return 2
    failed = False
    for name in paths:
        try:
            problems = check_trace(Path(name))
        except NotATrace as err:
            print(f"error: {name}: {' '.join(str(err).split())}", file=sys.stderr)
            return 2
        for problem in problems:
            print(f"{name}: {problem}")
        failed |= bool(problems)
    if not failed:
        print("OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
