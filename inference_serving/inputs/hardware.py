"""Accelerators as files: `--hardware NAME` (a file `hardware/NAME.yaml`) or `--hardware PATH.yaml`.

A hardware file is a flat YAML mapping (README "Hardware files"), checked by the typed model
`HardwareFile` (hardware_file.py: pydantic's model of `Hardware`'s fields with the checks in their
metadata; unknown keys refused, numbers finite and in range):

  name                text, the name profiled CSV rows are matched by   [the file name without .yaml]
  provider            the performance provider that times the layers (`llmservingsim list` names them)
  memory_gib          device memory per accelerator, GiB                 (default of --npu_mem)
  memory_bw_gbps      device memory bandwidth, GB/s                      (default of --local_bw)
  link_bw_gbps        accelerator-to-accelerator link, one direction, GB/s (default of --link_bw)
  link_latency_ns     link latency, ns                                   [0] (default of --link_latency)
  engine_overhead_ns  time per iteration spent outside the model (scheduling, launches), ns   [0]
  peak_tflops         mapping dtype -> dense peak TFLOP/s, e.g. {bf16: 989, fp8: 1978}  [optional]
  provider npu:        array_rows, array_cols (systolic array), clock_ghz, vector_lanes [array_cols]
  provider aiconfigurator: system, the package's system name         [the name]
  provider scaled:     sibling (a measured GPU of the same architecture, e.g. A100), peak_tflops with
                       the GEMM dtype's peak (perf/scaled.py)
  compute_capability, sm_count, l2_mib   [optional] an NVIDIA GPU's compute capability (e.g. 8.9),
                       streaming multiprocessors and L2 cache, MiB: with all three, a GPU on which vLLM
                       runs FlashAttention 2 gets its attention kernel's thread-block schedule (perf/fa2.py)
  provider csv:        csv, the profile's path (relative paths are relative to the YAML file)
  energy (--energy):   idle_power_w, max_power_w (board power idle and at full load, W),
                       memory_pj_per_bit (device-memory traffic), link_pj_per_bit (link traffic)
  PIM (--pim):         pim_bw_gbps (internal bandwidth of the memory's PIM units, GB/s), pim_tflops

A bad file is reported in one line naming the file and the key. Names without a file that
aiconfigurator-core has measured (e.g. its system names such as `h100_sxm`) are accepted too and
take their numbers from the package.

A file's parsed text and its checked values are kept in the answer cache (perf/answer_cache.py),
keyed by PyYAML's and pydantic's versions and the source of the parse and the checks: a warm start
reads a file it has read before without importing PyYAML or pydantic.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Optional, get_type_hints

from ..config.types import MAX_BANDWIDTH_GBPS, MAX_DIMENSION, MAX_DURATION_NS, MAX_MEMORY_GIB
from ..errors import InputError
from ..paths import HARDWARE_DIR
from ..perf.answer_cache import AnswerCache, installed_version, source_digest
from ..perf.registry import PROVIDERS

# Used for a hardware name that has no file, with a profiled CSV given by --perf-model.
FALLBACK = {"memory_gib": 40.0, "memory_bw_gbps": 1024.0, "link_bw_gbps": 256.0}

MAX_CLOCK_GHZ = 1e3      # an array clock, GHz
# the source of a file's parse and checks: the YAML loader, the fields, HardwareFile and the bounds (part
# of their answer cache's key)
CHECK_SOURCES = (Path(__file__), Path(__file__).with_name("hardware_file.py"),
                 Path(__file__).parent.parent / "config" / "types.py",
                 Path(__file__).parent.parent / "config" / "strict_yaml.py")

_PROVIDER_REQUIRED = {"npu": ("array_rows", "array_cols", "clock_ghz"),
                      "scaled": ("sibling", "peak_tflops"), "csv": ("csv",)}


def _field(default=MISSING, **checks):
    """A field with its default and the checks of a file's value (pydantic `Field` constraints)."""
    return field(default=default, metadata=checks)


@dataclass(frozen=True)
class Hardware:
    """One accelerator: its performance provider and the defaults of the system flags."""

    name: str = _field(min_length=1)
    provider: str = _field(min_length=1)
    memory_gib: float = _field(gt=0, le=MAX_MEMORY_GIB, allow_inf_nan=False)
    memory_bw_gbps: float = _field(gt=0, le=MAX_BANDWIDTH_GBPS, allow_inf_nan=False)
    link_bw_gbps: float = _field(gt=0, le=MAX_BANDWIDTH_GBPS, allow_inf_nan=False)
    link_latency_ns: float = _field(0.0, ge=0, le=MAX_DURATION_NS, allow_inf_nan=False)
    engine_overhead_ns: float = _field(0.0, ge=0, le=MAX_DURATION_NS, allow_inf_nan=False)
    peak_tflops: dict[str, float] = field(default_factory=dict)  # each in (0, hardware_file.MAX_TFLOPS]
    system: Optional[str] = _field(None, min_length=1)      # aiconfigurator system name
    csv: Optional[Path] = None                              # profiled CSV for provider csv
    array_rows: Optional[int] = _field(None, gt=0, le=MAX_DIMENSION)  # NPU: systolic array rows (the reduction dim.)
    array_cols: Optional[int] = _field(None, gt=0, le=MAX_DIMENSION)  # NPU: systolic array columns (output features)
    clock_ghz: Optional[float] = _field(None, gt=0, le=MAX_CLOCK_GHZ, allow_inf_nan=False)  # NPU: clock
    vector_lanes: Optional[int] = _field(None, gt=0, le=MAX_DIMENSION)  # NPU: element-wise operations per cycle
    sibling: Optional[str] = _field(None, min_length=1)     # scaled: the measured GPU whose tables are scaled
    sm_count: Optional[int] = _field(None, gt=0, le=MAX_DIMENSION)  # streaming multiprocessors
    compute_capability: Optional[float] = _field(None, gt=0, allow_inf_nan=False)  # NVIDIA compute capability
    l2_mib: Optional[float] = _field(None, gt=0, allow_inf_nan=False)  # L2 cache, MiB
    idle_power_w: Optional[float] = _field(None, ge=0, allow_inf_nan=False)       # energy: board power, idle
    max_power_w: Optional[float] = _field(None, gt=0, allow_inf_nan=False)        # energy: board power at full load
    memory_pj_per_bit: Optional[float] = _field(None, ge=0, allow_inf_nan=False)  # energy: device-memory traffic
    link_pj_per_bit: Optional[float] = _field(None, ge=0, allow_inf_nan=False)    # energy: link traffic
    pim_bw_gbps: Optional[float] = _field(None, gt=0, allow_inf_nan=False)        # PIM: internal bandwidth
    pim_tflops: Optional[float] = _field(None, gt=0, allow_inf_nan=False)         # PIM: peak of its units
    source: str = "built-in"                                # the YAML path, or where the numbers came from

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
            raise InputError(f"--hardware {arg}: no such file")
        return read_hardware_file(path)
    path = _find_file(arg)
    if path is not None:
        return read_hardware_file(path)
    measured = measured_hardware(arg)
    if measured is not None:
        return measured
    raise InputError(f"--hardware: unknown hardware '{arg}'; known: {', '.join(known_hardware())} "
                     f"(or a hardware YAML path, see README 'Hardware files')")


def measured_hardware(name: str) -> Hardware | None:
    """A Hardware for a name aiconfigurator-core has measured but no file describes (None otherwise)."""
    from ..perf.aiconfigurator_systems import hardware_spec
    try:
        spec = hardware_spec(name)
    except InputError:
        return None
    peaks = {"bf16": spec.bf16_tflops, **({"fp8": spec.fp8_tflops} if spec.fp8_tflops else {})}
    return Hardware(name=spec.name, provider="aiconfigurator", memory_gib=spec.memory_gb,
                    memory_bw_gbps=spec.memory_bw_gbps, link_bw_gbps=spec.link_bw_gbps, peak_tflops=peaks,
                    source=f"aiconfigurator-core system {spec.system}", system=spec.system)


def fallback_hardware(name: str) -> Hardware:
    """A name with no file, for a run whose layers come from a profiled CSV (--perf-model FILE)."""
    return Hardware(name=name, provider="csv", source="fallback defaults", **FALLBACK)


def _answers() -> AnswerCache:
    return AnswerCache("hardware", (installed_version("pydantic"), installed_version("yaml", "pyyaml"),
                                    source_digest(*CHECK_SOURCES)))


def _parsed(path: Path, text: str):
    """The file's text as strict_yaml reads it (PyYAML is imported for a text not read before)."""
    import yaml

    from ..config import strict_yaml
    try:
        return strict_yaml.load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(err, "problem", None)
        raise InputError(f"{path}: not valid YAML{line}{': ' + problem if problem else ''}") from None


def _read_mapping(path: Path, answers: AnswerCache) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the hardware file ({err})") from None
    data = answers.answer(("parsed", text), lambda: _parsed(path, text))
    if not isinstance(data, dict):
        raise InputError(f"{path}: a hardware file must be a mapping of keys to values")
    return data


def _check_provider_keys(path: Path, data: dict) -> None:
    for key in ("provider", "memory_gib", "memory_bw_gbps", "link_bw_gbps"):
        if key not in data:
            raise InputError(f"{path}: missing '{key}'")
    provider = data["provider"]
    if provider not in PROVIDERS.names():
        raise InputError(f"{path}: 'provider' must be one of {', '.join(PROVIDERS.names())}, got {provider!r}")


def _resolved_csv(path: Path, data: dict) -> Path:
    if not isinstance(data["csv"], str) or not data["csv"]:
        raise InputError(f"{path}: 'csv' must be a file path, got {data['csv']!r}")
    csv_path = Path(data["csv"])
    if not csv_path.is_absolute():
        csv_path = path.parent / csv_path
    if not csv_path.is_file():
        raise InputError(f"{path}: 'csv': no such file {csv_path}")
    return csv_path


def read_hardware_file(path: Path) -> Hardware:
    """Parse and check one hardware YAML file."""
    answers = _answers()
    data = _read_mapping(path, answers)
    _check_provider_keys(path, data)
    values = {str(k): (float(v) if isinstance(v, int) and not isinstance(v, bool) and k in _FLOAT_KEYS else v)
              for k, v in data.items()}
    values.setdefault("name", path.stem)
    if values["provider"] == "csv" and "csv" in data:
        values["csv"] = _resolved_csv(path, data)
    if values["provider"] == "npu" and isinstance(values.get("array_cols"), int):
        values.setdefault("vector_lanes", values["array_cols"])
    if values["provider"] != "aiconfigurator":
        values.pop("system", None)
    if isinstance(values.get("peak_tflops"), dict):
        values["peak_tflops"] = {str(k): (float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                                 for k, v in values["peak_tflops"].items()}
    hardware = _checked_file(path, values, answers)
    check_provider_fields(hardware)
    return hardware


def _checked_file(path: Path, values: dict, answers: AnswerCache) -> Hardware:
    """The Hardware of a file's values as HardwareFile checks them, from the answer cache when these
    values have passed before (HardwareFile's answer depends on nothing else)."""
    def check() -> dict:
        from .hardware_file import checked_fields  # pydantic, for values not checked before
        return checked_fields(Hardware, path, values)

    return Hardware(**answers.answer(("checked", str(path), repr(values)), check))


def check_provider_fields(hardware: Hardware) -> None:
    """The fields the hardware's provider reads are there (an NPU needs its array, a csv provider its file)."""
    for key in _PROVIDER_REQUIRED.get(hardware.provider, ()):
        if getattr(hardware, key) in (None, {}):
            raise InputError(f"{hardware.source}: missing '{key}' (required for provider {hardware.provider})")


_FLOAT_KEYS = {name for name, hint in get_type_hints(Hardware).items() if hint in (float, Optional[float])}
