"""Expert load models (`--expert-load`): how many of an iteration's tokens each routed expert receives.

A load model is a share per expert (summing to 1): `uniform` (1/E each), `zipf:S` (expert i's share
proportional to 1/(i+1)^S; S = 0 is uniform) or a file: a JSON list of E non-negative numbers,
normalised. Each token goes to k = experts_per_token distinct experts, so an expert receives a token
with probability q_i = min(1, c·share_i), c chosen so that the q_i add up to k (a share above 1/k
cannot be met: such an expert already gets every token, and the rest is spread over the others in
proportion to their shares).

Routing T tokens: the T·k (token, expert) pairs are divided over the ranks in proportion to their
experts' q_i, then each rank's over its experts, both by largest remainders (a part gets its quota
rounded down or one more, ties to the lower index; an expert never more than T). The experts are
placed on the ranks in order (vLLM's default `expert_placement_strategy` "linear":
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

from ..errors import EngineError, InputError

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
        groups = [weights[r * local:(r + 1) * local] for r in range(ranks)]
        per_rank = apportion(tokens * top_k, [sum(group) for group in groups], tokens * local)
        return tuple(tuple(apportion(pairs, group, tokens)) for pairs, group in zip(per_rank, groups))


def apportion(total: int, weights, cap: int) -> list[int]:
    """`total` divided in proportion to `weights` by largest remainders (ties to the lower index), no
    part above `cap`."""
    weight = sum(weights)
    quotas = [total * w / weight if weight else 0.0 for w in weights]
    counts = [min(math.floor(q), cap) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - quotas[i], i))
    while sum(counts) < total:
        open_parts = [i for i in order if counts[i] < cap and weights[i] > 0]
        if not open_parts:
            raise EngineError(f"internal: {total} pairs do not fit {len(weights)} parts of at most {cap}")
        for i in open_parts[:total - sum(counts)]:
            counts[i] += 1
    return counts


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
