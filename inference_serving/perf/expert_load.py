"""Expert load models (`--expert-load`): how many of an iteration's tokens each routed expert receives.

A load model is a share per expert (summing to 1): `uniform` (1/E each), `zipf:S` (expert i's share
proportional to 1/(i+1)^S; S = 0 is uniform) or a file: a JSON list of E non-negative numbers,
normalised. Each token goes to k = experts_per_token distinct experts, so an expert receives a token
with probability q_i = min(1, c·share_i), c chosen so that the q_i add up to k (a share above 1/k
cannot be met: such an expert already gets every token, and the rest is spread over the others in
proportion to their shares).

Routing T tokens: the T·k (token, expert) pairs are divided over the experts in proportion to q_i
by largest remainders (each expert gets floor(T·q_i) or one more, never more than T; ties go to
the experts in turn over the ranks, so that equal shares also spread evenly over the ranks). The
experts are placed on the ranks in order (vLLM's default `expert_placement_strategy` "linear":
rank r holds experts r·E/ranks .. (r+1)·E/ranks − 1), so under `zipf:S` rank 0 holds the most
loaded experts, the worst placement; a share file gives any other. The expected counts of a
random router are used, not a random draw: runs are deterministic.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import InputError

UNIFORM = "uniform"
ZIPF = "zipf:"


@dataclass(frozen=True)
class ExpertLoad:
    """Shares of the routed experts, in expert order."""

    name: str
    shares: tuple[float, ...]

    @property
    def experts(self) -> int:
        return len(self.shares)

    @lru_cache(maxsize=None)
    def probabilities(self, top_k: int) -> tuple[float, ...]:
        """The chance that a token is sent to each expert when it picks `top_k` distinct ones."""
        capped: set[int] = set()
        while True:
            free = top_k - len(capped)
            rest = sum(s for i, s in enumerate(self.shares) if i not in capped)
            scale = free / rest if free else 0.0
            over = [i for i, s in enumerate(self.shares) if i not in capped and s * scale > 1]
            if not over:
                return tuple(1.0 if i in capped else s * scale for i, s in enumerate(self.shares))
            capped.update(over)

    @lru_cache(maxsize=4096)
    def route(self, tokens: int, top_k: int, ranks: int) -> tuple[tuple[int, ...], ...]:
        """Tokens routed to each expert, grouped by the rank that holds it (`ranks` equal groups)."""
        weights = self.probabilities(top_k)
        local = self.experts // ranks
        pairs = tokens * top_k
        quotas = [pairs * w / top_k for w in weights]
        counts = [math.floor(q) for q in quotas]
        turn = sorted(range(self.experts), key=lambda i: (counts[i] - quotas[i], (i % local) * ranks + i // local))
        for i in turn[:pairs - sum(counts)]:
            counts[i] += 1
        return tuple(tuple(counts[r * local:(r + 1) * local]) for r in range(ranks))


def spec_problem(spec: str) -> str | None:
    """What is wrong with an --expert-load value, or None for uniform, zipf:S (S finite, >= 0) or a file."""
    if spec == UNIFORM or Path(spec).is_file():
        return None
    if not spec.startswith(ZIPF):
        return "neither uniform, zipf:S nor an existing file of per-expert shares"
    skew = _number(spec[len(ZIPF):])
    return None if math.isfinite(skew) and skew >= 0 else "the Zipf skew S must be a finite number >= 0"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _zipf(spec: str, experts: int) -> ExpertLoad:
    weights = [(i + 1) ** -_number(spec[len(ZIPF):]) for i in range(experts)]
    return ExpertLoad(spec, tuple(w / sum(weights) for w in weights))


def _from_file(spec: str, experts: int) -> ExpertLoad:
    path = Path(spec)
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"--expert-load {spec}: not a readable JSON file ({err})") from None
    numbers = isinstance(values, list) and all(type(v) in (int, float) and math.isfinite(v) and v >= 0
                                               for v in values)
    if not numbers or len(values) != experts:
        raise InputError(f"--expert-load {spec}: expected a JSON list of {experts} non-negative numbers, "
                         f"one share per routed expert")
    total = sum(values)
    return ExpertLoad(spec, tuple(v / total for v in values)) if total else ExpertLoad(spec, ())


def expert_load(spec: str, experts: int, top_k: int) -> ExpertLoad:
    """The load model `spec` names for a layer of `experts` routed experts, `top_k` per token."""
    problem = spec_problem(spec)
    if problem:
        raise InputError(f"--expert-load {spec}: {problem}")
    if spec == UNIFORM:
        load = ExpertLoad(spec, (1 / experts,) * experts)
    elif spec.startswith(ZIPF):
        load = _zipf(spec, experts)
    else:
        load = _from_file(spec, experts)
    if sum(1 for s in load.shares if s > 0) < top_k:
        raise InputError(f"--expert-load {spec}: each token goes to {top_k} distinct experts, so at least "
                         f"{top_k} need a positive share")
    return load
