"""RunConfig flags for a measured vLLM run's parallel settings (meta.json's engine_kwargs, for `validate`).

vLLM's engine argument `enable_expert_parallel` (vLLM 0.19 EngineArgs) is simulated over the
tensor-parallel group (--enable-expert-parallel); `data_parallel_size` is not yet (README "Mixture of
experts"), so report/engine_settings.py names a value other than 1 as not modelled.
"""
from __future__ import annotations

from ..errors import InputError


def parallel_flags(engine_kwargs: dict) -> dict:
    """The RunConfig fields for vLLM's expert-parallel engine argument."""
    expert_parallel = engine_kwargs.get("enable_expert_parallel") or False
    if not isinstance(expert_parallel, bool):
        raise InputError(f"meta.json: enable_expert_parallel must be true or false, got {expert_parallel!r}")
    return {"enable_expert_parallel": expert_parallel}
