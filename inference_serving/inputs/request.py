"""One inference request of a workload."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """One inference request: prompt length, tokens to generate, arrival time. A turn of a multi-turn
    session (inputs/sessions.py) names its session and the request it follows: it arrives `think_ns`
    after that one ends (its `arrival_ns` holds the session's start until the run releases it)."""

    id: int
    input_tokens: int
    output_tokens: int
    arrival_ns: int
    token_ids: tuple[int, ...] | None = None
    output_token_ids: tuple[int, ...] | None = None  # the tokens it will generate, where a later turn reads them
    session: int | None = None
    after: int | None = None
    think_ns: int = 0
