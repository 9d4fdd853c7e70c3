"""The rows of a mixture-of-experts layer's feed-forward part, in place of the dense MLP's.

vLLM's MoE block (Qwen3MoeSparseMoeBlock, MixtralMoE, DeepseekMoE in vLLM 0.19): the router (a
replicated hidden -> num_experts GEMM) scores every token; the shared experts, where the model has
them, run as a tensor-parallel MLP; the fused MoE kernel runs every rank's experts on the tokens
routed to them (PerfProvider.moe_ns, slowest rank); then one all-reduce over the group sums the routed
and shared outputs, the collective that follows a dense MLP too (perf/experts.py: no all-to-all at
data-parallel size 1). Sizes are of the whole layer, as for every row: `experts` weighs all routed
experts.

With `dp` data-parallel ranks (vLLM's DP attention; its default all2all backend in 0.19,
allgather_reducescatter), each rank's tokens are gathered from every rank before the experts
(`moe_dispatch`, an all-gather over the dp ranks) and the experts' outputs summed and scattered back
after them (a reduce-scatter): each rank's experts run on the tokens of all ranks. The collectives
need one size on every rank, so every rank's part is the busiest rank's token count (`dp_tokens`;
vLLM pads the ranks' batches to it across DP the same way).
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
        if self.dp > 1:
            return rows + self._dp_expert_rows(weight * e)
        comm = (Comm.ALL_REDUCE, hidden) if self.tp > 1 else (Comm.NONE, 0)
        rows.append(Row("experts", self.perf.moe_ns(self.experts.routing(tokens)), hidden, weight * e, hidden, *comm))
        return rows

    def _dp_expert_rows(self, weight_bytes: int) -> list[Row]:
        """Dispatch (all-gather of every rank's padded part), the experts on all ranks' tokens, combine
        (reduce-scatter of the whole gathered output)."""
        part = self.dp_tokens * self.model.hidden_size * self.elem
        gathered = part * self.dp
        return [Row("moe_dispatch", 0, part, 0, gathered, Comm.ALL_GATHER, part),
                Row("experts", self.perf.moe_ns(self.experts.routing(self.dp_tokens * self.dp)), gathered,
                    weight_bytes, gathered, Comm.REDUCE_SCATTER, gathered)]
