"""Where requests come from: the run's requests in arrival order, handed to instances by a router.

`Arrivals` holds every request of the run (one RequestState each), the ones still to arrive in
arrival order, and the later turns of sessions that wait for an earlier turn to end
(follow_ups.py). `route(now)` hands each request that has arrived by `now` to an instance: the
router (cluster/routers.py) picks it; a run of one instance needs none. Each instance's scheduling
policy reads its own `Inbox`, which routes first, so a request joins its instance at the step it
arrives in, and tells the inbox when one of its requests ends there (its KV blocks are released,
a session's next turn is released). A cluster may give an instance another inbox (the prefill
instances of cluster/disaggregation.py hand their requests on instead of ending them).
"""
from __future__ import annotations

from bisect import insort
from collections import deque
from typing import Callable, Protocol

from ..inputs.request import Request
from .follow_ups import FollowUps
from .request import RequestState


class Router(Protocol):
    def pick(self, state: RequestState, now: int) -> int: ...


class Arrivals:
    def __init__(self, requests: list[Request], instances: int = 1, router: Router | None = None) -> None:
        self.requests = requests
        self.states = [RequestState(r) for r in requests]
        self.by_id = {state.id: state for state in self.states}
        self.follow_ups = FollowUps(self.states)
        self.pending = deque(sorted((s for s in self.states if s.request.after is None), key=arrival_order))
        self.listeners: list[Callable[[int], None]] = []   # hear the arrival time of each released turn
        self.inboxes = [Inbox(self, index) for index in range(instances)]
        self.router = router
        self.unfinished = len(requests)

    def next_arrival(self) -> int | None:
        return self.pending[0].request.arrival_ns if self.pending else None

    def route(self, now: int) -> None:
        """Hands every request that has arrived by `now` to its instance."""
        while self.pending and self.pending[0].request.arrival_ns <= now:
            state = self.pending.popleft()
            index = self.router.pick(state, now) if self.router is not None else 0
            self.inboxes[index].arrived.append(state)

    def ended(self, state: RequestState, now: int) -> None:
        """A request's last token: it is done, and the turns that follow it are released."""
        self.unfinished -= 1
        for follower in self.follow_ups.release(state, now):
            insort(self.pending, follower, key=arrival_order)
            for listener in self.listeners:
                listener(follower.request.arrival_ns)


class Inbox:
    """One instance's side of the arrivals: the requests handed to it, not yet taken by its policy."""

    def __init__(self, arrivals: Arrivals, index: int) -> None:
        self.arrivals, self.index = arrivals, index
        self.arrived: deque[RequestState] = deque()

    def due(self, now: int) -> list[RequestState]:
        """The requests that reached this instance by `now`, in the order they did."""
        self.arrivals.route(now)
        taken = list(self.arrived)
        self.arrived.clear()
        return taken

    def ended(self, finished: list[RequestState]) -> list[RequestState]:
        """Of the requests that produced their last token here, the ones whose run ended (all of them)."""
        return finished

    def finished(self, state: RequestState, now: int, kv) -> None:
        """The policy's request produced its last token here: its blocks are freed, the run hears of it."""
        kv.free(state.id)
        self.arrivals.ended(state, now)


def arrival_order(state: RequestState) -> tuple[int, int]:
    return state.request.arrival_ns, state.id
