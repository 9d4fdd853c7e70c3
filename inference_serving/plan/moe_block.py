"""The rows of a mixture-of-experts layer's feed-forward part, in place of the dense MLP's.

vLLM's MoE block (Qwen3MoeSparseMoeBlock, MixtralMoE, DeepseekMoE in vLLM 0.19): the router (a
replicated hidden -> num_experts GEMM) scores every token; the shared experts, where the model has
them, run as a tensor-parallel MLP; the fused MoE kernel runs every rank's experts on the tokens
routed to them (PerfProvider.moe_ns, slowest rank); then one all-reduce over the group sums the routed
and shared outputs, the collective that follows a dense MLP too (perf/experts.py: no all-to-all at
data-parallel size 1). Sizes are of the whole layer, as for every row: `experts` weighs all routed
experts.
"""
from __future__ import annotations

from ..perf.experts import ExpertPlan
from .iteration import Comm, Row

SHARED_LAYERS = ("shared_gate_proj", "shared_up_proj", "shared_act_fn", "shared_down_proj")


class MoeRows:
    """TraceBuilder's MoE rows (a mixin: it uses the builder's model, provider, sizes and helpers)."""

    experts: ExpertPlan | None

    def _moe_rows(self, tokens: int) -> list[Row]:
        m, e = self.model, self.elem
        hidden = tokens * m.hidden_size * e
        rows = [Row("router", self._latency("router", tokens), hidden, m.projection_parameters("router") * e,
                    tokens * m.num_experts * e)]
        if m.shared_experts:
            rows += [self._elementwise(name, tokens, m.shared_intermediate_size) if name == "shared_act_fn"
                     else self._linear(name, tokens) for name in SHARED_LAYERS]
        weight = m.num_experts * sum(m.projection_parameters(name)
                                     for name in ("expert_gate_proj", "expert_up_proj", "expert_down_proj"))
        comm = (Comm.ALL_REDUCE, hidden) if self.tp > 1 else (Comm.NONE, 0)
        rows.append(Row("experts", self.perf.moe_ns(self.experts.routing(tokens)), hidden, weight * e, hidden, *comm))
        return rows
