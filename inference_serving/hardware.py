"""Accelerators as files: `--hardware NAME` (a file `hardware/NAME.yaml`) or `--hardware PATH.yaml`.

A hardware file is a flat YAML mapping (README "Hardware files"):

  name                text, the name profiled CSV rows are matched by   [the file name without .yaml]
  provider            npu | aiconfigurator | csv: which performance model times the layers
  memory_gib          device memory per accelerator, GiB                 (default of --npu_mem)
  memory_bw_gbps      device memory bandwidth, GB/s                      (default of --local_bw)
  link_bw_gbps        accelerator-to-accelerator link, one direction, GB/s (default of --link_bw)
  link_latency_ns     link latency, ns                                   [0] (default of --link_latency)
  engine_overhead_ns  time per iteration spent outside the model (scheduling, launches), ns   [0]
  peak_tflops         mapping dtype -> dense peak TFLOP/s, e.g. {bf16: 989, fp8: 1978}  [optional]
  provider npu:        array_rows, array_cols (systolic array), clock_ghz, vector_lanes [array_cols]
  provider aiconfigurator: system, the package's system name         [the name]
  provider csv:        csv, the profile's path (relative paths are relative to the YAML file)

Every field is checked when the file is loaded; a bad one is reported in one line naming the file
and the key. Names without a file that aiconfigurator-core has measured (e.g. its system names such
as `h100_sxm`) are accepted too and take their numbers from the package.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .model import REPO_ROOT

HARDWARE_DIR = REPO_ROOT / "hardware"
PROVIDERS = ("npu", "aiconfigurator", "csv")

# Used for a hardware name that has no file, with a profiled CSV given by --perf-model.
FALLBACK = {"memory_gib": 40.0, "memory_bw_gbps": 1024.0, "link_bw_gbps": 256.0}

_COMMON_REQUIRED = ("provider", "memory_gib", "memory_bw_gbps", "link_bw_gbps")
_POSITIVE = ("memory_gib", "memory_bw_gbps", "link_bw_gbps", "clock_ghz")
_NON_NEGATIVE = ("link_latency_ns", "engine_overhead_ns")
_POSITIVE_INT = ("array_rows", "array_cols", "vector_lanes")
_KEYS = {"name", "system", "csv", "peak_tflops", *_COMMON_REQUIRED, *_POSITIVE, *_NON_NEGATIVE, *_POSITIVE_INT}
_PROVIDER_REQUIRED = {"npu": ("array_rows", "array_cols", "clock_ghz"), "aiconfigurator": (), "csv": ("csv",)}


class HardwareError(ValueError):
    """A hardware name or file that cannot be used."""


@dataclass(frozen=True)
class Hardware:
    """One accelerator: its performance provider and the defaults of the system flags."""

    name: str
    provider: str
    memory_gib: float
    memory_bw_gbps: float
    link_bw_gbps: float
    link_latency_ns: float = 0.0
    engine_overhead_ns: float = 0.0
    peak_tflops: dict[str, float] = field(default_factory=dict)
    source: str = "built-in"           # the YAML path, or where the numbers came from
    system: str | None = None          # aiconfigurator system name
    csv: Path | None = None            # profiled CSV for provider csv
    array_rows: int | None = None      # NPU: systolic array rows (the reduction dimension)
    array_cols: int | None = None      # NPU: systolic array columns (output features)
    clock_ghz: float | None = None     # NPU: clock
    vector_lanes: int | None = None    # NPU: element-wise operations per cycle

    @property
    def array_peak_tflops(self) -> float | None:
        """Dense peak of the systolic array: one multiply-add (2 FLOP) per PE per cycle."""
        if self.array_rows is None or self.array_cols is None or self.clock_ghz is None:
            return None
        return 2 * self.array_rows * self.array_cols * self.clock_ghz / 1e3

    def defaults(self) -> dict[str, float]:
        """Defaults of the command-line flags that describe the system."""
        return {"npu_mem": self.memory_gib, "local_bw": self.memory_bw_gbps, "link_bw": self.link_bw_gbps,
                "link_latency": self.link_latency_ns, "engine_overhead_ns": self.engine_overhead_ns}


def known_hardware() -> list[str]:
    """Names of the shipped hardware files."""
    return sorted(p.stem for p in HARDWARE_DIR.glob("*.yaml"))


def _is_path(arg: str) -> bool:
    return arg.endswith((".yaml", ".yml")) or "/" in arg or "\\" in arg


def _find_file(name: str) -> Path | None:
    wanted = name.lower()
    for path in sorted(HARDWARE_DIR.glob("*.yaml")):
        if path.stem.lower() == wanted:
            return path
    return None


def load_hardware(arg: str) -> Hardware:
    """The hardware named `arg` (a file under hardware/, case-insensitive) or the YAML file at `arg`."""
    if _is_path(arg):
        path = Path(arg)
        if not path.is_file():
            raise HardwareError(f"--hardware {arg}: no such file")
        return read_hardware_file(path)
    path = _find_file(arg)
    if path is not None:
        return read_hardware_file(path)
    measured = _from_aiconfigurator(arg)
    if measured is not None:
        return measured
    raise HardwareError(f"--hardware: unknown hardware '{arg}'; known: {', '.join(known_hardware())} "
                        f"(or a hardware YAML path, see README 'Hardware files')")


def fallback_hardware(name: str) -> Hardware:
    """A name with no file, for a run whose layers come from a profiled CSV (--perf-model FILE)."""
    return Hardware(name=name, provider="csv", source="fallback defaults", **FALLBACK)


def _from_aiconfigurator(name: str) -> Hardware | None:
    try:
        from .perf_aiconfigurator import hardware_spec
        from .perf_model import PerfModelError
    except ImportError:  # the package is a requirement; without it only files and CSVs work
        return None
    try:
        spec = hardware_spec(name)
    except PerfModelError:
        return None
    peaks = {"bf16": spec.bf16_tflops, **({"fp8": spec.fp8_tflops} if spec.fp8_tflops else {})}
    return Hardware(name=spec.name, provider="aiconfigurator", memory_gib=spec.memory_gb,
                    memory_bw_gbps=spec.memory_bw_gbps, link_bw_gbps=spec.link_bw_gbps, peak_tflops=peaks,
                    source=f"aiconfigurator-core system {spec.system}", system=spec.system)


def _number(path: Path, key: str, value, *, integer: bool = False, allow_zero: bool = False) -> float:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        kind = "integer" if integer else "number"
        raise HardwareError(f"{path}: '{key}' must be a {'non-negative' if allow_zero else 'positive'} {kind}, "
                            f"got {value!r}")
    return value


def read_hardware_file(path: Path) -> Hardware:
    """Parse and check one hardware YAML file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise HardwareError(f"{path}: cannot read the hardware file ({err})") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise HardwareError(f"{path}: not valid YAML{line}") from None
    if not isinstance(data, dict):
        raise HardwareError(f"{path}: a hardware file must be a mapping of keys to values")
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        raise HardwareError(f"{path}: unknown key '{unknown[0]}'; known keys: {', '.join(sorted(_KEYS))}")
    provider = data.get("provider")
    if provider not in PROVIDERS:
        raise HardwareError(f"{path}: 'provider' must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    for key in (*_COMMON_REQUIRED, *_PROVIDER_REQUIRED[provider]):
        if key not in data:
            raise HardwareError(f"{path}: missing '{key}' (required for provider {provider})")
    values: dict = {}
    for key in _POSITIVE:
        if key in data:
            values[key] = float(_number(path, key, data[key]))
    for key in _NON_NEGATIVE:
        if key in data:
            values[key] = float(_number(path, key, data[key], allow_zero=True))
    for key in _POSITIVE_INT:
        if key in data:
            values[key] = int(_number(path, key, data[key], integer=True))
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise HardwareError(f"{path}: 'name' must be a non-empty text, got {name!r}")
    peaks = data.get("peak_tflops", {})
    if not isinstance(peaks, dict):
        raise HardwareError(f"{path}: 'peak_tflops' must map dtype names to TFLOP/s, e.g. {{bf16: 989}}")
    peaks = {str(dtype): float(_number(path, f"peak_tflops.{dtype}", v)) for dtype, v in peaks.items()}
    system = data.get("system")
    if system is not None and (not isinstance(system, str) or not system):
        raise HardwareError(f"{path}: 'system' must be an aiconfigurator system name, got {system!r}")
    csv_path = None
    if provider == "csv":
        if not isinstance(data["csv"], str) or not data["csv"]:
            raise HardwareError(f"{path}: 'csv' must be a file path, got {data['csv']!r}")
        csv_path = Path(data["csv"])
        if not csv_path.is_absolute():
            csv_path = path.parent / csv_path
        if not csv_path.is_file():
            raise HardwareError(f"{path}: 'csv': no such file {csv_path}")
    if provider == "npu":
        values.setdefault("vector_lanes", values["array_cols"])
    return Hardware(name=name, provider=provider, peak_tflops=peaks, source=str(path),
                    system=system if provider == "aiconfigurator" else None, csv=csv_path, **values)
