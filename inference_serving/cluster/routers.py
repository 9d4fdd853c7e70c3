"""Routers: which instance takes a request that arrives (`--router`, or the cluster file's `router`).

A router sees the instances a request may go to (`candidates`: indexes into the cluster's instances)
and their state at the tick the request arrives: requests outstanding (handed to the instance and
not ended: waiting, running, swapped), KV blocks in use, cached prompt blocks. Ties go to the
instance listed first. New routers are one class and one line in ROUTERS.
"""
from __future__ import annotations

import random
from abc import ABC, abstractmethod

from ..registry import Registry
from ..serving.instance import Instance
from ..serving.request import RequestState

ROUTERS = Registry("router", "--router", {
    "round-robin": ".cluster.routers:RoundRobin",
    "random": ".cluster.routers:RandomChoice",
    "least-outstanding": ".cluster.routers:LeastOutstanding",
    "least-kv": ".cluster.routers:LeastKvUsage",
    "power-of-two": ".cluster.routers:PowerOfTwo",
    "session-affinity": ".cluster.routers:SessionAffinity",
    "prefix-affinity": ".cluster.routers:PrefixAffinity",
})


class Router(ABC):
    def __init__(self, instances: list[Instance], candidates: list[int], seed: int = 0) -> None:
        self.instances, self.candidates = instances, candidates
        self.random = random.Random(seed)

    @abstractmethod
    def pick(self, state: RequestState, now: int) -> int:
        """The index of the instance that takes `state`."""

    def least_outstanding(self, among: list[int]) -> int:
        return min(among, key=lambda k: self.instances[k].outstanding())


class RoundRobin(Router):
    """Each request to the next instance in turn."""

    def __init__(self, instances, candidates, seed=0) -> None:
        super().__init__(instances, candidates, seed)
        self.turn = 0

    def pick(self, state, now):
        index = self.candidates[self.turn % len(self.candidates)]
        self.turn += 1
        return index


class RandomChoice(Router):
    """A uniformly random instance (seeded: router_seed)."""

    def pick(self, state, now):
        return self.candidates[self.random.randrange(len(self.candidates))]


class LeastOutstanding(Router):
    """The instance with the fewest requests outstanding."""

    def pick(self, state, now):
        return self.least_outstanding(self.candidates)


class LeastKvUsage(Router):
    """The instance with the smallest share of its KV blocks in use (then the fewest outstanding)."""

    def pick(self, state, now):
        def usage(k: int) -> tuple[float, int]:
            kv = self.instances[k].kv
            return kv.used_blocks / kv.total_blocks, self.instances[k].outstanding()
        return min(self.candidates, key=usage)


class PowerOfTwo(Router):
    """Two distinct instances drawn at random (seeded), the one with fewer outstanding requests."""

    def pick(self, state, now):
        if len(self.candidates) == 1:
            return self.candidates[0]
        drawn = self.random.sample(self.candidates, 2)
        return self.least_outstanding(drawn)


class SessionAffinity(Router):
    """A session's later turns go where its first turn went (which is the least outstanding instance)."""

    def __init__(self, instances, candidates, seed=0) -> None:
        super().__init__(instances, candidates, seed)
        self.home: dict[int, int] = {}

    def pick(self, state, now):
        session = state.request.session
        if session is None:
            return self.least_outstanding(self.candidates)
        if session not in self.home:
            self.home[session] = self.least_outstanding(self.candidates)
        return self.home[session]


class PrefixAffinity(Router):
    """The instance holding the most of the prompt's leading blocks in its prefix cache (then the least
    outstanding)."""

    def pick(self, state, now):
        request = state.request
        tokens = request.input_tokens

        def preference(k: int) -> tuple[int, int]:
            instance = self.instances[k]
            return -instance.kv.cached_prefix_blocks(request, tokens), instance.outstanding()
        return min(self.candidates, key=preference)


def router(name: str, instances: list[Instance], candidates: list[int], seed: int) -> Router:
    return ROUTERS.get(name)(instances, candidates, seed)
