"""Workload: requests read from a dataset file, and a generator of ShareGPT-like Poisson traces.

Dataset formats (field names of the original tool's TSV):
  .tsv   -- header line `input_toks<TAB>output_toks<TAB>arrival_time_ns`, one request per line;
            columns are found by name, extra columns are ignored.
  .jsonl -- one JSON object per line with the same three fields and an optional `token_ids`
            (the prompt's token ids, `input_toks` of them, for prefix caching).
Blank lines are skipped. Request ids are the file order (0 = first request in the file), so a
result row can be joined back to its dataset line; the returned list is sorted by arrival time
(stable, so requests arriving together keep file order).

Generator: `python -m inference_serving.workload --num N --rate R --seed S --output FILE`.
Arrivals form a Poisson process of R requests/s: the first request arrives at 0 ns, each next one
an exponential gap (mean 1/R s) later, rounded to whole ns. Prompt and output lengths are
log-normal with the means measured on ShareGPT by the vLLM paper (Kwon et al., "Efficient Memory
Management for Large Language Model Serving with PagedAttention", SOSP 2023, Fig. 11: mean input
161.31 tokens, mean output 337.99 tokens). The shape sigma = 1.0 (median = 0.61 x mean, a long
right tail) is our choice, not a fit. Lengths are rounded and clipped so that each is >= 1 and
prompt + output <= --max-tokens (the context the requests must fit). Arrivals, prompts and
outputs draw from three streams spawned from numpy's `default_rng(seed)`, so the same seed gives
byte-identical files (with the same numpy version) and the first k requests of a longer trace
equal a k-request trace.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterator

import click
import numpy as np

COLUMNS = ("input_toks", "output_toks", "arrival_time_ns")
TSV_HEADER = "\t".join(COLUMNS)
INTEGER = re.compile(r"-?[0-9]+")

SHAREGPT_INPUT_MEAN = 161.31   # vLLM paper (SOSP 2023), Fig. 11
SHAREGPT_OUTPUT_MEAN = 337.99  # vLLM paper (SOSP 2023), Fig. 11
LOGNORMAL_SIGMA = 1.0          # our choice: a long tail, median 0.61 x mean
DEFAULT_MAX_TOKENS = 2048      # OPT and GPT-3 context length


class WorkloadError(ValueError):
    """A dataset file or generator setting that cannot be used."""


@dataclass(frozen=True)
class Request:
    """One inference request: prompt length, tokens to generate, arrival time."""

    id: int
    input_tokens: int
    output_tokens: int
    arrival_ns: int
    token_ids: tuple[int, ...] | None = None


# ---------------------------------------------------------------- loading

def load_dataset(path: str | Path, req_num: int | None = None) -> list[Request]:
    """The first `req_num` requests of the file (all if None or more than it holds), by arrival."""
    path = Path(path)
    if req_num is not None and req_num <= 0:
        raise WorkloadError(f"{path}: req_num must be a positive number of requests, got {req_num}")
    if not path.is_file():
        raise WorkloadError(f"{path}: no such dataset file")
    readers = {".tsv": _tsv_rows, ".jsonl": _jsonl_rows}
    reader = readers.get(path.suffix)
    if reader is None:
        raise WorkloadError(f"{path}: unknown dataset extension '{path.suffix}'; use .tsv or .jsonl")
    rows = islice(reader(path), req_num)
    requests = [_request_from_fields(path, line_no, request_id, fields)
                for request_id, (line_no, fields) in enumerate(rows)]
    if not requests:
        raise WorkloadError(f"{path}: no requests in the file")
    return sorted(requests, key=lambda request: request.arrival_ns)


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of every non-blank line."""
    try:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    yield line_no, line.rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise WorkloadError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _tsv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    lines = _numbered_lines(path)
    header_line_no, header_text = next(lines, (1, ""))
    header = header_text.split("\t")
    for column in COLUMNS:
        if column not in header:
            raise WorkloadError(f"{path}, line {header_line_no}: header lacks column '{column}'; "
                                f"the first line must be {TSV_HEADER!r} (tab-separated)")
    for line_no, text in lines:
        values = text.split("\t")
        if len(values) != len(header):
            raise WorkloadError(f"{path}, line {line_no}: {len(values)} tab-separated fields, "
                                f"the header has {len(header)}; give one value per column")
        yield line_no, dict(zip(header, values))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    for line_no, text in _numbered_lines(path):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as err:
            raise WorkloadError(f"{path}, line {line_no}: not valid JSON ({err.msg}); "
                                f"write one object per line") from None
        if not isinstance(fields, dict):
            raise WorkloadError(f"{path}, line {line_no}: expected a JSON object with {', '.join(COLUMNS)}")
        yield line_no, fields


def _request_from_fields(path: Path, line_no: int, request_id: int, fields: dict) -> Request:
    def field(column: str, minimum: int) -> int:
        if column not in fields:
            raise WorkloadError(f"{path}, line {line_no}: missing '{column}'")
        value = _as_integer(fields[column])
        if value is None or value < minimum:
            raise WorkloadError(f"{path}, line {line_no}: '{column}' must be a whole number >= {minimum}, "
                                f"got {fields[column]!r}")
        return value

    input_tokens = field("input_toks", 1)
    return Request(
        id=request_id,
        input_tokens=input_tokens,
        output_tokens=field("output_toks", 1),
        arrival_ns=field("arrival_time_ns", 0),
        token_ids=_token_ids(path, line_no, fields.get("token_ids"), input_tokens),
    )


def _as_integer(raw: object) -> int | None:
    """An int from a TSV string or a JSON number; None when it is not a whole number."""
    if isinstance(raw, str):
        text = raw.strip()
        return int(text) if INTEGER.fullmatch(text) else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return None


def _token_ids(path: Path, line_no: int, raw: object, input_tokens: int) -> tuple[int, ...] | None:
    if raw is None:
        return None
    valid = isinstance(raw, list) and all(type(t) is int and t >= 0 for t in raw)
    if not valid or len(raw) != input_tokens:
        raise WorkloadError(f"{path}, line {line_no}: 'token_ids' must be a list of {input_tokens} "
                            f"non-negative integers (one per prompt token)")
    return tuple(raw)


# ---------------------------------------------------------------- generating

def generate_requests(num: int, rate: float, seed: int,
                      input_mean: float = SHAREGPT_INPUT_MEAN, output_mean: float = SHAREGPT_OUTPUT_MEAN,
                      input_sigma: float = LOGNORMAL_SIGMA, output_sigma: float = LOGNORMAL_SIGMA,
                      max_tokens: int = DEFAULT_MAX_TOKENS) -> list[Request]:
    """`num` ShareGPT-like requests arriving as a Poisson process of `rate` requests/s."""
    arrival_rng, input_rng, output_rng = np.random.default_rng(seed).spawn(3)
    arrivals = poisson_arrivals_ns(arrival_rng, num, rate)
    inputs = lognormal_lengths(input_rng, num, input_mean, input_sigma, max_tokens - 1)
    outputs = np.minimum(lognormal_lengths(output_rng, num, output_mean, output_sigma, max_tokens),
                         max_tokens - inputs)
    return [Request(i, int(inputs[i]), int(outputs[i]), int(arrivals[i])) for i in range(num)]


def poisson_arrivals_ns(rng: np.random.Generator, num: int, rate: float) -> np.ndarray:
    """Arrival times in ns: 0, then exponential gaps of mean 1/rate s (rounded after summing)."""
    gaps_ns = rng.exponential(1e9 / rate, size=num - 1)
    return np.rint(np.concatenate(([0.0], np.cumsum(gaps_ns)))).astype(np.int64)


def lognormal_lengths(rng: np.random.Generator, num: int, mean: float, sigma: float, longest: int) -> np.ndarray:
    """Token counts from a log-normal of the given mean and shape, rounded, clipped to [1, longest]."""
    mu = math.log(mean) - sigma ** 2 / 2
    return np.clip(np.rint(rng.lognormal(mu, sigma, size=num)), 1, longest).astype(np.int64)


def write_dataset(requests: list[Request], path: str | Path, force: bool = False) -> None:
    """Write .tsv or .jsonl; an existing file is replaced only with `force`."""
    path = Path(path)
    formatters = {".tsv": _tsv_text, ".jsonl": _jsonl_text}
    formatter = formatters.get(path.suffix)
    if formatter is None:
        raise WorkloadError(f"{path}: unknown dataset extension '{path.suffix}'; use .tsv or .jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("w" if force else "x", encoding="utf-8", newline="\n") as handle:
            handle.write(formatter(requests))
    except FileExistsError:
        raise WorkloadError(f"{path}: already exists; pass --force to overwrite it") from None


def _tsv_text(requests: list[Request]) -> str:
    rows = [f"{r.input_tokens}\t{r.output_tokens}\t{r.arrival_ns}" for r in requests]
    return "\n".join([TSV_HEADER, *rows]) + "\n"


def _jsonl_text(requests: list[Request]) -> str:
    return "".join(json.dumps(dict(zip(COLUMNS, (r.input_tokens, r.output_tokens, r.arrival_ns)))) + "\n"
                   for r in requests)


@click.command()
@click.option("--num", type=click.IntRange(min=1), required=True, help="Number of requests.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Mean arrival rate, requests per second (Poisson).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="numpy default_rng seed.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Dataset file to write, .tsv or .jsonl.")
@click.option("--input-mean", type=click.FloatRange(min=1), default=SHAREGPT_INPUT_MEAN, show_default=True,
              help="Mean prompt length in tokens before clipping (ShareGPT, vLLM paper).")
@click.option("--output-mean", type=click.FloatRange(min=1), default=SHAREGPT_OUTPUT_MEAN, show_default=True,
              help="Mean output length in tokens before clipping (ShareGPT, vLLM paper).")
@click.option("--input-sigma", type=click.FloatRange(min=0), default=LOGNORMAL_SIGMA, show_default=True,
              help="Log-normal shape of prompt lengths.")
@click.option("--output-sigma", type=click.FloatRange(min=0), default=LOGNORMAL_SIGMA, show_default=True,
              help="Log-normal shape of output lengths.")
@click.option("--max-tokens", type=click.IntRange(min=2), default=DEFAULT_MAX_TOKENS, show_default=True,
              help="Longest request: prompt + output tokens.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def main(num, rate, seed, output, input_mean, output_mean, input_sigma, output_sigma, max_tokens, force):
    """Generate a ShareGPT-like request trace with Poisson arrivals."""
    requests = generate_requests(num, rate, seed, input_mean, output_mean, input_sigma, output_sigma, max_tokens)
    try:
        write_dataset(requests, output, force)
    except WorkloadError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {num} requests to {output}")


if __name__ == "__main__":
    main()
