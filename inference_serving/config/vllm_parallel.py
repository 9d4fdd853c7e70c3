"""RunConfig flags for a measured vLLM run's parallel settings (meta.json's engine_kwargs, for `validate`).

vLLM's engine arguments `enable_expert_parallel` and `data_parallel_size` (vLLM 0.19 EngineArgs):
expert parallelism over the tensor-parallel group is simulated (--enable-expert-parallel); data
parallelism is not yet (README "Mixture of experts"), so a run measured with data_parallel_size > 1 is
refused rather than simulated as something else.
"""
from __future__ import annotations

from ..errors import InputError


def parallel_flags(engine_kwargs: dict) -> dict:
    """The RunConfig fields for vLLM's expert- and data-parallel engine arguments."""
    data_parallel = engine_kwargs.get("data_parallel_size", 1)
    if data_parallel != 1:
        raise InputError(f"meta.json: data_parallel_size {data_parallel!r}: data-parallel attention is not "
                         f"simulated yet; only runs with data_parallel_size 1 can be validated")
    expert_parallel = engine_kwargs.get("enable_expert_parallel", False)
    if not isinstance(expert_parallel, bool):
        raise InputError(f"meta.json: enable_expert_parallel must be true or false, got {expert_parallel!r}")
    return {"enable_expert_parallel": expert_parallel}
