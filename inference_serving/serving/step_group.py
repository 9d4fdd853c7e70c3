"""Instances that step together: an instance alone, or the data-parallel ranks of one (vLLM 0.19's DP
attention for MoE models).

Each data-parallel rank is an instance of its own (its scheduler, KV cache and NPUs); the MoE layers'
collectives span all ranks (plan/moe_block.py), so vLLM runs every rank's forward pass in the same
step: a rank with requests runs its batch, a rank without runs a dummy batch of one token (vLLM's
execute_dummy_batch), and the next step starts when every rank has finished. Every rank's MoE
collectives carry the busiest rank's token count (`dp_tokens`). A group of one instance is that
instance's own steps.
"""
from __future__ import annotations

from .instance import Instance
from .request import Batch


class StepGroup:
    def __init__(self, ranks: list[Instance]) -> None:
        self.ranks = ranks

    def free(self) -> bool:
        return all(rank.first_stage_free() for rank in self.ranks)

    def schedule(self, now: int) -> list[Batch] | None:
        """Every rank's batch of the next step (dummies where a rank has none), or None when no rank has work."""
        batches = [rank.scheduler.schedule(now) for rank in self.ranks]
        if all(batch is None for batch in batches):
            return None
        batches = [batch or rank.scheduler.dummy_batch(now) for batch, rank in zip(batches, self.ranks)]
        if len(self.ranks) > 1:
            tokens = max(sum(entry.new_tokens for entry in batch.entries) for batch in batches)
            for rank in self.ranks:
                rank.builder.dp_tokens = tokens
        return batches
