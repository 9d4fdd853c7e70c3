"""The GPUs aiconfigurator-core has measured: its system files, measurement databases and engines.

The package ships latency tables measured on real GPUs (GEMM, context and generation attention,
all-reduce) per system, serving framework and version, and a compiled engine that interpolates
between measured shapes. The package's SDK is imported where a database or an engine is loaded, and
PyYAML where a system file is read: a warm start, whose answers all come from the answer cache, does
not import them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from .answer_cache import AnswerCache, installed_version, source_digest

if TYPE_CHECKING:
    import logging

    from aiconfigurator_core.sdk.engine import EngineHandle
    from aiconfigurator_core.sdk.perf_database import PerfDatabase

MS_TO_NS = 1e6  # the tables' latencies are in ms
SYSTEMS_DIR = Path(find_spec("aiconfigurator_core").origin).resolve().parent / "systems"  # not imported

# User-facing hardware names of the package's systems (SXM / server variants).
HARDWARE_ALIASES = {
    "A100": "a100_sxm",
    "H100": "h100_sxm",
    "H200": "h200_sxm",
    "B200": "b200_sxm",
    "B300": "b300_sxm",
    "GB200": "gb200",
    "GB300": "gb300",
    "L40S": "l40s",
    "RTXPRO6000": "rtx_pro_6000_server",
    "B60": "b60",
}

# vLLM first: the serving system we validate against.
BACKEND_PREFERENCE = ("vllm", "sglang", "trtllm")


def _not_package_notice(record: logging.LogRecord) -> bool:
    """Drop two one-off package notices: MLA/DSA fallback tables (no layer here reads them) and
    attention-lane defaults missing for a GPU (the engine then takes the table's first lane)."""
    return not str(record.msg).startswith(("Loading low-fidelity fallback rows", "resolve_attention_lane_order:"))


def _drop_package_notices() -> None:
    """Before the first database is loaded (every use of the package's tables loads one first): a warm
    start, which loads none, does not import logging."""
    import logging

    logging.getLogger("aiconfigurator_core.sdk.perf_database").addFilter(_not_package_notice)
    logging.getLogger("aiconfigurator_core.sdk.attention_lanes").addFilter(_not_package_notice)


@dataclass(frozen=True)
class HardwareSpec:
    """One GPU of a package system, as its system YAML describes it."""

    name: str                 # user-facing name, e.g. "H100"
    system: str               # package system name, e.g. "h100_sxm"
    memory_bytes: int         # device memory
    memory_gb: float          # device memory in GiB (2**30 bytes): 80.0 for an H100 80GB
    memory_bw_gbps: float     # device memory bandwidth, GB/s (1e9 bytes/s)
    link_bw_gbps: float       # intra-node interconnect per GPU, one direction, GB/s
    num_gpus_per_node: int
    bf16_tflops: float        # dense tensor-core peak, TFLOP/s
    fp8_tflops: float | None  # None where the GPU has no FP8 tensor cores


def _normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _system_yaml(system: str) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((SYSTEMS_DIR / f"{system}.yaml").read_text(), Loader=loader)


def _system_names() -> list[str]:
    """The package's system YAMLs, measured or not, in name order."""
    return sorted(path.stem for path in SYSTEMS_DIR.glob("*.yaml"))


def _measured(system: str) -> bool:
    """Whether the system's data folder holds GEMM and attention measurements."""
    if not (SYSTEMS_DIR / "data" / system).is_dir():
        return False  # the package's non-system YAMLs (version slots, lane defaults, ...)
    data_dir = SYSTEMS_DIR / _system_yaml(system)["data_dir"]
    return (data_dir / "gemm").is_dir() and (data_dir / "attention").is_dir()


@lru_cache(maxsize=1)
def measured_systems() -> tuple[str, ...]:
    """Package systems with GEMM and attention measurements, in name order."""
    return tuple(system for system in _system_names() if _measured(system))


def _display_name(system: str) -> str:
    for alias, target in HARDWARE_ALIASES.items():
        if target == system:
            return alias
    return system


def supported_hardware() -> list[str]:
    """User-facing names of every system with measured data (package names also accepted)."""
    return [_display_name(system) for system in measured_systems()]


def _resolve_system(hardware: str) -> str:
    """Package system name for a user-facing or package hardware name (case-insensitive): the first
    measured system of that name (only the systems of that name are read)."""
    wanted = _normalize(hardware)
    for system in _system_names():
        if wanted in (_normalize(system), _normalize(_display_name(system))) and _measured(system):
            return system
    raise InputError(
        f"unknown hardware '{hardware}' for the aiconfigurator perf model; "
        f"supported: {', '.join(supported_hardware())}"
    )


def hardware_spec(hardware: str) -> HardwareSpec:
    """Memory, bandwidths and peak FLOPs of one GPU from the package's system YAML, kept in the answer
    cache (a warm start reads no system file)."""
    return _package_answers().answer(("hardware spec", hardware), lambda: _read_spec(hardware))


def _read_spec(hardware: str) -> HardwareSpec:
    system = _resolve_system(hardware)
    spec = _system_yaml(system)
    gpu, node = spec["gpu"], spec["node"]
    fp8_flops = gpu.get("fp8_tc_flops")
    return HardwareSpec(
        name=_display_name(system),
        system=system,
        memory_bytes=int(gpu["mem_capacity"]),
        memory_gb=gpu["mem_capacity"] / 2**30,
        memory_bw_gbps=gpu["mem_bw"] / 1e9,
        link_bw_gbps=node["intra_node_bw"] / 1e9,
        num_gpus_per_node=int(node["num_gpus_per_node"]),
        bf16_tflops=gpu["bfloat16_tc_flops"] / 1e12,
        fp8_tflops=fp8_flops / 1e12 if fp8_flops else None,
    )


@lru_cache(maxsize=None)
def load_database(system: str) -> PerfDatabase:
    """The measurement database of the first backend in BACKEND_PREFERENCE that has one."""
    _drop_package_notices()
    from aiconfigurator_core.sdk import perf_database

    for backend in BACKEND_PREFERENCE:
        if perf_database.get_version_slots(system, backend) is None:
            continue
        database = perf_database.get_database(system, backend, "current")
        if database is not None:
            return database
    raise InputError(f"aiconfigurator-core has no measurement table for system '{system}'")


def package_version() -> str:
    """aiconfigurator-core's installed version."""
    return installed_version("aiconfigurator_core")


def _package_answers() -> AnswerCache:
    """What this file reads of the package, keyed by the package's and PyYAML's versions and this file."""
    return AnswerCache("aiconfigurator-package", (package_version(), installed_version("yaml", "pyyaml"),
                                                  source_digest(Path(__file__))))


def database_table(system: str) -> str:
    """"backend version" of the database load_database picks for `system`, kept in the answer cache so
    that a warm start does not load the database."""
    def table() -> str:
        database = load_database(system)
        return f"{database.backend} {database.version}"

    return _package_answers().answer(system, table)


@lru_cache(maxsize=None)
def engine_for(system: str) -> EngineHandle:
    """A model-less engine bound to the system's tables; evaluates ad-hoc operation lists."""
    from aiconfigurator_core.sdk.engine import EngineHandle

    database = load_database(system)
    return EngineHandle.for_database(database, systems_path=database.systems_root)
