"""Engine failures named by what the user gave: the engine reads files that the run writes from
flags and the hardware file, so a complaint about one of them is reported as one about its source."""
from __future__ import annotations

from pathlib import Path

from ..errors import EngineError, InputError, SimError

SOURCES = {"network.yml": "--link_bw / --link_latency (or the hardware file's link_bw_gbps / link_latency_ns)",
           "system.json": "--local_bw (or the hardware file's memory_bw_gbps)",
           "remote_memory.json": "--remote_bw"}


def blamed(err: EngineError, engine: Path | None = None) -> SimError:
    """An InputError naming the flags behind the engine file the message names; else the failure,
    with the --astra-sim binary that failed when the user chose one."""
    message = str(err)
    for name, source in SOURCES.items():
        if name in message:
            return InputError(f"{source}: the engine refused the value written to its {name}: {message}")
    return EngineError(f"--astra-sim {engine}: {message}") if engine is not None else err
