"""The draft model's passes of one speculative-decoding step, as plan items (Trace.draft).

A draft model keeps its own KV cache of the same tokens as the target's, on the same NPUs with the
same tensor-parallel degree (vLLM requires the draft's TP degree to equal the target's). In a step
it runs, after the target's head:
  1. one pass over the step's new tokens of every request (prompt chunks, and the tokens the step
     verifies, in the batched decode kernel as for the target), which leaves the first draft token
     of the next step; its LM head is priced at all of a request's verified positions (the draft
     needs the last: d logit rows too many);
  2. one pass of one token for each further draft token: a request that verifies d draft tokens in
     this step drafts d for the next (the step before drafted the ones it verifies now, so the first
     and last steps of a request are off by one step's drafts).
Each pass is a whole forward of the draft model (embedding, its layers, its head), priced by its own
trace builder; the draft tokens are the argmax of its logits (no sampler row).
"""
from __future__ import annotations

from dataclasses import dataclass

from .builder import TraceBuilder
from .iteration import AttentionGroup, BatchEntry, Row


@dataclass
class DraftPlanner:
    """The draft passes of a step, from a trace builder of the draft model (pp 1, no overhead)."""

    builder: TraceBuilder

    def passes(self, entries: list[BatchEntry]) -> list[list[BatchEntry]]:
        """The batches of the draft's forward passes (the draft builder's entries)."""
        first = list(entries)
        longest = max((e.draft_tokens for e in entries), default=0)
        further = [[BatchEntry(e.request_id, 1, e.cached_tokens + e.new_tokens + i - 1)
                    for e in entries if e.draft_tokens > i] for i in range(1, longest)]
        return [first, *further]

    def __call__(self, entries: list[BatchEntry]) -> list[Row | AttentionGroup]:
        items: list[Row | AttentionGroup] = []
        for batch in self.passes(entries):
            trace = self.builder.build(batch)
            items += [trace.embedding, *trace.block * trace.stage_layers[0], *trace.head]
        return items
