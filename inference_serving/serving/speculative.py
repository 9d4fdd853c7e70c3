"""Speculative decoding (`--spec-tokens k`, with `--scheduler vllm`): vLLM V1's scheduling of draft tokens.

A decoding request's step verifies its last sampled token and up to k draft tokens in one target
pass over 1 + d tokens (d = k, fewer when its output would end sooner or the token budget cuts the
step); the LM head computes logits at all 1 + d positions. Of the d drafts the target accepts a
leading run of a, then samples one more token (the correction, or a bonus token when all were
accepted): the request advances by a + 1 tokens, and the KV blocks that held only rejected tokens
are released. A request in prefill speculates from its first decode step on.

Acceptance (`--spec-acceptance`): the probability that draft token i is accepted once tokens
1..i-1 were, one number for every position or one per position; each step's a is drawn with a
`random.Random(--spec-seed)` stream, request by request in batch order, so a run is reproducible.

Drafters (`--spec-draft`): `ngram` proposes from the request's own tokens on the host (vLLM's
n-gram proposer runs on the CPU between steps) and costs no device time; any model config is a
draft model: its weights and its KV cache (the same blocks, one more set of layers per block) take
device memory, and its passes are priced in each step (plan/draft.py).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace

from ..config.run_config import RunConfig
from ..errors import InputError
from ..inputs.model import load_model
from ..inputs.model_config import ModelConfig
from ..inputs.hardware import Hardware
from ..perf.precision import Precision
from ..perf.provider import build_provider
from ..perf.shard import check_tensor_parallel
from ..plan.builder import TraceBuilder
from ..plan.draft import DraftPlanner
from ..plan.iteration import BatchEntry
from .arrivals import Inbox
from .kv.layout import MemoryLayout, memory_layout
from .request import RequestState
from .vllm import VllmPolicy

NGRAM = "ngram"
SPEC_FLAGS = ("spec_draft", "spec_acceptance", "spec_seed")


@dataclass(frozen=True)
class SpecConfig:
    tokens: int                  # k, draft tokens per request and step
    rates: tuple[float, ...]     # acceptance probability of each draft position, given the ones before
    seed: int
    draft: str                   # NGRAM or a model name / config path


def spec_config(config: RunConfig) -> SpecConfig | None:
    """The run's speculative decoding, or None; the flags are refused where they would not act."""
    if not config.spec_tokens:
        given = [name for name in SPEC_FLAGS if getattr(config, name) is not None]
        if given:
            raise InputError(f"--{given[0].replace('_', '-')} needs --spec-tokens (speculative decoding is off)")
        return None
    if config.scheduler != "vllm":
        raise InputError("--spec-tokens needs --scheduler vllm (speculative decoding follows vLLM V1's scheduler)")
    rates = config.spec_acceptance
    if rates is None:
        raise InputError("--spec-tokens needs --spec-acceptance: the probability that a draft token is accepted "
                         "(it depends on the drafter and the data; there is no default)")
    if len(rates) not in (1, config.spec_tokens):
        raise InputError(f"--spec-acceptance: {len(rates)} probabilities for --spec-tokens {config.spec_tokens}; "
                         f"give one, or one per draft position")
    per_position = rates * config.spec_tokens if len(rates) == 1 else rates
    return SpecConfig(config.spec_tokens, per_position, config.spec_seed or 0, config.spec_draft or NGRAM)


def draft_model(spec: SpecConfig, tp: int) -> ModelConfig | None:
    """The draft model (None for the n-gram drafter), checked to run at the target's TP degree."""
    if spec.draft == NGRAM:
        return None
    model = load_model(spec.draft)
    check_tensor_parallel(model, tp)
    return model


def draft_planner(config: RunConfig, hardware: Hardware) -> DraftPlanner | None:
    """The draft model's passes for the trace builder (None: no speculation, or the n-gram drafter)."""
    spec = spec_config(config)
    draft = draft_model(spec, config.tp) if spec else None
    if draft is None:
        return None
    perf = build_provider(draft, hardware, config.precision)
    return DraftPlanner(TraceBuilder(draft, perf, config.precision, config.tp, selective_attention=False,
                                     reuse=not config.no_reuse))


def with_draft(layout: MemoryLayout, draft: ModelConfig, precision: Precision, tp: int) -> MemoryLayout:
    """The target's layout plus the draft's weights and its share of every KV block."""
    own = memory_layout(draft, precision, tp, 1, 0.0, layout.block_size)
    return replace(layout, weight_bytes=layout.weight_bytes + own.weight_bytes,
                   block_bytes=layout.block_bytes + own.block_bytes)


class Acceptance:
    """How many of d draft tokens the target accepts: a leading run of Bernoulli draws."""

    def __init__(self, rates: tuple[float, ...], seed: int) -> None:
        self.rates = rates
        self.random = random.Random(seed)

    def accepted(self, drafts: int) -> int:
        for position in range(drafts):
            if self.random.random() >= self.rates[position]:
                return position
        return drafts


@dataclass
class SpecStats:
    """Verification steps of requests, draft tokens they verified, and those accepted."""

    steps: int = 0
    drafted: int = 0
    accepted: int = 0

    def summary(self, now: int) -> dict:
        rate = self.accepted / self.drafted if self.drafted else float("nan")
        per_step = (self.accepted + self.steps) / self.steps if self.steps else float("nan")
        return {"spec_draft_tokens": self.drafted, "spec_accepted_tokens": self.accepted,
                "spec_acceptance_rate": rate, "spec_tokens_per_step": per_step}

    def lines(self, now: int) -> list[str]:
        m = self.summary(now)
        return [f"speculative decoding:     {m['spec_accepted_tokens']}/{m['spec_draft_tokens']} draft tokens "
                f"accepted ({m['spec_acceptance_rate']:.3f}), {m['spec_tokens_per_step']:.3f} tokens per "
                f"verification step"]


class SpeculativeVllmPolicy(VllmPolicy):
    """vLLM V1 with draft tokens: decoding requests verify up to k of them a step."""

    @classmethod
    def build(cls, feed: Inbox, model: ModelConfig, layout: MemoryLayout,
              config: RunConfig) -> "SpeculativeVllmPolicy":
        policy = super().build(feed, model, layout, config)
        policy.speculate(spec_config(config))
        return policy

    def speculate(self, spec: SpecConfig) -> None:
        """Turns draft tokens on with these settings (build does it from the flags)."""
        self.spec, self.acceptance, self.stats = spec, Acceptance(spec.rates, spec.seed), SpecStats()

    def _draft_tokens(self, state: RequestState) -> int:
        if self._known_tokens(state) - state.cached != 1:
            return 0  # a prompt (or a recomputation after preemption) still to compute
        return min(self.spec.tokens, state.request.output_tokens - state.generated - 1)

    def _sampled(self, state: RequestState, entry: BatchEntry) -> int:
        """The target accepts a leading run of the drafts and samples one more token; the KV of the
        rejected drafts is not kept (nor their blocks)."""
        if not entry.draft_tokens:
            return super()._sampled(state, entry)
        accepted = self.acceptance.accepted(entry.draft_tokens)
        self.stats.steps += 1
        self.stats.drafted += entry.draft_tokens
        self.stats.accepted += accepted
        state.cached -= entry.draft_tokens - accepted
        self.kv.truncate(state.id, state.cached)
        return accepted + 1
