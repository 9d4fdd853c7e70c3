"""The schema of a cluster file (spec.py has its format): every key checked, unknown keys refused.
Imported by spec.load_cluster only, so that a run without --cluster does not import pydantic."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputError

ROLES = ("colocated", "prefill", "decode")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkSpec(_Strict):
    bandwidth_gbps: float = Field(gt=0, allow_inf_nan=False)  # GB/s, GB = 10^9 bytes
    latency_ns: float = Field(ge=0, allow_inf_nan=False)


class NetworkSpec(_Strict):
    npus_per_node: int | None = Field(default=None, ge=1)
    intra_node: LinkSpec | None = None
    inter_node: LinkSpec | None = None


class HostMemorySpec(_Strict):
    bandwidth_gbps: int = Field(ge=1)


class InstanceSpec(_Strict):
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+$")
    count: int = Field(default=1, ge=1, le=4096)
    role: str = "colocated"
    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    dp: int = Field(default=1, ge=1)
    flags: dict = Field(default_factory=dict)

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"must be one of {', '.join(ROLES)}")
        return role


class ClusterFile(_Strict):
    router: str | None = None
    router_seed: int = Field(default=0, ge=0)
    decode_router: str = "least-outstanding"
    network: NetworkSpec = NetworkSpec()
    host_memory: HostMemorySpec | None = None
    instances: list[InstanceSpec] = Field(min_length=1)


def checked(data: dict, source: str) -> ClusterFile:
    """The file's mapping as the schema reads it; the first bad key is an InputError naming the file."""
    try:
        return ClusterFile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{source}: {where}: {first['msg']}") from None
