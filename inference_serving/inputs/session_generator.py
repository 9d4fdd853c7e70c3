"""Generator of multi-turn sessions (`llmservingsim workload --num N --turns T --think S --rate R ...`).

Sessions start as a Poisson process of R sessions/s (the first at 0 ns). Each has up to T turns; a
turn's new input and its output are log-normal lengths with generator.py's ShareGPT means and shape
(the vLLM paper measured ShareGPT's requests, each one turn of a conversation), and every turn after
the first arrives a think time after the previous one ends, exponential with mean S seconds, rounded
to whole ns. A session ends early at the first turn whose whole prompt (the context so far and its new
input) and output would exceed --max-tokens. Token ids (left out with --no-token-ids, which turns
prefix caching off) are opaque labels drawn uniformly from the non-negative int32 range, per session
for its inputs and outputs alike: the turns of a session share their context's ids, and two sessions
share a 16-token block with probability 2^-496. Arrivals draw from one stream and each session from
its own, spawned from numpy's `default_rng(seed)`: the same seed gives the same file, and the first k
sessions of a longer file are those of a k-session file. Lines are session by session, so `--req_num`
keeps whole sessions first.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..config.types import MAX_SIM_NS
from ..errors import InputError
from .generator import lognormal_lengths, poisson_arrivals_ns
from .workload import write_new_file

ID_LIMIT = 2**31 - 1  # token ids are drawn from [0, ID_LIMIT): int32, like the ids of every tokenizer


def _session(rng: np.random.Generator, session: int, start_ns: int, turns: int, think_s: float,
             lengths: dict, max_tokens: int, token_ids: bool) -> list[dict]:
    inputs = lognormal_lengths(rng, turns, lengths["input_mean"], lengths["input_sigma"], max_tokens - 1)
    outputs = lognormal_lengths(rng, turns, lengths["output_mean"], lengths["output_sigma"], max_tokens)
    thinks = np.rint(rng.exponential(think_s * 1e9, size=turns - 1))
    if turns > 1 and not thinks.max() <= MAX_SIM_NS:
        raise InputError(f"--think {think_s:g}: a think time beyond {MAX_SIM_NS / 1e9:.3g} s of simulated time; "
                         f"choose a shorter mean")
    rows, context = [], 0
    for turn in range(turns):
        new_input, output = int(inputs[turn]), int(outputs[turn])
        if context + new_input + output > max_tokens:
            break
        row = {"session_id": session, "turn": turn, "input_toks": new_input, "output_toks": output}
        row.update({"arrival_time_ns": start_ns} if turn == 0 else {"think_time_ns": int(thinks[turn - 1])})
        if token_ids:
            row["token_ids"] = rng.integers(0, ID_LIMIT, size=new_input).tolist()
            row["output_token_ids"] = rng.integers(0, ID_LIMIT, size=output).tolist()
        rows.append(row)
        context += new_input + output
    return rows


def generate_sessions(num: int, turns: int, rate: float, think_s: float, seed: int, lengths: dict,
                      max_tokens: int, token_ids: bool = True) -> list[dict]:
    """The turns of `num` sessions (JSON objects of the session format, inputs/sessions.py).
    `lengths`: input_mean, output_mean, input_sigma, output_sigma of the log-normal lengths."""
    arrival_rng, *session_rngs = np.random.default_rng(seed).spawn(num + 1)
    starts = poisson_arrivals_ns(arrival_rng, num, rate)
    return [row for session, rng in enumerate(session_rngs)
            for row in _session(rng, session, int(starts[session]), turns, think_s, lengths, max_tokens, token_ids)]


def write_sessions(rows: list[dict], path: Path, force: bool = False) -> None:
    if path.suffix != ".jsonl":
        raise InputError(f"{path}: sessions are written as .jsonl")
    write_new_file(path, "".join(json.dumps(row) + "\n" for row in rows), force)
