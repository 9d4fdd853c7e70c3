"""Where a mixture-of-experts layer's experts live on a tensor-parallel group, and one iteration's routing.

vLLM 0.19 (`FusedMoEParallelConfig.make`, vllm/model_executor/layers/fused_moe/config.py) places the
experts of a group of `tp` GPUs in one of two ways:

* tensor parallel (the default): every rank holds every expert, each expert's gate/up output features
  and down input features split `tp` ways, as the dense MLP (`moe_intermediate_size` must divide);
* expert parallel (`--enable-expert-parallel`; with data-parallel size 1 the expert-parallel group is
  the TP group, EP = TP): every rank holds num_experts / tp whole experts (we require that to divide;
  vLLM would give the first ranks one more).

Either way the attention runs tensor-parallel and every rank of the group sees all the iteration's
tokens; with data-parallel size 1 vLLM uses no all-to-all kernels (`use_all2all_kernels` needs
dp_size > 1): each rank runs its experts on the tokens routed to them and the layer output is summed
over the group by the all-reduce that also follows a dense MLP (plan/moe_block.py). Shared experts
are split like the dense MLP in both layouts. The weight bytes per rank are the same in both layouts
(an expert's worth of weights divided by tp); only the work per rank differs.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..inputs.model_config import ModelConfig
from .expert_load import UNIFORM, ExpertLoad, expert_load

EXPERT_LAYERS = ("expert_gate_proj", "expert_up_proj", "expert_act_fn", "expert_down_proj")


@dataclass(frozen=True)
class ExpertRouting:
    """One MoE layer of one iteration: `tokens` enter it on every rank; `per_rank[r][j]` tokens are
    routed to rank r's j-th expert, whose features are split `tp` ways (1 under expert parallelism)."""

    tokens: int
    tp: int
    per_rank: tuple[tuple[int, ...], ...]

    @property
    def ranks(self) -> int:
        return len(self.per_rank)

    @property
    def slowest_pairs(self) -> int:
        """(token, expert) pairs of the most loaded rank."""
        return max(sum(counts) for counts in self.per_rank)


@dataclass(frozen=True)
class ExpertPlan:
    """How a run's experts are placed (`ranks` groups of whole experts, each expert split `tp` ways)
    and loaded."""

    load: ExpertLoad
    top_k: int
    ranks: int
    tp: int

    def routing(self, tokens: int) -> ExpertRouting:
        return ExpertRouting(tokens, self.tp, self.load.route(tokens, self.top_k, self.ranks))


def _check_divides(what: str, size: int, tp: int, model: ModelConfig) -> None:
    if size % tp:
        raise InputError(f"tensor-parallel degree {tp} does not divide the {size} {what} of {model.name}")


def expert_plan(model: ModelConfig, tp: int, expert_parallel: bool, load_spec: str, dp: int = 1) -> ExpertPlan | None:
    """The placement of `model`'s experts on a group of `tp` ranks, or of `dp` data-parallel ranks of
    `tp` (vLLM: the experts then span the dp * tp ranks); None for a dense model, which takes neither
    flag."""
    if not model.is_moe:
        if expert_parallel or load_spec != UNIFORM or dp > 1:
            flag = "--enable-expert-parallel" if expert_parallel else "--expert-load" if load_spec != UNIFORM else "--dp"
            raise InputError(f"{flag}: {model.name} is a dense model (no experts)"
                             + ("; replicas of a dense model are instances of a --cluster file" if dp > 1 else ""))
        return None
    tp *= dp
    if model.shared_experts:
        _check_divides("shared-expert features", model.shared_intermediate_size, tp, model)
    load = expert_load(load_spec, model.num_experts, model.experts_per_token)
    if not expert_parallel:
        _check_divides("expert features (moe_intermediate_size)", model.moe_intermediate_size, tp, model)
        return ExpertPlan(load, model.experts_per_token, 1, tp)
    if tp == 1:
        raise InputError("--enable-expert-parallel needs a tensor-parallel group of 2 or more NPUs "
                         "(--npu_num / --npu_group)")
    _check_divides("routed experts", model.num_experts, tp, model)
    return ExpertPlan(load, model.experts_per_token, tp, 1)
