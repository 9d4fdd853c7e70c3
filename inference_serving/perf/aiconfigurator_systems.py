"""The GPUs aiconfigurator-core has measured: its system files (names, memory, bandwidths, peaks).

The package ships latency tables measured on real GPUs (GEMM, context and generation attention,
all-reduce) per system, serving framework and version, and a compiled engine that interpolates
between measured shapes; aiconfigurator_tables.py loads those.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import aiconfigurator_core
import yaml

from ..errors import InputError
from ..inputs.hardware import Hardware

SYSTEMS_DIR = Path(aiconfigurator_core.__file__).resolve().parent / "systems"

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


@lru_cache(maxsize=None)
def _system_yaml(system: str) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((SYSTEMS_DIR / f"{system}.yaml").read_text(), Loader=loader)


def _is_measured(system: str) -> bool:
    """A package system whose data folder holds GEMM and attention measurements (the package's
    other YAMLs, version slots, lane defaults and so on, have no data folder)."""
    if not (SYSTEMS_DIR / "data" / system).is_dir() or not (SYSTEMS_DIR / f"{system}.yaml").is_file():
        return False
    data_dir = SYSTEMS_DIR / _system_yaml(system)["data_dir"]
    return (data_dir / "gemm").is_dir() and (data_dir / "attention").is_dir()


@lru_cache(maxsize=1)
def _measured_systems() -> tuple[str, ...]:
    return tuple(path.stem for path in sorted(SYSTEMS_DIR.glob("*.yaml")) if _is_measured(path.stem))


def _display_name(system: str) -> str:
    for alias, target in HARDWARE_ALIASES.items():
        if target == system:
            return alias
    return system


def supported_hardware() -> list[str]:
    """User-facing names of every system with measured data (package names also accepted)."""
    return [_display_name(system) for system in _measured_systems()]


def _resolve_system(hardware: str) -> str:
    """Package system name for a user-facing or package hardware name (case-insensitive); the
    names of HARDWARE_ALIASES without reading every system's YAML."""
    wanted = _normalize(hardware)
    for alias, system in HARDWARE_ALIASES.items():
        if wanted in (_normalize(alias), _normalize(system)) and _is_measured(system):
            return system
    for system in _measured_systems():
        if wanted in (_normalize(system), _normalize(_display_name(system))):
            return system
    raise InputError(
        f"unknown hardware '{hardware}' for the aiconfigurator perf model; "
        f"supported: {', '.join(supported_hardware())}"
    )


def hardware_spec(hardware: str) -> HardwareSpec:
    """Memory, bandwidths and peak FLOPs of one GPU from the package's system YAML."""
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


def measured_hardware(name: str) -> Hardware | None:
    """A Hardware for a measured system's name without a hardware file (None if not measured)."""
    try:
        spec = hardware_spec(name)
    except InputError:
        return None
    peaks = {"bf16": spec.bf16_tflops, **({"fp8": spec.fp8_tflops} if spec.fp8_tflops else {})}
    return Hardware(name=spec.name, provider="aiconfigurator", memory_gib=spec.memory_gb,
                    memory_bw_gbps=spec.memory_bw_gbps, link_bw_gbps=spec.link_bw_gbps, peak_tflops=peaks,
                    source=f"aiconfigurator-core system {spec.system}", system=spec.system)
