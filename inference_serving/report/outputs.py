"""The files a run writes (--output, --summary-json, --plot, --chrome-trace), checked before it starts.

A path is usable when its folder exists or can be made, it is not a folder or a device, and it
either does not exist or holds a previous result of the same kind (never another file of the user's).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..config.run_config import RunConfig
from ..errors import InputError
from .energy import EnergyMeter, write_power_plot
from .metrics import CSV_HEADER, Metrics


def _first_line(path: Path) -> str:
    try:
        with open(path) as handle:
            return handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _is_result_csv(path: Path) -> bool:
    return _first_line(path) == ",".join(CSV_HEADER)


def _is_summary_json(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and set(data) == {"summary", "config"}


def _is_chrome_trace(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and "traceEvents" in data and data.get("otherData", {}).get("tool") == "llmservingsim"


def _writable_folder(flag: str, folder: Path) -> None:
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{flag} {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {folder}: the folder {existing} is not writable")


def check_file(flag: str, path: Path | None, is_previous_result) -> None:
    """One output file: its folder usable, and an existing file only if it is a previous result."""
    if path is None:
        return
    if path.exists():
        if path.is_dir() or not path.is_file():
            raise InputError(f"{flag} {path}: is a folder or a device, not a file; choose a file path")
        if not is_previous_result(path):
            raise InputError(f"{flag} {path}: exists and is not a previous simulator result; "
                             f"choose another path or remove the file")
        if not os.access(path, os.W_OK):
            raise InputError(f"{flag} {path}: the file is not writable")
    _writable_folder(flag, path.parent.resolve())


def check_outputs(config: RunConfig) -> None:
    check_file("--output", config.output, _is_result_csv)
    check_file("--summary-json", config.summary_json, _is_summary_json)
    check_file("--chrome-trace", config.chrome_trace, _is_chrome_trace)
    for flag, folder in (("--plot", config.plot), ("--keep-traces", config.keep_traces)):
        if folder is not None:
            if folder.exists() and not folder.is_dir():
                raise InputError(f"{flag} {folder}: exists and is not a folder")
            _writable_folder(flag, folder.resolve())


def write_summary_json(path: Path, metrics: Metrics) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {k: (None if v != v else v) for k, v in metrics.summary(metrics.end_ns).items()}  # NaN -> null
    path.write_text(json.dumps({"summary": summary, "config": metrics.config}, indent=1) + "\n")


def write_outputs(config: RunConfig, metrics: Metrics, states, span_file: Path | None) -> None:
    """The per-request CSV, --summary-json, --plot and --chrome-trace."""
    if config.output is not None:
        metrics.write_csv(config.output)
    if config.summary_json is not None:
        write_summary_json(config.summary_json, metrics)
    if config.plot is not None:
        from .plots import write_plots
        title = f"({Path(config.model_name).name.removesuffix('.json')}, {config.npu_num} x {config.hardware})"
        write_plots(config.plot, metrics, metrics.end_ns, title=title)
        for meter in (s for s in metrics.sections if isinstance(s, EnergyMeter)):
            write_power_plot(config.plot, meter, metrics.end_ns, title=title)
    if config.chrome_trace is not None:
        from .chrome_trace import write_chrome_trace
        write_chrome_trace(config.chrome_trace, span_file, config.npu_num, states, metrics.samples, metrics.end_ns,
                           metrics.config)
