"""A flag either acts or is refused: flags that the chosen scheduler or performance provider would
not read are errors, not silent no-ops.

A flag counts as given when its value differs from its default, whether it came from the command
line, an experiment file or a sweep grid (a flag written with its default value changes nothing
and is accepted). Each scheduling policy declares the flags only it reads (`own_flags`); each
provider declares the flags its measurements fix (`fixed_flags`, flag -> why).
"""
from __future__ import annotations

from .config.run_config import RunConfig, flag_name, run_fields
from .errors import InputError
from .serving.policy import POLICIES, policy_class


def given(config: RunConfig, name: str) -> bool:
    default = next(f.default for f in run_fields() if f.name == name)
    return getattr(config, name) != default


def check_scheduler_flags(config: RunConfig) -> None:
    """Flags that only another scheduler reads are refused."""
    own = policy_class(config.scheduler).own_flags
    for other in POLICIES.names():
        for name in policy_class(other).own_flags:
            if name not in own and given(config, name):
                raise InputError(f"{flag_name(name)} is read by --scheduler {other} only, not by --scheduler "
                                 f"{config.scheduler}; leave it out or use --scheduler {other}")


def check_provider_flags(config: RunConfig, provider: str, fixed_flags: dict[str, str]) -> None:
    """Flags whose quantity the provider's measurements fix are refused, saying why."""
    for name, reason in fixed_flags.items():
        if given(config, name):
            raise InputError(f"{flag_name(name)} has no effect with the {provider} performance provider: {reason}; "
                             f"leave it out, or choose a provider that models it (e.g. --perf-model npu)")
