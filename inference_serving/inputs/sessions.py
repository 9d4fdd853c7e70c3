"""Multi-turn sessions: a JSONL workload of turns, each turn's prompt the session's context so far plus new input.

One JSON object per line, a turn; a session's lines in turn order (sessions may interleave):
  session_id        the session, a whole number >= 0
  turn              0, 1, 2, ... within the session
  input_toks        tokens of new input (the user's message, or a tool's result), >= 1
  output_toks       tokens the turn generates, >= 1
  arrival_time_ns   turn 0 only: when the session starts
  think_time_ns     later turns only: from the end of the previous turn to this one's arrival (the
                    user's think time, or the tool's run time)
  token_ids, output_token_ids   optional, given together on every turn of a session or on none: the
                    ids of the new input and of the output (input_toks and output_toks of them)

Turn t's request carries the whole conversation: its prompt is turn t-1's prompt, turn t-1's output and
the new input (input_tokens = the earlier turns' inputs and outputs plus this input), its token ids
those of turn t-1's prompt and output followed by the new ids, so the context's full KV blocks hash
as turn t-1's did and vLLM's prefix cache finds them (serving/kv/prefix_cache.py hashes prompt and
output ids). It arrives think_time_ns after turn t-1 ends (serving/follow_ups.py releases it; until
then its arrival_ns holds the session's start). Request ids are the line order, as in every format,
and `req_num` keeps the first N lines (turns).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.types import MAX_DIMENSION, MAX_SIM_NS
from ..errors import InputError
from .fields import token_ids_field, whole_field
from .request import Request

SESSION_FIELD = "session_id"


@dataclass(frozen=True)
class _Context:
    """What a session's next turn builds on."""

    last_request: int
    tokens: int
    token_ids: tuple[int, ...] | None
    start_ns: int
    turns: int


def session_requests(path: Path, rows: list[tuple[int, dict]]) -> list[Request]:
    """The requests of the turns in `rows` ((line number, fields) pairs, in file order)."""
    sessions: dict[int, _Context] = {}
    return [_turn(path, line_no, request_id, fields, sessions) for request_id, (line_no, fields) in enumerate(rows)]


def _timing(path: Path, line_no: int, fields: dict, first: bool) -> int:
    """turn 0's arrival_time_ns, or a later turn's think_time_ns (each refused where the other belongs)."""
    wanted, other = ("arrival_time_ns", "think_time_ns") if first else ("think_time_ns", "arrival_time_ns")
    if other in fields:
        raise InputError(f"{path}, line {line_no}: '{other}' does not belong on "
                         f"{'the first' if first else 'a later'} turn of a session; give '{wanted}'")
    return whole_field(path, line_no, fields, wanted, 0, MAX_SIM_NS)


def _turn(path: Path, line_no: int, request_id: int, fields: dict, sessions: dict[int, _Context]) -> Request:
    def field(column: str, minimum: int) -> int:
        return whole_field(path, line_no, fields, column, minimum, MAX_DIMENSION)

    session, turn = field(SESSION_FIELD, 0), field("turn", 0)
    context = sessions.get(session)
    expected = context.turns if context else 0
    if turn != expected:
        raise InputError(f"{path}, line {line_no}: turn {turn} of session {session}, expected turn {expected} "
                         f"(a session's turns in order, from 0)")
    new_input, output = field("input_toks", 1), field("output_toks", 1)
    timing = _timing(path, line_no, fields, context is None)
    new_ids = token_ids_field(path, line_no, fields.get("token_ids"), new_input, unit="new input token")
    output_ids = token_ids_field(path, line_no, fields.get("output_token_ids"), output, "output_token_ids",
                                 "output token")
    with_ids = new_ids is not None
    if with_ids != (output_ids is not None) or (context is not None and with_ids != (context.token_ids is not None)):
        raise InputError(f"{path}, line {line_no}: give 'token_ids' and 'output_token_ids' together, on every "
                         f"turn of session {session} or on none")
    earlier_tokens, earlier_ids = (context.tokens, context.token_ids) if context else (0, ())
    prompt_ids = earlier_ids + new_ids if with_ids else None
    start = context.start_ns if context else timing
    request = Request(request_id, earlier_tokens + new_input, output, start, prompt_ids, output_ids, session,
                      context.last_request if context else None, timing if context else 0)
    sessions[session] = _Context(request_id, request.input_tokens + output,
                                 prompt_ids + output_ids if with_ids else None, start, turn + 1)
    return request
