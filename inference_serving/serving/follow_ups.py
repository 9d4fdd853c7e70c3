"""Requests that arrive a think time after another request ends: the later turns of multi-turn sessions.

A request with `after` set (inputs/sessions.py) is held back until the request it names ends; then it
arrives `think_ns` later, and its arrival time becomes part of the request (the CSV, TTFT and queuing
delay count from it).
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import EngineError
from .request import RequestState


class FollowUps:
    """The held requests, by the request they wait for."""

    def __init__(self, states: list[RequestState]) -> None:
        known = {state.id for state in states}
        self.waiting: dict[int, list[RequestState]] = {}
        for state in states:
            after = state.request.after
            if after is not None:
                if after not in known:
                    raise EngineError(f"internal: request {state.id} follows request {after}, which is not in the run")
                self.waiting.setdefault(after, []).append(state)

    def release(self, ended: RequestState, now: int) -> list[RequestState]:
        """The requests that follow `ended` (which ends at `now`), their arrival times set."""
        released = self.waiting.pop(ended.id, [])
        for state in released:
            state.request = replace(state.request, arrival_ns=now + state.request.think_ns)
        return released
