"""RunConfig flags for a measured vLLM run's parallel settings (meta.json's engine_kwargs, for `validate`).

vLLM's engine arguments `enable_expert_parallel` and `data_parallel_size` (vLLM 0.19 EngineArgs) are
--enable-expert-parallel and --dp: the experts over the tensor-parallel group, or over every
data-parallel rank (serving/step_group.py; README "Mixture of experts").
"""
from __future__ import annotations

from ..errors import InputError


def parallel_flags(engine_kwargs: dict) -> dict:
    """The RunConfig fields for vLLM's expert- and data-parallel engine arguments."""
    expert_parallel = engine_kwargs.get("enable_expert_parallel") or False
    if not isinstance(expert_parallel, bool):
        raise InputError(f"meta.json: enable_expert_parallel must be true or false, got {expert_parallel!r}")
    return {"enable_expert_parallel": expert_parallel, "dp": engine_kwargs.get("data_parallel_size") or 1}
