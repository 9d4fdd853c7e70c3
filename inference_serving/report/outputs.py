"""The files a run writes (--output, --summary-json, --plot, --chrome-trace, --keep-traces), checked
before it starts, and written after it.

A path is usable when its folder exists or can be made and takes new files, it is not a folder or a
device, and it either does not exist or holds a previous result of the same kind (never another
file of the user's, unless --force is given). The files of one run are distinct.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..config.run_config import RunConfig
from ..errors import InputError
from .metrics import CSV_HEADER, INSTANCE_COLUMN, Metrics
from .output_paths import check_distinct, check_file, check_folder, first_line, is_png

TRACES_MARK = "network.yml"  # every --keep-traces folder holds the engine's network file


def _is_result_csv(path: Path) -> bool:
    return first_line(path) in (",".join(CSV_HEADER), ",".join(CSV_HEADER + [INSTANCE_COLUMN]))


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_summary_json(path: Path) -> bool:
    return set(_json_object(path)) == {"summary", "config"}


def _is_chrome_trace(path: Path) -> bool:
    data = _json_object(path)
    other = data.get("otherData")
    return "traceEvents" in data and isinstance(other, dict) and other.get("tool") == "llmservingsim"


def _is_network_file(path: Path) -> bool:
    return first_line(path).startswith("topology:")


def _plot_files(config: RunConfig) -> tuple[str, ...]:
    """The --plot figures' names: plots.py (numpy) is imported only by a run that plots."""
    if config.plot is None:
        return ()
    from .plots import PLOT_FILES
    return PLOT_FILES


def written_files(config: RunConfig) -> list[tuple[str, Path]]:
    """(flag, path) of every file the run writes outside its work folder."""
    files = [(flag, path) for flag, path in (("--output", config.output), ("--summary-json", config.summary_json),
                                             ("--chrome-trace", config.chrome_trace)) if path is not None]
    files += [("--plot", config.plot / name) for name in _plot_files(config)]
    if config.keep_traces is not None:
        files.append(("--keep-traces", config.keep_traces / TRACES_MARK))
    return files


def check_outputs(config: RunConfig) -> None:
    force = config.force
    check_file("--output", config.output, _is_result_csv, force)
    check_file("--summary-json", config.summary_json, _is_summary_json, force)
    check_file("--chrome-trace", config.chrome_trace, _is_chrome_trace, force)
    check_folder("--plot", config.plot, {name: is_png for name in _plot_files(config)}, force)
    check_folder("--keep-traces", config.keep_traces, {TRACES_MARK: _is_network_file}, force)
    check_distinct(written_files(config))


def _write(flag: str, path: Path, write) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write()
    except OSError as err:
        raise InputError(f"{flag} {path}: cannot write ({err.strerror or err})") from None


def write_summary_json(path: Path, metrics: Metrics) -> None:
    summary = {k: (None if v != v else v) for k, v in metrics.summary(metrics.end_ns).items()}  # NaN -> null
    path.write_text(json.dumps({"summary": summary, "config": metrics.config}, indent=1) + "\n")


def write_outputs(config: RunConfig, metrics: Metrics, states, span_file: Path | None, npus: int,
                  what: str) -> None:
    """The per-request CSV, --summary-json, --plot (titled with `what`, e.g. "4 x H100") and --chrome-trace
    (`npus`: the engine's NPUs)."""
    if config.output is not None:
        _write("--output", config.output, lambda: metrics.write_csv(config.output))
    if config.summary_json is not None:
        _write("--summary-json", config.summary_json, lambda: write_summary_json(config.summary_json, metrics))
    if config.plot is not None:
        from .energy import EnergyMeter, write_power_plot
        from .plots import PLOT_FILES, write_plots
        title = f"({Path(metrics.model_name).name.removesuffix('.json')}, {what})"
        _write("--plot", config.plot / PLOT_FILES[0],
               lambda: write_plots(config.plot, metrics, metrics.end_ns, title=title))
        for meter in (s for s in metrics.sections if isinstance(s, EnergyMeter)):
            _write("--plot", config.plot / "power.png",
                   lambda meter=meter: write_power_plot(config.plot, meter, metrics.end_ns, title=title))
    if config.chrome_trace is not None:
        from .chrome_trace import write_chrome_trace
        _write("--chrome-trace", config.chrome_trace,
               lambda: write_chrome_trace(config.chrome_trace, span_file, npus, states, metrics.samples,
                                          metrics.end_ns, metrics.config))
