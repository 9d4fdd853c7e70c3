"""Workload: requests read from a dataset file, and a generator of ShareGPT-like Poisson traces.

Dataset formats (field names of the original tool's TSV):
  .tsv   -- header line `input_toks<TAB>output_toks<TAB>arrival_time_ns`, one request per line;
            columns are found by name, extra columns are ignored.
  .jsonl -- one JSON object per line with the same three fields and an optional `token_ids`
            (the prompt's token ids, `input_toks` of them, for prefix caching); or the turns of
            multi-turn sessions (a `session_id` on the first line: inputs/sessions.py).
Blank lines are skipped. Request ids are the file order (0 = first request in the file), so a
result row can be joined back to its dataset line; the returned list is sorted by arrival time
(stable, so requests arriving together keep file order).

"""
from __future__ import annotations

import json
import sys
from itertools import islice
from pathlib import Path
from typing import Iterator

from ..config.types import MAX_DIMENSION, MAX_SIM_NS
from ..errors import InputError
from .fields import TsvField, token_ids_field, whole_field
from .request import Request
from .sessions import SESSION_FIELD, session_requests

COLUMNS = ("input_toks", "output_toks", "arrival_time_ns")
TSV_HEADER = "\t".join(COLUMNS)


def load_dataset(path: str | Path, req_num: int | None = None) -> list[Request]:
    """The first `req_num` requests of the file (all if None or more than it holds), by arrival."""
    path = Path(path)
    if req_num is not None and req_num <= 0:
        raise InputError(f"{path}: req_num must be a positive number of requests, got {req_num}")
    if not path.is_file():
        raise InputError(f"{path}: no such dataset file")
    readers = {".tsv": _tsv_rows, ".jsonl": _jsonl_rows}
    reader = readers.get(path.suffix)
    if reader is None:
        raise InputError(f"{path}: unknown dataset extension '{path.suffix}'; use .tsv or .jsonl")
    rows = list(islice(reader(path), None if req_num is None else min(req_num, sys.maxsize)))
    if rows and SESSION_FIELD in rows[0][1]:
        requests = session_requests(path, rows)
    else:
        requests = [_request_from_fields(path, line_no, request_id, fields)
                    for request_id, (line_no, fields) in enumerate(rows)]
    if not requests:
        raise InputError(f"{path}: no requests in the file")
    return sorted(requests, key=lambda request: request.arrival_ns)


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of every non-blank line."""
    try:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    yield line_no, line.rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _tsv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    lines = _numbered_lines(path)
    header_line_no, header_text = next(lines, (1, ""))
    header = header_text.split("\t")
    for column in COLUMNS:
        if column not in header:
            raise InputError(f"{path}, line {header_line_no}: header lacks column '{column}'; "
                                f"the first line must be {TSV_HEADER!r} (tab-separated)")
    for line_no, text in lines:
        values = text.split("\t")
        if len(values) != len(header):
            raise InputError(f"{path}, line {line_no}: {len(values)} tab-separated fields, "
                                f"the header has {len(header)}; give one value per column")
        yield line_no, dict(zip(header, map(TsvField, values)))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    for line_no, text in _numbered_lines(path):
        try:
            fields = json.loads(text)
        except (ValueError, RecursionError) as err:  # JSONDecodeError, or an integer of too many digits
            reason = getattr(err, "msg", None) or str(err).split(":")[0]
            raise InputError(f"{path}, line {line_no}: not valid JSON ({reason}); "
                             f"write one object per line") from None
        if not isinstance(fields, dict):
            raise InputError(f"{path}, line {line_no}: expected a JSON object with {', '.join(COLUMNS)}")
        yield line_no, fields


def _request_from_fields(path: Path, line_no: int, request_id: int, fields: dict) -> Request:
    def field(column: str, minimum: int, maximum: int) -> int:
        return whole_field(path, line_no, fields, column, minimum, maximum)

    input_tokens = field("input_toks", 1, MAX_DIMENSION)
    return Request(
        id=request_id,
        input_tokens=input_tokens,
        output_tokens=field("output_toks", 1, MAX_DIMENSION),
        arrival_ns=field("arrival_time_ns", 0, MAX_SIM_NS),
        token_ids=token_ids_field(path, line_no, fields.get("token_ids"), input_tokens),
    )


def write_dataset(requests: list[Request], path: str | Path, force: bool = False) -> None:
    """Write .tsv or .jsonl; an existing file is replaced only with `force`."""
    path = Path(path)
    formatters = {".tsv": _tsv_text, ".jsonl": _jsonl_text}
    formatter = formatters.get(path.suffix)
    if formatter is None:
        raise InputError(f"{path}: unknown dataset extension '{path.suffix}'; use .tsv or .jsonl")
    write_new_file(path, formatter(requests), force)


def write_new_file(path: Path, text: str, force: bool) -> None:
    """Writes `text` to `path`; an existing file is replaced only with `force`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w" if force else "x", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except FileExistsError:
        raise InputError(f"{path}: already exists; pass --force to overwrite it") from None
    except OSError as err:
        raise InputError(f"{path}: cannot write ({err.strerror or err})") from None


def _tsv_text(requests: list[Request]) -> str:
    rows = [f"{r.input_tokens}\t{r.output_tokens}\t{r.arrival_ns}" for r in requests]
    return "\n".join([TSV_HEADER, *rows]) + "\n"


def _jsonl_text(requests: list[Request]) -> str:
    return "".join(json.dumps(dict(zip(COLUMNS, (r.input_tokens, r.output_tokens, r.arrival_ns)))) + "\n"
                   for r in requests)
