"""Plans with decode attention on PIM units (`--pim offload|interleave`), perf/pim.py pricing it.

offload     every decode request's attention row moves to the PIM units (its own engine slot, Row.on_pim);
            the NPU waits for it: the chain is the plain one with PIM times for decode attention.
interleave  (NeuPIMs' sub-batch interleaving) the batch is split in two sub-batches, decoding requests
            balanced by their keys (longest first, each to the lighter half; prompts go to the first),
            each priced on its own tokens; per layer one half's attention in PIM overlaps the other
            half's projections and MLP on the NPU (plan/pim_graph.py). The weights are then read once
            per half. With fewer than two decoding requests the step is a plain offload.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..config.run_config import RunConfig
from ..errors import InputError
from ..perf.pim import PimModel
from .builder import TraceBuilder
from .iteration import AttentionGroup, BatchEntry, TierMove, Trace, with_groups


def check_pim(config: RunConfig) -> None:
    """--pim acts where it is modelled: interleaving on one NPU, without speculative tokens or --energy."""
    if config.pim == "interleave" and config.npu_num != 1:
        raise InputError("--pim interleave runs on one NPU (--npu_num 1); --pim offload takes any TP and PP")
    if config.spec_tokens:
        raise InputError("--pim prices one decode token per request; leave out --spec-tokens")
    if config.energy:
        raise InputError("--energy has no power figures for PIM units; leave out --pim")


@dataclass
class InterleavedTrace(Trace):
    """A whole step's plan (swaps, embedding and head are its own) and its two sub-batches' plans,
    whose decoder blocks interleave."""

    halves: tuple[Trace, ...] = ()


def balanced_halves(entries: list[BatchEntry]) -> tuple[list[BatchEntry], list[BatchEntry]]:
    """Prompts in the first half; decodes by keys, longest first, each to the half with fewer keys."""
    first = [e for e in entries if e.new_tokens > 1]
    second: list[BatchEntry] = []
    weight = [0, 0]
    for entry in sorted((e for e in entries if e.new_tokens == 1), key=lambda e: -e.cached_tokens):
        half = 0 if weight[0] <= weight[1] else 1
        (first if half == 0 else second).append(entry)
        weight[half] += entry.cached_tokens + 1
    return first, second


@dataclass
class PimTraceBuilder(TraceBuilder):
    pim: PimModel | None = None
    interleave: bool = False
    _pim_cache: dict = field(default_factory=dict)

    def build(self, entries: list[BatchEntry], evict_bytes: int = 0, load_bytes: int = 0,
              tier_moves: list[TierMove] = ()) -> Trace:
        trace = self._offloaded(super().build(entries, evict_bytes, load_bytes, tier_moves), entries)
        if not self.interleave or sum(1 for e in entries if e.new_tokens == 1) < 2:
            return trace
        halves = tuple(self._offloaded(super(PimTraceBuilder, self).build(half), half)
                       for half in balanced_halves(entries))
        return InterleavedTrace(**{f.name: getattr(trace, f.name) for f in fields(Trace)}, halves=halves)

    def _offloaded(self, trace: Trace, entries: list[BatchEntry]) -> Trace:
        """The plan with every decode request's attention row on the PIM units."""
        decoding = {e.request_id: e for e in entries if e.new_tokens == 1}
        tp = 1 if self.selective_attention else self.tp
        block = []
        for item in with_groups(trace.block):
            if isinstance(item, AttentionGroup) and item.request_id in decoding:
                keys = decoding[item.request_id].cached_tokens + 1
                item = AttentionGroup(item.request_id, tuple(
                    row._replace(comp_ns=self._pim_ns(keys, tp), on_pim=True) if row.name == "attn" else row
                    for row in item.rows))
                trace.on_pim = True
            block.append(item)
        trace.block = block
        return trace

    def _pim_ns(self, keys: int, tp: int) -> int:
        key = (keys, tp)
        if key not in self._pim_cache:
            self._pim_cache[key] = self.pim.attention_ns(keys, tp)
        return self._pim_cache[key]
